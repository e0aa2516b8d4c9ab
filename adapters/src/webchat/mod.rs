//! The web chat channel: a single page (`page.html`, served at `/`) talking JSON over a
//! WebSocket (`/ws`), on 127.0.0.1. The channel knows nothing of the agent: browser events
//! come out of an `mpsc` receiver as [`WebInbound`], and the agent answers with
//! [`WebChat::deliver`].
//!
//! ## Contract
//! - **Inbound**: each text, button press (intent) or funding approval becomes one
//!   [`WebInbound`] carrying the user's [`Key`] and a message id built from the
//!   client-generated id (`web:<user>:<client id>`), so a retried message keeps its id and
//!   the agent can drop it. The channel also drops ids it has recently seen for that user.
//! - **Outbound**: [`WebChat::deliver`] appends the message to the user's bounded log under
//!   the next sequence number and pushes it to every open socket of that user. The user's
//!   own messages are logged the same way (`"type":"user"`), so a reload shows the whole
//!   conversation.
//! - **Reconnect**: the client's `hello` names the last `seq` it has; the server replays
//!   every logged message after it, then streams new ones, with no gap and no duplicate
//!   (registration and replay happen under the same lock as `deliver`). A socket that falls
//!   [`WebChatConfig::socket_buffer`] frames behind is closed; the client reconnects and
//!   catches up from its last `seq`.
//! - **Isolation**: a socket receives only its own user's log. Identity is whatever user id
//!   the page sends (sandbox: chosen at first visit and kept in local storage, or picked
//!   with `?user=`); ids must pass [`Key::parse`] and [`frames::check_short_id`].
//! - **Malformed input** gets an `error` frame; the socket and its state stay as they were.
//!
//! ## Frames
//! Client to server (one JSON object per WebSocket text frame):
//!
//! | frame | meaning |
//! |---|---|
//! | `{"type":"hello","user":"demo","after":12}` | first frame: who, and the last `seq` seen (0: none) |
//! | `{"type":"text","id":"c1","text":"search earbuds"}` | a typed message |
//! | `{"type":"intent","id":"c2","menu_id":"menu-3","action_id":"buy:B0X"}` | a menu button |
//! | `{"type":"approve","id":"c3","request_id":"fund-1"}` | approve a funding request (sandbox) |
//!
//! Server to client, logged (each has `seq`, strictly increasing per user from 1):
//!
//! | `type` | fields beside `seq` | from |
//! |---|---|---|
//! | `text` | `text` (minimal markdown: `**bold**`, `[label](https://..)`, line breaks) | `Outgoing::Text` |
//! | `menu` | `id`, `kind`, `description`, `actions:[{id,label}]`, `expires_at` | `Outgoing::Actions` |
//! | `products` | `products:[{asin,title,price,image,rating,reviews}]` | `Card::Products` |
//! | `quote` | `asin`, `title`, `price`, `fee`, `total`, `network`, `order_id`, `expires_at` | `Card::Quote` |
//! | `funding` | `id`, `from`, `to`, `amount`, `network`, `token` | `Card::Funding` |
//! | `transaction` | `network`, `tx_hash`, `purpose`, `amount`, `explorer` (URL or null) | `Card::Transaction` |
//! | `order` | `order_id`, `title`, `stage` (paid, shipped, delivered, refunded, failed), `detail` | `Card::Order` |
//! | `user` | `id`, `kind` (text, intent, approve) and its fields | the user's own message |
//!
//! Amounts are decimal USDC strings (`"12.34"`); networks are v1 names (`"base-sepolia"`).
//!
//! Server to client, not logged (no `seq`):
//!
//! | `type` | fields | when |
//! |---|---|---|
//! | `welcome` | `user`, `epoch`, `last_seq`, `oldest_seq` | after `hello`, before the replay |
//! | `ack` | `id`, `duplicate` | a message was logged and handed to the agent |
//! | `error` | `code` (malformed, invalid, protocol, unavailable), `message`, `id?` | a frame was refused |
//!
//! The page shows "Connected" (`data-testid="connection"`, `data-state="open"`) once the
//! replay has reached the welcome's `last_seq`; what the user typed meanwhile is sent then.
//!
//! Text, titles and every other catalogue string are untrusted: the page builds the DOM
//! with `textContent` only, never `innerHTML`, and links only `https:` URLs.

pub mod frames;
pub mod scripted;
mod server;

use frames::{Body, Sequenced, UserContent, UserEcho};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::mpsc;
use worldstore_domain::conversation::{Inbound, InboundContent, Outgoing};
use worldstore_domain::ports::store::Key;

/// How the channel behaves.
#[derive(Debug, Clone)]
pub struct WebChatConfig {
    /// Messages kept per user for replay; older ones are dropped.
    pub log_capacity: usize,
    /// Frames queued per socket before a slow socket is closed (it reconnects and replays).
    pub socket_buffer: usize,
    /// Inbound events queued for the agent before sockets wait.
    pub inbound_buffer: usize,
    /// Client message ids remembered per user to drop duplicates.
    pub recent_ids: usize,
    /// Users whose logs are kept in memory. Beyond it, the least recently active user
    /// without an open socket is forgotten (the agent's store keeps the conversation; the
    /// log is only for redrawing the page), so made-up user ids cannot exhaust memory.
    pub max_users: usize,
    /// Link transactions to public block explorers. Off in the sandbox, whose embedded
    /// chain has no explorer (the page then shows the hash).
    pub explorer_links: bool,
    /// Identifies this log's lifetime to clients (see the `welcome` frame), so that a
    /// restarted server is told apart from the one before. The default is the start time
    /// in milliseconds.
    pub epoch: u64,
}

impl Default for WebChatConfig {
    fn default() -> Self {
        Self {
            log_capacity: 500,
            socket_buffer: 256,
            inbound_buffer: 256,
            recent_ids: 256,
            max_users: 10_000,
            explorer_links: false,
            epoch: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        }
    }
}

/// A browser event for the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebInbound {
    /// The user, from the socket's `hello` (never from message content).
    pub user: Key,
    /// `web:<user>:<client id>`: stable across retries of the same message.
    pub message_id: Key,
    pub event: WebEvent,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebEvent {
    /// Text or a button press, for the conversation machine.
    Content(InboundContent),
    /// The user approved the funding request with this id (the sandbox's stand-in for a
    /// wallet's `walletSendCalls` confirmation).
    ApproveFunding { request_id: String },
}

impl WebInbound {
    /// The conversation machine's input, for content events.
    pub fn inbound(&self) -> Option<Inbound> {
        match &self.event {
            WebEvent::Content(content) => Some(Inbound {
                id: self.message_id.clone(),
                content: content.clone(),
            }),
            WebEvent::ApproveFunding { .. } => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DeliverError {
    #[error("could not encode the web chat frame: {0}")]
    Encode(#[from] serde_json::Error),
}

/// The web chat channel. Cheap to clone; every clone is the same channel.
#[derive(Clone)]
pub struct WebChat {
    shared: Arc<Shared>,
}

struct Shared {
    config: WebChatConfig,
    inbound: mpsc::Sender<WebInbound>,
    users: Mutex<Users>,
    next_socket: AtomicU64,
}

/// Every user's log, and a clock of activity for choosing whom to forget.
#[derive(Default)]
struct Users {
    logs: HashMap<Key, UserLog>,
    tick: u64,
}

impl Users {
    /// The user's log, created when missing (forgetting an idle user when full).
    fn log(&mut self, user: &Key, max_users: usize) -> &mut UserLog {
        self.tick += 1;
        if !self.logs.contains_key(user) && self.logs.len() >= max_users.max(1) {
            let idle = self
                .logs
                .iter()
                .filter(|(_, log)| log.sockets.is_empty())
                .min_by_key(|(_, log)| log.touched)
                .map(|(key, _)| key.clone());
            if let Some(idle) = idle {
                self.logs.remove(&idle);
            }
        }
        let log = self.logs.entry(user.clone()).or_insert_with(UserLog::new);
        log.touched = self.tick;
        log
    }
}

/// One user's conversation as the channel keeps it.
struct UserLog {
    next_seq: u64,
    entries: VecDeque<(u64, Arc<str>)>,
    sockets: Vec<(u64, mpsc::Sender<Arc<str>>)>,
    recent_ids: VecDeque<String>,
    /// [`Users::tick`] when last used.
    touched: u64,
}

impl UserLog {
    fn new() -> Self {
        Self {
            next_seq: 1,
            entries: VecDeque::new(),
            sockets: Vec::new(),
            recent_ids: VecDeque::new(),
            touched: 0,
        }
    }

    fn last_seq(&self) -> u64 {
        self.next_seq - 1
    }

    fn oldest_seq(&self) -> u64 {
        self.entries.front().map_or(self.next_seq, |(seq, _)| *seq)
    }

    /// Logs one body and pushes it to every socket; a socket that cannot take it is
    /// dropped (its session ends and the client reconnects to replay).
    fn append(&mut self, body: Body<'_>, capacity: usize) -> Result<u64, DeliverError> {
        let seq = self.next_seq;
        let frame: Arc<str> = frames::encode(&Sequenced { seq, body })?.into();
        self.next_seq += 1;
        self.entries.push_back((seq, frame.clone()));
        while self.entries.len() > capacity.max(1) {
            self.entries.pop_front();
        }
        self.sockets
            .retain(|(_, socket)| socket.try_send(frame.clone()).is_ok());
        Ok(seq)
    }
}

/// What a new socket gets when it says hello.
struct Attached {
    socket_id: u64,
    frames: mpsc::Receiver<Arc<str>>,
    replay: Vec<Arc<str>>,
    last_seq: u64,
    oldest_seq: u64,
}

/// The outcome of logging a user's own message.
enum Accepted {
    New(WebInbound),
    Duplicate,
}

impl WebChat {
    /// A channel and the receiver of its inbound events (for the agent).
    pub fn new(config: WebChatConfig) -> (Self, mpsc::Receiver<WebInbound>) {
        let (inbound, receiver) = mpsc::channel(config.inbound_buffer.max(1));
        let shared = Shared {
            config,
            inbound,
            users: Mutex::new(Users::default()),
            next_socket: AtomicU64::new(1),
        };
        (
            Self {
                shared: Arc::new(shared),
            },
            receiver,
        )
    }

    /// The page at `/` and the WebSocket at `/ws`.
    pub fn router(&self) -> axum::Router {
        server::router(self.clone())
    }

    /// Serves [`Self::router`] on `listener` until the task is dropped. Bind the listener
    /// to 127.0.0.1.
    pub async fn serve(self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        axum::serve(listener, self.router()).await
    }

    /// Appends `outgoing` to `user`'s log and pushes it to the user's open sockets.
    /// Returns its sequence number.
    pub fn deliver(&self, user: &Key, outgoing: &Outgoing) -> Result<u64, DeliverError> {
        let body = Body::from_outgoing(outgoing, self.shared.config.explorer_links);
        let config = &self.shared.config;
        self.users()
            .log(user, config.max_users)
            .append(body, config.log_capacity)
    }

    /// Closes every open socket of `user` (the page reconnects and replays). Returns how
    /// many were open.
    pub fn disconnect(&self, user: &Key) -> usize {
        self.users()
            .logs
            .get_mut(user)
            .map_or(0, |log| std::mem::take(&mut log.sockets).len())
    }

    /// Open sockets of `user`.
    pub fn connections(&self, user: &Key) -> usize {
        self.users()
            .logs
            .get(user)
            .map_or(0, |log| log.sockets.len())
    }

    /// The last sequence number logged for `user` (0: nothing yet).
    pub fn last_seq(&self, user: &Key) -> u64 {
        self.users().logs.get(user).map_or(0, UserLog::last_seq)
    }

    fn users(&self) -> MutexGuard<'_, Users> {
        // A panic while holding the lock leaves the map consistent (every update is a
        // single push or retain), so a poisoned lock is still usable.
        self.shared
            .users
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers a socket for `user` and takes the replay after `after`, atomically with
    /// respect to [`Self::deliver`].
    fn attach(&self, user: &Key, after: u64) -> Attached {
        let socket_id = self.shared.next_socket.fetch_add(1, Ordering::Relaxed);
        let (sender, frames) = mpsc::channel(self.shared.config.socket_buffer.max(1));
        let mut users = self.users();
        let log = users.log(user, self.shared.config.max_users);
        let replay = log
            .entries
            .iter()
            .filter(|(seq, _)| *seq > after)
            .map(|(_, frame)| frame.clone())
            .collect();
        log.sockets.push((socket_id, sender));
        Attached {
            socket_id,
            frames,
            replay,
            last_seq: log.last_seq(),
            oldest_seq: log.oldest_seq(),
        }
    }

    fn detach(&self, user: &Key, socket_id: u64) {
        if let Some(log) = self.users().logs.get_mut(user) {
            log.sockets.retain(|(id, _)| *id != socket_id);
        }
    }

    /// Logs the user's own message (unless its id was recently seen) and builds the
    /// agent's event. The echo is logged before the agent sees the event, so the agent's
    /// answer always comes after the question in the log.
    fn accept(
        &self,
        user: &Key,
        client_id: &str,
        content: UserContent,
    ) -> Result<Accepted, DeliverError> {
        let message_id = match Key::parse(&format!("web:{}:{client_id}", user.as_str())) {
            Ok(id) => id,
            // Both parts are short and printable (checked before), so this cannot happen;
            // treat it as a duplicate rather than forward an unidentifiable message.
            Err(_) => return Ok(Accepted::Duplicate),
        };
        let config = &self.shared.config;
        let mut users = self.users();
        let log = users.log(user, config.max_users);
        if log.recent_ids.iter().any(|id| id == client_id) {
            return Ok(Accepted::Duplicate);
        }
        let echo = UserEcho {
            id: client_id.to_owned(),
            content,
        };
        log.append(Body::User(&echo), config.log_capacity)?;
        log.recent_ids.push_back(client_id.to_owned());
        while log.recent_ids.len() > config.recent_ids.max(1) {
            log.recent_ids.pop_front();
        }
        let event = match echo.content {
            UserContent::Text { text } => WebEvent::Content(InboundContent::Text(text)),
            UserContent::Intent { menu_id, action_id } => {
                WebEvent::Content(InboundContent::Intent { menu_id, action_id })
            }
            UserContent::Approve { request_id } => WebEvent::ApproveFunding { request_id },
        };
        Ok(Accepted::New(WebInbound {
            user: user.clone(),
            message_id,
            event,
        }))
    }
}

#[cfg(test)]
mod browser_tests;
#[cfg(test)]
mod tests;
