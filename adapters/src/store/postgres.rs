//! The PostgreSQL adapter of the `Store` port: many app instances share one database.
//!
//! Outbox claims lock rows with `FOR UPDATE SKIP LOCKED`, so concurrent workers never take
//! the same effect and never wait on each other; racing writes are decided by primary keys
//! (`ON CONFLICT DO NOTHING`) and by the revision in `UPDATE ... WHERE revision = $n`.
//! Machine states and effects are `JSONB`.

use super::codec::{
    self, EFFECT_COLUMNS, MACHINE_COLUMNS, MESSAGES, MONEY_EVENTS, OUTBOX, PROFILES, RawEffect,
    RawMachine, RawMessage, RawMoneyEvent, col, to_i64,
};
use super::crypto::Sealer;
use super::error::{classify, is_unique_violation};
use super::{FaultHook, FaultPoint};
use serde_json::value::RawValue;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::types::Json;
use sqlx::{AssertSqlSafe, PgPool, Postgres, Transaction};
use std::str::FromStr;
use std::time::Duration;
use worldstore_domain::ports::store::{
    ClaimedEffect, Commit, Committed, Conflict, EffectClaim, EffectFailure, EffectId, Expected,
    Key, LoggedMessage, MachineKind, MachineRecord, MachineWrite, MoneyEvent, NewEffect,
    NonceReservation, Revision, Status, Store, StoreError, StoreResult,
};
use worldstore_domain::profile::Profile;

/// The PostgreSQL store.
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
    sealer: Sealer,
    fault: Option<FaultHook>,
}

pub(crate) static MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "initial",
        include_str!("../../migrations/postgres/0001_initial.sql"),
    ),
    (
        2,
        "outbox by kind",
        include_str!("../../migrations/postgres/0002_outbox_by_kind.sql"),
    ),
    (
        3,
        "conversations by id only",
        include_str!("../../migrations/postgres/0003_conversations_by_id_only.sql"),
    ),
];

type Tx = Transaction<'static, Postgres>;

impl PostgresStore {
    /// Connects to the database named by a `postgres://` URL.
    pub async fn connect(url: &str, sealer: Sealer) -> StoreResult<Self> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Fatal(format!("bad PostgreSQL URL: {e}")))?;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await
            .map_err(classify)?;
        Ok(Self {
            pool,
            sealer,
            fault: None,
        })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Runs the embedded migrations; returns how many were applied now.
    pub async fn migrate(&self) -> StoreResult<usize> {
        super::migrate::run(&self.pool, MIGRATIONS).await
    }

    #[doc(hidden)]
    pub fn with_fault_hook(mut self, hook: FaultHook) -> Self {
        self.fault = Some(hook);
        self
    }

    fn fault(&self, point: FaultPoint) {
        if let Some(hook) = &self.fault {
            hook(point);
        }
    }

    async fn begin(&self) -> StoreResult<Tx> {
        self.pool.begin().await.map_err(classify)
    }

    /// Registers `user` within `tx`; one already registered is left as is.
    async fn register(tx: &mut Tx, user: &Key, now: i64) -> StoreResult<()> {
        sqlx::query(REGISTER_USER)
            .bind(user.as_str())
            .bind(now)
            .execute(&mut **tx)
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn write_machine(tx: &mut Tx, write: &MachineWrite, now: i64) -> StoreResult<Revision> {
        let table = write.kind.table();
        let body = Json(&write.state.body);
        let user = write.index.user.as_ref().map(Key::as_str);
        let order = write.index.order_id.as_ref().map(Key::as_str);
        match write.expected {
            Expected::New => {
                let sql = format!(
                    "INSERT INTO {table} ({MACHINE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8) \
                     ON CONFLICT DO NOTHING"
                );
                let done = sqlx::query(AssertSqlSafe(sql))
                    .bind(write.id.as_str())
                    .bind(user)
                    .bind(order)
                    .bind(write.index.status.as_str())
                    .bind(&write.state.kind)
                    .bind(i64::from(write.state.version))
                    .bind(body)
                    .bind(now)
                    .execute(&mut **tx)
                    .await
                    .map_err(classify)?;
                if done.rows_affected() == 0 {
                    return Err(Self::insert_conflict(tx, write).await);
                }
                Ok(Revision(1))
            }
            Expected::At(Revision(expected)) => {
                let sql = format!(
                    "UPDATE {table} SET user_id = $1, order_id = $2, status = $3, state_kind = $4, \
                     state_version = $5, state = $6, revision = revision + 1, updated_at = $7 \
                     WHERE id = $8 AND revision = $9"
                );
                let done = sqlx::query(AssertSqlSafe(sql))
                    .bind(user)
                    .bind(order)
                    .bind(write.index.status.as_str())
                    .bind(&write.state.kind)
                    .bind(i64::from(write.state.version))
                    .bind(body)
                    .bind(now)
                    .bind(write.id.as_str())
                    .bind(to_i64(expected, "revision")?)
                    .execute(&mut **tx)
                    .await;
                match done {
                    Ok(done) if done.rows_affected() == 1 => Ok(Revision(expected + 1)),
                    Ok(_) => Err(StoreError::Conflict(Conflict::RevisionMoved {
                        kind: write.kind,
                        id: write.id.clone(),
                        expected,
                    })),
                    Err(e) if is_unique_violation(&e) => Err(order_taken(write)),
                    Err(e) => Err(classify(e)),
                }
            }
        }
    }

    async fn insert_conflict(tx: &mut Tx, write: &MachineWrite) -> StoreError {
        let sql = format!("SELECT 1 FROM {} WHERE id = $1", write.kind.table());
        match sqlx::query(AssertSqlSafe(sql))
            .bind(write.id.as_str())
            .fetch_optional(&mut **tx)
            .await
        {
            Ok(Some(_)) => StoreError::Conflict(Conflict::AlreadyExists {
                kind: write.kind,
                id: write.id.clone(),
            }),
            Ok(None) => order_taken(write),
            Err(e) => classify(e),
        }
    }

    async fn reserve(tx: &mut Tx, reservation: &NonceReservation, now: i64) -> StoreResult<()> {
        let c = codec::nonce_columns(&reservation.key);
        let done = sqlx::query(
            "INSERT INTO nonce_reservations (chain_id, token, payer, nonce, order_id, reserved_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        )
        .bind(c.chain_id)
        .bind(c.token)
        .bind(c.payer)
        .bind(c.nonce)
        .bind(reservation.order_id.as_str())
        .bind(now)
        .execute(&mut **tx)
        .await
        .map_err(classify)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict(Conflict::NonceTaken(reservation.key)));
        }
        Ok(())
    }

    async fn fetch_machines(
        &self,
        kind: MachineKind,
        sql: String,
        bind: &str,
        limit: Option<i64>,
    ) -> StoreResult<Vec<MachineRecord>> {
        let mut query = sqlx::query(AssertSqlSafe(sql)).bind(bind.to_owned());
        if let Some(limit) = limit {
            query = query.bind(limit);
        }
        let rows = query.fetch_all(&self.pool).await.map_err(classify)?;
        rows.iter().map(|row| machine_from_row(row, kind)).collect()
    }
}

fn order_taken(write: &MachineWrite) -> StoreError {
    match &write.index.order_id {
        Some(order_id) => StoreError::Conflict(Conflict::OrderTaken {
            kind: write.kind,
            order_id: order_id.clone(),
        }),
        None => StoreError::Conflict(Conflict::AlreadyExists {
            kind: write.kind,
            id: write.id.clone(),
        }),
    }
}

fn machine_from_row(row: &PgRow, kind: MachineKind) -> StoreResult<MachineRecord> {
    let table = kind.table();
    let id: String = col(row, "id", table, "?")?;
    let state: Result<Json<Box<RawValue>>, StoreError> = col(row, "state", table, &id);
    RawMachine {
        user_id: col(row, "user_id", table, &id)?,
        order_id: col(row, "order_id", table, &id)?,
        status: col(row, "status", table, &id)?,
        state_kind: col(row, "state_kind", table, &id)?,
        state_version: col(row, "state_version", table, &id)?,
        state: state.map(|j| j.0).map_err(|e| e.to_string()),
        revision: col(row, "revision", table, &id)?,
        updated_at: col(row, "updated_at", table, &id)?,
        id,
    }
    .decode(kind)
}

fn effect_from_row(row: &PgRow) -> StoreResult<ClaimedEffect> {
    let id: i64 = col(row, "id", OUTBOX, "?")?;
    let ids = id.to_string();
    let effect: Result<Json<Box<RawValue>>, StoreError> = col(row, "effect", OUTBOX, &ids);
    RawEffect {
        id,
        idempotency_key: col(row, "idempotency_key", OUTBOX, &ids)?,
        ordering_key: col(row, "ordering_key", OUTBOX, &ids)?,
        effect_kind: col(row, "effect_kind", OUTBOX, &ids)?,
        effect_version: col(row, "effect_version", OUTBOX, &ids)?,
        effect: effect.map(|j| j.0).map_err(|e| e.to_string()),
        attempts: col(row, "attempts", OUTBOX, &ids)?,
        lease_until: col(row, "lease_until", OUTBOX, &ids)?,
    }
    .decode()
}

/// [`EFFECT_COLUMNS`] qualified by `outbox.`, for `UPDATE ... FROM ... RETURNING`.
fn outbox_effect_columns() -> String {
    EFFECT_COLUMNS
        .split(", ")
        .map(|c| format!("outbox.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Effect kinds as a `text[]` parameter.
fn owned(kinds: &[&str]) -> Vec<String> {
    kinds.iter().map(|k| (*k).to_owned()).collect()
}

/// Registers a user; one already registered is left as is.
const REGISTER_USER: &str =
    "INSERT INTO users (id, created_at) VALUES ($1, $2) ON CONFLICT DO NOTHING";

impl Store for PostgresStore {
    async fn save_profile(&self, user: &Key, profile: &Profile, now: u64) -> StoreResult<()> {
        let sealed = codec::seal_profile(&self.sealer, user, profile)?;
        let now = to_i64(now, "time")?;
        let mut tx = self.begin().await?;
        Self::register(&mut tx, user, now).await?;
        sqlx::query(
            "INSERT INTO profiles (user_id, sealed, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (user_id) DO UPDATE SET sealed = excluded.sealed, updated_at = excluded.updated_at",
        )
        .bind(user.as_str())
        .bind(sealed)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(classify)?;
        tx.commit().await.map_err(classify)
    }

    async fn load_profile(&self, user: &Key) -> StoreResult<Option<Profile>> {
        let row = sqlx::query("SELECT sealed FROM profiles WHERE user_id = $1")
            .bind(user.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(classify)?;
        row.map(|row| {
            let sealed: Vec<u8> = col(&row, "sealed", PROFILES, user.as_str())?;
            codec::open_profile(&self.sealer, user, &sealed)
        })
        .transpose()
    }

    async fn delete_profile(&self, user: &Key) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM profiles WHERE user_id = $1")
            .bind(user.as_str())
            .execute(&self.pool)
            .await
            .map_err(classify)?;
        Ok(done.rows_affected() > 0)
    }

    async fn commit(&self, commit: Commit, now: u64) -> StoreResult<Committed> {
        let now = to_i64(now, "time")?;
        let mut tx = self.begin().await?;
        if let Some(inbound) = &commit.inbound {
            let done = sqlx::query(
                "INSERT INTO processed_inbound (id, processed_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            )
            .bind(inbound.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(classify)?;
            if done.rows_affected() == 0 {
                return Err(StoreError::Conflict(Conflict::DuplicateInbound(
                    inbound.clone(),
                )));
            }
        }
        for user in &commit.new_users {
            Self::register(&mut tx, user, now).await?;
        }
        let mut revisions = Vec::with_capacity(commit.machines.len());
        for write in &commit.machines {
            revisions.push(Self::write_machine(&mut tx, write, now).await?);
        }
        self.fault(FaultPoint::MachinesWritten);
        for reservation in &commit.nonces {
            Self::reserve(&mut tx, reservation, now).await?;
        }
        let mut effects_enqueued = 0;
        for effect in &commit.effects {
            let body = Json(&effect.effect.body);
            let done = sqlx::query(
                "INSERT INTO outbox (idempotency_key, ordering_key, effect_kind, effect_version, effect, \
                 state, attempts, available_at, created_at) \
                 VALUES ($1, $2, $3, $4, $5, 'ready', 0, $6, $6) ON CONFLICT (idempotency_key) DO NOTHING",
            )
            .bind(effect.idempotency_key.as_str())
            .bind(effect.ordering_key.as_str())
            .bind(&effect.effect.kind)
            .bind(i64::from(effect.effect.version))
            .bind(body)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(classify)?;
            effects_enqueued += usize::try_from(done.rows_affected()).unwrap_or(0);
        }
        self.fault(FaultPoint::EffectsWritten);
        for event in &commit.money_events {
            let (amount, tx_hash, at) = codec::money_columns(event)?;
            sqlx::query(
                "INSERT INTO money_events (kind, order_id, amount, tx_hash, at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(event.kind.as_str())
            .bind(event.order_id.as_str())
            .bind(amount)
            .bind(tx_hash)
            .bind(at)
            .execute(&mut *tx)
            .await
            .map_err(classify)?;
        }
        for message in &commit.messages {
            let sealed = codec::seal_message(&self.sealer, message)?;
            sqlx::query(
                "INSERT INTO messages (conversation_id, direction, at, sealed) VALUES ($1, $2, $3, $4)",
            )
            .bind(message.conversation.as_str())
            .bind(message.direction.as_str())
            .bind(to_i64(message.at, "message time")?)
            .bind(sealed)
            .execute(&mut *tx)
            .await
            .map_err(classify)?;
        }
        let next_effect = match &commit.finishes {
            Some(finished) => {
                finish_and_claim_next(
                    &mut tx,
                    finished.id,
                    finished.next.worker.as_str(),
                    finished.next.kinds,
                    now,
                    codec::lease_until(finished.next.lease_seconds, now)?,
                )
                .await?
            }
            None => None,
        };
        let claimed = match &commit.claim_first {
            Some(claim) => claim_first(&mut tx, claim, &commit.effects, now).await?,
            None => Vec::new(),
        };
        tx.commit().await.map_err(classify)?;
        Ok(Committed {
            revisions,
            effects_enqueued,
            next_effect,
            claimed,
        })
    }

    async fn load_machine(
        &self,
        kind: MachineKind,
        id: &Key,
    ) -> StoreResult<Option<MachineRecord>> {
        let sql = format!(
            "SELECT {MACHINE_COLUMNS} FROM {} WHERE id = $1",
            kind.table()
        );
        Ok(self
            .fetch_machines(kind, sql, id.as_str(), None)
            .await?
            .pop())
    }

    async fn machines_of_user(
        &self,
        kind: MachineKind,
        user: &Key,
    ) -> StoreResult<Vec<MachineRecord>> {
        let sql = format!(
            "SELECT {MACHINE_COLUMNS} FROM {} WHERE user_id = $1 ORDER BY updated_at, id",
            kind.table()
        );
        self.fetch_machines(kind, sql, user.as_str(), None).await
    }

    async fn latest_machine_of_user(
        &self,
        kind: MachineKind,
        user: &Key,
        status: Option<&Status>,
    ) -> StoreResult<Option<MachineRecord>> {
        let sql = format!(
            "SELECT {MACHINE_COLUMNS} FROM {} WHERE user_id = $1 AND ($2::text IS NULL OR status = $2) \
             ORDER BY updated_at DESC, id DESC LIMIT 1",
            kind.table()
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(user.as_str())
            .bind(status.map(Status::as_str))
            .fetch_optional(&self.pool)
            .await
            .map_err(classify)?;
        row.map(|row| machine_from_row(&row, kind)).transpose()
    }

    async fn machine_by_order(
        &self,
        kind: MachineKind,
        order_id: &Key,
    ) -> StoreResult<Option<MachineRecord>> {
        let sql = format!(
            "SELECT {MACHINE_COLUMNS} FROM {} WHERE order_id = $1",
            kind.table()
        );
        Ok(self
            .fetch_machines(kind, sql, order_id.as_str(), None)
            .await?
            .pop())
    }

    async fn machines_in_status(
        &self,
        kind: MachineKind,
        status: &Status,
        limit: u32,
    ) -> StoreResult<Vec<MachineRecord>> {
        let sql = format!(
            "SELECT {MACHINE_COLUMNS} FROM {} WHERE status = $1 ORDER BY updated_at, id LIMIT $2",
            kind.table()
        );
        self.fetch_machines(kind, sql, status.as_str(), Some(i64::from(limit)))
            .await
    }

    async fn is_processed(&self, inbound: &Key) -> StoreResult<bool> {
        let row = sqlx::query("SELECT 1 FROM processed_inbound WHERE id = $1")
            .bind(inbound.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(classify)?;
        Ok(row.is_some())
    }

    async fn reserve_nonce(&self, reservation: &NonceReservation, now: u64) -> StoreResult<()> {
        let now = to_i64(now, "time")?;
        let mut tx = self.begin().await?;
        Self::reserve(&mut tx, reservation, now).await?;
        tx.commit().await.map_err(classify)
    }

    async fn message_log(&self, conversation: &Key, limit: u32) -> StoreResult<Vec<LoggedMessage>> {
        let rows = sqlx::query(
            "SELECT id, conversation_id, direction, at, sealed FROM messages \
             WHERE conversation_id = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(conversation.as_str())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(classify)?;
        let mut log = rows
            .iter()
            .map(|row| {
                let id: i64 = col(row, "id", MESSAGES, "?")?;
                let ids = id.to_string();
                RawMessage {
                    id,
                    conversation_id: col(row, "conversation_id", MESSAGES, &ids)?,
                    direction: col(row, "direction", MESSAGES, &ids)?,
                    at: col(row, "at", MESSAGES, &ids)?,
                    sealed: col(row, "sealed", MESSAGES, &ids)?,
                }
                .decode(&self.sealer)
            })
            .collect::<StoreResult<Vec<_>>>()?;
        log.reverse();
        Ok(log)
    }

    async fn money_events(&self, order_id: &Key) -> StoreResult<Vec<MoneyEvent>> {
        let rows = sqlx::query(
            "SELECT id, kind, order_id, amount, tx_hash, at FROM money_events WHERE order_id = $1 ORDER BY id",
        )
        .bind(order_id.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(classify)?;
        rows.iter()
            .map(|row| {
                let id: i64 = col(row, "id", MONEY_EVENTS, "?")?;
                let ids = id.to_string();
                RawMoneyEvent {
                    id,
                    kind: col(row, "kind", MONEY_EVENTS, &ids)?,
                    order_id: col(row, "order_id", MONEY_EVENTS, &ids)?,
                    amount: col(row, "amount", MONEY_EVENTS, &ids)?,
                    tx_hash: col(row, "tx_hash", MONEY_EVENTS, &ids)?,
                    at: col(row, "at", MONEY_EVENTS, &ids)?,
                }
                .decode()
            })
            .collect()
    }

    async fn claim_effects(
        &self,
        worker: &Key,
        kinds: &[&str],
        limit: u32,
        now: u64,
        lease_until: u64,
    ) -> StoreResult<Vec<ClaimedEffect>> {
        if kinds.is_empty() {
            return Ok(Vec::new());
        }
        let now = to_i64(now, "time")?;
        let lease_until = to_i64(lease_until, "lease")?;
        let mut tx = self.begin().await?;
        // SKIP LOCKED: rows another worker is claiming right now are passed over, not waited
        // for. The NOT EXISTS keeps per-key order: an effect waits for every earlier effect
        // of its ordering key, whether or not that one is locked. The kind filter and the
        // repeated `state IN (...)` match the partial index `outbox_unfinished_by_kind`.
        let sql = format!(
            "WITH picked AS (\
               SELECT o.id FROM outbox o \
               WHERE o.effect_kind = ANY($5) AND o.state IN ('ready', 'claimed') \
                 AND ((o.state = 'ready' AND o.available_at <= $3) OR (o.state = 'claimed' AND o.lease_until <= $3)) \
                 AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.ordering_key = o.ordering_key \
                                 AND p.id < o.id AND p.state IN ('ready', 'claimed')) \
               ORDER BY o.id LIMIT $4 FOR UPDATE OF o SKIP LOCKED) \
             UPDATE outbox SET state = 'claimed', claimed_by = $1, lease_until = $2, attempts = outbox.attempts + 1 \
             FROM picked WHERE outbox.id = picked.id \
             RETURNING {}",
            outbox_effect_columns()
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(worker.as_str())
            .bind(lease_until)
            .bind(now)
            .bind(i64::from(limit))
            .bind(owned(kinds))
            .fetch_all(&mut *tx)
            .await
            .map_err(classify)?;
        tx.commit().await.map_err(classify)?;
        let mut claimed = rows
            .iter()
            .map(effect_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        claimed.sort_by_key(|e| e.id);
        Ok(claimed)
    }

    async fn complete_effect(&self, id: EffectId, worker: &Key, now: u64) -> StoreResult<()> {
        // Naming no kind claims nothing: only the completion.
        self.complete_effect_and_claim_next(id, worker, &[], now, now)
            .await
            .map(|_| ())
    }

    async fn complete_effect_and_claim_next(
        &self,
        id: EffectId,
        worker: &Key,
        kinds: &[&str],
        now: u64,
        lease_until: u64,
    ) -> StoreResult<Option<ClaimedEffect>> {
        let now = to_i64(now, "time")?;
        let lease_until = to_i64(lease_until, "lease")?;
        let mut tx = self.begin().await?;
        let next =
            finish_and_claim_next(&mut tx, id, worker.as_str(), kinds, now, lease_until).await?;
        tx.commit().await.map_err(classify)?;
        Ok(next)
    }

    async fn fail_effect(
        &self,
        id: EffectId,
        worker: &Key,
        failure: EffectFailure,
        now: u64,
    ) -> StoreResult<()> {
        let now = to_i64(now, "time")?;
        let (state, available_at, finished_at, reason) = match failure {
            EffectFailure::Transient { retry_at, reason } => {
                ("ready", Some(to_i64(retry_at, "retry time")?), None, reason)
            }
            EffectFailure::Permanent { reason } => ("dead", None, Some(now), reason),
        };
        let done = sqlx::query(
            "UPDATE outbox SET state = $1, available_at = COALESCE($2, available_at), finished_at = $3, \
             last_error = $4, lease_until = NULL, claimed_by = NULL \
             WHERE id = $5 AND state = 'claimed' AND claimed_by = $6",
        )
        .bind(state)
        .bind(available_at)
        .bind(finished_at)
        .bind(reason)
        .bind(id.0)
        .bind(worker.as_str())
        .execute(&self.pool)
        .await
        .map_err(classify)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict(Conflict::LeaseLost(id)));
        }
        Ok(())
    }

    async fn unfinished_effects(&self) -> StoreResult<u64> {
        let row = sqlx::query(
            "SELECT COUNT(*)::BIGINT AS n FROM outbox WHERE state IN ('ready', 'claimed')",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(classify)?;
        let n: i64 = col(&row, "n", OUTBOX, "count")?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

/// Within the transaction `tx`: marks effect `id` done ([`Conflict::LeaseLost`] when
/// `worker` no longer holds it) and leases the next effect of its ordering key to `worker`
/// when that one is ready and of one of `kinds`.
async fn finish_and_claim_next(
    tx: &mut Tx,
    id: EffectId,
    worker: &str,
    kinds: &[&str],
    now: i64,
    lease_until: i64,
) -> StoreResult<Option<ClaimedEffect>> {
    let key: Option<String> = sqlx::query_scalar(
        "UPDATE outbox SET state = 'done', finished_at = $1, lease_until = NULL \
         WHERE id = $2 AND state = 'claimed' AND claimed_by = $3 RETURNING ordering_key",
    )
    .bind(now)
    .bind(id.0)
    .bind(worker)
    .fetch_optional(&mut **tx)
    .await
    .map_err(classify)?;
    let Some(key) = key else {
        return Err(StoreError::Conflict(Conflict::LeaseLost(id)));
    };
    claim_first_of_key(tx, &key, worker, kinds, now, lease_until).await
}

/// Within the transaction `tx` of a commit that enqueued `effects`: leases the first
/// unfinished effect of each of their ordering keys to the claim's worker, when it is
/// ready and of the claim's kinds (`Commit::claim_first`). In id order.
async fn claim_first(
    tx: &mut Tx,
    claim: &EffectClaim,
    effects: &[NewEffect],
    now: i64,
) -> StoreResult<Vec<ClaimedEffect>> {
    let lease_until = codec::lease_until(claim.lease_seconds, now)?;
    let worker = claim.worker.as_str();
    let mut claimed = Vec::new();
    for key in codec::ordering_keys(effects) {
        claimed.extend(claim_first_of_key(tx, key, worker, claim.kinds, now, lease_until).await?);
    }
    claimed.sort_by_key(|effect| effect.id);
    Ok(claimed)
}

/// Within `tx`: leases the first unfinished effect of ordering key `key` to `worker` until
/// `lease_until`, when it is ready at `now` and of one of `kinds`.
async fn claim_first_of_key(
    tx: &mut Tx,
    key: &str,
    worker: &str,
    kinds: &[&str],
    now: i64,
    lease_until: i64,
) -> StoreResult<Option<ClaimedEffect>> {
    if kinds.is_empty() {
        return Ok(None);
    }
    // The key's first unfinished effect, if ready and ours to run. Its row is locked
    // (no SKIP LOCKED: skipping it would hand out the effect after it, out of order);
    // a claimer holding it is done within its own short transaction.
    let sql = format!(
        "WITH first AS (\
           SELECT id FROM outbox WHERE ordering_key = $4 AND state IN ('ready', 'claimed') \
           ORDER BY id LIMIT 1 FOR UPDATE) \
         UPDATE outbox SET state = 'claimed', claimed_by = $1, lease_until = $2, attempts = outbox.attempts + 1 \
         FROM first WHERE outbox.id = first.id AND outbox.effect_kind = ANY($5) \
           AND ((outbox.state = 'ready' AND outbox.available_at <= $3) \
                OR (outbox.state = 'claimed' AND outbox.lease_until <= $3)) \
         RETURNING {}",
        outbox_effect_columns()
    );
    let row = sqlx::query(AssertSqlSafe(sql))
        .bind(worker)
        .bind(lease_until)
        .bind(now)
        .bind(key)
        .bind(owned(kinds))
        .fetch_optional(&mut **tx)
        .await
        .map_err(classify)?;
    row.as_ref().map(effect_from_row).transpose()
}
