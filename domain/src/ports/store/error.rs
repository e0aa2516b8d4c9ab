//! [`StoreError`]: classified so the driver knows what to do. Transient errors are retried
//! with backoff; conflicts and rejections are fed back into a machine; corrupt rows and
//! fatal errors stop the input and are reported. No variant carries personal data.

use super::records::MachineKind;
use super::{EffectId, Key};
use crate::x402::NonceKey;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The database is unreachable, busy or asked us to retry (lost connection, lock timeout,
    /// serialization failure). Retrying later may succeed; nothing was written.
    #[error("store temporarily unavailable: {0}")]
    Transient(String),
    /// The write lost a race or repeats something already done; nothing was written.
    #[error("store conflict: {0}")]
    Conflict(Conflict),
    /// The request itself cannot be stored (a value out of the column's range).
    #[error("store rejected the request: {0}")]
    Rejected(String),
    /// A stored row cannot be decoded: named by table and row id.
    #[error("corrupt row {id} in table {table}: {detail}")]
    Corrupt {
        table: &'static str,
        id: String,
        detail: String,
    },
    /// Encrypted personal data cannot be decrypted: the configured key is not the one it was
    /// written with, or the row was tampered with.
    #[error("cannot decrypt row {id} in table {table}: wrong encryption key or tampered data")]
    Undecryptable { table: &'static str, id: String },
    /// Misconfiguration or a bug: retrying will not help.
    #[error("store failure: {0}")]
    Fatal(String),
}

impl StoreError {
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Transient(_))
    }

    /// A corrupt-row error whose detail says what is wrong (never the row's content).
    pub fn corrupt(table: &'static str, id: impl ToString, detail: impl Into<String>) -> Self {
        StoreError::Corrupt {
            table,
            id: id.to_string(),
            detail: detail.into(),
        }
    }
}

/// Why a write was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Conflict {
    #[error("{kind} {id} is at another revision than {expected}")]
    RevisionMoved {
        kind: MachineKind,
        id: Key,
        expected: u64,
    },
    #[error("{kind} {id} already exists")]
    AlreadyExists { kind: MachineKind, id: Key },
    #[error("order id {order_id} is already held by another {kind}")]
    OrderTaken { kind: MachineKind, order_id: Key },
    #[error(
        "EIP-3009 nonce {} of {} on chain {} is already reserved",
        .0.nonce, .0.from, .0.chain_id
    )]
    NonceTaken(NonceKey),
    #[error("inbound message {0} was already processed")]
    DuplicateInbound(Key),
    #[error("effect {0} is no longer claimed by this worker (its lease expired)")]
    LeaseLost(EffectId),
}
