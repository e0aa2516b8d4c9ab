//! `worldstore serve`: runs a role over HTTP on 127.0.0.1.
//!
//! Today the `facilitator` role: `/verify`, `/settle`, `/supported`, on the sandbox chain
//! (`--sandbox`, no keys, no network) or on an RPC chain (`--rpc-url`, `--token`, the gas
//! payer key in `FACILITATOR_PRIVATE_KEY`). The database is a SQLite file in `--data-dir`
//! unless `--database-url` names another (PostgreSQL for several instances).

use anyhow::{Context as _, bail};
use clap::{Args, ValueEnum};
use secrecy::{ExposeSecret, SecretString};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use worldstore::facilitator::{Clock, Facilitator, router};
use worldstore_adapters::chain_embedded::{EmbeddedChain, EmbeddedChainConfig};
use worldstore_adapters::chain_rpc::{RpcChain, RpcChainConfig};
use worldstore_adapters::store::{DataKey, SqlStore};
use worldstore_domain::eip3009::LocalSigner;
use worldstore_domain::network::{Network, UsdcDeployment};
use worldstore_domain::ports::chain::Chain;
use worldstore_domain::x402::VerifyPolicy;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Role {
    Facilitator,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Which service to run.
    #[arg(long, value_enum, default_value = "facilitator")]
    role: Role,
    /// Port on 127.0.0.1 (the original `PORT` variable works too).
    #[arg(long, env = "PORT", default_value_t = 8402)]
    port: u16,
    /// The sandbox: the embedded chain with the sandbox USDC; no keys, no network.
    #[arg(long, conflicts_with_all = ["rpc_url", "token"])]
    sandbox: bool,
    /// JSON-RPC URL of the chain (live mode; the original `RPC_PROVIDER_URL` works too).
    #[arg(long, env = "RPC_PROVIDER_URL")]
    rpc_url: Option<String>,
    /// The network the chain is (v1 name or CAIP-2 id).
    #[arg(long, default_value = "base-sepolia")]
    network: Network,
    /// The USDC contract, when it is not Circle's address for the network (a test chain).
    #[arg(long)]
    token: Option<alloy_primitives::Address>,
    /// Where the SQLite database lives when no database URL is given.
    #[arg(long, default_value = ".worldstore")]
    data_dir: PathBuf,
    /// `sqlite://PATH?mode=rwc` or `postgres://...`.
    #[arg(long, env = "DATABASE_URL")]
    database_url: Option<String>,
    /// 32 bytes of hex that encrypt personal data at rest (required outside the sandbox).
    #[arg(
        long = "data-key-from-env-only",
        env = "WORLDSTORE_DATA_KEY",
        hide = true,
        hide_env_values = true
    )]
    data_key: Option<SecretString>,
    /// The gas payer's key (live mode).
    #[arg(
        long = "facilitator-key-from-env-only",
        env = "FACILITATOR_PRIVATE_KEY",
        hide = true,
        hide_env_values = true
    )]
    facilitator_key: Option<SecretString>,
}

/// The sandbox's fixed data key: sandbox data is made up, and a fixed key lets a restarted
/// sandbox read what it wrote.
const SANDBOX_DATA_KEY: [u8; 32] = *b"worldstore-sandbox-data-key-v1!!";

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Log lines go to stderr at `RUST_LOG`'s level (one of error, warn, info, debug, trace;
/// default info): refused payments at info, settlements at info, chain or store outages at
/// error, each with its own message, so an outage never reads like a refused payment.
fn init_logging() {
    let level = std::env::var("RUST_LOG")
        .ok()
        .and_then(|text| text.trim().parse::<tracing::Level>().ok())
        .unwrap_or(tracing::Level::INFO);
    // Fails only when a subscriber is already installed (a test harness): keep that one.
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}

pub fn run(args: ServeArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    init_logging();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(args, out))
}

async fn serve(args: ServeArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let Role::Facilitator = args.role;
    let clock: Clock = Arc::new(now_unix);
    let key = match (&args.data_key, args.sandbox) {
        (Some(key), _) => DataKey::from_hex(key.expose_secret()).context("WORLDSTORE_DATA_KEY")?,
        (None, true) => DataKey::from_bytes(SANDBOX_DATA_KEY),
        (None, false) => bail!(
            "WORLDSTORE_DATA_KEY is not set: personal data is encrypted at rest with it (32 bytes of hex)"
        ),
    };
    let url = match &args.database_url {
        Some(url) => url.clone(),
        None => {
            std::fs::create_dir_all(&args.data_dir)
                .with_context(|| format!("cannot create {}", args.data_dir.display()))?;
            format!(
                "sqlite://{}?mode=rwc",
                args.data_dir.join("worldstore.db").display()
            )
        }
    };
    let store = SqlStore::open(&url, &key)
        .await
        .context("cannot open the database")?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port))
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{}", args.port))?;
    let address = listener.local_addr()?;

    if args.sandbox {
        let chain = EmbeddedChain::new(EmbeddedChainConfig::new(
            alloy_primitives::Address::repeat_byte(0x5f),
            clock.clone(),
        ))?;
        let policy = VerifyPolicy::new(vec![chain.token().await?.deployment]);
        writeln!(
            out,
            "facilitator (sandbox chain) listening on http://{address}"
        )?;
        out.flush()?;
        let app = router(Arc::new(Facilitator::new(chain, store, policy, clock)));
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown())
            .await?;
        return Ok(());
    }
    let rpc_url = args
        .rpc_url
        .context("give --sandbox, or --rpc-url (or RPC_PROVIDER_URL) for a live chain")?;
    let signer_key = args
        .facilitator_key
        .context("FACILITATOR_PRIVATE_KEY is not set: the facilitator pays gas with it")?;
    let signer =
        LocalSigner::from_hex(signer_key.expose_secret()).context("FACILITATOR_PRIVATE_KEY")?;
    let token = match args.token {
        Some(address) => UsdcDeployment {
            address,
            ..args.network.usdc()
        },
        None => args.network.usdc(),
    };
    let chain = RpcChain::connect(RpcChainConfig::new(rpc_url, token.clone(), signer))
        .await
        .context("cannot use the chain: check the RPC URL, the network and the token")?;
    let policy = VerifyPolicy::new(vec![token]);
    writeln!(
        out,
        "facilitator ({}) listening on http://{address}",
        chain.network()
    )?;
    out.flush()?;
    let app = router(Arc::new(Facilitator::new(chain, store, policy, clock)));
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown())
        .await?;
    Ok(())
}

async fn shutdown() {
    let _ = tokio::signal::ctrl_c().await;
    tracing::info!("shutting down");
}
