//! Classification of database errors into the port's [`StoreError`]: lost connections,
//! timeouts, lock contention, serialization failures and shutdowns are transient; everything
//! else is fatal. Messages come from the database driver and never contain bound values:
//! personal data only ever reaches the database sealed.

use worldstore_domain::ports::store::StoreError;

/// PostgreSQL SQLSTATE classes and codes worth retrying.
fn postgres_transient(code: &str) -> bool {
    code.starts_with("08") // connection exception
        || code.starts_with("53") // insufficient resources
        || matches!(code, "40001" | "40P01" | "55P03" | "57P01" | "57P02" | "57P03" | "57014")
}

/// SQLite primary result codes worth retrying: BUSY (5) and LOCKED (6).
fn sqlite_transient(code: &str) -> bool {
    code.parse::<i64>().is_ok_and(|c| matches!(c & 0xff, 5 | 6))
}

pub(crate) fn classify(error: sqlx::Error) -> StoreError {
    match error {
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            let text = format!("database error {code}: {}", db.message());
            if postgres_transient(&code) || sqlite_transient(&code) {
                StoreError::Transient(text)
            } else {
                StoreError::Fatal(text)
            }
        }
        sqlx::Error::Io(e) => StoreError::Transient(format!("connection lost: {e}")),
        sqlx::Error::PoolTimedOut => {
            StoreError::Transient("no connection available in time".into())
        }
        sqlx::Error::PoolClosed => StoreError::Fatal("the connection pool is closed".into()),
        sqlx::Error::WorkerCrashed => StoreError::Transient("the database worker stopped".into()),
        sqlx::Error::Protocol(p) => StoreError::Transient(format!("protocol error: {p}")),
        sqlx::Error::Tls(e) => StoreError::Transient(format!("TLS error: {e}")),
        other => StoreError::Fatal(other.to_string()),
    }
}

pub(crate) fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.kind() == sqlx::error::ErrorKind::UniqueViolation)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_contention_and_lost_connections_are_transient() {
        assert!(postgres_transient("40001"));
        assert!(postgres_transient("08006"));
        assert!(!postgres_transient("23505"));
        assert!(sqlite_transient("5"));
        assert!(sqlite_transient("517"));
        assert!(!sqlite_transient("19"));
        let io = sqlx::Error::Io(std::io::Error::other("reset"));
        assert!(classify(io).is_transient());
        assert!(classify(sqlx::Error::PoolTimedOut).is_transient());
        assert!(!classify(sqlx::Error::RowNotFound).is_transient());
    }
}
