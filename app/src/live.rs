//! The agent over live adapters: the configured store (SQLite or PostgreSQL), the RPC chain
//! of the configured network, SerpAPI for products, the configured brain, and the
//! messengers of `agent.messengers`.
//!
//! [`LiveAgentSettings::from_settings`] turns checked [`Settings`] into what the agent
//! needs; `serve` builds the ports and calls [`live_agent`].

use crate::agent::{Agent, AgentConfig, AgentPorts, OrderClient};
use crate::brain::{BrainChoice, BrainSettings};
use crate::config::{Role, Settings};
use crate::messengers::Messengers;
use crate::outbox::{Clock, WorkerConfig};
use alloy_primitives::Address;
use secrecy::ExposeSecret;
use std::sync::Arc;
use std::time::Duration;
use worldstore_adapters::chain_rpc::RpcChain;
use worldstore_adapters::serpapi::{SerpApiCatalog, SerpApiConfig};
use worldstore_adapters::store::SqlStore;
use worldstore_domain::checkout::CheckoutPolicy;
use worldstore_domain::network::UsdcDeployment;
use worldstore_domain::ports::store::Key;
use worldstore_domain::wallet::MasterSecret;

/// The live agent's ports.
pub struct LivePorts;

impl AgentPorts for LivePorts {
    type Store = SqlStore;
    type Chain = RpcChain;
    type Catalog = SerpApiCatalog;
    type Brain = BrainChoice;
    type Channel = Messengers;
}

#[derive(Debug, thiserror::Error)]
pub enum LiveAgentError {
    /// A setting `Settings::load` should have refused; named, never a panic.
    #[error("{0} is not set")]
    Missing(&'static str),
    #[error("brain: {0}")]
    Brain(String),
    #[error("SerpAPI: {0}")]
    Catalog(String),
    #[error(transparent)]
    Agent(#[from] crate::agent::AgentError),
}

/// The live agent's ports, built by the caller (the chain and the store may be shared
/// with the merchant and the facilitator in the same process).
pub struct LiveAgentParts {
    pub store: Arc<SqlStore>,
    pub chain: Arc<RpcChain>,
    pub token: UsdcDeployment,
    pub channel: Messengers,
    /// The order server: our own when the merchant runs in this process.
    pub merchant_url: String,
    /// The merchant's treasury: the only address the agent pays.
    pub pay_to: Address,
    pub clock: Clock,
}

/// Builds the live agent from checked settings. Makes no network call.
pub fn live_agent(
    settings: &Settings,
    parts: LiveAgentParts,
) -> Result<Agent<LivePorts>, LiveAgentError> {
    let master = settings
        .master_secret
        .as_ref()
        .ok_or(LiveAgentError::Missing("WORLDSTORE_MASTER_SECRET"))?;
    let serpapi_key = settings
        .serpapi_key
        .clone()
        .ok_or(LiveAgentError::Missing("SERPAPI_API_KEY"))?;
    let brain =
        BrainSettings::from_settings(settings).map_err(|e| LiveAgentError::Brain(e.to_string()))?;
    let brain =
        BrainChoice::from_settings(brain).map_err(|e| LiveAgentError::Brain(e.to_string()))?;
    let catalog = SerpApiCatalog::new(SerpApiConfig::production(serpapi_key))
        .map_err(|e| LiveAgentError::Catalog(e.to_string()))?;
    let worker = Key::parse(&format!("agent-{}", std::process::id()))
        .map_err(|e| crate::agent::AgentError::Id(e.to_string()))?;
    let config = AgentConfig {
        policy: CheckoutPolicy {
            tokens: vec![parts.token],
            pay_to_allowlist: vec![parts.pay_to],
            fee: settings.fee,
            per_order_limit: settings.per_order_limit,
            per_day_limit: settings.per_day_limit,
        },
        master: MasterSecret::new(master.expose_secret().to_owned()),
        scheme: settings.wallet_scheme,
        wallet_id: crate::messengers::wallet_id,
        merchant: OrderClient::new(parts.merchant_url)
            .map_err(|e| crate::agent::AgentError::Port(e.to_string()))?,
        funds_poll: Duration::from_secs(15),
        order_poll: Duration::from_secs(60),
        worker: WorkerConfig::new(worker),
        own_wallet: None,
    };
    Ok(Agent::new(
        parts.store,
        vec![parts.chain],
        catalog,
        brain,
        parts.channel,
        config,
        parts.clock,
    ))
}

/// The order server the agent buys from: our own address when the merchant runs here.
pub fn merchant_url(settings: &Settings, own: std::net::SocketAddr) -> Option<String> {
    if settings.has(Role::Merchant) {
        Some(format!("http://{own}"))
    } else {
        settings.merchant_url.clone()
    }
}
