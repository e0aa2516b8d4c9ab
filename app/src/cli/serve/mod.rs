//! `worldstore serve`: runs the agent, the facilitator and the merchant (order server) on
//! 127.0.0.1.
//!
//! - `--sandbox`: the embedded chain with the sandbox USDC, the sandbox catalogue and
//!   fulfilment, a fixed data key: no keys, no network. With the agent role, the sandbox
//!   world of the demo (see [`agent`]).
//! - live: a config file (`--config`) plus environment variables (the original names work:
//!   `PORT`, `RPC_PROVIDER_URL`, `WALLET_PRIVATE_KEY`, `CROSSMINT_*`, `ORDER_*`,
//!   `SERPAPI_API_KEY`, `ANTHROPIC_API_KEY`, `XMTP_*`); every problem is reported at start
//!   (see [`worldstore::config`]).
//!
//! The roles share one port: the facilitator's and the merchant's routes, and the agent's
//! web chat. The agent reaches the merchant over HTTP even in the same process. Every
//! role's outbox worker claims only its own effect kinds
//! ([`worldstore::outbox::EffectExecutor::KINDS`]), so roles may share one database; the
//! agent still keeps its own by default.

mod agent;

use agent::AgentService;
use anyhow::{Context as _, anyhow};
use clap::Args;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretBox};
use sha2::Sha256;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use worldstore::config::{CommerceChoice, Role, Settings};
use worldstore::facilitator::{self, Clock, Facilitator};
use worldstore::merchant::{self, Merchant, MerchantConfig};
use worldstore::outbox::now_unix;
use worldstore_adapters::chain_embedded::{EmbeddedChain, EmbeddedChainConfig};
use worldstore_adapters::chain_rpc::{RpcChain, RpcChainConfig};
use worldstore_adapters::crossmint::{CrossmintCommerce, CrossmintConfig, WalletKind};
use worldstore_adapters::sandbox_commerce::{FulfilmentConfig, SandboxCatalog, SandboxFulfilment};
use worldstore_adapters::store::{DataKey, SqlStore};
use worldstore_domain::eip3009::LocalSigner;
use worldstore_domain::money::FeeRate;
use worldstore_domain::network::UsdcDeployment;
use worldstore_domain::ports::chain::Chain;
use worldstore_domain::ports::commerce::Commerce;
use worldstore_domain::ports::store::{Key, Store};
use worldstore_domain::wallet::{MasterSecret, derive_wallet};
use worldstore_domain::x402::VerifyPolicy;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// A TOML configuration file (see README, "Configuration").
    #[arg(long)]
    config: Option<PathBuf>,
    /// Which services: agent, merchant, facilitator or all (comma-separated).
    #[arg(long)]
    role: Option<String>,
    /// Port on 127.0.0.1 (also `PORT`); 0 picks a free one.
    #[arg(long)]
    port: Option<u16>,
    /// The sandbox: embedded chain, sandbox catalogue and fulfilment; no keys, no network.
    #[arg(long, conflicts_with_all = ["rpc_url", "token"])]
    sandbox: bool,
    /// JSON-RPC URL of the chain (also `RPC_PROVIDER_URL`).
    #[arg(long)]
    rpc_url: Option<String>,
    /// The USDC contract, when it is not Circle's address for the network (a test chain).
    #[arg(long)]
    token: Option<String>,
    /// Fulfilment: crossmint (live) or sandbox.
    #[arg(long)]
    commerce: Option<String>,
    /// Where the SQLite database lives when no database URL is given.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// `sqlite://PATH?mode=rwc` or `postgres://...` (also `DATABASE_URL`).
    #[arg(long)]
    database_url: Option<String>,
}

/// The sandbox's fixed data key: sandbox data is made up, and a fixed key lets a restarted
/// sandbox read what it wrote.
pub const SANDBOX_DATA_KEY: [u8; 32] = *b"worldstore-sandbox-data-key-v1!!";
/// The sandbox treasury: receives payments, pays gas and refunds on the embedded chain.
pub const SANDBOX_TREASURY: alloy_primitives::Address =
    alloy_primitives::Address::repeat_byte(0x5f);

pub fn run(args: ServeArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(args, out))
}

/// Settings from the file, the environment and the flags (flags win).
fn settings(args: &ServeArgs) -> anyhow::Result<Settings> {
    let flags: Vec<(&str, Option<String>)> = vec![
        ("WORLDSTORE_ROLES", args.role.clone()),
        ("PORT", args.port.map(|p| p.to_string())),
        ("RPC_PROVIDER_URL", args.rpc_url.clone()),
        ("WORLDSTORE_TOKEN", args.token.clone()),
        ("WORLDSTORE_COMMERCE", args.commerce.clone()),
        ("DATABASE_URL", args.database_url.clone()),
    ];
    let env = move |name: &str| {
        flags
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, v)| v.clone())
            .or_else(|| std::env::var(name).ok())
    };
    let mut settings =
        Settings::load(args.config.as_deref(), &env).map_err(|problems| anyhow!("{problems}"))?;
    if let Some(dir) = &args.data_dir {
        settings.data_dir = dir.clone();
    }
    Ok(settings)
}

fn database_url(settings_url: Option<&str>, data_dir: &std::path::Path) -> anyhow::Result<String> {
    match settings_url {
        Some(url) => Ok(url.to_owned()),
        None => {
            std::fs::create_dir_all(data_dir)
                .with_context(|| format!("cannot create {}", data_dir.display()))?;
            Ok(format!(
                "sqlite://{}?mode=rwc",
                data_dir.join("worldstore.db").display()
            ))
        }
    }
}

/// A 32-byte secret for `label`, derived from the data key's text.
fn derived_secret(data_key: &str, label: &str) -> SecretBox<[u8; 32]> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(data_key.as_bytes()).expect("HMAC takes any key length");
    mac.update(label.as_bytes());
    SecretBox::new(Box::new(mac.finalize().into_bytes().into()))
}

async fn serve(args: ServeArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let clock: Clock = Arc::new(now_unix);
    let listener_port;
    if args.sandbox {
        let roles = args.role.clone().unwrap_or_else(|| "all".into());
        let roles: Vec<&str> = roles.split(',').map(str::trim).collect();
        let data_dir = args
            .data_dir
            .clone()
            .unwrap_or_else(|| ".worldstore".into());
        let url = database_url(args.database_url.as_deref(), &data_dir)?;
        let wants = |r: &str| roles.iter().any(|x| *x == r || *x == "all");
        listener_port = args.port.unwrap_or(8402);
        let listener = bind(listener_port).await?;
        let store = SqlStore::open(&url, &DataKey::from_bytes(SANDBOX_DATA_KEY))
            .await
            .context("cannot open the database")?;
        if wants("agent") {
            // The sandbox world's chain and order server serve the agent (the order
            // server on this port), and the facilitator settles on that same chain.
            let own_url = format!("http://{}", listener.local_addr()?);
            let (agent, world) = agent::sandbox(data_dir, own_url).await?;
            return run_services(
                Services {
                    chain: world.chain.clone(),
                    commerce: sandbox_fulfilment()?,
                    store,
                    merchant: None,
                    facilitator: wants("facilitator"),
                    agent: Some(agent),
                    clock,
                    label: "sandbox chain",
                },
                listener,
                out,
            )
            .await;
        }
        let chain = Arc::new(EmbeddedChain::new(EmbeddedChainConfig::new(
            SANDBOX_TREASURY,
            clock.clone(),
        ))?);
        let public_url = format!("http://{}", listener.local_addr()?);
        let commerce = sandbox_fulfilment()?;
        let merchant_config = MerchantConfig {
            pay_to: SANDBOX_TREASURY,
            fee: FeeRate::from_basis_points(100).expect("1% is a fee"),
            offer_ttl_seconds: 600,
            max_timeout_seconds: 600,
            public_url: public_url.clone(),
            environment: "sandbox".into(),
            secret: Arc::new(SecretBox::new(Box::new(SANDBOX_DATA_KEY))),
            delivery_poll_seconds: 5,
        };
        return run_services(
            Services {
                chain,
                commerce,
                store,
                merchant: wants("merchant").then_some(merchant_config),
                facilitator: wants("facilitator"),
                agent: None,
                clock,
                label: "sandbox chain",
            },
            listener,
            out,
        )
        .await;
    }

    let settings = settings(&args)?;
    let data_key_text = settings
        .data_key
        .as_ref()
        .context("WORLDSTORE_DATA_KEY")?
        .expose_secret()
        .to_owned();
    let key = DataKey::from_hex(&data_key_text).context("WORLDSTORE_DATA_KEY")?;
    let agent_store = match settings.has(Role::Agent) {
        false => None,
        true => {
            let default_dir = settings.data_dir.join("agent");
            let url = database_url(settings.agent_database(), &default_dir)?;
            Some(
                SqlStore::open(&url, &key)
                    .await
                    .context("cannot open the agent's database")?,
            )
        }
    };
    let store = match &agent_store {
        // The agent alone: its database is the only one.
        Some(store) if !settings.has(Role::Merchant) && !settings.has(Role::Facilitator) => {
            store.clone()
        }
        _ => {
            let url = database_url(settings.database_url.as_deref(), &settings.data_dir)?;
            SqlStore::open(&url, &key)
                .await
                .context("cannot open the database")?
        }
    };
    let signer = chain_signer(&settings)?;
    let treasury = signer.address();
    let token = match settings.token {
        Some(address) => UsdcDeployment {
            address,
            ..settings.network.usdc()
        },
        None => settings.network.usdc(),
    };
    let rpc_url = settings.rpc_url.clone().context("RPC_PROVIDER_URL")?;
    let chain = Arc::new(
        RpcChain::connect(RpcChainConfig::new(rpc_url, token.clone(), signer))
            .await
            .context("cannot use the chain: check the RPC URL, the network and the token")?,
    );
    let listener = bind(settings.port).await?;
    let public_url = settings.public_url.clone().unwrap_or_else(|| {
        format!(
            "http://{}",
            listener
                .local_addr()
                .map(|a| a.to_string())
                .unwrap_or_default()
        )
    });
    let merchant_config = MerchantConfig {
        pay_to: settings.pay_to.unwrap_or(treasury),
        fee: settings.fee,
        offer_ttl_seconds: settings.payment_timeout_minutes * 60,
        max_timeout_seconds: settings.max_timeout_seconds,
        public_url,
        environment: settings.environment.clone(),
        secret: Arc::new(derived_secret(
            &data_key_text,
            "worldstore merchant order tokens v1",
        )),
        delivery_poll_seconds: 60,
    };
    let pay_to = merchant_config.pay_to;
    let merchant = settings.has(Role::Merchant).then_some(merchant_config);
    let facilitator = settings.has(Role::Facilitator);
    let agent = match agent_store {
        None => None,
        Some(agent_store) => {
            let merchant_url = worldstore::live::merchant_url(&settings, listener.local_addr()?)
                .context("WORLDSTORE_API_URL / agent.merchant_url")?;
            Some(
                agent::live(
                    &settings,
                    agent::LiveParts {
                        store: agent_store,
                        chain: chain.clone(),
                        token,
                        merchant_url,
                        pay_to,
                        clock: clock.clone(),
                    },
                )
                .await?,
            )
        }
    };
    match (settings.commerce, &settings.crossmint) {
        (CommerceChoice::Crossmint, Some(crossmint)) => {
            let base_url = crossmint.base_url.parse().context("Crossmint base URL")?;
            let config = CrossmintConfig::new(
                base_url,
                crossmint.api_key.clone(),
                crossmint.wallet_locator.clone(),
                if crossmint.smart_wallet {
                    WalletKind::Smart
                } else {
                    WalletKind::Mpc
                },
            );
            let commerce = CrossmintCommerce::new(config).context("Crossmint")?;
            let label = "live chain, Crossmint";
            run_services(
                Services {
                    chain,
                    commerce,
                    store,
                    merchant,
                    facilitator,
                    agent,
                    clock,
                    label,
                },
                listener,
                out,
            )
            .await
        }
        _ => {
            let commerce = sandbox_fulfilment()?;
            let label = "live chain, sandbox fulfilment";
            run_services(
                Services {
                    chain,
                    commerce,
                    store,
                    merchant,
                    facilitator,
                    agent,
                    clock,
                    label,
                },
                listener,
                out,
            )
            .await
        }
    }
}

/// Signs the chain's transactions: the treasury. The agent alone never sends one (it only
/// reads balances), so without a treasury key it gets a key derived from its master secret
/// under a label of its own, never funded.
fn chain_signer(settings: &Settings) -> anyhow::Result<LocalSigner> {
    if let Some(key) = &settings.treasury_key {
        return LocalSigner::from_hex(key.expose_secret())
            .context("FACILITATOR_PRIVATE_KEY / WALLET_PRIVATE_KEY");
    }
    if settings.has(Role::Merchant) || settings.has(Role::Facilitator) {
        anyhow::bail!("FACILITATOR_PRIVATE_KEY is not set");
    }
    let master = settings
        .master_secret
        .as_ref()
        .context("WORLDSTORE_MASTER_SECRET is not set")?;
    let master = MasterSecret::new(master.expose_secret().to_owned());
    derive_wallet(
        &master,
        "worldstore/agent/read-only-chain-client",
        settings.wallet_scheme,
    )
    .map_err(|e| anyhow!("WORLDSTORE_MASTER_SECRET: {e}"))
}

/// The sandbox fulfilment, with order ids unique to this run.
fn sandbox_fulfilment() -> anyhow::Result<SandboxFulfilment> {
    Ok(SandboxFulfilment::new(
        SandboxCatalog::builtin()?,
        FulfilmentConfig {
            id_prefix: format!("sbx-{}", now_unix()),
            ..FulfilmentConfig::default()
        },
    ))
}

async fn bind(port: u16) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{port}"))
}

struct Services<C, M, S> {
    chain: C,
    commerce: M,
    store: S,
    merchant: Option<MerchantConfig>,
    facilitator: bool,
    agent: Option<AgentService>,
    clock: Clock,
    label: &'static str,
}

async fn run_services<C, M, S>(
    services: Services<C, M, S>,
    listener: tokio::net::TcpListener,
    out: &mut dyn Write,
) -> anyhow::Result<()>
where
    C: Chain + Clone + 'static,
    M: Commerce + 'static,
    S: Store + Clone + 'static,
{
    let Services {
        chain,
        commerce,
        store,
        merchant,
        facilitator,
        agent,
        clock,
        label,
    } = services;
    let address = listener.local_addr()?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut app = axum::Router::new();
    let mut names = Vec::new();
    let mut worker = None;
    if facilitator {
        let token = chain.token().await?.deployment;
        let policy = VerifyPolicy::new(vec![token]);
        let f = Facilitator::new(chain.clone(), store.clone(), policy, clock.clone());
        app = app.merge(facilitator::router(Arc::new(f)));
        names.push("facilitator");
    }
    app = app.merge(worldstore::metrics::router(store.clone()));
    if let Some(config) = merchant {
        let m = Arc::new(Merchant::new(chain, commerce, store, config, clock).await?);
        app = app.merge(merchant::router(m.clone()));
        let id = Key::parse(&format!("merchant-{}", std::process::id())).expect("valid key");
        worker = Some(tokio::spawn(async move { m.work(id, stop_rx).await }));
        names.push("merchant");
    }
    let mut notes = Vec::new();
    let mut agent = agent;
    if let Some(agent) = &mut agent {
        app = app.merge(std::mem::take(&mut agent.router));
        notes = std::mem::take(&mut agent.notes);
        names.insert(0, "agent");
        names.extend(agent.also_serves.iter().copied());
    }
    if names.is_empty() {
        anyhow::bail!("no role to serve: choose agent, merchant and/or facilitator");
    }
    writeln!(
        out,
        "{} ({label}) listening on http://{address}",
        names.join(" + ")
    )?;
    for note in notes {
        writeln!(out, "  {note}")?;
    }
    out.flush()?;
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown())
        .await;
    let _ = stop_tx.send(true);
    if let Some(agent) = agent {
        agent.stop().await;
    }
    if let Some(worker) = worker {
        let _ = worker.await;
    }
    served?;
    Ok(())
}

async fn shutdown() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down");
}
