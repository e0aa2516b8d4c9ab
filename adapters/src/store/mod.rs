//! The `Store` port's adapters: SQLite (a file, the sandbox default; its operations run in
//! place through rusqlite, its migrations through sqlx) and PostgreSQL (many app instances
//! sharing one database, on sqlx), with the same schema and the same behaviour (one test
//! suite runs against both: `tests/tests/store/`).
//!
//! [`SqlStore::open`] picks the backend from the URL (`sqlite://PATH?mode=rwc` or
//! `postgres://...`) and runs the migrations. Personal data (profiles, message text) is
//! sealed with the [`DataKey`] from configuration before it reaches the database.

mod checkpoint;
mod codec;
pub mod crypto;
mod error;
mod migrate;
pub mod postgres;
pub mod sqlite;

pub use crypto::{DataKey, DataKeyError, Sealer};
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

use std::sync::Arc;
use worldstore_domain::ports::store::{
    ClaimedEffect, Commit, Committed, EffectFailure, EffectId, Key, LoggedMessage, MachineKind,
    MachineRecord, MoneyEvent, NonceReservation, Status, Store, StoreError, StoreResult,
};
use worldstore_domain::profile::Profile;

/// A point inside [`Store::commit`] where tests inject a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultPoint {
    /// The machine rows are written, nothing else yet.
    MachinesWritten,
    /// Machines, nonces and effects are written; the transaction is not committed.
    EffectsWritten,
}

/// Called at each [`FaultPoint`]; tests use it to end the process mid-transaction.
pub type FaultHook = Arc<dyn Fn(FaultPoint) + Send + Sync>;

/// Which database a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn of_url(url: &str) -> StoreResult<Self> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(StoreError::Fatal(
                "database URL must start with sqlite: or postgres://".into(),
            ))
        }
    }
}

/// Either store, chosen at run time from the database URL.
#[derive(Clone)]
pub enum SqlStore {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

impl SqlStore {
    /// Connects without migrating.
    pub async fn connect(url: &str, key: &DataKey) -> StoreResult<Self> {
        let sealer = Sealer::new(key);
        Ok(match Backend::of_url(url)? {
            Backend::Sqlite => SqlStore::Sqlite(SqliteStore::connect(url, sealer).await?),
            Backend::Postgres => SqlStore::Postgres(PostgresStore::connect(url, sealer).await?),
        })
    }

    /// Connects and runs the migrations (what the app does at start-up).
    pub async fn open(url: &str, key: &DataKey) -> StoreResult<Self> {
        let store = Self::connect(url, key).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Runs the migrations; returns how many were applied now (0 when up to date).
    pub async fn migrate(&self) -> StoreResult<usize> {
        match self {
            SqlStore::Sqlite(s) => s.migrate().await,
            SqlStore::Postgres(s) => s.migrate().await,
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            SqlStore::Sqlite(_) => Backend::Sqlite,
            SqlStore::Postgres(_) => Backend::Postgres,
        }
    }

    #[doc(hidden)]
    pub fn with_fault_hook(self, hook: FaultHook) -> Self {
        match self {
            SqlStore::Sqlite(s) => SqlStore::Sqlite(s.with_fault_hook(hook)),
            SqlStore::Postgres(s) => SqlStore::Postgres(s.with_fault_hook(hook)),
        }
    }

    /// Closes every connection.
    pub async fn close(&self) {
        match self {
            SqlStore::Sqlite(s) => s.pool().close().await,
            SqlStore::Postgres(s) => s.pool().close().await,
        }
    }
}

macro_rules! delegate {
    ($self:ident, $method:ident ( $($arg:expr),* )) => {
        match $self {
            SqlStore::Sqlite(s) => s.$method($($arg),*).await,
            SqlStore::Postgres(s) => s.$method($($arg),*).await,
        }
    };
}

impl Store for SqlStore {
    async fn save_profile(&self, user: &Key, profile: &Profile, now: u64) -> StoreResult<()> {
        delegate!(self, save_profile(user, profile, now))
    }
    async fn load_profile(&self, user: &Key) -> StoreResult<Option<Profile>> {
        delegate!(self, load_profile(user))
    }
    async fn delete_profile(&self, user: &Key) -> StoreResult<bool> {
        delegate!(self, delete_profile(user))
    }
    async fn commit(&self, commit: Commit, now: u64) -> StoreResult<Committed> {
        delegate!(self, commit(commit, now))
    }
    async fn load_machine(
        &self,
        kind: MachineKind,
        id: &Key,
    ) -> StoreResult<Option<MachineRecord>> {
        delegate!(self, load_machine(kind, id))
    }
    async fn machines_of_user(
        &self,
        kind: MachineKind,
        user: &Key,
    ) -> StoreResult<Vec<MachineRecord>> {
        delegate!(self, machines_of_user(kind, user))
    }
    async fn latest_machine_of_user(
        &self,
        kind: MachineKind,
        user: &Key,
        status: Option<&Status>,
    ) -> StoreResult<Option<MachineRecord>> {
        delegate!(self, latest_machine_of_user(kind, user, status))
    }
    async fn machine_by_order(
        &self,
        kind: MachineKind,
        order_id: &Key,
    ) -> StoreResult<Option<MachineRecord>> {
        delegate!(self, machine_by_order(kind, order_id))
    }
    async fn machines_in_status(
        &self,
        kind: MachineKind,
        status: &Status,
        limit: u32,
    ) -> StoreResult<Vec<MachineRecord>> {
        delegate!(self, machines_in_status(kind, status, limit))
    }
    async fn is_processed(&self, inbound: &Key) -> StoreResult<bool> {
        delegate!(self, is_processed(inbound))
    }
    async fn reserve_nonce(&self, reservation: &NonceReservation, now: u64) -> StoreResult<()> {
        delegate!(self, reserve_nonce(reservation, now))
    }
    async fn message_log(&self, conversation: &Key, limit: u32) -> StoreResult<Vec<LoggedMessage>> {
        delegate!(self, message_log(conversation, limit))
    }
    async fn money_events(&self, order_id: &Key) -> StoreResult<Vec<MoneyEvent>> {
        delegate!(self, money_events(order_id))
    }
    async fn claim_effects(
        &self,
        worker: &Key,
        kinds: &[&str],
        limit: u32,
        now: u64,
        lease_until: u64,
    ) -> StoreResult<Vec<ClaimedEffect>> {
        delegate!(self, claim_effects(worker, kinds, limit, now, lease_until))
    }
    async fn complete_effect(&self, id: EffectId, worker: &Key, now: u64) -> StoreResult<()> {
        delegate!(self, complete_effect(id, worker, now))
    }
    async fn complete_effect_and_claim_next(
        &self,
        id: EffectId,
        worker: &Key,
        kinds: &[&str],
        now: u64,
        lease_until: u64,
    ) -> StoreResult<Option<ClaimedEffect>> {
        delegate!(
            self,
            complete_effect_and_claim_next(id, worker, kinds, now, lease_until)
        )
    }
    async fn fail_effect(
        &self,
        id: EffectId,
        worker: &Key,
        failure: EffectFailure,
        now: u64,
    ) -> StoreResult<()> {
        delegate!(self, fail_effect(id, worker, failure, now))
    }
    async fn unfinished_effects(&self) -> StoreResult<u64> {
        delegate!(self, unfinished_effects())
    }
}
