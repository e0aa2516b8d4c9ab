//! `worldstore migrate --database-url URL`: creates or updates the schema of a SQLite file
//! (`sqlite://PATH?mode=rwc`) or a PostgreSQL database (`postgres://...`). Idempotent:
//! running it again applies nothing. The app also migrates at start-up.

use anyhow::Context;
use clap::Args;
use std::io::Write;
use worldstore_adapters::store::{Backend, DataKey, PostgresStore, Sealer, SqliteStore};

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Database URL: sqlite://PATH?mode=rwc or postgres://USER@HOST:PORT/DB
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
}

pub fn run(args: MigrateArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let url = args.database_url;
    let backend = Backend::of_url(&url)?;
    // Migrations never touch sealed data, so no data key is needed: a throwaway one keeps
    // the connection types simple.
    let sealer = Sealer::new(&DataKey::from_bytes([0; 32]));
    let applied = runtime.block_on(async {
        match backend {
            Backend::Sqlite => {
                let store = SqliteStore::connect(&url, sealer).await?;
                let applied = store.migrate().await;
                store.pool().close().await;
                applied
            }
            Backend::Postgres => {
                let store = PostgresStore::connect(&url, sealer).await?;
                let applied = store.migrate().await;
                store.pool().close().await;
                applied
            }
        }
    })?;
    let name = match backend {
        Backend::Sqlite => "SQLite",
        Backend::Postgres => "PostgreSQL",
    };
    if applied == 0 {
        writeln!(out, "{name} database is up to date")?;
    } else {
        writeln!(
            out,
            "{name} database migrated: {applied} migration(s) applied"
        )?;
    }
    Ok(())
}
