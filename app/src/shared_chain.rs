//! [`SharedChain`]: one chain used by several roles in one process (the sandbox's agent,
//! order server and faucet all act on the same embedded chain).

use alloy_primitives::{Address, U256};
use std::sync::Arc;
use std::time::Duration;
use worldstore_domain::eip3009::Nonce;
use worldstore_domain::network::Network;
use worldstore_domain::ports::chain::{
    BalanceWatch, Balances, Chain, ChainError, Settlement, TokenFacts, TxHash, UsdcTransfer,
};
use worldstore_domain::x402::{ChainFacts, SignedPayment, VerifiedPayment};

/// A `Chain` behind an `Arc`, delegating every call.
#[derive(Debug)]
pub struct SharedChain<C>(pub Arc<C>);

impl<C> Clone for SharedChain<C> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<C: Chain> Chain for SharedChain<C> {
    fn network(&self) -> Network {
        self.0.network()
    }
    fn gas_payer(&self) -> Address {
        self.0.gas_payer()
    }
    async fn token(&self) -> Result<TokenFacts, ChainError> {
        self.0.token().await
    }
    async fn usdc_balance(&self, owner: Address) -> Result<U256, ChainError> {
        self.0.usdc_balance(owner).await
    }
    async fn balances(&self, owner: Address) -> Result<Balances, ChainError> {
        self.0.balances(owner).await
    }
    async fn authorization_used(&self, from: Address, nonce: Nonce) -> Result<bool, ChainError> {
        self.0.authorization_used(from, nonce).await
    }
    async fn has_code(&self, address: Address) -> Result<bool, ChainError> {
        self.0.has_code(address).await
    }
    async fn chain_facts(&self, payment: &SignedPayment) -> Result<ChainFacts, ChainError> {
        self.0.chain_facts(payment).await
    }
    async fn settle(&self, payment: &VerifiedPayment) -> Result<Settlement, ChainError> {
        self.0.settle(payment).await
    }
    async fn reconcile(
        &self,
        tx_hash: TxHash,
        expected: UsdcTransfer,
    ) -> Result<Settlement, ChainError> {
        self.0.reconcile(tx_hash, expected).await
    }
    async fn transfer_usdc(&self, to: Address, value: U256) -> Result<Settlement, ChainError> {
        self.0.transfer_usdc(to, value).await
    }
    async fn watch_usdc_balance(
        &self,
        owner: Address,
        at_least: U256,
        timeout: Duration,
    ) -> Result<BalanceWatch, ChainError> {
        self.0.watch_usdc_balance(owner, at_least, timeout).await
    }
}
