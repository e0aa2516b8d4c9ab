//! The revm state machine under [`super::EmbeddedChain`]: one block per transaction, the
//! sandbox token at a fixed address, receipts by transaction hash.

use alloy_primitives::{Address, B256, Bytes, Log, U256, keccak256};
use revm::context::{BlockEnv, TxEnv};
use revm::context_interface::result::{ExecutionResult, Output};
use revm::database::{CacheDB, EmptyDB};
use revm::handler::{MainnetContext, MainnetEvm};
use revm::primitives::TxKind;
use revm::state::{AccountInfo, Bytecode};
use revm::{Context, Database, ExecuteCommitEvm, ExecuteEvm, MainBuilder, MainContext};
use std::collections::HashMap;
use worldstore_domain::ports::chain::{ChainError, TxHash};
use worldstore_domain::x402::NonceKey;

/// Gas limit of every sandbox transaction (a `transferWithAuthorization` needs ~85k).
const TX_GAS_LIMIT: u64 = 1_000_000;

const ARTIFACT: &str = include_str!("token/SandboxUSDC.json");

/// The result of one execution, committed (a receipt) or not (a call).
#[derive(Debug, Clone)]
pub(super) struct Executed {
    pub tx_hash: TxHash,
    pub block_number: u64,
    pub gas_used: u64,
    /// `None` on success, else the decoded revert reason or halt.
    pub revert: Option<String>,
    pub output: Bytes,
    pub logs: Vec<Log>,
}

pub(super) struct SandboxEvm {
    db: CacheDB<EmptyDB>,
    chain_id: u64,
    block_number: u64,
    timestamp: u64,
    receipts: HashMap<TxHash, Executed>,
    /// The transaction that settled each authorization.
    settlements: HashMap<NonceKey, TxHash>,
}

fn runtime_code() -> Result<Bytes, ChainError> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Artifact {
        deployed_bytecode: Bytes,
    }
    serde_json::from_str::<Artifact>(ARTIFACT)
        .map(|a| a.deployed_bytecode)
        .map_err(|e| ChainError::Rpc(format!("sandbox token artifact is corrupt: {e}")))
}

fn internal(e: impl std::fmt::Debug) -> ChainError {
    ChainError::Rpc(format!("embedded EVM error: {e:?}"))
}

impl SandboxEvm {
    pub(super) fn new(chain_id: u64, token: Address, now: u64) -> Result<Self, ChainError> {
        let mut db = CacheDB::new(EmptyDB::default());
        db.insert_account_info(
            token,
            AccountInfo::default().with_code(Bytecode::new_raw(runtime_code()?)),
        );
        Ok(Self {
            db,
            chain_id,
            block_number: 0,
            timestamp: now,
            receipts: HashMap::new(),
            settlements: HashMap::new(),
        })
    }

    pub(super) fn block_number(&self) -> u64 {
        self.block_number
    }

    pub(super) fn set_balance(&mut self, owner: Address, wei: U256) {
        let db = &mut self.db;
        let info = db
            .load_account(owner)
            .map(|account| account.info.clone())
            .unwrap_or_default();
        db.insert_account_info(
            owner,
            AccountInfo {
                balance: wei,
                ..info
            },
        );
    }

    pub(super) fn balance(&mut self, owner: Address) -> Result<U256, ChainError> {
        let info = self.db.basic(owner).map_err(internal)?;
        Ok(info.map(|i| i.balance).unwrap_or_default())
    }

    pub(super) fn has_code(&mut self, address: Address) -> Result<bool, ChainError> {
        let info = self.db.basic(address).map_err(internal)?;
        Ok(info.is_some_and(|i| !i.is_empty_code_hash()))
    }

    pub(super) fn settled(&self, key: &NonceKey) -> Option<Executed> {
        self.settlements
            .get(key)
            .and_then(|hash| self.receipts.get(hash))
            .cloned()
    }

    pub(super) fn remember_settlement(&mut self, key: NonceKey, tx_hash: TxHash) {
        self.settlements.insert(key, tx_hash);
    }

    pub(super) fn receipt(&self, tx_hash: TxHash) -> Option<Executed> {
        self.receipts.get(&tx_hash).cloned()
    }

    /// The next block: at `now`, or at the previous timestamp if that is later.
    fn next_block(&self, now: u64) -> (u64, u64) {
        (self.block_number + 1, now.max(self.timestamp))
    }

    /// An EVM over the state for one block. revm's EVM is not `Send` (it shares interpreter
    /// memory through `Rc`), so it is built per execution; only the state is kept.
    fn evm(
        &mut self,
        number: u64,
        timestamp: u64,
    ) -> MainnetEvm<MainnetContext<&mut CacheDB<EmptyDB>>> {
        let chain_id = self.chain_id;
        Context::mainnet()
            .with_db(&mut self.db)
            .modify_cfg_chained(|cfg| {
                cfg.chain_id = chain_id;
                cfg.disable_nonce_check = true;
            })
            .modify_block_chained(|block: &mut BlockEnv| {
                block.number = U256::from(number);
                block.timestamp = U256::from(timestamp);
                block.basefee = 0;
            })
            .build_mainnet()
    }

    fn tx(&self, from: Address, to: Address, data: Bytes) -> TxEnv {
        TxEnv {
            caller: from,
            gas_limit: TX_GAS_LIMIT,
            gas_price: 0,
            kind: TxKind::Call(to),
            data,
            chain_id: Some(self.chain_id),
            ..TxEnv::default()
        }
    }

    fn executed(tx_hash: TxHash, block_number: u64, result: ExecutionResult) -> Executed {
        let gas_used = result.tx_gas_used();
        let (revert, output, logs) = match result {
            ExecutionResult::Success { output, logs, .. } => {
                let output = match output {
                    Output::Call(bytes) => bytes,
                    Output::Create(bytes, _) => bytes,
                };
                (None, output, logs)
            }
            ExecutionResult::Revert { output, .. } => (
                Some(crate::usdc::revert_reason(&output)),
                Bytes::new(),
                Vec::new(),
            ),
            ExecutionResult::Halt { reason, .. } => (
                Some(format!("halted: {reason:?}")),
                Bytes::new(),
                Vec::new(),
            ),
        };
        Executed {
            tx_hash,
            block_number,
            gas_used,
            revert,
            output,
            logs,
        }
    }

    /// `eth_call`: executes in the next block without changing state.
    pub(super) fn call(
        &mut self,
        from: Address,
        to: Address,
        data: Bytes,
        now: u64,
    ) -> Result<Executed, ChainError> {
        let (number, timestamp) = self.next_block(now);
        let tx = self.tx(from, to, data);
        let result = self.evm(number, timestamp).transact(tx).map_err(internal)?;
        Ok(Self::executed(B256::ZERO, number, result.result))
    }

    /// Mines one block holding this one transaction and keeps its receipt.
    pub(super) fn commit(
        &mut self,
        from: Address,
        to: Address,
        data: Bytes,
        now: u64,
    ) -> Result<Executed, ChainError> {
        let (number, timestamp) = self.next_block(now);
        let tx_hash = keccak256(
            [
                &self.chain_id.to_be_bytes()[..],
                &number.to_be_bytes(),
                from.as_slice(),
                to.as_slice(),
                &data,
            ]
            .concat(),
        );
        let tx = self.tx(from, to, data);
        let result = self
            .evm(number, timestamp)
            .transact_commit(tx)
            .map_err(internal)?;
        self.block_number = number;
        self.timestamp = timestamp;
        let executed = Self::executed(tx_hash, number, result);
        self.receipts.insert(tx_hash, executed.clone());
        Ok(executed)
    }
}
