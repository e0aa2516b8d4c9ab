//! Broadcasting from the gas payer with nonces serialized per signer.
//!
//! One async mutex per signer is held from choosing the nonce until the node accepted the
//! transaction, so parallel settlements get consecutive nonces in broadcast order. After a
//! failed broadcast the counter is dropped and re-read from the node (`pending` count).

use super::rpc_error;
use alloy::network::{EthereumWallet, TransactionBuilder};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::TransactionRequest;
use alloy::signers::local::PrivateKeySigner;
use alloy_primitives::{Address, B256, Bytes};
use tokio::sync::Mutex;
use worldstore_domain::eip3009::LocalSigner;
use worldstore_domain::ports::chain::{ChainError, TxHash};

/// Gas limit headroom over the node's estimate, in percent.
const GAS_HEADROOM_PERCENT: u64 = 25;

/// alloy's wallet for the gas payer. The key bytes are copied once and wiped here.
pub(super) fn wallet_of(signer: &LocalSigner) -> EthereumWallet {
    let mut bytes = signer.secret_bytes();
    let key = PrivateKeySigner::from_bytes(&B256::from(bytes))
        .unwrap_or_else(|_| unreachable!("a LocalSigner always holds a valid secp256k1 key"));
    bytes.fill(0);
    EthereumWallet::from(key)
}

pub(super) struct Submitter {
    from: Address,
    chain_id: u64,
    next_nonce: Mutex<Option<u64>>,
}

impl Submitter {
    pub(super) fn new(from: Address, chain_id: u64) -> Self {
        Self {
            from,
            chain_id,
            next_nonce: Mutex::new(None),
        }
    }

    /// Estimates gas (which also refuses a reverting call), then broadcasts under the lock.
    pub(super) async fn send(
        &self,
        provider: &DynProvider,
        to: Address,
        data: Bytes,
    ) -> Result<TxHash, ChainError> {
        let request = TransactionRequest::default()
            .with_from(self.from)
            .with_to(to)
            .with_input(data);
        let (gas, fees) = tokio::try_join!(
            async {
                provider
                    .estimate_gas(request.clone())
                    .await
                    .map_err(rpc_error)
            },
            async { provider.estimate_eip1559_fees().await.map_err(rpc_error) },
        )?;
        let request = request
            .with_chain_id(self.chain_id)
            .with_gas_limit(gas.saturating_add(gas * GAS_HEADROOM_PERCENT / 100))
            .with_max_fee_per_gas(fees.max_fee_per_gas)
            .with_max_priority_fee_per_gas(fees.max_priority_fee_per_gas);

        let mut next = self.next_nonce.lock().await;
        let nonce = match *next {
            Some(nonce) => nonce,
            None => provider
                .get_transaction_count(self.from)
                .pending()
                .await
                .map_err(rpc_error)?,
        };
        match provider.send_transaction(request.with_nonce(nonce)).await {
            Ok(pending) => {
                *next = Some(nonce + 1);
                Ok(*pending.tx_hash())
            }
            Err(e) => {
                *next = None;
                Err(rpc_error(e))
            }
        }
    }
}
