//! Conversions between the port's records and column values shared by both backends:
//! integers (unsigned in the domain, `BIGINT` in the database), keys, statuses, nonce keys
//! as lowercase hex text, amounts as decimal atomic units, and decoding of raw rows into
//! records with [`StoreError::Corrupt`] naming the row when a value is out of shape.

use alloy_primitives::B256;
use serde_json::value::RawValue;
use worldstore_domain::UsdcAmount;
use worldstore_domain::pii::Pii;
use worldstore_domain::ports::store::{
    ClaimedEffect, Direction, EffectId, Key, LoggedMessage, MachineIndex, MachineKind,
    MachineRecord, MoneyEvent, MoneyEventKind, NewEffect, Revision, Status, StoreError,
    StoredState,
};
use worldstore_domain::x402::NonceKey;

use super::crypto::Sealer;

pub(crate) const PROFILES: &str = "profiles";
pub(crate) const MESSAGES: &str = "messages";
pub(crate) const OUTBOX: &str = "outbox";
pub(crate) const MONEY_EVENTS: &str = "money_events";

/// A value from the domain that must fit a signed 64-bit column.
pub(crate) fn to_i64(value: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::Rejected(format!("{what} {value} is too large")))
}

/// When a lease of `lease_seconds` taken by a commit at `now` ends (the next effect of
/// `Commit::finishes`, the effects of `Commit::claim_first`).
pub(crate) fn lease_until(lease_seconds: u64, now: i64) -> Result<i64, StoreError> {
    Ok(now.saturating_add(to_i64(lease_seconds, "lease")?))
}

/// The distinct ordering keys of `effects`, sorted (the keys `Commit::claim_first` looks at).
pub(crate) fn ordering_keys(effects: &[NewEffect]) -> Vec<&str> {
    let mut keys: Vec<&str> = effects.iter().map(|e| e.ordering_key.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

pub(crate) fn to_u64(
    value: i64,
    table: &'static str,
    id: &str,
    column: &str,
) -> Result<u64, StoreError> {
    u64::try_from(value)
        .map_err(|_| StoreError::corrupt(table, id, format!("{column} is negative ({value})")))
}

fn key(value: String, table: &'static str, id: &str, column: &str) -> Result<Key, StoreError> {
    Key::parse(&value).map_err(|e| StoreError::corrupt(table, id, format!("{column}: {e}")))
}

fn opt_key(
    value: Option<String>,
    table: &'static str,
    id: &str,
    column: &str,
) -> Result<Option<Key>, StoreError> {
    value.map(|v| key(v, table, id, column)).transpose()
}

/// The text columns of a nonce reservation's primary key.
pub(crate) struct NonceColumns {
    pub chain_id: String,
    pub token: String,
    pub payer: String,
    pub nonce: String,
}

pub(crate) fn nonce_columns(key: &NonceKey) -> NonceColumns {
    NonceColumns {
        chain_id: key.chain_id.to_string(),
        token: format!("{:#x}", key.token),
        payer: format!("{:#x}", key.from),
        nonce: format!("{:#x}", key.nonce.as_b256()),
    }
}

/// A machine row as read, before checks.
pub(crate) struct RawMachine {
    pub id: String,
    pub user_id: Option<String>,
    pub order_id: Option<String>,
    pub status: String,
    pub state_kind: String,
    pub state_version: i64,
    /// `Err` carries why the stored JSON did not parse (without its content).
    pub state: Result<Box<RawValue>, String>,
    pub revision: i64,
    pub updated_at: i64,
}

impl RawMachine {
    pub(crate) fn decode(self, kind: MachineKind) -> Result<MachineRecord, StoreError> {
        let table = kind.table();
        let id_text = self.id.clone();
        let id_str = id_text.as_str();
        let corrupt = |detail: String| StoreError::corrupt(table, id_str, detail);
        let id = key(self.id, table, id_str, "id")?;
        let status = Status::parse(&self.status)
            .ok_or_else(|| corrupt("status is not a status word".into()))?;
        let version = u32::try_from(self.state_version).map_err(|_| {
            corrupt(format!(
                "state_version {} is out of range",
                self.state_version
            ))
        })?;
        let body = self
            .state
            .map_err(|why| corrupt(format!("state is not JSON ({why})")))?;
        let revision = to_u64(self.revision, table, id_str, "revision")?;
        if revision == 0 {
            return Err(corrupt("revision is 0".into()));
        }
        Ok(MachineRecord {
            kind,
            id,
            revision: Revision(revision),
            index: MachineIndex {
                user: opt_key(self.user_id, table, id_str, "user_id")?,
                order_id: opt_key(self.order_id, table, id_str, "order_id")?,
                status,
            },
            state: StoredState {
                kind: self.state_kind,
                version,
                body,
            },
            updated_at: to_u64(self.updated_at, table, id_str, "updated_at")?,
        })
    }
}

/// Checks stored JSON text (without building a tree of it), keeping only the error's
/// category and position.
pub(crate) fn parse_json(text: String) -> Result<Box<RawValue>, String> {
    RawValue::from_string(text).map_err(|e| {
        format!(
            "{:?} error at line {} column {}",
            e.classify(),
            e.line(),
            e.column()
        )
    })
}

/// An outbox row as read, before checks.
pub(crate) struct RawEffect {
    pub id: i64,
    pub idempotency_key: String,
    pub ordering_key: String,
    pub effect_kind: String,
    pub effect_version: i64,
    pub effect: Result<Box<RawValue>, String>,
    pub attempts: i64,
    pub lease_until: Option<i64>,
}

impl RawEffect {
    pub(crate) fn decode(self) -> Result<ClaimedEffect, StoreError> {
        let id = self.id.to_string();
        let corrupt = |detail: String| StoreError::corrupt(OUTBOX, &id, detail);
        let version = u32::try_from(self.effect_version).map_err(|_| {
            corrupt(format!(
                "effect_version {} is out of range",
                self.effect_version
            ))
        })?;
        let attempts = u32::try_from(self.attempts)
            .map_err(|_| corrupt(format!("attempts {} is out of range", self.attempts)))?;
        let lease = self
            .lease_until
            .ok_or_else(|| corrupt("claimed without a lease".into()))?;
        Ok(ClaimedEffect {
            id: EffectId(self.id),
            idempotency_key: key(self.idempotency_key, OUTBOX, &id, "idempotency_key")?,
            ordering_key: key(self.ordering_key, OUTBOX, &id, "ordering_key")?,
            effect: StoredState {
                kind: self.effect_kind,
                version,
                body: self
                    .effect
                    .map_err(|why| corrupt(format!("effect is not JSON ({why})")))?,
            },
            attempts,
            lease_until: to_u64(lease, OUTBOX, &id, "lease_until")?,
        })
    }
}

/// A money event row as read, before checks.
pub(crate) struct RawMoneyEvent {
    pub id: i64,
    pub kind: String,
    pub order_id: String,
    pub amount: String,
    pub tx_hash: Option<String>,
    pub at: i64,
}

impl RawMoneyEvent {
    pub(crate) fn decode(self) -> Result<MoneyEvent, StoreError> {
        let id = self.id.to_string();
        let corrupt = |detail: String| StoreError::corrupt(MONEY_EVENTS, &id, detail);
        let kind = MoneyEventKind::parse(&self.kind)
            .ok_or_else(|| corrupt(format!("unknown money event kind {:?}", self.kind)))?;
        let atomic: u128 = self
            .amount
            .parse()
            .map_err(|_| corrupt("amount is not an integer of atomic units".into()))?;
        let tx_hash = self
            .tx_hash
            .map(|h| {
                h.parse::<B256>()
                    .map_err(|_| corrupt("tx_hash is not 32 bytes of hex".into()))
            })
            .transpose()?;
        Ok(MoneyEvent {
            kind,
            order_id: key(self.order_id, MONEY_EVENTS, &id, "order_id")?,
            amount: UsdcAmount::from_atomic(atomic),
            tx_hash,
            at: to_u64(self.at, MONEY_EVENTS, &id, "at")?,
        })
    }
}

pub(crate) fn money_columns(
    event: &MoneyEvent,
) -> Result<(String, Option<String>, i64), StoreError> {
    Ok((
        event.amount.atomic().to_string(),
        event.tx_hash.map(|h| format!("{h:#x}")),
        to_i64(event.at, "event time")?,
    ))
}

/// A message log row as read, before checks.
pub(crate) struct RawMessage {
    pub id: i64,
    pub conversation_id: String,
    pub direction: String,
    pub at: i64,
    pub sealed: Vec<u8>,
}

impl RawMessage {
    pub(crate) fn decode(self, sealer: &Sealer) -> Result<LoggedMessage, StoreError> {
        let id = self.id.to_string();
        let direction = Direction::parse(&self.direction).ok_or_else(|| {
            StoreError::corrupt(
                MESSAGES,
                &id,
                format!("unknown direction {:?}", self.direction),
            )
        })?;
        let plain = sealer.open(MESSAGES, &self.conversation_id, &self.sealed)?;
        let text = String::from_utf8(plain)
            .map_err(|_| StoreError::corrupt(MESSAGES, &id, "text is not UTF-8"))?;
        Ok(LoggedMessage {
            conversation: key(self.conversation_id, MESSAGES, &id, "conversation_id")?,
            direction,
            at: to_u64(self.at, MESSAGES, &id, "at")?,
            text: Pii::new(text),
        })
    }
}

pub(crate) fn seal_message(
    sealer: &Sealer,
    message: &LoggedMessage,
) -> Result<Vec<u8>, StoreError> {
    sealer.seal(
        MESSAGES,
        message.conversation.as_str(),
        message.text.expose().as_bytes(),
    )
}

/// Seals a profile as JSON bound to its user.
pub(crate) fn seal_profile(
    sealer: &Sealer,
    user: &Key,
    profile: &worldstore_domain::profile::Profile,
) -> Result<Vec<u8>, StoreError> {
    let json = serde_json::to_vec(profile)
        .map_err(|_| StoreError::Fatal("a profile does not serialize".into()))?;
    sealer.seal(PROFILES, user.as_str(), &json)
}

pub(crate) fn open_profile(
    sealer: &Sealer,
    user: &Key,
    sealed: &[u8],
) -> Result<worldstore_domain::profile::Profile, StoreError> {
    let json = sealer.open(PROFILES, user.as_str(), sealed)?;
    // The profile's validation errors name the field, never its value.
    serde_json::from_slice(&json).map_err(|e| {
        StoreError::corrupt(
            PROFILES,
            user,
            format!("profile does not decode ({:?} error)", e.classify()),
        )
    })
}

/// Reads one column, reporting a value of the wrong type as a corrupt row.
pub(crate) fn col<'r, R, T>(
    row: &'r R,
    column: &str,
    table: &'static str,
    id: &str,
) -> Result<T, StoreError>
where
    R: sqlx::Row,
    T: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
{
    row.try_get::<T, _>(column).map_err(|e| match e {
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::ColumnNotFound(_) => StoreError::corrupt(
            table,
            id,
            format!("column {column} has a value of the wrong type"),
        ),
        other => super::error::classify(other),
    })
}

/// The columns every machine query selects, in this order.
pub(crate) const MACHINE_COLUMNS: &str =
    "id, user_id, order_id, status, state_kind, state_version, state, revision, updated_at";

/// The columns every outbox claim returns.
pub(crate) const EFFECT_COLUMNS: &str =
    "id, idempotency_key, ordering_key, effect_kind, effect_version, effect, attempts, lease_until";

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::Address;
    use worldstore_domain::eip3009::Nonce;

    #[test]
    fn nonce_keys_are_stored_as_lowercase_hex() {
        let key = NonceKey {
            chain_id: 84532,
            token: Address::repeat_byte(0xAB),
            from: Address::repeat_byte(0x01),
            nonce: Nonce::new([0xCD; 32]),
        };
        let cols = nonce_columns(&key);
        assert_eq!(cols.chain_id, "84532");
        assert_eq!(cols.token, format!("0x{}", "ab".repeat(20)));
        assert_eq!(cols.nonce, format!("0x{}", "cd".repeat(32)));
    }

    #[test]
    fn a_machine_row_with_a_negative_revision_is_corrupt_and_named() {
        let raw = RawMachine {
            id: "s-1".into(),
            user_id: None,
            order_id: None,
            status: "settled".into(),
            state_kind: "settlement".into(),
            state_version: 1,
            state: Ok(RawValue::from_string("{}".into()).unwrap()),
            revision: -3,
            updated_at: 0,
        };
        let err = raw.decode(MachineKind::Settlement).unwrap_err();
        assert_eq!(
            err.to_string(),
            "corrupt row s-1 in table settlements: revision is negative (-3)"
        );
    }
}
