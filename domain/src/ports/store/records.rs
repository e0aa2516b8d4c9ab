//! The plain records the store keeps: machine documents and their index, nonce
//! reservations, money events and message-log lines.

use super::{Key, StoreError};
use crate::UsdcAmount;
use crate::pii::Pii;
use crate::x402::NonceKey;
use alloy_primitives::B256;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::fmt;

/// The three kinds of state machine the store keeps, one table each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MachineKind {
    Conversation,
    Checkout,
    Settlement,
}

impl MachineKind {
    pub const ALL: [MachineKind; 3] = [Self::Conversation, Self::Checkout, Self::Settlement];

    /// The table that holds this kind: also the name used in errors.
    pub fn table(self) -> &'static str {
        match self {
            MachineKind::Conversation => "conversations",
            MachineKind::Checkout => "checkouts",
            MachineKind::Settlement => "settlements",
        }
    }
}

impl fmt::Display for MachineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MachineKind::Conversation => "conversation",
            MachineKind::Checkout => "checkout",
            MachineKind::Settlement => "settlement",
        })
    }
}

/// A machine's status for lookups (`awaiting_funds`, `settled`, ...): 1 to 40 characters of
/// `a-z`, `0-9`, `_`, `-`, `.`. The machine's document is the truth; this is its index.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Status(String);

impl Status {
    pub fn parse(input: &str) -> Option<Self> {
        let ok = (1..=40).contains(&input.len())
            && input
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-.".contains(&b));
        ok.then(|| Self(input.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Status {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        Self::parse(&value).ok_or_else(|| "status must be 1-40 chars of a-z 0-9 _ - .".into())
    }
}

impl From<Status> for String {
    fn from(value: Status) -> Self {
        value.0
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A versioned JSON document: the serialized state of a machine or an effect. `kind` names
/// the Rust type (`checkout`, `effect.reply`), `version` its schema version, so a reader can
/// refuse what it does not understand instead of misreading it.
///
/// The body is kept as JSON text, checked to be JSON but not parsed into a tree: a document
/// is written and read straight from and into its Rust type.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredState {
    pub kind: String,
    pub version: u32,
    pub body: Box<RawValue>,
}

/// Equal when kind, version and the JSON values are equal, however the text is spaced or
/// its keys ordered (PostgreSQL's `jsonb` keeps neither).
impl PartialEq for StoredState {
    fn eq(&self, other: &Self) -> bool {
        let value = |raw: &RawValue| serde_json::from_str::<serde_json::Value>(raw.get()).ok();
        self.kind == other.kind
            && self.version == other.version
            && (self.body.get() == other.body.get() || value(&self.body) == value(&other.body))
    }
}

impl StoredState {
    /// Serializes `value` as a document of `kind` at schema `version`.
    pub fn encode<T: Serialize>(kind: &str, version: u32, value: &T) -> Result<Self, StoreError> {
        let body = serde_json::value::to_raw_value(value)
            .map_err(|e| StoreError::Rejected(format!("{kind} does not serialize: {e}")))?;
        Ok(Self {
            kind: kind.to_owned(),
            version,
            body,
        })
    }

    /// Decodes the document as `T`, when it is of `kind` at a version in `versions`. The
    /// error names the row (`table`, `id`) and what is wrong, never the content: the parser's
    /// message is reduced to its category and position, because values could be quoted.
    pub fn decode<T: DeserializeOwned>(
        &self,
        kind: &str,
        versions: std::ops::RangeInclusive<u32>,
        table: &'static str,
        id: &str,
    ) -> Result<T, StoreError> {
        if self.kind != kind {
            return Err(StoreError::corrupt(
                table,
                id,
                format!("unknown state kind {:?} (expected {kind:?})", self.kind),
            ));
        }
        if !versions.contains(&self.version) {
            return Err(StoreError::corrupt(
                table,
                id,
                format!(
                    "{kind} state version {} is not one this build reads ({}..={})",
                    self.version,
                    versions.start(),
                    versions.end()
                ),
            ));
        }
        serde_json::from_str(self.body.get()).map_err(|e: serde_json::Error| {
            StoreError::corrupt(
                table,
                id,
                format!(
                    "{kind} state v{} does not decode ({:?} error)",
                    self.version,
                    e.classify()
                ),
            )
        })
    }
}

/// A row's revision for optimistic concurrency: 1 after insert, +1 on each update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Revision(pub u64);

/// What a write expects to find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// The machine does not exist yet.
    New,
    /// The machine is at this revision.
    At(Revision),
}

/// The indexed columns of a machine, kept in step with its document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineIndex {
    /// The user the machine belongs to (conversations and checkouts).
    pub user: Option<Key>,
    /// The merchant order id (settlements; checkouts once an order exists). Unique per kind.
    pub order_id: Option<Key>,
    pub status: Status,
}

/// Insert or update one machine.
#[derive(Debug, Clone, PartialEq)]
pub struct MachineWrite {
    pub kind: MachineKind,
    pub id: Key,
    pub expected: Expected,
    pub index: MachineIndex,
    pub state: StoredState,
}

/// A stored machine.
#[derive(Debug, Clone, PartialEq)]
pub struct MachineRecord {
    pub kind: MachineKind,
    pub id: Key,
    pub revision: Revision,
    pub index: MachineIndex,
    pub state: StoredState,
    pub updated_at: u64,
}

impl MachineRecord {
    /// Decodes the document (see [`StoredState::decode`]), naming this row on failure.
    pub fn decode<T: DeserializeOwned>(
        &self,
        kind: &str,
        versions: std::ops::RangeInclusive<u32>,
    ) -> Result<T, StoreError> {
        self.state
            .decode(kind, versions, self.kind.table(), self.id.as_str())
    }

    /// The write that replaces this machine's state, expecting its current revision.
    pub fn update(&self, index: MachineIndex, state: StoredState) -> MachineWrite {
        MachineWrite {
            kind: self.kind,
            id: self.id.clone(),
            expected: Expected::At(self.revision),
            index,
            state,
        }
    }
}

/// An EIP-3009 nonce taken for one order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NonceReservation {
    pub key: NonceKey,
    pub order_id: Key,
}

/// What happened to money.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MoneyEventKind {
    QuoteIssued,
    AuthorizationReceived,
    Settled,
    PaidToFulfilment,
    Refunded,
}

impl MoneyEventKind {
    pub const ALL: [MoneyEventKind; 5] = [
        Self::QuoteIssued,
        Self::AuthorizationReceived,
        Self::Settled,
        Self::PaidToFulfilment,
        Self::Refunded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MoneyEventKind::QuoteIssued => "quote_issued",
            MoneyEventKind::AuthorizationReceived => "authorization_received",
            MoneyEventKind::Settled => "settled",
            MoneyEventKind::PaidToFulfilment => "paid_to_fulfilment",
            MoneyEventKind::Refunded => "refunded",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

/// One line of the append-only money audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoneyEvent {
    pub kind: MoneyEventKind,
    pub order_id: Key,
    pub amount: UsdcAmount,
    /// The on-chain transaction, once there is one.
    pub tx_hash: Option<B256>,
    pub at: u64,
}

/// Who sent a logged message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Inbound,
    Outbound,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "in",
            Direction::Outbound => "out",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "in" => Some(Direction::Inbound),
            "out" => Some(Direction::Outbound),
            _ => None,
        }
    }
}

/// One message of a conversation's log. The text is personal data (people type their
/// address into chats): adapters encrypt it like a profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedMessage {
    pub conversation: Key,
    pub direction: Direction,
    pub at: u64,
    pub text: Pii<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Quote {
        amount: u64,
    }

    fn state(kind: &str, version: u32, body: serde_json::Value) -> StoredState {
        StoredState {
            kind: kind.into(),
            version,
            body: serde_json::value::to_raw_value(&body).unwrap(),
        }
    }

    #[test]
    fn a_document_decodes_when_kind_and_version_match() {
        let doc = state("checkout", 1, serde_json::json!({"amount": 5}));
        let quote: Quote = doc.decode("checkout", 1..=1, "checkouts", "c1").unwrap();
        assert_eq!(quote, Quote { amount: 5 });
    }

    #[test]
    fn an_unknown_kind_or_version_is_a_corrupt_row_naming_the_row() {
        let doc = state("mystery", 1, serde_json::json!({}));
        let err = doc
            .decode::<Quote>("checkout", 1..=1, "checkouts", "c1")
            .unwrap_err();
        assert!(err.to_string().contains("c1") && err.to_string().contains("checkouts"));
        let doc = state("checkout", 9, serde_json::json!({"amount": 5}));
        let err = doc
            .decode::<Quote>("checkout", 1..=2, "checkouts", "c1")
            .unwrap_err();
        assert!(err.to_string().contains("version 9"), "{err}");
    }

    #[test]
    fn a_decode_error_never_quotes_the_stored_values() {
        let doc = state("checkout", 1, serde_json::json!({"amount": "Pat Lee"}));
        let err = doc
            .decode::<Quote>("checkout", 1..=1, "checkouts", "c1")
            .unwrap_err();
        assert!(!err.to_string().contains("Pat"), "{err}");
    }

    #[test]
    fn statuses_are_short_lowercase_words() {
        assert!(Status::parse("awaiting_funds").is_some());
        assert!(Status::parse("Settled").is_none());
        assert!(Status::parse("").is_none());
        assert!(Status::parse(&"a".repeat(41)).is_none());
    }
}
