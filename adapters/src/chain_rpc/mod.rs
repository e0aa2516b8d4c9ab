//! `chain_rpc`: the [`Chain`] port over HTTP JSON-RPC with alloy.
//!
//! Contract (see `worldstore_domain::ports::chain` for the port's):
//! - [`RpcChain::connect`] checks the node's chain id and the token (code present, EIP-712
//!   `name()`/`version()` equal to the configured domain) and fails with a clear
//!   [`ChainError`] otherwise. Those token facts are read once and cached.
//! - [`Chain::chain_facts`] costs ONE `eth_call` on the happy path: it simulates
//!   `transferWithAuthorization` from the gas payer; success proves balance, nonce and
//!   signature. Only a revert costs two more reads (balance, `authorizationState`) so the
//!   facts say why.
//! - Submissions are serialized per signer (one nonce counter behind an async mutex, held
//!   from nonce choice to broadcast); the counter is re-read from the node after any
//!   failed broadcast. Each authorization is broadcast at most once per process: a second
//!   `settle` of the same payment reconciles the recorded hash, and one arriving while the
//!   first is still being submitted waits for that submission and joins it.
//! - Every JSON-RPC request has a timeout ([`RpcChainConfig::rpc_timeout`]): a hung node is
//!   [`ChainError::Unavailable`], never a request that hangs.
//! - A receipt counts only with status success AND the token's matching
//!   `Transfer(from, to, value)` log; no receipt within the timeout gives
//!   [`Settlement::Pending`].
//! - The signer's key lives only inside alloy's wallet; `Debug` and every error show the
//!   address alone.

mod submit;

use crate::balance_watch;
use crate::usdc::{self, IUsdc};
use alloy::network::TransactionBuilder;
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::{TransactionReceipt, TransactionRequest};
use alloy::sol_types::SolCall;
use alloy::transports::{RpcError, TransportError};
use alloy_primitives::{Address, Bytes, U256};
use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::OnceCell;
use tokio::time::Instant;
use worldstore_domain::eip3009::{LocalSigner, Nonce};
use worldstore_domain::network::{Network, UsdcDeployment};
use worldstore_domain::ports::chain::{
    BalanceWatch, Balances, Chain, ChainError, Confirmed, Settlement, TokenFacts, TxHash,
    UsdcTransfer,
};
use worldstore_domain::x402::{
    ChainFacts, NonceKey, NonceState, SignedPayment, Simulation, VerifiedPayment,
};

/// Configuration of one network's RPC chain.
pub struct RpcChainConfig {
    pub rpc_url: String,
    pub token: UsdcDeployment,
    /// Pays gas for settlements and sends refunds (the treasury).
    pub gas_payer: LocalSigner,
    /// Submissions are refused while the gas payer holds less than this (wei).
    pub gas_floor_wei: U256,
    /// How long `settle` waits for a receipt before answering `Pending`.
    pub receipt_timeout: Duration,
    /// Pause between receipt polls; also the first pause of a balance watch.
    pub poll_interval: Duration,
    /// Longest wait for one JSON-RPC answer: a node that accepts connections but never
    /// answers becomes [`ChainError::Unavailable`] instead of a request that hangs.
    pub rpc_timeout: Duration,
}

impl RpcChainConfig {
    pub const DEFAULT_RECEIPT_TIMEOUT: Duration = Duration::from_secs(30);
    pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(500);
    pub const DEFAULT_RPC_TIMEOUT: Duration = Duration::from_secs(10);

    pub fn new(rpc_url: impl Into<String>, token: UsdcDeployment, gas_payer: LocalSigner) -> Self {
        Self {
            rpc_url: rpc_url.into(),
            token,
            gas_payer,
            gas_floor_wei: U256::ZERO,
            receipt_timeout: Self::DEFAULT_RECEIPT_TIMEOUT,
            poll_interval: Self::DEFAULT_POLL_INTERVAL,
            rpc_timeout: Self::DEFAULT_RPC_TIMEOUT,
        }
    }
}

/// What this process knows about an authorization it settles.
#[derive(Debug, Clone, Copy)]
enum InFlight {
    /// A task is choosing a nonce and broadcasting right now.
    Submitting,
    Sent(TxHash),
}

/// The [`Chain`] port over JSON-RPC.
pub struct RpcChain {
    provider: DynProvider,
    token: UsdcDeployment,
    gas_payer: Address,
    gas_floor_wei: U256,
    receipt_timeout: Duration,
    poll_interval: Duration,
    token_facts: OnceCell<TokenFacts>,
    submitter: submit::Submitter,
    in_flight: Mutex<HashMap<NonceKey, InFlight>>,
}

impl fmt::Debug for RpcChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RpcChain")
            .field("network", &self.token.network)
            .field("token", &self.token.address)
            .field("gas_payer", &self.gas_payer)
            .finish_non_exhaustive()
    }
}

/// Classifies an alloy error: no answer is transient, a revert is `WouldRevert`.
pub(crate) fn rpc_error(error: TransportError) -> ChainError {
    match &error {
        RpcError::ErrorResp(payload) => match payload.as_revert_data() {
            Some(data) => ChainError::WouldRevert(usdc::revert_reason(&data)),
            None if payload.message.contains("revert") => {
                ChainError::WouldRevert(payload.message.to_string())
            }
            None => ChainError::Rpc(payload.to_string()),
        },
        RpcError::Transport(kind) if kind.is_retry_err() => {
            ChainError::Unavailable(error.to_string())
        }
        RpcError::Transport(_) => ChainError::Unavailable(error.to_string()),
        _ => ChainError::Rpc(error.to_string()),
    }
}

impl RpcChain {
    /// Connects, checks the chain id and the token; see the module docs.
    pub async fn connect(config: RpcChainConfig) -> Result<Self, ChainError> {
        let url = config
            .rpc_url
            .parse()
            .map_err(|e| ChainError::Rpc(format!("RPC URL is not a URL: {e}")))?;
        let gas_payer = config.gas_payer.address();
        let wallet = submit::wallet_of(&config.gas_payer);
        let http = reqwest::Client::builder()
            .timeout(config.rpc_timeout)
            .connect_timeout(config.rpc_timeout)
            .build()
            .map_err(|e| ChainError::Rpc(format!("cannot build the RPC client: {e}")))?;
        let provider = ProviderBuilder::new()
            .disable_recommended_fillers()
            .wallet(wallet)
            .connect_reqwest(http, url)
            .erased();
        let expected = config.token.network.chain_id();
        let actual = provider.get_chain_id().await.map_err(rpc_error)?;
        if actual != expected {
            return Err(ChainError::WrongChain { expected, actual });
        }
        let chain = Self {
            submitter: submit::Submitter::new(gas_payer, actual),
            provider,
            token: config.token,
            gas_payer,
            gas_floor_wei: config.gas_floor_wei,
            receipt_timeout: config.receipt_timeout,
            poll_interval: config.poll_interval,
            token_facts: OnceCell::new(),
            in_flight: Mutex::new(HashMap::new()),
        };
        chain.token().await?;
        Ok(chain)
    }

    async fn read_token_facts(&self) -> Result<TokenFacts, ChainError> {
        let deployment = &self.token;
        let mismatch = |problem: String| ChainError::TokenMismatch {
            network: deployment.network,
            token: deployment.address,
            problem,
        };
        if !self.has_code(deployment.address).await? {
            return Err(mismatch("no contract code at this address".to_owned()));
        }
        let name = self.view(IUsdc::nameCall {}).await?;
        let version = self.view(IUsdc::versionCall {}).await?;
        if name != deployment.eip712_name || version != deployment.eip712_version {
            return Err(mismatch(format!(
                "the contract's EIP-712 domain is name {name:?} version {version:?}, the configuration says name {:?} version {:?}",
                deployment.eip712_name, deployment.eip712_version
            )));
        }
        Ok(TokenFacts {
            deployment: deployment.clone(),
            has_code: true,
        })
    }

    /// One `eth_call` of a view function of the token.
    async fn view<C: SolCall>(&self, call: C) -> Result<C::Return, ChainError> {
        let request = TransactionRequest::default()
            .with_to(self.token.address)
            .with_input(call.abi_encode());
        let output = self.provider.call(request).await.map_err(rpc_error)?;
        C::abi_decode_returns(&output)
            .map_err(|e| ChainError::Rpc(format!("token answered undecodable data: {e}")))
    }

    /// `eth_call` of `data` to the token from the gas payer.
    async fn simulate(&self, data: Bytes) -> Result<Simulation, ChainError> {
        let request = TransactionRequest::default()
            .with_from(self.gas_payer)
            .with_to(self.token.address)
            .with_input(data);
        match self.provider.call(request).await.map_err(rpc_error) {
            Ok(_) => Ok(Simulation::Succeeded),
            Err(ChainError::WouldRevert(reason)) => Ok(Simulation::Reverted(reason)),
            Err(e) => Err(e),
        }
    }

    async fn gas_balance(&self, owner: Address) -> Result<U256, ChainError> {
        self.provider.get_balance(owner).await.map_err(rpc_error)
    }

    async fn ensure_gas_above_floor(&self) -> Result<(), ChainError> {
        if self.gas_floor_wei.is_zero() {
            return Ok(());
        }
        let balance = self.gas_balance(self.gas_payer).await?;
        if balance < self.gas_floor_wei {
            return Err(ChainError::GasBelowFloor {
                payer: self.gas_payer,
                balance,
                floor: self.gas_floor_wei,
            });
        }
        Ok(())
    }

    /// Checks a receipt against the expected transfer.
    fn judge(
        receipt: &TransactionReceipt,
        expected: UsdcTransfer,
    ) -> Result<Settlement, ChainError> {
        let tx_hash = receipt.transaction_hash;
        if !receipt.status() {
            return Err(ChainError::Failed {
                tx_hash,
                reason: None,
            });
        }
        let logs = receipt.inner.logs().iter().map(|l| &l.inner);
        if !usdc::has_transfer_log(logs, &expected) {
            return Err(ChainError::TransferLogMissing {
                tx_hash,
                from: expected.from,
                to: expected.to,
                value: expected.value,
            });
        }
        Ok(Settlement::Confirmed(Confirmed {
            tx_hash,
            block_number: receipt.block_number.unwrap_or_default(),
            gas_used: receipt.gas_used,
            transfer: expected,
        }))
    }

    /// Polls for the receipt until the configured timeout.
    async fn wait_for_receipt(
        &self,
        tx_hash: TxHash,
        expected: UsdcTransfer,
    ) -> Result<Settlement, ChainError> {
        let deadline = Instant::now() + self.receipt_timeout;
        // A fast chain (anvil, or a sequencer's pre-confirmation) often has the receipt
        // within milliseconds: start with short pauses and double up to the poll interval.
        // (At 500 ms a first pause of 1/16 held every settlement on anvil ~31 ms; 1/64 costs
        // about three more receipt polls per settlement on a 2 s block chain.)
        let mut pause = (self.poll_interval / 64).max(Duration::from_millis(1));
        loop {
            match self.provider.get_transaction_receipt(tx_hash).await {
                Ok(Some(receipt)) => return Self::judge(&receipt, expected),
                Ok(None) => {}
                Err(e) => match rpc_error(e) {
                    e @ (ChainError::Unavailable(_) | ChainError::Rpc(_)) => {
                        tracing::debug!(%tx_hash, error = %e, "receipt poll failed; retrying");
                    }
                    e => return Err(e),
                },
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(Settlement::Pending { tx_hash });
            }
            tokio::time::sleep(pause.min(deadline - now)).await;
            pause = (pause * 2).min(self.poll_interval);
        }
    }

    /// Broadcasts a call to the token from the gas payer, checking the gas floor first.
    async fn send_to_token(&self, data: Bytes) -> Result<TxHash, ChainError> {
        self.ensure_gas_above_floor().await?;
        self.submitter
            .send(&self.provider, self.token.address, data)
            .await
    }

    fn forget(&self, key: &NonceKey) {
        if let Ok(mut map) = self.in_flight.lock() {
            map.remove(key);
        }
    }
}

/// Removes a `Submitting` entry unless the broadcast was recorded, so a settle that fails
/// or is cancelled before broadcasting leaves the authorization free to settle again.
struct SubmittingGuard<'a> {
    chain: &'a RpcChain,
    key: NonceKey,
    armed: bool,
}

impl SubmittingGuard<'_> {
    fn sent(mut self, tx_hash: TxHash) {
        self.armed = false;
        if let Ok(mut map) = self.chain.in_flight.lock() {
            map.insert(self.key, InFlight::Sent(tx_hash));
        }
    }
}

impl Drop for SubmittingGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.chain.forget(&self.key);
        }
    }
}

impl Chain for RpcChain {
    fn network(&self) -> Network {
        self.token.network
    }

    fn gas_payer(&self) -> Address {
        self.gas_payer
    }

    async fn token(&self) -> Result<TokenFacts, ChainError> {
        self.token_facts
            .get_or_try_init(|| self.read_token_facts())
            .await
            .cloned()
    }

    async fn usdc_balance(&self, owner: Address) -> Result<U256, ChainError> {
        self.view(IUsdc::balanceOfCall { account: owner }).await
    }

    async fn balances(&self, owner: Address) -> Result<Balances, ChainError> {
        let (usdc, gas) = tokio::try_join!(self.usdc_balance(owner), self.gas_balance(owner))?;
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
        .await
    }

    async fn has_code(&self, address: Address) -> Result<bool, ChainError> {
        let code = self
            .provider
            .get_code_at(address)
            .await
            .map_err(rpc_error)?;
        Ok(!code.is_empty())
    }

    async fn chain_facts(&self, payment: &SignedPayment) -> Result<ChainFacts, ChainError> {
        let token_has_code = match self.token().await {
            Ok(facts) => facts.has_code && payment.token.address == self.token.address,
            Err(ChainError::TokenMismatch { .. }) => false,
            Err(e) => return Err(e),
        };
        if !token_has_code {
            return Ok(ChainFacts {
                token_has_code,
                payer_balance: U256::ZERO,
                nonce: NonceState::Unused,
                simulation: Simulation::Reverted("token is not the configured contract".to_owned()),
            });
        }
        let simulation = self
            .simulate(usdc::transfer_with_authorization_call(payment))
            .await?;
        if simulation == Simulation::Succeeded {
            // The transfer would succeed, so the payer holds at least `value` and the nonce
            // is unused: no further reads are needed. `payer_balance` is then that proven
            // lower bound, not the exact balance.
            return Ok(ChainFacts {
                token_has_code,
                payer_balance: payment.authorization.value,
                nonce: NonceState::Unused,
                simulation,
            });
        }
        let a = &payment.authorization;
        let (payer_balance, used) = tokio::try_join!(
            self.usdc_balance(a.from),
            self.authorization_used(a.from, a.nonce)
        )?;
        Ok(ChainFacts {
            token_has_code,
            payer_balance,
            nonce: if used {
                NonceState::UsedOnChain
            } else {
                NonceState::Unused
            },
            simulation,
        })
    }

    async fn settle(&self, payment: &VerifiedPayment) -> Result<Settlement, ChainError> {
        let key = payment.nonce_key();
        let expected = UsdcTransfer::of_payment(payment);
        // Another task submitting this authorization right now is waited for (briefly) and
        // joined, rather than reported as an outage: nothing is down, and a concurrent
        // duplicate must neither broadcast again nor look like a node failure in the logs.
        let deadline = Instant::now() + self.receipt_timeout;
        loop {
            let known = {
                let mut map = self
                    .in_flight
                    .lock()
                    .map_err(|_| ChainError::Rpc("settlement table poisoned".to_owned()))?;
                match map.get(&key).copied() {
                    Some(state) => Some(state),
                    None => {
                        map.insert(key, InFlight::Submitting);
                        None
                    }
                }
            };
            match known {
                Some(InFlight::Sent(tx_hash)) => {
                    // Known to the node but not mined yet (the broadcasting task is still
                    // polling its receipt): wait for the receipt like that task does, rather
                    // than answer `Pending` for a transaction milliseconds from its block.
                    let outcome = match self.reconcile(tx_hash, expected).await {
                        Ok(Settlement::Pending { .. }) => {
                            self.wait_for_receipt(tx_hash, expected).await
                        }
                        other => other,
                    };
                    if matches!(
                        outcome,
                        Err(ChainError::Failed { .. } | ChainError::UnknownTransaction(_))
                    ) {
                        // Nothing was moved: a later settle may broadcast afresh.
                        self.forget(&key);
                    }
                    return outcome;
                }
                Some(InFlight::Submitting) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                Some(InFlight::Submitting) => {
                    return Err(ChainError::Unavailable(
                        "this authorization is still being submitted by another task; retry to reconcile"
                            .to_owned(),
                    ));
                }
                None => break,
            }
        }
        let guard = SubmittingGuard {
            chain: self,
            key,
            armed: true,
        };
        let tx_hash = self
            .send_to_token(usdc::transfer_with_authorization_call(payment))
            .await?;
        guard.sent(tx_hash);
        tracing::info!(%tx_hash, network = %self.token.network, "settlement broadcast");
        self.wait_for_receipt(tx_hash, expected).await
    }

    async fn reconcile(
        &self,
        tx_hash: TxHash,
        expected: UsdcTransfer,
    ) -> Result<Settlement, ChainError> {
        if let Some(receipt) = self
            .provider
            .get_transaction_receipt(tx_hash)
            .await
            .map_err(rpc_error)?
        {
            return Self::judge(&receipt, expected);
        }
        match self
            .provider
            .get_transaction_by_hash(tx_hash)
            .await
            .map_err(rpc_error)?
        {
            Some(_) => Ok(Settlement::Pending { tx_hash }),
            None => Err(ChainError::UnknownTransaction(tx_hash)),
        }
    }

    async fn transfer_usdc(&self, to: Address, value: U256) -> Result<Settlement, ChainError> {
        let expected = UsdcTransfer {
            token: self.token.address,
            from: self.gas_payer,
            to,
            value,
        };
        let data = usdc::transfer_call(to, value);
        match self.simulate(data.clone()).await? {
            Simulation::Succeeded => {}
            Simulation::Reverted(reason) => return Err(ChainError::WouldRevert(reason)),
        }
        let tx_hash = self.send_to_token(data).await?;
        self.wait_for_receipt(tx_hash, expected).await
    }

    async fn watch_usdc_balance(
        &self,
        owner: Address,
        at_least: U256,
        timeout: Duration,
    ) -> Result<BalanceWatch, ChainError> {
        balance_watch::watch(
            || self.usdc_balance(owner),
            at_least,
            timeout,
            self.poll_interval,
        )
        .await
    }
}

/// Balances of `owner` on every configured network, in the given order.
pub async fn balances_everywhere<C: Chain>(
    chains: &[C],
    owner: Address,
) -> Vec<(Network, Result<Balances, ChainError>)> {
    let mut all = Vec::with_capacity(chains.len());
    for chain in chains {
        all.push((chain.network(), chain.balances(owner).await));
    }
    all
}
