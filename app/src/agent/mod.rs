//! The agent role's driver: it runs each user's `Conversation` and their `Checkout`s
//! over the ports, with every step persisted before anything is done about it.
//!
//! ## Contract
//! - **One commit per input.** For each input the driver loads the machine, calls `handle`,
//!   and writes the new state, its effects (the outbox), the processed inbound id and the
//!   brain's history lines in ONE [`Store::commit`]. A lost race (the revision moved) is
//!   retried from the load; nothing is half written.
//! - **Effects run after the commit**, in outbox workers ([`crate::outbox`]); their
//!   results come back as inputs. On start, pending effects resume, so a purchase survives
//!   a restart at any step.
//! - **Inbound messages are processed once**: their id is recorded in the same commit.
//! - **The user is the channel's sender**, never anything from the model: every tool runs
//!   for the conversation's own user ([`worldstore_domain::conversation::ToolCall`] has no
//!   user field), orders are looked up among that user's checkouts only.
//! - **Background watchers** need no memory of their own: the funds watcher scans checkouts
//!   awaiting funds and resumes them when the balance suffices; the order tracker polls the
//!   merchant for paid orders and feeds shipped / delivered / refunded into the checkout.
//!
//! | effect | executed by |
//! |---|---|
//! | conversation `Send`, `React` | the [`Channel`] |
//! | `AskBrain` | the [`Brain`] port, one call, then `BrainAnswered` |
//! | `RunTool` | catalogue, store (profile, the user's own orders), chains (balances) |
//! | `StartCheckout` / `ConfirmPurchase` / `DeclinePurchase` | a new or the active checkout |
//! | checkout `RequestQuote` / `Pay` | the HTTP x402 [`OrderClient`] |
//! | `ReadBalances` | every configured chain |
//! | `RequestFunding` | a funding card to the user |
//! | `WatchBalance` | the funds watcher |
//! | `Notify` | a presentation in the conversation |

mod channel;
mod driver;
mod execute;
mod order_client;
mod records;
mod render;
mod tools;
mod watchers;

pub use channel::{Channel, ChannelError, Mailbox, as_text};
pub use order_client::{OrderClient, OrderClientError, OrderRequest, OrderView, PayAnswer, Quote};
pub use records::{AgentEffect, CheckoutDoc, ConversationDoc, OrderHandle, OrderToken};

use crate::outbox::{Clock, OutboxWorker, WorkerConfig};
use alloy_primitives::Address;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use worldstore_domain::checkout::CheckoutPolicy;
use worldstore_domain::eip3009::LocalSigner;
use worldstore_domain::ports::brain::Brain;
use worldstore_domain::ports::catalog::Catalog;
use worldstore_domain::ports::chain::Chain;
use worldstore_domain::ports::store::{Key, Store, StoreError};
use worldstore_domain::wallet::{DerivationScheme, MasterSecret, derive_wallet};

/// The ports one agent runs over, as one type parameter.
pub trait AgentPorts: Send + Sync + 'static {
    type Store: Store + 'static;
    type Chain: Chain + 'static;
    type Catalog: Catalog + 'static;
    type Brain: Brain + 'static;
    type Channel: Channel;
}

/// The user's own wallet, when the channel knows it (shown as the sender of a funding card).
pub type OwnWallet = Arc<dyn Fn(&Key) -> Option<Address> + Send + Sync>;

/// The agent's settings.
#[derive(Clone)]
pub struct AgentConfig {
    pub policy: CheckoutPolicy,
    /// Derives each user's agent wallet.
    pub master: MasterSecret,
    pub scheme: DerivationScheme,
    /// The name a user's wallet is derived under (see [`crate::messengers::wallet_id`]).
    pub wallet_id: fn(&Key) -> &str,
    /// The merchant's order server. Agents of one process share its connection pool (a
    /// restarted agent in the sandbox does not build a new HTTP client).
    pub merchant: OrderClient,
    /// How often checkouts awaiting funds look at their balance.
    pub funds_poll: Duration,
    /// How often paid orders are asked for news.
    pub order_poll: Duration,
    pub worker: WorkerConfig,
    pub own_wallet: Option<OwnWallet>,
}

/// Why the driver could not take an input.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("invalid identifier: {0}")]
    Id(String),
    #[error("the input does not apply now: {0}")]
    Rejected(String),
    #[error("wallet: {0}")]
    Wallet(String),
    #[error("{0} kept changing under us; try again")]
    Contended(String),
    #[error("{0}")]
    Port(String),
}

pub(crate) struct Inner<P: AgentPorts> {
    pub store: Arc<P::Store>,
    pub chains: Vec<Arc<P::Chain>>,
    pub catalog: P::Catalog,
    pub brain: P::Brain,
    pub channel: P::Channel,
    pub config: AgentConfig,
    pub clock: Clock,
    /// Wakes the outbox worker after a commit that enqueued effects.
    pub outbox_wake: Arc<Notify>,
    /// Wakes the funds watcher when a checkout starts waiting.
    pub funds_wake: Arc<Notify>,
    /// Agent wallet addresses lately derived (public, so kept; the keys are not).
    pub addresses: std::sync::Mutex<HashMap<Key, Address>>,
    /// Effects this agent's commits leased to its own worker ([`crate::outbox::Handoff`]).
    pub handoff: crate::outbox::Handoff,
    /// Whether a worker of this agent takes from `handoff`: set once one has run
    /// ([`Agent::start`], [`Agent::run_until_idle`]), cleared by [`Running::stop`]. While
    /// it is not set, commits lease nothing.
    pub worker_attached: Arc<std::sync::atomic::AtomicBool>,
}

/// At most this many addresses are remembered; the map starts afresh when it is full.
const ADDRESSES_KEPT: usize = 1024;

/// The agent driver. Cheap to clone; every clone drives the same agent.
pub struct Agent<P: AgentPorts> {
    pub(crate) inner: Arc<Inner<P>>,
}

impl<P: AgentPorts> Clone for Agent<P> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

/// What became of an inbound message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    Processed,
    /// Its id was processed before: ignored.
    Duplicate,
}

/// The running background tasks of an agent; [`Running::stop`] ends them.
pub struct Running {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    /// The agent's `worker_attached`: cleared on [`Running::stop`], so that what comes in
    /// afterwards is left in the store for whichever worker runs next.
    attached: Arc<std::sync::atomic::AtomicBool>,
}

impl Running {
    /// Stops the workers after their current round and waits for them.
    pub async fn stop(self) {
        self.attached
            .store(false, std::sync::atomic::Ordering::Relaxed);
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }

    /// Ends the workers at once, wherever they are (a simulated crash), and returns once
    /// they are gone. An execution in flight finishes the effect in hand at most, claiming
    /// nothing after it; the agent's commits no longer lease to them.
    pub async fn abort(self) {
        self.attached
            .store(false, std::sync::atomic::Ordering::Relaxed);
        for task in &self.tasks {
            task.abort();
        }
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

impl<P: AgentPorts> Agent<P> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Arc<P::Store>,
        chains: Vec<Arc<P::Chain>>,
        catalog: P::Catalog,
        brain: P::Brain,
        channel: P::Channel,
        config: AgentConfig,
        clock: Clock,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                chains,
                catalog,
                brain,
                channel,
                config,
                clock,
                outbox_wake: Arc::new(Notify::new()),
                funds_wake: Arc::new(Notify::new()),
                addresses: std::sync::Mutex::default(),
                handoff: crate::outbox::Handoff::default(),
                worker_attached: Arc::default(),
            }),
        }
    }

    pub fn store(&self) -> &Arc<P::Store> {
        &self.inner.store
    }

    pub fn channel(&self) -> &P::Channel {
        &self.inner.channel
    }

    pub(crate) fn now(&self) -> u64 {
        (self.inner.clock)()
    }

    /// The agent wallet of `user` (derived, never stored).
    pub fn wallet(&self, user: &Key) -> Result<LocalSigner, AgentError> {
        derive_wallet(
            &self.inner.config.master,
            (self.inner.config.wallet_id)(user),
            self.inner.config.scheme,
        )
        .map_err(|e| AgentError::Wallet(e.to_string()))
    }

    /// The address of `user`'s agent wallet.
    pub fn wallet_address(&self, user: &Key) -> Result<Address, AgentError> {
        if let Some(address) = self.addresses().get(user) {
            return Ok(*address);
        }
        let address = self.wallet(user)?.address();
        let mut addresses = self.addresses();
        if addresses.len() >= ADDRESSES_KEPT {
            addresses.clear();
        }
        addresses.insert(user.clone(), address);
        Ok(address)
    }

    fn addresses(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Address>> {
        // A panic cannot leave the map half-written: every entry is derived again if need be.
        self.inner
            .addresses
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Does everything due now in the calling task: pending effects, then a round of each
    /// watcher, again until a round does nothing. Replay and property tests use it instead
    /// of [`Agent::start`], whose background tasks make the order of events racy. Returns
    /// how many steps ran.
    pub async fn run_until_idle(&self) -> Result<usize, AgentError> {
        self.run_until_idle_watching(true).await
    }

    /// [`Agent::run_until_idle`], with the watchers' rounds only when `watch`. The agent's
    /// own effects never bring funds or order news (a wallet, the clock or the merchant
    /// does), so a caller that knows none of those moved can leave the watchers to their
    /// next round, as their timers would in a running agent.
    pub async fn run_until_idle_watching(&self, watch: bool) -> Result<usize, AgentError> {
        /// More rounds than any conversation needs: a loop that never ends is a bug.
        const MAX_ROUNDS: usize = 1_000;
        let worker = self.worker();
        let mut total = 0;
        for _ in 0..MAX_ROUNDS {
            let mut done = worker.run_once().await?;
            if done == 0 && watch {
                done = self.check_funds().await? + self.track_orders_once().await?;
            }
            if done == 0 {
                return Ok(total);
            }
            total += done;
        }
        Err(AgentError::Contended("the agent's work".into()))
    }

    /// This agent's outbox worker. It runs first what the agent's own commits leased to it
    /// (the effects of an inbound message, say), and from then on those commits do lease.
    fn worker(&self) -> OutboxWorker<P::Store, Self> {
        self.inner
            .worker_attached
            .store(true, std::sync::atomic::Ordering::Relaxed);
        OutboxWorker::new(
            self.inner.store.clone(),
            Arc::new(self.clone()),
            self.inner.config.worker.clone(),
            self.inner.clock.clone(),
        )
        .with_handoff(self.inner.handoff.clone())
    }

    /// Starts the outbox worker, the funds watcher and the order tracker. Pending effects
    /// left by an earlier run are picked up by the first outbox round.
    pub fn start(&self) -> Running {
        let (stop, stopped) = watch::channel(false);
        let worker = self.worker().with_waker(self.inner.outbox_wake.clone());
        let tasks = vec![
            tokio::spawn(worker.run(stopped.clone())),
            tokio::spawn(self.clone().watch_funds(stopped.clone())),
            tokio::spawn(self.clone().track_orders(stopped)),
        ];
        Running {
            stop,
            tasks,
            attached: self.inner.worker_attached.clone(),
        }
    }
}
