//! The SQLite adapter of the `Store` port: one file, the sandbox default, one machine.
//!
//! Every write transaction starts with `BEGIN IMMEDIATE`, taking SQLite's single write lock
//! up front: this is the SQLite equivalent of PostgreSQL's row locks and
//! `FOR UPDATE SKIP LOCKED` for one process (writers queue on the lock, with a busy timeout,
//! instead of failing on a lock upgrade). The database runs in WAL mode so readers do not
//! block the writer.
//!
//! The port's operations run on one connection of this process, in the calling task,
//! through rusqlite with cached prepared statements. Each operation is a few microseconds of
//! SQLite work; handing every statement to a driver thread and waiting for its answer (as
//! an async driver does) cost about ten times that, and the agent runs dozens of statements
//! per user turn. Statements never wait on the network, so running them in place does not
//! hold up other tasks longer than the work itself. A second process on the same file meets
//! the busy timeout, as before. An sqlx pool on the same file stays for the migrations and
//! for tools that want raw SQL ([`SqliteStore::pool`]).

use super::checkpoint::{self, Checkpointer};
use super::codec::{
    self, EFFECT_COLUMNS, MACHINE_COLUMNS, MESSAGES, MONEY_EVENTS, OUTBOX, PROFILES, RawEffect,
    RawMachine, RawMessage, RawMoneyEvent, to_i64,
};
use super::crypto::Sealer;
use super::error::classify;
use super::{FaultHook, FaultPoint};
use rusqlite::types::FromSql;
use rusqlite::{Connection, OptionalExtension, Row, params};
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use worldstore_domain::ports::store::{
    ClaimedEffect, Commit, Committed, Conflict, EffectClaim, EffectFailure, EffectId, Expected,
    Key, LoggedMessage, MachineKind, MachineRecord, MachineWrite, MoneyEvent, NewEffect,
    NonceReservation, Revision, Status, Store, StoreError, StoreResult,
};
use worldstore_domain::profile::Profile;

/// How long a statement waits for another process's write lock before failing (transient).
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// The page size of a new database file (one made before keeps its own: SQLite cannot
/// change it in WAL mode). A commit appends every page it changed to the log, checksummed
/// and written whole, and the store's commits change a few small rows in several tables
/// and indexes: about five pages each in the agent's replay benchmark. With 1 KB pages
/// instead of SQLite's default 4 KB, that benchmark ran 7-10% more turns per second (side
/// by side, at 20 and 100 rounds); the database file holds about a quarter more bytes per
/// idle conversation (about 2.2 KB instead of 1.8 KB), and a document longer than a page
/// (a checkout's, about 2 KB) continues on overflow pages.
pub(crate) const PAGE_SIZE: u32 = 1024;

/// The SQLite store.
#[derive(Clone)]
pub struct SqliteStore {
    /// For migrations and raw SQL from tools and tests.
    pool: SqlitePool,
    /// Where the port's operations run.
    conn: Arc<Mutex<Connection>>,
    /// Copies the log back into the file, off the writer's thread.
    checkpointer: Checkpointer,
    sealer: Sealer,
    fault: Option<FaultHook>,
}

pub(crate) static MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "initial",
        include_str!("../../migrations/sqlite/0001_initial.sql"),
    ),
    (
        2,
        "outbox by kind",
        include_str!("../../migrations/sqlite/0002_outbox_by_kind.sql"),
    ),
    (
        3,
        "conversations by id only",
        include_str!("../../migrations/sqlite/0003_conversations_by_id_only.sql"),
    ),
    (
        4,
        "fewer pages per commit",
        include_str!("../../migrations/sqlite/0004_fewer_pages_per_commit.sql"),
    ),
    (
        5,
        "no temporary b-trees",
        include_str!("../../migrations/sqlite/0005_no_temporary_btrees.sql"),
    ),
];

/// The port's view of a SQLite error: lock contention is transient, the rest fatal. The
/// message comes from SQLite and never holds bound values.
fn fail(error: rusqlite::Error) -> StoreError {
    match &error {
        rusqlite::Error::SqliteFailure(e, _)
            if matches!(
                e.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ) =>
        {
            StoreError::Transient(format!("database error {}: {error}", e.extended_code))
        }
        rusqlite::Error::SqliteFailure(e, _) => {
            StoreError::Fatal(format!("database error {}: {error}", e.extended_code))
        }
        _ => StoreError::Fatal(format!("database error: {error}")),
    }
}

fn is_unique_violation(error: &rusqlite::Error) -> bool {
    matches!(error, rusqlite::Error::SqliteFailure(e, _)
        if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
            || e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
}

/// Reads one column, reporting a value of the wrong type as a corrupt row.
fn col<T: FromSql>(row: &Row<'_>, column: &str, table: &'static str, id: &str) -> StoreResult<T> {
    row.get::<_, T>(column).map_err(|e| match e {
        rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::IntegralValueOutOfRange(..)
        | rusqlite::Error::InvalidColumnName(_) => StoreError::corrupt(
            table,
            id,
            format!("column {column} has a value of the wrong type"),
        ),
        other => fail(other),
    })
}

/// Rows of a query, each turned into `T` by `read` (whose errors are kept as they are).
fn rows_of<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    mut read: impl FnMut(&Row<'_>) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    let mut statement = conn.prepare_cached(sql).map_err(fail)?;
    let mut rows = statement.query(params).map_err(fail)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(fail)? {
        out.push(read(row)?);
    }
    Ok(out)
}

/// Runs a statement; returns how many rows it changed.
fn run(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> StoreResult<usize> {
    conn.prepare_cached(sql)
        .and_then(|mut statement| statement.execute(params))
        .map_err(fail)
}

impl SqliteStore {
    /// Opens (creating with `?mode=rwc`) the database file named by a `sqlite:` URL.
    pub async fn connect(url: &str, sealer: Sealer) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Fatal(format!("bad SQLite URL: {e}")))?;
        if url.contains(":memory:") {
            return Err(StoreError::Fatal(
                "the SQLite store needs a database file (an in-memory database is not shared)"
                    .into(),
            ));
        }
        // The file as sqlx reads the URL (percent-decoded), so both open the same one.
        let path = options.get_filename().to_path_buf();
        let options = options
            .page_size(PAGE_SIZE)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(2)
            // A SQLite connection is a file handle in this process: it cannot go stale the
            // way a network connection can, so the ping before each use is wasted.
            .test_before_acquire(false)
            .acquire_timeout(BUSY_TIMEOUT)
            // Opening the pool creates the file (`mode=rwc`) and puts it in WAL mode.
            .connect_with(options)
            .await
            .map_err(classify)?;
        let open = || {
            Connection::open_with_flags(
                &path,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE
                    | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(fail)
        };
        let conn = open()?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(fail)?;
        // Temporary b-trees (sorting the ready effects, a subquery's rows) cost less in
        // memory than in a temporary file. The checkpointer copies the log back; this
        // connection does so itself only past the backstop (see `checkpoint`).
        conn.execute_batch(&format!(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
             PRAGMA temp_store = MEMORY; PRAGMA wal_autocheckpoint = {};",
            checkpoint::BACKSTOP_PAGES
        ))
        .map_err(fail)?;
        let checkpointer = Checkpointer::start(open()?)
            .map_err(|e| StoreError::Fatal(format!("cannot start the checkpoint thread: {e}")))?;
        conn.set_prepared_statement_cache_capacity(256);
        Ok(Self {
            pool,
            conn: Arc::new(Mutex::new(conn)),
            checkpointer,
            sealer,
            fault: None,
        })
    }

    pub fn pool(&self) -> &SqlitePool {
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

    /// The connection. A panic while it was held rolled its transaction back (see
    /// [`SqliteStore::write`]), so the connection is sound even when the lock is poisoned.
    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `work` in one `BEGIN IMMEDIATE` transaction, committed when it returns `Ok` and
    /// rolled back otherwise (an error, a failed commit, a panic). `BEGIN` and `COMMIT` are
    /// cached statements like the rest, not parsed again for every transaction. Every write
    /// of the store goes through here, so the checkpointer hears of each.
    fn write<T>(&self, work: impl FnOnce(&Connection) -> StoreResult<T>) -> StoreResult<T> {
        /// Rolls the transaction back when dropped before it was committed.
        struct Open<'c>(&'c Connection, bool);
        impl Drop for Open<'_> {
            fn drop(&mut self) {
                if !self.1 {
                    let _ = run(self.0, "ROLLBACK", []);
                }
            }
        }
        let conn = self.conn();
        run(&conn, "BEGIN IMMEDIATE", [])?;
        let mut open = Open(&conn, false);
        let out = work(&conn)?;
        run(&conn, "COMMIT", [])?;
        open.1 = true;
        self.checkpointer.wrote();
        Ok(out)
    }

    fn write_machine(tx: &Connection, write: &MachineWrite, now: i64) -> StoreResult<Revision> {
        let table = write.kind.table();
        let body = write.state.body.get();
        let user = write.index.user.as_ref().map(Key::as_str);
        let order = write.index.order_id.as_ref().map(Key::as_str);
        match write.expected {
            Expected::New => {
                let sql = format!(
                    "INSERT INTO {table} ({MACHINE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 1, ?8) \
                     ON CONFLICT DO NOTHING"
                );
                let done = run(
                    tx,
                    &sql,
                    params![
                        write.id.as_str(),
                        user,
                        order,
                        write.index.status.as_str(),
                        &write.state.kind,
                        i64::from(write.state.version),
                        body,
                        now
                    ],
                )?;
                if done == 0 {
                    return Err(Self::insert_conflict(tx, write));
                }
                Ok(Revision(1))
            }
            Expected::At(Revision(expected)) => {
                let expected_at = to_i64(expected, "revision")?;
                // The lookup columns are set only when they change: SQLite rewrites the
                // index entries of every column an UPDATE sets, changed or not, and a user
                // or an order id rarely changes (a checkout gets its order id once). They
                // are read first, by a plain SELECT: `UPDATE ... RETURNING` would buffer
                // its row in a temporary b-tree on every call. The row's page is read once:
                // the update finds it in the cache.
                let stored = rows_of(
                    tx,
                    &format!(
                        "SELECT user_id, order_id FROM {table} WHERE id = ?1 AND revision = ?2"
                    ),
                    params![write.id.as_str(), expected_at],
                    |row| {
                        Ok((
                            col::<Option<String>>(row, "user_id", table, write.id.as_str())?,
                            col::<Option<String>>(row, "order_id", table, write.id.as_str())?,
                        ))
                    },
                )?;
                let Some((stored_user, stored_order)) = stored.into_iter().next() else {
                    return Err(StoreError::Conflict(Conflict::RevisionMoved {
                        kind: write.kind,
                        id: write.id.clone(),
                        expected,
                    }));
                };
                let (status, version) =
                    (write.index.status.as_str(), i64::from(write.state.version));
                let (kind, id) = (&write.state.kind, write.id.as_str());
                let set_state = "status = ?1, state_kind = ?2, state_version = ?3, state = ?4, \
                                 revision = revision + 1, updated_at = ?5";
                if stored_user.as_deref() == user && stored_order.as_deref() == order {
                    let sql = format!("UPDATE {table} SET {set_state} WHERE id = ?6");
                    run(tx, &sql, params![status, kind, version, body, now, id])?;
                } else {
                    let sql = format!(
                        "UPDATE {table} SET {set_state}, user_id = ?7, order_id = ?8 WHERE id = ?6"
                    );
                    let done = tx.prepare_cached(&sql).and_then(|mut statement| {
                        statement
                            .execute(params![status, kind, version, body, now, id, user, order])
                    });
                    match done {
                        Ok(_) => {}
                        Err(e) if is_unique_violation(&e) => return Err(order_taken(write)),
                        Err(e) => return Err(fail(e)),
                    }
                }
                Ok(Revision(expected + 1))
            }
        }
    }

    fn insert_conflict(tx: &Connection, write: &MachineWrite) -> StoreError {
        let sql = format!("SELECT 1 FROM {} WHERE id = ?1", write.kind.table());
        let found = tx.prepare_cached(&sql).and_then(|mut statement| {
            statement
                .query_row(params![write.id.as_str()], |_| Ok(()))
                .optional()
        });
        match found {
            Ok(Some(())) => StoreError::Conflict(Conflict::AlreadyExists {
                kind: write.kind,
                id: write.id.clone(),
            }),
            Ok(None) => order_taken(write),
            Err(e) => fail(e),
        }
    }

    fn reserve(tx: &Connection, reservation: &NonceReservation, now: i64) -> StoreResult<()> {
        let c = codec::nonce_columns(&reservation.key);
        let done = run(
            tx,
            "INSERT INTO nonce_reservations (chain_id, token, payer, nonce, order_id, reserved_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
            params![
                c.chain_id,
                c.token,
                c.payer,
                c.nonce,
                reservation.order_id.as_str(),
                now
            ],
        )?;
        if done == 0 {
            return Err(StoreError::Conflict(Conflict::NonceTaken(reservation.key)));
        }
        Ok(())
    }

    fn fetch_machines(
        &self,
        kind: MachineKind,
        sql: &str,
        bind: &str,
    ) -> StoreResult<Vec<MachineRecord>> {
        rows_of(&self.conn(), sql, params![bind], |row| {
            machine_from_row(row, kind)
        })
    }
}

/// A user's latest machine of `table` (`?1`), in status `?2` when `by_status`: the user's
/// index entries read newest first, stopping at the first match. The unary `+` keeps
/// SQLite from searching the status index instead, which holds every user's machines in
/// that status.
fn latest_of_user_sql(table: &str, by_status: bool) -> String {
    let status = if by_status { " AND +status = ?2" } else { "" };
    format!(
        "SELECT {MACHINE_COLUMNS} FROM {table} WHERE user_id = ?1{status} \
         ORDER BY updated_at DESC, id DESC LIMIT 1"
    )
}

/// `LIMIT n` written into the SQL. A bound `LIMIT ?` makes SQLite plan with the bound
/// value and mark the prepared statement to be compiled again whenever that parameter is
/// bound anew, which is every time: the cached statement would be re-parsed on every use.
/// Limits are the code's own constants, so each limit is one cached statement.
fn limit_clause(limit: u32) -> String {
    format!("LIMIT {limit}")
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

fn machine_from_row(row: &Row<'_>, kind: MachineKind) -> StoreResult<MachineRecord> {
    let table = kind.table();
    let id: String = col(row, "id", table, "?")?;
    let state: String = col(row, "state", table, &id)?;
    RawMachine {
        user_id: col(row, "user_id", table, &id)?,
        order_id: col(row, "order_id", table, &id)?,
        status: col(row, "status", table, &id)?,
        state_kind: col(row, "state_kind", table, &id)?,
        state_version: col(row, "state_version", table, &id)?,
        state: codec::parse_json(state),
        revision: col(row, "revision", table, &id)?,
        updated_at: col(row, "updated_at", table, &id)?,
        id,
    }
    .decode(kind)
}

/// `?{first}, ?{first+1}, ...`: one placeholder per effect kind.
fn kind_params(kinds: usize, first: usize) -> String {
    (0..kinds)
        .map(|i| format!("?{}", i + first))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The ready effects of the kinds bound from `?2` on, at `?1` now, oldest first, at most
/// `limit`: pending and due, or claimed under an expired lease, and the first unfinished
/// effect of their ordering key. The kind filter with the repeated `state IN (...)` lets
/// SQLite search the partial index `outbox_unfinished_by_kind`, which yields one kind's
/// effects in id order: a worker of one kind gets them without a sort, and the search ends
/// at the limit, written into the SQL ([`limit_clause`]).
fn ready_sql(kinds: usize, limit: u32) -> String {
    format!(
        "SELECT {EFFECT_COLUMNS} FROM outbox o \
         WHERE o.effect_kind IN ({}) AND o.state IN ('ready', 'claimed') \
           AND ((o.state = 'ready' AND o.available_at <= ?1) OR (o.state = 'claimed' AND o.lease_until <= ?1)) \
           AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.ordering_key = o.ordering_key \
                           AND p.id < o.id AND p.state IN ('ready', 'claimed')) \
         ORDER BY o.id {}",
        kind_params(kinds, 2),
        limit_clause(limit)
    )
}

/// The effect after effect `?2` in its ordering key (the first one unfinished), if it is
/// ready at `?1` now and of one of the kinds bound from `?3` on. The partial index
/// `outbox_by_ordering_key` finds it without a sort.
fn next_ready_sql(kinds: usize) -> String {
    first_ready_sql("(SELECT ordering_key FROM outbox WHERE id = ?2)", kinds)
}

/// The first unfinished effect of the ordering key `key` (SQL of parameter `?2`), if it is
/// ready at `?1` now and of one of the kinds bound from `?3` on.
fn first_ready_sql(key: &str, kinds: usize) -> String {
    format!(
        "SELECT {EFFECT_COLUMNS} FROM (\
           SELECT * FROM outbox \
           WHERE ordering_key = {key} AND state IN ('ready', 'claimed') \
           ORDER BY id LIMIT 1) \
         WHERE effect_kind IN ({}) \
           AND ((state = 'ready' AND available_at <= ?1) OR (state = 'claimed' AND lease_until <= ?1))",
        kind_params(kinds, 3)
    )
}

/// Leases effects read by [`ready_sql`] or [`next_ready_sql`] to `worker` until
/// `lease_until`, within the write transaction `tx` that read them. Plain updates by id:
/// an `UPDATE ... RETURNING` over a subquery costs SQLite temporary tables on every call.
fn lease(
    tx: &Connection,
    ready: Vec<RawEffect>,
    worker: &str,
    lease_until: i64,
) -> StoreResult<Vec<ClaimedEffect>> {
    ready
        .into_iter()
        .map(|mut effect| {
            run(
                tx,
                "UPDATE outbox SET state = 'claimed', claimed_by = ?1, lease_until = ?2, \
                 attempts = attempts + 1 WHERE id = ?3",
                params![worker, lease_until, effect.id],
            )?;
            effect.attempts += 1;
            effect.lease_until = Some(lease_until);
            effect.decode()
        })
        .collect()
}

/// Within the write transaction `tx`: marks effect `id` done ([`Conflict::LeaseLost`] when
/// `worker` no longer holds it) and leases the next effect of its ordering key to `worker`
/// when that one is ready and of one of `kinds`.
fn finish_and_claim_next(
    tx: &Connection,
    id: EffectId,
    worker: &str,
    kinds: &[&str],
    now: i64,
    lease_until: i64,
) -> StoreResult<Option<ClaimedEffect>> {
    let done = run(
        tx,
        "UPDATE outbox SET state = 'done', finished_at = ?1, lease_until = NULL \
         WHERE id = ?2 AND state = 'claimed' AND claimed_by = ?3",
        params![now, id.0, worker],
    )?;
    if done == 0 {
        return Err(StoreError::Conflict(Conflict::LeaseLost(id)));
    }
    if kinds.is_empty() {
        return Ok(None);
    }
    let sql = next_ready_sql(kinds.len());
    lease_first_ready(tx, &sql, &id.0, worker, kinds, now, lease_until)
}

/// Within the write transaction `tx`: leases to `worker` the effect that `sql` (from
/// [`first_ready_sql`]) finds for `key` (bound to `?2`) and `kinds`, if any.
fn lease_first_ready(
    tx: &Connection,
    sql: &str,
    key: &dyn rusqlite::ToSql,
    worker: &str,
    kinds: &[&str],
    now: i64,
    lease_until: i64,
) -> StoreResult<Option<ClaimedEffect>> {
    let mut values: Vec<&dyn rusqlite::ToSql> = vec![&now, key];
    values.extend(kinds.iter().map(|kind| kind as &dyn rusqlite::ToSql));
    let first = rows_of(tx, sql, values.as_slice(), raw_effect_from_row)?;
    Ok(lease(tx, first, worker, lease_until)?.pop())
}

/// Within the write transaction `tx` of a commit that enqueued `effects`: leases the first
/// unfinished effect of each of their ordering keys to the claim's worker, when it is
/// ready and of the claim's kinds (`Commit::claim_first`). In id order.
fn claim_first(
    tx: &Connection,
    claim: &EffectClaim,
    effects: &[NewEffect],
    now: i64,
) -> StoreResult<Vec<ClaimedEffect>> {
    if claim.kinds.is_empty() {
        return Ok(Vec::new());
    }
    let lease_until = codec::lease_until(claim.lease_seconds, now)?;
    let sql = first_ready_sql("?2", claim.kinds.len());
    let worker = claim.worker.as_str();
    let mut claimed = Vec::new();
    for key in codec::ordering_keys(effects) {
        claimed.extend(lease_first_ready(
            tx,
            &sql,
            &key,
            worker,
            claim.kinds,
            now,
            lease_until,
        )?);
    }
    claimed.sort_by_key(|effect| effect.id);
    Ok(claimed)
}

fn raw_effect_from_row(row: &Row<'_>) -> StoreResult<RawEffect> {
    let id: i64 = col(row, "id", OUTBOX, "?")?;
    let ids = id.to_string();
    let effect: String = col(row, "effect", OUTBOX, &ids)?;
    Ok(RawEffect {
        id,
        idempotency_key: col(row, "idempotency_key", OUTBOX, &ids)?,
        ordering_key: col(row, "ordering_key", OUTBOX, &ids)?,
        effect_kind: col(row, "effect_kind", OUTBOX, &ids)?,
        effect_version: col(row, "effect_version", OUTBOX, &ids)?,
        effect: codec::parse_json(effect),
        attempts: col(row, "attempts", OUTBOX, &ids)?,
        lease_until: col(row, "lease_until", OUTBOX, &ids)?,
    })
}

/// Registers a user; one already registered is left as is.
const REGISTER_USER: &str =
    "INSERT INTO users (id, created_at) VALUES (?1, ?2) ON CONFLICT DO NOTHING";

impl Store for SqliteStore {
    async fn save_profile(&self, user: &Key, profile: &Profile, now: u64) -> StoreResult<()> {
        let sealed = codec::seal_profile(&self.sealer, user, profile)?;
        let now = to_i64(now, "time")?;
        self.write(|tx| {
            run(
                tx,
                REGISTER_USER,
                params![user.as_str(), now],
            )?;
            run(
                tx,
                "INSERT INTO profiles (user_id, sealed, updated_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (user_id) DO UPDATE SET sealed = excluded.sealed, updated_at = excluded.updated_at",
                params![user.as_str(), sealed, now],
            )?;
            Ok(())
        })
    }

    async fn load_profile(&self, user: &Key) -> StoreResult<Option<Profile>> {
        let sealed = rows_of(
            &self.conn(),
            "SELECT sealed FROM profiles WHERE user_id = ?1",
            params![user.as_str()],
            |row| col::<Vec<u8>>(row, "sealed", PROFILES, user.as_str()),
        )?;
        sealed
            .first()
            .map(|sealed| codec::open_profile(&self.sealer, user, sealed))
            .transpose()
    }

    async fn delete_profile(&self, user: &Key) -> StoreResult<bool> {
        let done = self.write(|tx| {
            run(
                tx,
                "DELETE FROM profiles WHERE user_id = ?1",
                params![user.as_str()],
            )
        })?;
        Ok(done > 0)
    }

    async fn commit(&self, commit: Commit, now: u64) -> StoreResult<Committed> {
        let now = to_i64(now, "time")?;
        // Sealing and serializing happen before the write lock is taken.
        let money = commit
            .money_events
            .iter()
            .map(|event| codec::money_columns(event).map(|columns| (event, columns)))
            .collect::<StoreResult<Vec<_>>>()?;
        let messages = commit
            .messages
            .iter()
            .map(|message| {
                Ok((
                    message,
                    codec::seal_message(&self.sealer, message)?,
                    to_i64(message.at, "message time")?,
                ))
            })
            .collect::<StoreResult<Vec<_>>>()?;
        self.write(|tx| {
            if let Some(inbound) = &commit.inbound {
                let done = run(
                    tx,
                    "INSERT INTO processed_inbound (id, processed_at) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                    params![inbound.as_str(), now],
                )?;
                if done == 0 {
                    return Err(StoreError::Conflict(Conflict::DuplicateInbound(
                        inbound.clone(),
                    )));
                }
            }
            for user in &commit.new_users {
                run(tx, REGISTER_USER, params![user.as_str(), now])?;
            }
            let mut revisions = Vec::with_capacity(commit.machines.len());
            for write in &commit.machines {
                revisions.push(Self::write_machine(tx, write, now)?);
            }
            self.fault(FaultPoint::MachinesWritten);
            for reservation in &commit.nonces {
                Self::reserve(tx, reservation, now)?;
            }
            let mut effects_enqueued = 0;
            for effect in &commit.effects {
                effects_enqueued += run(
                    tx,
                    "INSERT INTO outbox (idempotency_key, ordering_key, effect_kind, effect_version, effect, \
                     state, attempts, available_at, created_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, 'ready', 0, ?6, ?6) ON CONFLICT (idempotency_key) DO NOTHING",
                    params![
                        effect.idempotency_key.as_str(),
                        effect.ordering_key.as_str(),
                        &effect.effect.kind,
                        i64::from(effect.effect.version),
                        effect.effect.body.get(),
                        now
                    ],
                )?;
            }
            self.fault(FaultPoint::EffectsWritten);
            for (event, (amount, tx_hash, at)) in &money {
                run(
                    tx,
                    "INSERT INTO money_events (kind, order_id, amount, tx_hash, at) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![event.kind.as_str(), event.order_id.as_str(), amount, tx_hash, at],
                )?;
            }
            for (message, sealed, at) in &messages {
                run(
                    tx,
                    "INSERT INTO messages (conversation_id, direction, at, sealed) VALUES (?1, ?2, ?3, ?4)",
                    params![
                        message.conversation.as_str(),
                        message.direction.as_str(),
                        at,
                        sealed
                    ],
                )?;
            }
            let next_effect = match &commit.finishes {
                Some(finished) => finish_and_claim_next(
                    tx,
                    finished.id,
                    finished.next.worker.as_str(),
                    finished.next.kinds,
                    now,
                    codec::lease_until(finished.next.lease_seconds, now)?,
                )?,
                None => None,
            };
            let claimed = match &commit.claim_first {
                Some(claim) => claim_first(tx, claim, &commit.effects, now)?,
                None => Vec::new(),
            };
            Ok(Committed {
                revisions,
                effects_enqueued,
                next_effect,
                claimed,
            })
        })
    }

    async fn load_machine(
        &self,
        kind: MachineKind,
        id: &Key,
    ) -> StoreResult<Option<MachineRecord>> {
        let sql = format!(
            "SELECT {MACHINE_COLUMNS} FROM {} WHERE id = ?1",
            kind.table()
        );
        Ok(self.fetch_machines(kind, &sql, id.as_str())?.pop())
    }

    async fn machines_of_user(
        &self,
        kind: MachineKind,
        user: &Key,
    ) -> StoreResult<Vec<MachineRecord>> {
        let sql = format!(
            "SELECT {MACHINE_COLUMNS} FROM {} WHERE user_id = ?1 ORDER BY updated_at, id",
            kind.table()
        );
        self.fetch_machines(kind, &sql, user.as_str())
    }

    async fn latest_machine_of_user(
        &self,
        kind: MachineKind,
        user: &Key,
        status: Option<&Status>,
    ) -> StoreResult<Option<MachineRecord>> {
        let sql = latest_of_user_sql(kind.table(), status.is_some());
        let conn = self.conn();
        let read = |row: &Row<'_>| machine_from_row(row, kind);
        let found = match status {
            None => rows_of(&conn, &sql, params![user.as_str()], read)?,
            Some(status) => rows_of(&conn, &sql, params![user.as_str(), status.as_str()], read)?,
        };
        Ok(found.into_iter().next())
    }

    async fn machine_by_order(
        &self,
        kind: MachineKind,
        order_id: &Key,
    ) -> StoreResult<Option<MachineRecord>> {
        let sql = format!(
            "SELECT {MACHINE_COLUMNS} FROM {} WHERE order_id = ?1",
            kind.table()
        );
        Ok(self.fetch_machines(kind, &sql, order_id.as_str())?.pop())
    }

    async fn machines_in_status(
        &self,
        kind: MachineKind,
        status: &Status,
        limit: u32,
    ) -> StoreResult<Vec<MachineRecord>> {
        let sql = format!(
            "SELECT {MACHINE_COLUMNS} FROM {} WHERE status = ?1 ORDER BY updated_at, id {}",
            kind.table(),
            limit_clause(limit)
        );
        self.fetch_machines(kind, &sql, status.as_str())
    }

    async fn is_processed(&self, inbound: &Key) -> StoreResult<bool> {
        let found = rows_of(
            &self.conn(),
            "SELECT 1 FROM processed_inbound WHERE id = ?1",
            params![inbound.as_str()],
            |_| Ok(()),
        )?;
        Ok(!found.is_empty())
    }

    async fn reserve_nonce(&self, reservation: &NonceReservation, now: u64) -> StoreResult<()> {
        let now = to_i64(now, "time")?;
        self.write(|tx| Self::reserve(tx, reservation, now))
    }

    async fn message_log(&self, conversation: &Key, limit: u32) -> StoreResult<Vec<LoggedMessage>> {
        let sql = format!(
            "SELECT id, conversation_id, direction, at, sealed FROM messages \
             WHERE conversation_id = ?1 ORDER BY id DESC {}",
            limit_clause(limit)
        );
        let mut log = rows_of(&self.conn(), &sql, params![conversation.as_str()], |row| {
            let id: i64 = col(row, "id", MESSAGES, "?")?;
            let ids = id.to_string();
            Ok(RawMessage {
                id,
                conversation_id: col(row, "conversation_id", MESSAGES, &ids)?,
                direction: col(row, "direction", MESSAGES, &ids)?,
                at: col(row, "at", MESSAGES, &ids)?,
                sealed: col(row, "sealed", MESSAGES, &ids)?,
            })
        })?
        .into_iter()
        .map(|raw| raw.decode(&self.sealer))
        .collect::<StoreResult<Vec<_>>>()?;
        log.reverse();
        Ok(log)
    }

    async fn money_events(&self, order_id: &Key) -> StoreResult<Vec<MoneyEvent>> {
        rows_of(
            &self.conn(),
            "SELECT id, kind, order_id, amount, tx_hash, at FROM money_events WHERE order_id = ?1 ORDER BY id",
            params![order_id.as_str()],
            |row| {
                let id: i64 = col(row, "id", MONEY_EVENTS, "?")?;
                let ids = id.to_string();
                Ok(RawMoneyEvent {
                    id,
                    kind: col(row, "kind", MONEY_EVENTS, &ids)?,
                    order_id: col(row, "order_id", MONEY_EVENTS, &ids)?,
                    amount: col(row, "amount", MONEY_EVENTS, &ids)?,
                    tx_hash: col(row, "tx_hash", MONEY_EVENTS, &ids)?,
                    at: col(row, "at", MONEY_EVENTS, &ids)?,
                })
            },
        )?
        .into_iter()
        .map(RawMoneyEvent::decode)
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
        let sql = ready_sql(kinds.len(), limit);
        let mut values: Vec<&dyn rusqlite::ToSql> = vec![&now];
        values.extend(kinds.iter().map(|kind| kind as &dyn rusqlite::ToSql));
        // A read first: most rounds find nothing due, and answering that takes no write
        // lock. What is found is read again under the lock, then leased.
        if rows_of(&self.conn(), &sql, values.as_slice(), |_| Ok(()))?.is_empty() {
            return Ok(Vec::new());
        }
        self.write(|tx| {
            let ready = rows_of(tx, &sql, values.as_slice(), raw_effect_from_row)?;
            lease(tx, ready, worker.as_str(), lease_until)
        })
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
        self.write(|tx| finish_and_claim_next(tx, id, worker.as_str(), kinds, now, lease_until))
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
        let done = self.write(|tx| {
            run(
                tx,
                "UPDATE outbox SET state = ?1, available_at = COALESCE(?2, available_at), finished_at = ?3, \
             last_error = ?4, lease_until = NULL, claimed_by = NULL \
             WHERE id = ?5 AND state = 'claimed' AND claimed_by = ?6",
            params![
                state,
                available_at,
                finished_at,
                reason,
                id.0,
                worker.as_str()
            ],
            )
        })?;
        if done == 0 {
            return Err(StoreError::Conflict(Conflict::LeaseLost(id)));
        }
        Ok(())
    }

    async fn unfinished_effects(&self) -> StoreResult<u64> {
        let n = rows_of(
            &self.conn(),
            "SELECT COUNT(*) AS n FROM outbox WHERE state IN ('ready', 'claimed')",
            [],
            |row| col::<i64>(row, "n", OUTBOX, "count"),
        )?;
        Ok(n.first().map_or(0, |n| u64::try_from(*n).unwrap_or(0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::DataKey;
    use sqlx::AssertSqlSafe;
    use worldstore_domain::pii::Pii;
    use worldstore_domain::ports::store::{Direction, NewEffect, StoredState};

    fn temp_url(name: &str) -> (String, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("ws-sqlite-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let url = format!("sqlite://{}?mode=rwc", dir.join("db.sqlite").display());
        (url, dir)
    }

    /// Commits leave their pages in the log; the checkpointer thread, not the committing
    /// one, copies them back into the database file soon after.
    #[tokio::test]
    async fn the_checkpointer_copies_the_log_back_soon_after_writes() {
        let (url, dir) = temp_url("checkpoint");
        let store = SqliteStore::connect(&url, Sealer::new(&DataKey::from_bytes([7; 32])))
            .await
            .expect("connect");
        store.migrate().await.expect("migrate");
        let backstop: u32 = store
            .conn()
            .query_row("PRAGMA wal_autocheckpoint", [], |row| row.get(0))
            .expect("pragma");
        assert_eq!(backstop, checkpoint::BACKSTOP_PAGES);
        let file = dir.join("db.sqlite");
        let size = || std::fs::metadata(&file).expect("database file").len();
        let before = size();
        // A few dozen pages: far below SQLite's own threshold of 1,000, so only the
        // checkpointer can have copied them.
        for n in 0..20 {
            let key = |s: String| Key::parse(&s).expect("key");
            let commit = Commit {
                inbound: Some(key(format!("in-{n}"))),
                effects: vec![NewEffect {
                    idempotency_key: key(format!("fx-{n}")),
                    ordering_key: key(format!("user:{n}")),
                    effect: StoredState {
                        kind: "agent.effect".into(),
                        version: 1,
                        body: serde_json::value::RawValue::from_string("{}".into()).unwrap(),
                    },
                }],
                ..Commit::default()
            };
            store.commit(commit, 100).await.expect("commit");
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while size() == before && std::time::Instant::now() < deadline {
            tokio::time::sleep(checkpoint::GATHER).await;
        }
        assert!(
            size() > before,
            "the database file is still {before} bytes: nothing was checkpointed"
        );
        drop(store);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// A new file gets [`PAGE_SIZE`] pages. A file made before, with SQLite's default 4 KB
    /// pages and in WAL mode, keeps them: it opens, upgrades, and commits as before.
    #[tokio::test]
    async fn a_new_file_has_small_pages_and_an_older_file_keeps_its_own() {
        let page_size = |store: &SqliteStore| -> u32 {
            store
                .conn()
                .query_row("PRAGMA page_size", [], |row| row.get(0))
                .expect("pragma")
        };
        let sealer = || Sealer::new(&DataKey::from_bytes([7; 32]));
        let (url, dir) = temp_url("pages-new");
        let store = SqliteStore::connect(&url, sealer()).await.expect("connect");
        store.migrate().await.expect("migrate");
        assert_eq!(page_size(&store), PAGE_SIZE);
        drop(store);
        let _ = std::fs::remove_dir_all(dir);

        let (url, dir) = temp_url("pages-old");
        {
            let old = Connection::open(dir.join("db.sqlite")).expect("open");
            old.execute_batch(
                "PRAGMA page_size = 4096; PRAGMA journal_mode = WAL; \
                 CREATE TABLE made_before (id INTEGER PRIMARY KEY);",
            )
            .expect("an older file");
        }
        let store = SqliteStore::connect(&url, sealer()).await.expect("connect");
        store.migrate().await.expect("migrate");
        assert_eq!(page_size(&store), 4096);
        let key = |s: &str| Key::parse(s).expect("key");
        let commit = Commit {
            inbound: Some(key("in-old-file")),
            ..Commit::default()
        };
        store.commit(commit, 100).await.expect("commit");
        assert!(store.is_processed(&key("in-old-file")).await.expect("read"));
        drop(store);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// The rows of `EXPLAIN` or `EXPLAIN QUERY PLAN` (`how`) of `sql` with `values` bound.
    async fn explain(
        store: &SqliteStore,
        how: &str,
        sql: &str,
        values: &[&str],
    ) -> Vec<sqlx::sqlite::SqliteRow> {
        let mut explain = sqlx::query(AssertSqlSafe(format!("{how} {sql}")));
        for value in values {
            explain = explain.bind(value.to_string());
        }
        explain.fetch_all(store.pool()).await.expect("plan")
    }

    #[tokio::test]
    async fn a_database_of_the_first_schema_upgrades_and_its_pending_effects_are_claimed() {
        let (url, dir) = temp_url("upgrade");
        let connect = || SqliteStore::connect(&url, Sealer::new(&DataKey::from_bytes([7; 32])));
        let store = connect().await.expect("connect");
        super::super::migrate::run(store.pool(), &MIGRATIONS[..1])
            .await
            .expect("first schema only");
        let key = |s: &str| Key::parse(s).expect("key");
        let effect = |name: &str| NewEffect {
            idempotency_key: key(name),
            ordering_key: key("user:old"),
            effect: StoredState {
                kind: "agent.effect".into(),
                version: 1,
                body: serde_json::value::RawValue::from_string("{}".into()).unwrap(),
            },
        };
        let logged = |text: &str| LoggedMessage {
            conversation: key("conv-old"),
            direction: Direction::Inbound,
            at: 100,
            text: Pii::new(text.to_owned()),
        };
        let commit = Commit {
            inbound: Some(key("in-old")),
            effects: vec![effect("fx-old")],
            messages: vec![logged("before the upgrade")],
            ..Commit::default()
        };
        store.commit(commit, 100).await.expect("enqueue under 0001");

        assert_eq!(
            store.migrate().await.expect("upgrade"),
            MIGRATIONS.len() - 1
        );
        // Restarted on the new schema (an EXPLAIN does not notice a connection's stale one).
        store.pool().close().await;
        let store = connect().await.expect("reconnect");
        // The claim's search goes through the kind index, not a scan of the outbox, and
        // the next effect of a key is found through the ordering-key index. Neither, nor a
        // read of machines by status or user, sorts in a temporary b-tree (0005).
        let ready: &[&str] = &["100", "agent.effect"];
        let next: &[&str] = &["100", "1", "agent.effect"];
        let by_status = format!(
            "SELECT {MACHINE_COLUMNS} FROM checkouts WHERE status = ?1 ORDER BY updated_at, id LIMIT 50"
        );
        let by_user = format!(
            "SELECT {MACHINE_COLUMNS} FROM settlements WHERE user_id = ?1 ORDER BY updated_at, id"
        );
        for (sql, values, index) in [
            (ready_sql(1, 10), ready, "outbox_unfinished_by_kind"),
            (next_ready_sql(1), next, "outbox_by_ordering_key"),
            (by_status, &["paid"][..], "checkouts_by_status"),
            (by_user, &["u1"][..], "settlements_by_user"),
            (
                latest_of_user_sql("settlements", false),
                &["u1"][..],
                "settlements_by_user",
            ),
            (
                latest_of_user_sql("settlements", true),
                &["u1", "awaiting_payment"][..],
                "settlements_by_user",
            ),
            (
                latest_of_user_sql("checkouts", true),
                &["u1", "paid"][..],
                "checkouts_by_user",
            ),
        ] {
            let plan: Vec<String> = explain(&store, "EXPLAIN QUERY PLAN", &sql, values)
                .await
                .iter()
                .map(|row| sqlx::Row::get::<String, _>(row, "detail"))
                .collect();
            assert!(plan.iter().any(|d| d.contains(index)), "{plan:?}");
            assert!(!plan.iter().any(|d| d.contains("TEMP B-TREE")), "{plan:?}");
        }
        // Nor does writing the outbox: its state check is made of comparisons, not an IN
        // list (which SQLite codes as a temporary table built on every execution).
        let insert = "INSERT INTO outbox (idempotency_key, ordering_key, effect_kind, \
                      effect_version, effect, state, available_at, created_at) \
                      VALUES (?1, ?2, ?3, 1, '{}', 'ready', 0, 0)";
        let claim = "UPDATE outbox SET state = 'claimed', claimed_by = ?1 WHERE id = ?2";
        for (sql, values) in [
            (insert, &["k", "o", "agent.effect"][..]),
            (claim, &["w", "1"]),
        ] {
            let opcodes: Vec<String> = explain(&store, "EXPLAIN", sql, values)
                .await
                .iter()
                .map(|row| sqlx::Row::get::<String, _>(row, "opcode"))
                .collect();
            assert!(
                !opcodes.iter().any(|op| op == "OpenEphemeral"),
                "{sql}: {opcodes:?}"
            );
        }
        let worker = key("worker");
        assert!(
            store
                .claim_effects(&worker, &["settlement.effect"], 10, 100, 200)
                .await
                .expect("claim")
                .is_empty()
        );
        let claimed = store
            .claim_effects(&worker, &["agent.effect"], 10, 100, 200)
            .await
            .expect("claim");
        assert_eq!(claimed.len(), 1);
        assert_eq!(claimed[0].idempotency_key, key("fx-old"));
        // Migrations 0004 and 0005 rebuilt the outbox, the message log and the inbound ids
        // with their rows: the old inbound id is still processed, the old line still logged,
        // and rows added now come after the old ones.
        assert!(store.is_processed(&key("in-old")).await.expect("read"));
        let commit = Commit {
            inbound: Some(key("in-new")),
            effects: vec![effect("fx-new")],
            messages: vec![logged("after the upgrade")],
            ..Commit::default()
        };
        store
            .commit(commit, 101)
            .await
            .expect("enqueue after the upgrade");
        let log = store.message_log(&key("conv-old"), 10).await.expect("log");
        let texts: Vec<&str> = log.iter().map(|m| m.text.expose().as_str()).collect();
        assert_eq!(texts, ["before the upgrade", "after the upgrade"]);
        let next = store
            .complete_effect_and_claim_next(claimed[0].id, &worker, &["agent.effect"], 101, 300)
            .await
            .expect("complete")
            .expect("the new effect is next for its key");
        assert_eq!(next.idempotency_key, key("fx-new"));
        assert!(next.id > claimed[0].id);
        store.pool().close().await;
        let _ = std::fs::remove_dir_all(dir);
    }
}
