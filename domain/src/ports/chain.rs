//! The `Chain` port: everything the core needs from an EVM chain holding USDC.
//!
//! One implementation serves one network (one chain id, one configured USDC deployment)
//! and one gas-paying signer, which is also the treasury that refunds are paid from.
//!
//! | method | answers | contract |
//! |---|---|---|
//! | [`Chain::token`] | the token's facts | code present and EIP-712 name/version as configured, read once and cached; a mismatch is [`ChainError::TokenMismatch`] (fatal at start-up) |
//! | [`Chain::chain_facts`] | [`ChainFacts`] for a signed payment | one `eth_call` simulation of `transferWithAuthorization` on the happy path: success proves balance, nonce and signature at once; a revert is mapped to the facts that explain it |
//! | [`Chain::settle`] | [`Settlement`] | submits once per authorization, waits for the receipt up to a timeout; `Confirmed` only when the receipt succeeded AND holds the matching `Transfer(from, to, value)` log; a late receipt gives `Pending` with the tx hash, and settling the same payment again reconciles that hash instead of broadcasting twice |
//! | [`Chain::reconcile`] | [`Settlement`] for a known tx hash | never broadcasts |
//! | [`Chain::transfer_usdc`] | [`Settlement`] of a plain ERC-20 transfer from the treasury | refunds |
//! | [`Chain::balances`], [`Chain::usdc_balance`] | USDC and gas-token balances | |
//! | [`Chain::watch_usdc_balance`] | the balance once it reaches a threshold, or the last seen balance at the deadline | for "awaiting funds" |
//!
//! Gas-payer safety: implementations refuse to submit while the signer's gas balance is below
//! the configured floor ([`ChainError::GasBelowFloor`]) and never put key material in an
//! error or a log line.

use crate::eip3009::Nonce;
use crate::network::{Network, UsdcDeployment};
use crate::x402::{ChainFacts, SignedPayment, VerifiedPayment};
use alloy_primitives::{Address, B256, U256};
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::time::Duration;

/// A transaction hash.
pub type TxHash = B256;

pub use super::ErrorClass;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error("chain node unavailable: {0}")]
    Unavailable(String),
    #[error("chain node answered unexpectedly: {0}")]
    Rpc(String),
    #[error("the node serves chain id {actual}, the configuration expects {expected}")]
    WrongChain { expected: u64, actual: u64 },
    #[error("token {token} on {network}: {problem}")]
    TokenMismatch {
        network: Network,
        token: Address,
        problem: String,
    },
    #[error(
        "gas payer {payer} holds {balance} wei, below the configured floor of {floor} wei: top it up before settling"
    )]
    GasBelowFloor {
        payer: Address,
        balance: U256,
        floor: U256,
    },
    #[error("transaction would revert: {0}")]
    WouldRevert(String),
    #[error("transaction {tx_hash} failed on chain{}", reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default())]
    Failed {
        tx_hash: TxHash,
        reason: Option<String>,
    },
    #[error(
        "transaction {tx_hash} succeeded but holds no Transfer({from}, {to}, {value}) log of the token"
    )]
    TransferLogMissing {
        tx_hash: TxHash,
        from: Address,
        to: Address,
        value: U256,
    },
    #[error("transaction {0} is unknown to the chain")]
    UnknownTransaction(TxHash),
}

impl ChainError {
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Unavailable(_) | Self::Rpc(_) => ErrorClass::Transient,
            Self::WouldRevert(_) | Self::Failed { .. } | Self::UnknownTransaction(_) => {
                ErrorClass::Rejected
            }
            Self::WrongChain { .. }
            | Self::TokenMismatch { .. }
            | Self::GasBelowFloor { .. }
            | Self::TransferLogMissing { .. } => ErrorClass::Fatal,
        }
    }
}

/// What was read once about a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenFacts {
    pub deployment: UsdcDeployment,
    pub has_code: bool,
}

/// The USDC movement a transaction must show: `Transfer(from, to, value)` emitted by `token`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct UsdcTransfer {
    pub token: Address,
    pub from: Address,
    pub to: Address,
    pub value: U256,
}

impl UsdcTransfer {
    /// The transfer a payment makes.
    pub fn of_payment(payment: &SignedPayment) -> Self {
        Self {
            token: payment.token.address,
            from: payment.authorization.from,
            to: payment.authorization.to,
            value: payment.authorization.value,
        }
    }
}

/// A transaction mined with status success and the expected `Transfer` log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmed {
    pub tx_hash: TxHash,
    pub block_number: u64,
    pub gas_used: u64,
    pub transfer: UsdcTransfer,
}

/// The outcome of submitting (or reconciling) a transfer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Settlement {
    Confirmed(Confirmed),
    /// Broadcast, but no receipt yet (x402 `settlement_pending`): reconcile this hash later.
    Pending {
        tx_hash: TxHash,
    },
}

impl Settlement {
    pub fn tx_hash(&self) -> TxHash {
        match self {
            Self::Confirmed(c) => c.tx_hash,
            Self::Pending { tx_hash } => *tx_hash,
        }
    }
}

/// Balances of one address on one network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balances {
    pub network: Network,
    pub usdc: U256,
    /// The gas token (ETH on Base and Ethereum, POL on Polygon), in wei.
    pub gas: U256,
}

/// The end of a balance watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BalanceWatch {
    Reached(U256),
    /// The deadline passed; the last balance seen.
    TimedOut(U256),
}

/// The chain, as the core sees it. See the module docs for each method's contract.
pub trait Chain: Send + Sync {
    /// The network this chain serves.
    fn network(&self) -> Network;

    /// The address that pays gas and sends refunds.
    fn gas_payer(&self) -> Address;

    /// The configured token's facts, cached after the first successful read.
    fn token(&self) -> impl Future<Output = Result<TokenFacts, ChainError>> + Send;

    fn usdc_balance(&self, owner: Address)
    -> impl Future<Output = Result<U256, ChainError>> + Send;

    fn balances(&self, owner: Address)
    -> impl Future<Output = Result<Balances, ChainError>> + Send;

    /// Whether `authorizationState(from, nonce)` is true (used or canceled).
    fn authorization_used(
        &self,
        from: Address,
        nonce: Nonce,
    ) -> impl Future<Output = Result<bool, ChainError>> + Send;

    fn has_code(&self, address: Address) -> impl Future<Output = Result<bool, ChainError>> + Send;

    /// The facts the x402 rules need about `payment` (reservation state is the store's, so
    /// the nonce here is `Unused` or `UsedOnChain`).
    fn chain_facts(
        &self,
        payment: &SignedPayment,
    ) -> impl Future<Output = Result<ChainFacts, ChainError>> + Send;

    fn settle(
        &self,
        payment: &VerifiedPayment,
    ) -> impl Future<Output = Result<Settlement, ChainError>> + Send;

    /// The state of an already broadcast transaction that must show `expected`.
    fn reconcile(
        &self,
        tx_hash: TxHash,
        expected: UsdcTransfer,
    ) -> impl Future<Output = Result<Settlement, ChainError>> + Send;

    /// Sends `value` USDC from the treasury (the gas payer) to `to`.
    fn transfer_usdc(
        &self,
        to: Address,
        value: U256,
    ) -> impl Future<Output = Result<Settlement, ChainError>> + Send;

    /// Waits until `owner` holds at least `at_least` USDC, or `timeout` passes.
    fn watch_usdc_balance(
        &self,
        owner: Address,
        at_least: U256,
        timeout: Duration,
    ) -> impl Future<Output = Result<BalanceWatch, ChainError>> + Send;
}

/// A shared chain is a chain: the facilitator and the merchant of one process use one.
impl<T: Chain> Chain for std::sync::Arc<T> {
    fn network(&self) -> Network {
        (**self).network()
    }

    fn gas_payer(&self) -> Address {
        (**self).gas_payer()
    }

    fn token(&self) -> impl Future<Output = Result<TokenFacts, ChainError>> + Send {
        (**self).token()
    }

    fn usdc_balance(
        &self,
        owner: Address,
    ) -> impl Future<Output = Result<U256, ChainError>> + Send {
        (**self).usdc_balance(owner)
    }

    fn balances(
        &self,
        owner: Address,
    ) -> impl Future<Output = Result<Balances, ChainError>> + Send {
        (**self).balances(owner)
    }

    fn authorization_used(
        &self,
        from: Address,
        nonce: Nonce,
    ) -> impl Future<Output = Result<bool, ChainError>> + Send {
        (**self).authorization_used(from, nonce)
    }

    fn has_code(&self, address: Address) -> impl Future<Output = Result<bool, ChainError>> + Send {
        (**self).has_code(address)
    }

    fn chain_facts(
        &self,
        payment: &SignedPayment,
    ) -> impl Future<Output = Result<ChainFacts, ChainError>> + Send {
        (**self).chain_facts(payment)
    }

    fn settle(
        &self,
        payment: &VerifiedPayment,
    ) -> impl Future<Output = Result<Settlement, ChainError>> + Send {
        (**self).settle(payment)
    }

    fn reconcile(
        &self,
        tx_hash: TxHash,
        expected: UsdcTransfer,
    ) -> impl Future<Output = Result<Settlement, ChainError>> + Send {
        (**self).reconcile(tx_hash, expected)
    }

    fn transfer_usdc(
        &self,
        to: Address,
        value: U256,
    ) -> impl Future<Output = Result<Settlement, ChainError>> + Send {
        (**self).transfer_usdc(to, value)
    }

    fn watch_usdc_balance(
        &self,
        owner: Address,
        at_least: U256,
        timeout: Duration,
    ) -> impl Future<Output = Result<BalanceWatch, ChainError>> + Send {
        (**self).watch_usdc_balance(owner, at_least, timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_say_whether_to_retry_feed_back_or_stop() {
        let hash = B256::repeat_byte(1);
        assert_eq!(
            ChainError::Unavailable("refused".into()).class(),
            ErrorClass::Transient
        );
        assert_eq!(
            ChainError::WouldRevert("expired".into()).class(),
            ErrorClass::Rejected
        );
        assert_eq!(
            ChainError::UnknownTransaction(hash).class(),
            ErrorClass::Rejected
        );
        let floor = ChainError::GasBelowFloor {
            payer: Address::repeat_byte(2),
            balance: U256::from(1u8),
            floor: U256::from(2u8),
        };
        assert_eq!(floor.class(), ErrorClass::Fatal);
        assert!(floor.to_string().contains("top it up"), "{floor}");
    }

    #[test]
    fn a_failed_transaction_names_its_hash_and_reason() {
        let error = ChainError::Failed {
            tx_hash: B256::repeat_byte(0xab),
            reason: Some("FiatTokenV2: authorization is expired".into()),
        };
        let text = error.to_string();
        assert!(
            text.contains("0xabab") && text.ends_with(": FiatTokenV2: authorization is expired"),
            "{text}"
        );
    }
}
