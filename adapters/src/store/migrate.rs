//! Embedded migrations, run with sqlx's migrator (which records applied versions and their
//! checksums, and on PostgreSQL takes an advisory lock so instances starting together do
//! not race). Running them again applies nothing: `worldstore migrate` is idempotent.

use super::error::classify;
use sqlx::migrate::{Migrate, Migration, MigrationType, Migrator};
use sqlx::{AssertSqlSafe, SqlSafeStr};
use std::borrow::Cow;
use worldstore_domain::ports::store::{StoreError, StoreResult};

pub(crate) async fn run<'a, A>(
    pool: A,
    migrations: &'static [(i64, &'static str, &'static str)],
) -> StoreResult<usize>
where
    A: sqlx::Acquire<'a> + Copy,
    <A::Connection as std::ops::Deref>::Target: Migrate,
{
    let migrator = Migrator::with_migrations(
        migrations
            .iter()
            .map(|(version, description, sql)| {
                Migration::new(
                    *version,
                    Cow::Borrowed(*description),
                    MigrationType::Simple,
                    AssertSqlSafe(*sql).into_sql_str(),
                    false,
                )
            })
            .collect(),
    );
    let mut conn = pool.acquire().await.map_err(classify)?;
    conn.ensure_migrations_table("_sqlx_migrations")
        .await
        .map_err(|e| StoreError::Fatal(format!("migration bookkeeping failed: {e}")))?;
    let before = conn
        .list_applied_migrations("_sqlx_migrations")
        .await
        .map_err(|e| StoreError::Fatal(format!("migration bookkeeping failed: {e}")))?
        .len();
    drop(conn);
    migrator
        .run(pool)
        .await
        .map_err(|e| StoreError::Fatal(format!("migration failed: {e}")))?;
    Ok(migrations.len().saturating_sub(before))
}
