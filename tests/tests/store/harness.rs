//! A fresh database per test, on either backend. PostgreSQL comes from
//! `WORLDSTORE_TEST_POSTGRES_URL` (scripts/test-all starts a private cluster and sets it):
//! each test creates its own database in it, so tests run in parallel. Without the variable,
//! PostgreSQL tests fail when `CI` is set and are skipped with a notice otherwise.

use sqlx::{AssertSqlSafe, Connection};
use std::sync::atomic::{AtomicU32, Ordering};
use worldstore_adapters::store::{Backend, DataKey, SqlStore};
use worldstore_domain::ports::store::Key;

pub const POSTGRES_URL_VAR: &str = "WORLDSTORE_TEST_POSTGRES_URL";

pub fn data_key() -> DataKey {
    DataKey::from_bytes([7; 32])
}

pub fn key(text: &str) -> Key {
    Key::parse(text).expect("test keys are valid")
}

pub struct TestDb {
    pub store: SqlStore,
    pub url: String,
    sqlite_path: Option<std::path::PathBuf>,
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(path) = &self.sqlite_path {
            for suffix in ["", "-wal", "-shm"] {
                let mut file = path.clone().into_os_string();
                file.push(suffix);
                let _ = std::fs::remove_file(file);
            }
        }
    }
}

fn unique_name() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "ws_test_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        nanos
    )
}

/// A migrated store on a database nobody else uses, or `None` when PostgreSQL is not
/// configured on a developer machine.
pub async fn fresh(backend: Backend) -> Option<TestDb> {
    let name = unique_name();
    let (url, sqlite_path) = match backend {
        Backend::Sqlite => {
            let path = std::env::temp_dir().join(format!("{name}.db"));
            (format!("sqlite://{}?mode=rwc", path.display()), Some(path))
        }
        Backend::Postgres => {
            let Ok(admin) = std::env::var(POSTGRES_URL_VAR) else {
                if std::env::var_os("CI").is_some() {
                    panic!(
                        "{POSTGRES_URL_VAR} is not set: the PostgreSQL store tests need a server \
                         (scripts/test-all starts one with scripts/pg-cluster)"
                    );
                }
                eprintln!(
                    "NOTICE: skipping a PostgreSQL store test: {POSTGRES_URL_VAR} is not set \
                     (run scripts/test-all, or scripts/pg-cluster start)"
                );
                return None;
            };
            let mut conn = sqlx::PgConnection::connect(&admin)
                .await
                .expect("connect to the test PostgreSQL server");
            sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut conn)
                .await
                .expect("create a test database");
            let _ = conn.close().await;
            let base = admin
                .rsplit_once('/')
                .map(|(base, _)| base)
                .expect("the URL names a database");
            (format!("{base}/{name}"), None)
        }
    };
    let store = SqlStore::open(&url, &data_key())
        .await
        .expect("open and migrate the test store");
    Some(TestDb {
        store,
        url,
        sqlite_path,
    })
}

/// Runs raw SQL against the test database (to corrupt rows, read raw bytes).
pub async fn exec(db: &TestDb, sql: &str) -> Result<u64, sqlx::Error> {
    let sql = AssertSqlSafe(sql.to_owned());
    match &db.store {
        SqlStore::Sqlite(s) => Ok(sqlx::query(sql).execute(s.pool()).await?.rows_affected()),
        SqlStore::Postgres(s) => Ok(sqlx::query(sql).execute(s.pool()).await?.rows_affected()),
    }
}

/// Fetches the first column of every row of a query as bytes of text (for inspection).
pub async fn fetch_bytes(db: &TestDb, sql: &str) -> Vec<Vec<u8>> {
    use sqlx::Row;
    let sql = AssertSqlSafe(sql.to_owned());
    match &db.store {
        SqlStore::Sqlite(s) => sqlx::query(sql)
            .fetch_all(s.pool())
            .await
            .expect("query")
            .iter()
            .map(|r| r.get::<Vec<u8>, _>(0))
            .collect(),
        SqlStore::Postgres(s) => sqlx::query(sql)
            .fetch_all(s.pool())
            .await
            .expect("query")
            .iter()
            .map(|r| r.get::<Vec<u8>, _>(0))
            .collect(),
    }
}

pub async fn count(db: &TestDb, table: &str) -> i64 {
    use sqlx::Row;
    let sql = AssertSqlSafe(format!("SELECT COUNT(*) AS n FROM {table}"));
    match &db.store {
        SqlStore::Sqlite(s) => sqlx::query(sql)
            .fetch_one(s.pool())
            .await
            .expect("count")
            .get::<i64, _>(0),
        SqlStore::Postgres(s) => sqlx::query(sql)
            .fetch_one(s.pool())
            .await
            .expect("count")
            .get::<i64, _>(0),
    }
}
