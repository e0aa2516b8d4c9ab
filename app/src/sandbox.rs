//! The agent's sandbox: everything real but local, no keys, no network.
//!
//! - SQLite in a data directory, the embedded revm chain (chain id 84532, the sandbox
//!   USDC at Base Sepolia's address), the sandbox catalogue, the offline brain;
//! - per-user agent wallets derived from a fixed sandbox master secret, and a simulated
//!   "own" wallet per user (derived under another label) standing in for the wallet app a
//!   user would fund from;
//! - a faucet that credits a new user's agent wallet once, on first contact (0 = none, so
//!   the funding flow shows);
//! - approving a funding request moves USDC on chain from the user's own wallet (minted
//!   there first when short) to their agent wallet with an EIP-3009 transfer; the agent
//!   is told with a transaction reference and its funds watcher resumes the purchase;
//! - the merchant's order server ([`crate::merchant`]) over real HTTP on 127.0.0.1, with
//!   the sandbox fulfilment and its own SQLite file. Sharing one file would be safe (each
//!   role's worker claims only its own effect kinds), but the terminal chat knows the agent
//!   is idle when the outbox is empty, and the merchant's delivery watches would keep a
//!   shared outbox busy for as long as a delivery takes.
//!
//! The chain lives in memory: a restarted sandbox keeps its database but not its balances.

use crate::agent::{Agent, AgentConfig, AgentPorts, Channel, OrderClient, OwnWallet, Received};
use crate::brain::{BrainChoice, BrainSettings};
use crate::merchant::{Merchant, MerchantConfig};
use crate::outbox::{Clock, WorkerConfig, now_unix};
use alloy_primitives::{Address, U256, keccak256};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use worldstore_adapters::chain_embedded::{EmbeddedChain, EmbeddedChainConfig};
use worldstore_adapters::sandbox_commerce::{
    FulfilmentConfig, InjectedFailure, SandboxCatalog, SandboxFulfilment,
};
use worldstore_adapters::store::{DataKey, SqlStore};
use worldstore_domain::checkout::CheckoutPolicy;
use worldstore_domain::conversation::{Card, FundingRequest, InboundContent, Outgoing};
use worldstore_domain::eip3009::{Authorization, LocalSigner, Nonce};
use worldstore_domain::money::{FeeRate, UsdcAmount};
use worldstore_domain::ports::catalog::Asin;
use worldstore_domain::ports::chain::Chain;
use worldstore_domain::ports::store::{Commit, Conflict, Key, Store, StoreError};
use worldstore_domain::wallet::{DerivationScheme, MasterSecret, derive_wallet};
use worldstore_domain::x402::{SignedPayment, VerifiedPayment};

/// The sandbox's fixed master secret: sandbox money is made up.
pub const SANDBOX_MASTER_SECRET: &str =
    "0x5a4d5a4d5a4d5a4d5a4d5a4d5a4d5a4d5a4d5a4d5a4d5a4d5a4d5a4d5a4d5a4d";
/// The sandbox's fixed data key (personal data at rest), like `serve --sandbox`.
const SANDBOX_DATA_KEY: [u8; 32] = *b"worldstore-sandbox-data-key-v1!!";
/// The treasury's (and gas payer's) key in the sandbox.
const SANDBOX_TREASURY_KEY: &str =
    "0x7e5a7e5a7e5a7e5a7e5a7e5a7e5a7e5a7e5a7e5a7e5a7e5a7e5a7e5a7e5a7e5a";
/// Keys the sandbox merchant's order tokens.
const SANDBOX_MERCHANT_SECRET: [u8; 32] = *b"worldstore-sandbox-merchant-v1!!";
/// The label under which each user's simulated own wallet is derived.
const OWN_WALLET_LABEL: &str = "sandbox-own-wallet/";

#[derive(Clone)]
pub struct SandboxConfig {
    pub data_dir: PathBuf,
    /// Credited to a new user's agent wallet on first contact.
    pub faucet: UsdcAmount,
    pub fee: FeeRate,
    pub per_order_limit: UsdcAmount,
    pub per_day_limit: UsdcAmount,
    pub ships_after: u64,
    pub delivered_after: u64,
    pub funds_poll: Duration,
    pub order_poll: Duration,
    /// The clock (unix seconds); the system clock when `None`. Tests move it forward.
    pub clock: Option<Clock>,
    /// How long a worker holds a claimed effect; a crashed worker's effects are taken over
    /// once it passes.
    pub lease_seconds: u64,
    /// How often the merchant asks fulfilment about delivery.
    pub merchant_poll_seconds: u64,
    /// The brain: offline unless configured otherwise.
    pub brain: BrainSettings,
    /// Failures the sandbox fulfilment injects, per product (tests of refunds and the like).
    pub failures: BTreeMap<Asin, InjectedFailure>,
    /// Products added to the built-in catalogue (SerpAPI-shaped, read by the SerpAPI reader).
    pub extra_products: Option<SandboxCatalog>,
    /// Whether the merchant's worker runs in the background. Replay and property tests turn
    /// it off and call [`SandboxWorld::merchant_round`] themselves, so events come in one order.
    pub merchant_in_background: bool,
}

impl std::fmt::Debug for SandboxConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxConfig")
            .field("data_dir", &self.data_dir)
            .field("faucet", &self.faucet)
            .finish_non_exhaustive()
    }
}

impl SandboxConfig {
    /// The built-in catalogue plus the extra products.
    pub fn catalog(
        &self,
    ) -> Result<SandboxCatalog, worldstore_domain::ports::catalog::CatalogError> {
        let builtin = SandboxCatalog::builtin()?;
        Ok(match &self.extra_products {
            Some(more) => builtin.extended(more),
            None => builtin,
        })
    }

    pub fn new(data_dir: PathBuf) -> Self {
        Self {
            data_dir,
            faucet: UsdcAmount::from_usdc(100),
            fee: FeeRate::from_basis_points(500).unwrap_or(FeeRate::ZERO),
            per_order_limit: UsdcAmount::from_usdc(500),
            per_day_limit: UsdcAmount::from_usdc(1000),
            ships_after: 10,
            delivered_after: 20,
            funds_poll: Duration::from_millis(200),
            order_poll: Duration::from_secs(1),
            clock: None,
            lease_seconds: 60,
            merchant_poll_seconds: 1,
            brain: BrainSettings::Offline,
            failures: BTreeMap::new(),
            extra_products: None,
            merchant_in_background: true,
        }
    }
}

/// The sandbox's ports, with the channel of the caller's choice.
pub struct SandboxPorts<M>(std::marker::PhantomData<M>);

impl<M: Channel> AgentPorts for SandboxPorts<M> {
    type Store = SqlStore;
    type Chain = EmbeddedChain;
    type Catalog = SandboxCatalog;
    type Brain = BrainChoice;
    type Channel = M;
}

/// The sandbox's world: the chain and the order server, shared by every agent built on it.
pub struct SandboxWorld {
    pub config: SandboxConfig,
    merchant: Arc<SandboxMerchant>,
    pub chain: Arc<EmbeddedChain>,
    pub merchant_url: String,
    /// The agents' HTTP client (pointed at `merchant_url` when an agent is built).
    orders: OrderClient,
    pub treasury: Address,
    pub clock: Clock,
    /// When this world's (in-memory) chain started; names the faucet's once-per-chain marks.
    chain_epoch: u128,
    master: MasterSecret,
    merchant_store: SqlStore,
    merchant_server: JoinHandle<()>,
    merchant_worker: Option<JoinHandle<()>>,
    _stop_merchant: tokio::sync::watch::Sender<bool>,
}

impl Drop for SandboxWorld {
    fn drop(&mut self) {
        self.merchant_server.abort();
        if let Some(worker) = &self.merchant_worker {
            worker.abort();
        }
    }
}

fn sqlite_url(dir: &std::path::Path, file: &str) -> String {
    format!("sqlite://{}?mode=rwc", dir.join(file).display())
}

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("sandbox set-up: {0}")]
    Setup(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Agent(#[from] crate::agent::AgentError),
}

fn setup(e: impl std::fmt::Display) -> SandboxError {
    SandboxError::Setup(e.to_string())
}

impl SandboxWorld {
    /// Starts the chain and the order server (on 127.0.0.1, a free port).
    pub async fn start(config: SandboxConfig) -> Result<Self, SandboxError> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(setup)?;
        let merchant_url = format!("http://{}", listener.local_addr().map_err(setup)?);
        let (mut world, router) = Self::start_routed(config, merchant_url).await?;
        world.merchant_server = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, router).await {
                tracing::error!(%error, "sandbox order server stopped");
            }
        });
        Ok(world)
    }

    /// Starts the chain and the order server's worker, and hands back the order server's
    /// routes for the caller to serve at `merchant_url` (e.g. beside other services on one
    /// port).
    pub async fn start_routed(
        config: SandboxConfig,
        merchant_url: String,
    ) -> Result<(Self, axum::Router), SandboxError> {
        let clock: Clock = config.clock.clone().unwrap_or_else(|| Arc::new(now_unix));
        let treasury = LocalSigner::from_hex(SANDBOX_TREASURY_KEY)
            .map_err(|e| setup(format!("{e:?}")))?
            .address();
        let chain = Arc::new(
            EmbeddedChain::new(EmbeddedChainConfig::new(treasury, clock.clone())).map_err(setup)?,
        );
        std::fs::create_dir_all(&config.data_dir).map_err(setup)?;
        // The merchant keeps its own database, so the agent's outbox empties when the agent
        // is done (see the module docs); the roles could share one safely.
        let merchant_store = SqlStore::open(
            &sqlite_url(&config.data_dir, "worldstore-merchant.sqlite"),
            &DataKey::from_bytes(SANDBOX_DATA_KEY),
        )
        .await?;
        let fulfilment = SandboxFulfilment::new(
            config.catalog().map_err(setup)?,
            FulfilmentConfig {
                ship_after_secs: config.ships_after,
                deliver_after_secs: config.delivered_after,
                // Order ids never repeat across runs over the same database.
                id_prefix: format!("sbx-{}", clock()),
                failures: config.failures.clone(),
                ..FulfilmentConfig::default()
            },
        );
        let merchant = Arc::new(
            Merchant::new(
                chain.clone(),
                fulfilment,
                merchant_store.clone(),
                MerchantConfig {
                    pay_to: treasury,
                    fee: config.fee,
                    offer_ttl_seconds: 900,
                    max_timeout_seconds: 600,
                    public_url: merchant_url.clone(),
                    environment: "sandbox".into(),
                    secret: Arc::new(secrecy::SecretBox::new(Box::new(SANDBOX_MERCHANT_SECRET))),
                    delivery_poll_seconds: config.merchant_poll_seconds,
                },
                clock.clone(),
            )
            .await
            .map_err(setup)?,
        );
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let worker = merchant.clone();
        let merchant_worker = config
            .merchant_in_background
            .then(|| tokio::spawn(async move { worker.work(merchant_worker_id(), stopped).await }));
        let router = crate::merchant::router(merchant.clone());
        // Served by the caller; `start` replaces it with its own server task.
        let merchant_server = tokio::spawn(async {});
        let orders = OrderClient::new(merchant_url.clone()).map_err(setup)?;
        let world = Self {
            config,
            merchant,
            chain,
            merchant_url,
            orders,
            treasury,
            clock,
            chain_epoch: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
            master: MasterSecret::new(SANDBOX_MASTER_SECRET.to_owned()),
            merchant_store,
            merchant_server,
            merchant_worker,
            _stop_merchant: stop,
        };
        Ok((world, router))
    }

    /// Runs the merchant's due work (sweep, settlements, fulfilment, delivery, refunds) until
    /// a pass finds nothing; returns how many effects ran. For worlds whose merchant does not
    /// work in the background.
    pub async fn merchant_round(&self) -> Result<usize, SandboxError> {
        let id = merchant_worker_id();
        let mut total = 0;
        loop {
            let pass = self.merchant.work_once(&id, 64).await?;
            let done = pass.effects_run + pass.resumed;
            if done == 0 {
                return Ok(total);
            }
            total += done;
        }
    }

    pub fn database_url(&self) -> String {
        format!(
            "sqlite://{}?mode=rwc",
            self.config
                .data_dir
                .join("worldstore-agent.sqlite")
                .display()
        )
    }

    /// The merchant's store: its orders and their money events.
    pub fn merchant_store(&self) -> &SqlStore {
        &self.merchant_store
    }

    /// Opens the database (creating it) and builds an agent over the world. Call
    /// [`Agent::start`] to run its workers.
    pub async fn agent<M: Channel>(
        &self,
        channel: M,
    ) -> Result<Agent<SandboxPorts<M>>, SandboxError> {
        std::fs::create_dir_all(&self.config.data_dir).map_err(setup)?;
        let store =
            SqlStore::open(&self.database_url(), &DataKey::from_bytes(SANDBOX_DATA_KEY)).await?;
        let master = self.master.clone();
        let own_wallet: OwnWallet =
            Arc::new(move |user: &Key| own_wallet_of(&master, user).ok().map(|w| w.address()));
        let config = AgentConfig {
            policy: CheckoutPolicy {
                tokens: vec![self.chain.network().usdc()],
                pay_to_allowlist: vec![self.treasury],
                fee: self.config.fee,
                per_order_limit: self.config.per_order_limit,
                per_day_limit: self.config.per_day_limit,
            },
            master: self.master.clone(),
            scheme: DerivationScheme::Default,
            wallet_id: crate::messengers::wallet_id,
            merchant: self.orders.at(&self.merchant_url),
            funds_poll: self.config.funds_poll,
            order_poll: self.config.order_poll,
            worker: WorkerConfig {
                lease_seconds: self.config.lease_seconds,
                ..WorkerConfig::new(Key::parse("agent-sandbox").map_err(setup)?)
            },
            own_wallet: Some(own_wallet),
        };
        let brain = BrainChoice::from_settings(self.config.brain.clone()).map_err(setup)?;
        Ok(Agent::new(
            Arc::new(store),
            vec![self.chain.clone()],
            self.config.catalog().map_err(setup)?,
            brain,
            channel,
            config,
            self.clock.clone(),
        ))
    }

    /// The user's simulated own wallet.
    pub fn own_wallet(&self, user: &Key) -> Result<LocalSigner, SandboxError> {
        own_wallet_of(&self.master, user)
    }

    /// On a user's first contact, credits their agent wallet with the faucet amount (once
    /// per user, recorded in the store). Returns whether this was the first contact.
    pub async fn welcome<M: Channel>(
        &self,
        agent: &Agent<SandboxPorts<M>>,
        user: &Key,
    ) -> Result<bool, SandboxError> {
        self.welcome_with(agent, user, self.config.faucet).await
    }

    /// [`Self::welcome`] with this user's own faucet amount (zero shows the funding flow).
    /// Once per user and per chain: the chain lives in memory, so a restarted sandbox
    /// credits its users again on their next contact.
    pub async fn welcome_with<M: Channel>(
        &self,
        agent: &Agent<SandboxPorts<M>>,
        user: &Key,
        faucet: UsdcAmount,
    ) -> Result<bool, SandboxError> {
        let marker = Key::parse(&format!("faucet:{}:{user}", self.chain_epoch)).map_err(setup)?;
        let commit = Commit {
            inbound: Some(marker),
            ..Commit::default()
        };
        match agent.store().commit(commit, (self.clock)()).await {
            Ok(_) => {}
            Err(StoreError::Conflict(Conflict::DuplicateInbound(_))) => return Ok(false),
            Err(e) => return Err(e.into()),
        }
        if !faucet.is_zero() {
            self.chain
                .mint(agent.wallet_address(user)?, faucet.to_u256())
                .map_err(setup)?;
        }
        Ok(true)
    }

    /// The user approves a funding request in their (simulated) wallet: `amount` USDC move
    /// from their own wallet to their agent wallet on chain, and the agent is told with a
    /// transaction reference. Returns the transaction hash.
    pub async fn approve<M: Channel>(
        &self,
        agent: &Agent<SandboxPorts<M>>,
        user: &Key,
        amount: UsdcAmount,
    ) -> Result<alloy_primitives::B256, SandboxError> {
        let own = self.own_wallet(user)?;
        let to = agent.wallet_address(user)?;
        let value = amount.to_u256();
        let have = self
            .chain
            .usdc_balance(own.address())
            .await
            .map_err(setup)?;
        if have < value {
            self.chain
                .mint(own.address(), value - have)
                .map_err(setup)?;
        }
        let now = (self.clock)();
        let token = self.chain.network().usdc();
        let authorization = Authorization {
            from: own.address(),
            to,
            value,
            valid_after: U256::ZERO,
            valid_before: U256::from(now + 3600),
            nonce: Nonce::from(keccak256(
                format!(
                    "sandbox-funding/{user}/{now}/{}",
                    self.chain.block_number().unwrap_or(0)
                )
                .as_bytes(),
            )),
        };
        let signing_hash = authorization.signing_hash(&token.eip712_domain());
        let payment = VerifiedPayment(SignedPayment {
            x402_version: 2,
            payer: own.address(),
            signature: own.sign_hash(signing_hash),
            authorization,
            token,
            pay_to: to,
            signing_hash,
        });
        let tx_hash = self.chain.settle(&payment).await.map_err(setup)?.tx_hash();
        let received = agent
            .receive(
                user,
                &format!("funding-{tx_hash:x}"),
                InboundContent::TransactionReference {
                    tx_hash: format!("{tx_hash:#x}"),
                },
            )
            .await?;
        if received == Received::Processed {
            agent.check_funds().await?;
        }
        Ok(tx_hash)
    }
}

type SandboxMerchant = Merchant<Arc<EmbeddedChain>, SandboxFulfilment, SqlStore>;

fn merchant_worker_id() -> Key {
    Key::parse("merchant-sandbox").unwrap_or_else(|_| unreachable!("a valid key"))
}

fn own_wallet_of(master: &MasterSecret, user: &Key) -> Result<LocalSigner, SandboxError> {
    derive_wallet(
        master,
        &format!("{OWN_WALLET_LABEL}{user}"),
        DerivationScheme::Default,
    )
    .map_err(setup)
}

/// The latest funding request among `messages`.
pub fn latest_funding(messages: &[Outgoing]) -> Option<FundingRequest> {
    messages.iter().rev().find_map(|m| match m {
        Outgoing::Card(Card::Funding(f)) => Some(f.clone()),
        _ => None,
    })
}
