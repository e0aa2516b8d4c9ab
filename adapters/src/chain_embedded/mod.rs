//! `chain_embedded`: the sandbox chain, an in-process revm EVM running the project's own
//! EIP-3009 token (`token/SandboxUSDC.sol`, compiled by `token/compile.mjs` into the
//! committed `token/SandboxUSDC.json`), behind the same [`Chain`] port as `chain_rpc`.
//!
//! Contract:
//! - chain id 84532 and the token's runtime code placed at Base Sepolia's USDC address, so
//!   a client configured for `base-sepolia` / `eip155:84532` works unchanged; EIP-712 name
//!   "USDC", version "2", FiatToken's revert strings.
//! - every transaction is mined at once in its own block whose timestamp comes from the
//!   driver's clock (never earlier than the previous block's); receipts and logs are kept
//!   and answered by [`Chain::reconcile`]. `settle` is therefore never `Pending`.
//! - gas is metered but priced at zero; the gas floor still applies to the gas payer's
//!   native balance, which [`EmbeddedChain::set_gas_balance`] sets.
//! - thread-safe: one mutex around the EVM, never held across an `.await`.
//! - the faucet is [`EmbeddedChain::mint`], called as the sandbox minter.

mod evm;

use crate::balance_watch;
use crate::usdc::{self, IUsdc};
use alloy::sol;
use alloy::sol_types::SolCall;
use alloy_primitives::{Address, U256, address};
use evm::{Executed, SandboxEvm};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use worldstore_domain::eip3009::Nonce;
use worldstore_domain::network::{Network, UsdcDeployment};
use worldstore_domain::ports::chain::{
    BalanceWatch, Balances, Chain, ChainError, Confirmed, Settlement, TokenFacts, TxHash,
    UsdcTransfer,
};
use worldstore_domain::x402::{
    ChainFacts, NonceKey, NonceState, SignedPayment, Simulation, VerifiedPayment,
};

/// The account allowed to mint sandbox USDC (the faucet). No key exists for it: the
/// embedded chain executes its calls directly.
pub const SANDBOX_MINTER: Address = address!("0x5A4d000000000000000000000000000000005A4d");

sol! {
    /// The sandbox token's own set-up call.
    interface ISandboxUsdc {
        function initialize(address newMinter) external;
    }
}

/// The driver's clock, in unix seconds.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// The embedded chain's settings.
pub struct EmbeddedChainConfig {
    /// Submits settlements and sends refunds (the treasury).
    pub gas_payer: Address,
    pub gas_floor_wei: U256,
    pub clock: Clock,
    /// First pause of a balance watch.
    pub poll_interval: Duration,
}

impl EmbeddedChainConfig {
    pub fn new(gas_payer: Address, clock: Clock) -> Self {
        Self {
            gas_payer,
            gas_floor_wei: U256::ZERO,
            clock,
            poll_interval: Duration::from_millis(200),
        }
    }
}

/// The sandbox chain. See the module docs.
pub struct EmbeddedChain {
    evm: Mutex<SandboxEvm>,
    token: UsdcDeployment,
    gas_payer: Address,
    gas_floor_wei: U256,
    clock: Clock,
    poll_interval: Duration,
}

impl std::fmt::Debug for EmbeddedChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedChain")
            .field("token", &self.token.address)
            .field("gas_payer", &self.gas_payer)
            .finish_non_exhaustive()
    }
}

/// The gas payer starts with this much native balance (wei).
pub const INITIAL_GAS_BALANCE: U256 = U256::from_limbs([1_000_000_000_000_000_000, 0, 0, 0]);

impl EmbeddedChain {
    pub fn new(config: EmbeddedChainConfig) -> Result<Self, ChainError> {
        let token = Network::BaseSepolia.usdc();
        let now = (config.clock)();
        let mut evm = SandboxEvm::new(Network::BaseSepolia.chain_id(), token.address, now)?;
        evm.set_balance(config.gas_payer, INITIAL_GAS_BALANCE);
        let init = ISandboxUsdc::initializeCall {
            newMinter: SANDBOX_MINTER,
        };
        let executed = evm.commit(SANDBOX_MINTER, token.address, init.abi_encode().into(), now)?;
        if let Some(reason) = executed.revert {
            return Err(ChainError::Rpc(format!(
                "sandbox token initialization failed: {reason}"
            )));
        }
        let chain = Self {
            evm: Mutex::new(evm),
            token,
            gas_payer: config.gas_payer,
            gas_floor_wei: config.gas_floor_wei,
            clock: config.clock,
            poll_interval: config.poll_interval,
        };
        // The same start-up check as `chain_rpc`: the token's own EIP-712 domain must be
        // the configured one, or every signature would be refused.
        let name = chain.view(IUsdc::nameCall {})?;
        let version = chain.view(IUsdc::versionCall {})?;
        if name != chain.token.eip712_name || version != chain.token.eip712_version {
            return Err(ChainError::TokenMismatch {
                network: chain.token.network,
                token: chain.token.address,
                problem: format!(
                    "the sandbox token's EIP-712 domain is name {name:?} version {version:?}, the configuration says name {:?} version {:?}",
                    chain.token.eip712_name, chain.token.eip712_version
                ),
            });
        }
        Ok(chain)
    }

    fn lock(&self) -> Result<MutexGuard<'_, SandboxEvm>, ChainError> {
        self.evm
            .lock()
            .map_err(|_| ChainError::Rpc("embedded chain state poisoned by a panic".to_owned()))
    }

    fn now(&self) -> u64 {
        (self.clock)()
    }

    /// The faucet: mints `value` sandbox USDC to `to`.
    pub fn mint(&self, to: Address, value: U256) -> Result<Confirmed, ChainError> {
        let call = IUsdc::mintCall { to, amount: value };
        let now = self.now();
        let executed = self.lock()?.commit(
            SANDBOX_MINTER,
            self.token.address,
            call.abi_encode().into(),
            now,
        )?;
        let expected = UsdcTransfer {
            token: self.token.address,
            from: Address::ZERO,
            to,
            value,
        };
        match judge(&executed, expected)? {
            Settlement::Confirmed(c) => Ok(c),
            Settlement::Pending { tx_hash } => Err(ChainError::UnknownTransaction(tx_hash)),
        }
    }

    /// Sets an account's native (gas token) balance.
    pub fn set_gas_balance(&self, owner: Address, wei: U256) -> Result<(), ChainError> {
        self.lock()?.set_balance(owner, wei);
        Ok(())
    }

    /// The number of the latest block.
    pub fn block_number(&self) -> Result<u64, ChainError> {
        Ok(self.lock()?.block_number())
    }

    fn view<C: SolCall>(&self, call: C) -> Result<C::Return, ChainError> {
        let now = self.now();
        let executed = self.lock()?.call(
            Address::ZERO,
            self.token.address,
            call.abi_encode().into(),
            now,
        )?;
        if let Some(reason) = executed.revert {
            return Err(ChainError::WouldRevert(reason));
        }
        C::abi_decode_returns(&executed.output)
            .map_err(|e| ChainError::Rpc(format!("sandbox token answered undecodable data: {e}")))
    }

    /// Mines `data` from the gas payer. With `authorization`, a payment already settled
    /// here is reconciled from its receipt instead of being sent again.
    fn submit(
        &self,
        data: alloy_primitives::Bytes,
        expected: UsdcTransfer,
        authorization: Option<NonceKey>,
    ) -> Result<Settlement, ChainError> {
        let now = self.now();
        let mut evm = self.lock()?;
        if let Some(executed) = authorization.and_then(|key| evm.settled(&key)) {
            drop(evm);
            return judge(&executed, expected);
        }
        let balance = evm.balance(self.gas_payer)?;
        if balance < self.gas_floor_wei {
            return Err(ChainError::GasBelowFloor {
                payer: self.gas_payer,
                balance,
                floor: self.gas_floor_wei,
            });
        }
        // Like `eth_estimateGas` on a node: a call that would revert is not mined.
        let simulated = evm.call(self.gas_payer, self.token.address, data.clone(), now)?;
        if let Some(reason) = simulated.revert {
            return Err(ChainError::WouldRevert(reason));
        }
        let executed = evm.commit(self.gas_payer, self.token.address, data, now)?;
        if let Some(key) = authorization {
            evm.remember_settlement(key, executed.tx_hash);
        }
        drop(evm);
        judge(&executed, expected)
    }
}

/// Checks an executed transaction against the transfer it must show.
fn judge(executed: &Executed, expected: UsdcTransfer) -> Result<Settlement, ChainError> {
    if let Some(reason) = &executed.revert {
        return Err(ChainError::Failed {
            tx_hash: executed.tx_hash,
            reason: Some(reason.clone()),
        });
    }
    if !usdc::has_transfer_log(executed.logs.iter(), &expected) {
        return Err(ChainError::TransferLogMissing {
            tx_hash: executed.tx_hash,
            from: expected.from,
            to: expected.to,
            value: expected.value,
        });
    }
    Ok(Settlement::Confirmed(Confirmed {
        tx_hash: executed.tx_hash,
        block_number: executed.block_number,
        gas_used: executed.gas_used,
        transfer: expected,
    }))
}

impl Chain for EmbeddedChain {
    fn network(&self) -> Network {
        self.token.network
    }

    fn gas_payer(&self) -> Address {
        self.gas_payer
    }

    async fn token(&self) -> Result<TokenFacts, ChainError> {
        Ok(TokenFacts {
            deployment: self.token.clone(),
            has_code: true,
        })
    }

    async fn usdc_balance(&self, owner: Address) -> Result<U256, ChainError> {
        self.view(IUsdc::balanceOfCall { account: owner })
    }

    async fn balances(&self, owner: Address) -> Result<Balances, ChainError> {
        let usdc = self.view(IUsdc::balanceOfCall { account: owner })?;
        let gas = self.lock()?.balance(owner)?;
        Ok(Balances {
            network: self.token.network,
            usdc,
            gas,
        })
    }

    async fn authorization_used(&self, from: Address, nonce: Nonce) -> Result<bool, ChainError> {
        self.view(IUsdc::authorizationStateCall {
            authorizer: from,
            nonce: nonce.as_b256(),
        })
    }

    async fn has_code(&self, address: Address) -> Result<bool, ChainError> {
        self.lock()?.has_code(address)
    }

    async fn chain_facts(&self, payment: &SignedPayment) -> Result<ChainFacts, ChainError> {
        if payment.token.address != self.token.address {
            return Ok(ChainFacts {
                token_has_code: self.lock()?.has_code(payment.token.address)?,
                payer_balance: U256::ZERO,
                nonce: NonceState::Unused,
                simulation: Simulation::Reverted("token is not the sandbox USDC".to_owned()),
            });
        }
        let now = self.now();
        let data = usdc::transfer_with_authorization_call(payment);
        let executed = self
            .lock()?
            .call(self.gas_payer, self.token.address, data, now)?;
        let a = &payment.authorization;
        let used = self.view(IUsdc::authorizationStateCall {
            authorizer: a.from,
            nonce: a.nonce.as_b256(),
        })?;
        Ok(ChainFacts {
            token_has_code: true,
            payer_balance: self.view(IUsdc::balanceOfCall { account: a.from })?,
            nonce: if used {
                NonceState::UsedOnChain
            } else {
                NonceState::Unused
            },
            simulation: match executed.revert {
                None => Simulation::Succeeded,
                Some(reason) => Simulation::Reverted(reason),
            },
        })
    }

    async fn settle(&self, payment: &VerifiedPayment) -> Result<Settlement, ChainError> {
        self.submit(
            usdc::transfer_with_authorization_call(payment),
            UsdcTransfer::of_payment(payment),
            Some(payment.nonce_key()),
        )
    }

    async fn reconcile(
        &self,
        tx_hash: TxHash,
        expected: UsdcTransfer,
    ) -> Result<Settlement, ChainError> {
        let executed = self
            .lock()?
            .receipt(tx_hash)
            .ok_or(ChainError::UnknownTransaction(tx_hash))?;
        judge(&executed, expected)
    }

    async fn transfer_usdc(&self, to: Address, value: U256) -> Result<Settlement, ChainError> {
        let expected = UsdcTransfer {
            token: self.token.address,
            from: self.gas_payer,
            to,
            value,
        };
        self.submit(usdc::transfer_call(to, value), expected, None)
    }

    async fn watch_usdc_balance(
        &self,
        owner: Address,
        at_least: U256,
        timeout: Duration,
    ) -> Result<BalanceWatch, ChainError> {
        balance_watch::watch(
            || async move { self.view(IUsdc::balanceOfCall { account: owner }) },
            at_least,
            timeout,
            self.poll_interval,
        )
        .await
    }
}
