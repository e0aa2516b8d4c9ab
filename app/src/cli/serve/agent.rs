//! The agent role inside `worldstore serve`: its ports, its messengers and its tasks.
//!
//! - `--sandbox`: the sandbox world (the embedded chain, the sandbox catalogue, the offline
//!   brain, the sandbox order server on its own port), the web chat on the serve port, the
//!   faucet for newcomers.
//! - live: [`worldstore::live`] over the configured store, chain, SerpAPI and brain; the
//!   messengers of `agent.messengers`: the web chat on the serve port and/or XMTP through
//!   the supervised bridge.

use anyhow::Context as _;
use secrecy::{ExposeSecret, SecretString};
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use worldstore::agent::{Agent, AgentPorts, Running};
use worldstore::config::Settings;
use worldstore::live::{self, LiveAgentParts};
use worldstore::messengers::web::{self, WebMessenger};
use worldstore::messengers::xmtp::{self, XmtpChannel};
use worldstore::messengers::{Arrivals, LiveArrivals, Messenger, Messengers, SandboxArrivals};
use worldstore::outbox::Clock;
use worldstore::sandbox::{SandboxConfig, SandboxWorld};
use worldstore_adapters::chain_rpc::RpcChain;
use worldstore_adapters::store::SqlStore;
use worldstore_adapters::webchat::{WebChat, WebChatConfig, WebInbound};
use worldstore_adapters::xmtp::{BridgeConfig, XmtpBridge};
use worldstore_domain::network::UsdcDeployment;

/// The agent's part of a serve: the routes it adds to the serve port and its tasks.
pub struct AgentService {
    pub router: axum::Router,
    /// Said once everything listens (e.g. where the web chat is).
    pub notes: Vec<String>,
    /// Roles whose routes the agent brings along (the sandbox's order server).
    pub also_serves: Vec<&'static str>,
    running: Running,
    stop_inbound: watch::Sender<bool>,
    /// Inbound loops that end when told to stop (XMTP: the bridge is shut down).
    stoppable: Vec<JoinHandle<()>>,
    /// Inbound loops that wait on the web chat forever: aborted.
    abortable: Vec<JoinHandle<()>>,
}

impl AgentService {
    /// Stops the inbound loops, then the agent's workers.
    pub async fn stop(self) {
        let _ = self.stop_inbound.send(true);
        for task in self.abortable {
            task.abort();
        }
        for task in self.stoppable {
            let _ = task.await;
        }
        self.running.stop().await;
    }
}

/// What the messengers need started once the agent exists.
struct Inbound {
    web: Option<(WebMessenger, tokio::sync::mpsc::Receiver<WebInbound>)>,
    xmtp: Option<(XmtpChannel, XmtpBridge)>,
}

fn start<P, A>(
    agent: &Agent<P>,
    inbound: Inbound,
    arrivals: A,
    router: axum::Router,
) -> AgentService
where
    P: AgentPorts<Channel = Messengers>,
    A: Arrivals<P> + Clone,
{
    let running = agent.start();
    let (stop_inbound, stopped) = watch::channel(false);
    let mut stoppable = Vec::new();
    let mut abortable = Vec::new();
    if let Some((web, events)) = inbound.web {
        abortable.push(tokio::spawn(web::run_inbound(
            agent.clone(),
            web,
            arrivals.clone(),
            events,
        )));
    }
    if let Some((channel, bridge)) = inbound.xmtp {
        stoppable.push(tokio::spawn(xmtp::run_inbound(
            agent.clone(),
            channel,
            arrivals,
            bridge,
            stopped,
        )));
    }
    AgentService {
        router,
        notes: Vec::new(),
        also_serves: Vec::new(),
        running,
        stop_inbound,
        stoppable,
        abortable,
    }
}

/// The web chat, its routes and its half of the channel.
fn web_chat() -> (
    WebMessenger,
    tokio::sync::mpsc::Receiver<WebInbound>,
    axum::Router,
) {
    let (chat, events) = WebChat::new(WebChatConfig::default());
    (WebMessenger::new(chat.clone()), events, chat.router())
}

/// The sandbox agent: the sandbox world, the web chat, the faucet.
/// The sandbox's order server is served at `own_url` (the serve port) beside the web chat.
pub async fn sandbox(
    data_dir: std::path::PathBuf,
    own_url: String,
) -> anyhow::Result<(AgentService, Arc<SandboxWorld>)> {
    let (world, merchant) =
        SandboxWorld::start_routed(SandboxConfig::new(data_dir), own_url).await?;
    let world = Arc::new(world);
    let (web, events, router) = web_chat();
    let router = router.merge(merchant);
    let agent = world
        .agent(Messengers {
            web: Some(web.clone()),
            xmtp: None,
        })
        .await?;
    let faucet = world.config.faucet;
    let arrivals = SandboxArrivals {
        world: world.clone(),
        faucet: Arc::new(move |_| faucet),
    };
    let inbound = Inbound {
        web: Some((web, events)),
        xmtp: None,
    };
    let mut service = start(&agent, inbound, arrivals, router);
    service.also_serves.push("merchant");
    service.notes.push(format!(
        "web chat at /; its users get {faucet} sandbox USDC on first contact"
    ));
    Ok((service, world))
}

/// The live agent's ports beyond the messengers.
pub struct LiveParts {
    pub store: SqlStore,
    pub chain: Arc<RpcChain>,
    pub token: UsdcDeployment,
    pub merchant_url: String,
    pub pay_to: alloy_primitives::Address,
    pub clock: Clock,
}

/// The live agent with the configured messengers.
pub async fn live(settings: &Settings, parts: LiveParts) -> anyhow::Result<AgentService> {
    let mut messengers = Messengers::default();
    let mut inbound = Inbound {
        web: None,
        xmtp: None,
    };
    let mut router = axum::Router::new();
    let mut notes = Vec::new();
    for name in &settings.messengers {
        match Messenger::parse(name) {
            Some(Messenger::Web) => {
                let (web, events, routes) = web_chat();
                messengers.web = Some(web.clone());
                inbound.web = Some((web, events));
                router = router.merge(routes);
                notes.push(
                    "web chat at / (it trusts the user name the page sends: keep it on 127.0.0.1)"
                        .to_owned(),
                );
            }
            Some(Messenger::Xmtp) => {
                let bridge = XmtpBridge::spawn(bridge_config(settings)?);
                let channel = XmtpChannel::new(&bridge);
                messengers.xmtp = Some(channel.clone());
                inbound.xmtp = Some((channel, bridge));
                notes.push(format!("XMTP ({}) through the bridge", settings.xmtp_env));
            }
            None => anyhow::bail!("agent.messengers: {name:?} is not web or xmtp"),
        }
    }
    let agent = live::live_agent(
        settings,
        LiveAgentParts {
            store: Arc::new(parts.store),
            chain: parts.chain,
            token: parts.token,
            channel: messengers,
            merchant_url: parts.merchant_url.clone(),
            pay_to: parts.pay_to,
            clock: parts.clock,
        },
    )?;
    notes.push(format!("the agent buys from {}", parts.merchant_url));
    let mut service = start(&agent, inbound, LiveArrivals, router);
    service.notes = notes;
    Ok(service)
}

/// The real bridge (`node bridge.mjs`) with the XMTP settings; refuses to start when its
/// npm packages are not installed.
fn bridge_config(settings: &Settings) -> anyhow::Result<BridgeConfig> {
    let dir = settings
        .xmtp_bridge_dir
        .clone()
        .unwrap_or_else(BridgeConfig::bundled_bridge_dir);
    if !dir.join("node_modules/@xmtp/agent-sdk").is_dir() {
        anyhow::bail!(
            "the XMTP bridge's packages are not installed in {}: run scripts/install-xmtp-bridge",
            dir.display()
        );
    }
    let db_directory = settings.xmtp_db_directory();
    std::fs::create_dir_all(&db_directory)
        .with_context(|| format!("cannot create {}", db_directory.display()))?;
    let secret = |value: Option<&SecretString>, name: &str| {
        value
            .map(|v| SecretString::from(v.expose_secret().to_owned()))
            .with_context(|| format!("{name} is not set"))
    };
    let env = vec![
        (
            "XMTP_WALLET_KEY".to_owned(),
            secret(settings.xmtp_wallet_key.as_ref(), "XMTP_WALLET_KEY")?,
        ),
        (
            "XMTP_DB_ENCRYPTION_KEY".to_owned(),
            secret(
                settings.xmtp_db_encryption_key.as_ref(),
                "XMTP_DB_ENCRYPTION_KEY",
            )?,
        ),
        (
            "XMTP_ENV".to_owned(),
            SecretString::from(settings.xmtp_env.clone()),
        ),
        (
            "XMTP_DB_DIRECTORY".to_owned(),
            SecretString::from(db_directory.display().to_string()),
        ),
    ];
    Ok(BridgeConfig::node(dir, env))
}
