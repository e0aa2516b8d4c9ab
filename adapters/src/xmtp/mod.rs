//! XMTP messaging through a supervised Node bridge (`bridge/bridge.mjs`, the official
//! `@xmtp/agent-sdk` 2.2.0; see `/work/shared/reference/xmtp.md` for why a bridge).
//!
//! Contract: [`XmtpBridge::spawn`] starts the bridge and keeps it running (restart with
//! capped exponential backoff); [`XmtpBridge::next_message`] yields each message from
//! someone else once (our own messages and recently seen ids are dropped; the durable
//! de-duplication is the Store's processed ids); [`XmtpBridge::send`] returns the new
//! message id or a [`SendError`] that says whether retrying can help.
//!
//! | module | what |
//! |---|---|
//! | [`content`] | every content type of xmtp.md, typed, and its mapping to the machine |
//! | [`protocol`] | the newline-delimited JSON events and commands |
//! | `supervisor` | the process: spawn, read, write, restart |
//! | `recent` | the bounded set of recently seen message ids |

pub mod content;
pub mod protocol;
mod recent;
mod supervisor;

use content::XmtpContent;
use secrecy::SecretString;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use worldstore_domain::conversation::{Inbound, Outgoing};
use worldstore_domain::ports::store::Key;

/// How to run the bridge.
#[derive(Debug, Clone)]
pub struct BridgeConfig {
    pub program: String,
    pub args: Vec<String>,
    pub working_dir: Option<PathBuf>,
    /// Passed to the bridge only (XMTP_WALLET_KEY, XMTP_DB_ENCRYPTION_KEY, ...).
    pub env: Vec<(String, SecretString)>,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// A run at least this long resets the backoff.
    pub stable_after: Duration,
    /// Message ids remembered for de-duplication.
    pub recent_ids: usize,
    /// A send with no answer after this long fails as transient.
    pub send_timeout: Duration,
}

impl BridgeConfig {
    /// `node bridge.mjs` in `bridge_dir` (which holds `node_modules`), with `env`.
    pub fn node(bridge_dir: impl Into<PathBuf>, env: Vec<(String, SecretString)>) -> Self {
        Self {
            program: "node".to_owned(),
            args: vec!["bridge.mjs".to_owned()],
            working_dir: Some(bridge_dir.into()),
            env,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(60),
            stable_after: Duration::from_secs(60),
            recent_ids: 4096,
            send_timeout: Duration::from_secs(30),
        }
    }

    /// The bridge shipped in this crate's source tree.
    pub fn bundled_bridge_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/xmtp/bridge")
    }
}

/// Who we are on XMTP, as the bridge reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub inbox_id: String,
    pub address: Option<String>,
}

/// A message from someone else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmtpMessage {
    pub id: Key,
    pub conversation_id: String,
    pub sender_inbox_id: String,
    pub sender_address: Option<String>,
    pub sent_at_ns: u64,
    pub content: XmtpContent,
}

impl XmtpMessage {
    /// The conversation machine's input, if it takes this content.
    pub fn inbound(&self) -> Option<Inbound> {
        Some(Inbound {
            id: self.id.clone(),
            content: self.content.to_inbound()?,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The bridge refused the content or conversation: retrying the same send cannot help.
    #[error("the XMTP bridge rejected the message: {0}")]
    Rejected(String),
    /// The network or SDK failed: retrying may help.
    #[error("sending over XMTP failed: {0}")]
    Failed(String),
    /// The bridge was down or restarted before answering.
    #[error("the XMTP bridge is unavailable")]
    Unavailable,
    #[error("the XMTP bridge did not answer in time")]
    Timeout,
}

impl SendError {
    pub fn is_transient(&self) -> bool {
        !matches!(self, Self::Rejected(_))
    }

    /// The bridge's `error` text starts with `rejected:` or `failed:`.
    fn classify(error: &str) -> Self {
        match error.strip_prefix("rejected:") {
            Some(reason) => Self::Rejected(reason.trim().to_owned()),
            None => Self::Failed(
                error
                    .strip_prefix("failed:")
                    .unwrap_or(error)
                    .trim()
                    .to_owned(),
            ),
        }
    }
}

/// A running, supervised bridge. Dropping it stops the bridge.
pub struct XmtpBridge {
    commands: mpsc::Sender<supervisor::SendRequest>,
    messages: mpsc::Receiver<XmtpMessage>,
    identity: watch::Receiver<Option<Identity>>,
    starts: watch::Receiver<u32>,
    send_timeout: Duration,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl XmtpBridge {
    /// Starts the bridge under supervision (needs a Tokio runtime).
    pub fn spawn(config: BridgeConfig) -> Self {
        let (commands_tx, commands_rx) = mpsc::channel(64);
        let (messages_tx, messages_rx) = mpsc::channel(256);
        let (identity_tx, identity_rx) = watch::channel(None);
        let (starts_tx, starts_rx) = watch::channel(0);
        let (shutdown_tx, shutdown_rx) = oneshot::channel();
        let send_timeout = config.send_timeout;
        let supervisor = supervisor::Supervisor {
            recent: recent::RecentIds::new(config.recent_ids),
            config,
            commands: commands_rx,
            messages: messages_tx,
            identity: identity_tx,
            starts: starts_tx,
            own_inbox_id: None,
            next_request: 0,
        };
        let task = tokio::spawn(supervisor.run(shutdown_rx));
        Self {
            commands: commands_tx,
            messages: messages_rx,
            identity: identity_rx,
            starts: starts_rx,
            send_timeout,
            shutdown: Some(shutdown_tx),
            task: Some(task),
        }
    }

    /// The next message from someone else; `None` once the bridge is shut down.
    pub async fn next_message(&mut self) -> Option<XmtpMessage> {
        self.messages.recv().await
    }

    /// Our identity once the bridge has been ready at least once.
    pub fn identity(&self) -> Option<Identity> {
        self.identity.borrow().clone()
    }

    /// Waits until the bridge has reported our identity.
    pub async fn ready(&mut self) -> Option<Identity> {
        let identity = self.identity.wait_for(Option::is_some).await.ok()?;
        identity.clone()
    }

    /// How many times the bridge process has been started.
    pub fn starts(&self) -> u32 {
        *self.starts.borrow()
    }

    /// A handle that sends through this bridge while the bridge itself keeps receiving.
    pub fn sender(&self) -> XmtpSender {
        XmtpSender {
            commands: self.commands.clone(),
            send_timeout: self.send_timeout,
        }
    }

    /// Sends `content` to a conversation; returns the new message id.
    pub async fn send(
        &self,
        conversation_id: &str,
        content: &XmtpContent,
    ) -> Result<String, SendError> {
        self.sender().send(conversation_id, content).await
    }

    /// Sends what the conversation machine asked for.
    pub async fn send_outgoing(
        &self,
        conversation_id: &str,
        outgoing: &Outgoing,
    ) -> Result<String, SendError> {
        self.send(conversation_id, &XmtpContent::from(outgoing))
            .await
    }

    /// Stops the bridge (its stdin is closed, then it is killed if it lingers).
    pub async fn shutdown(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

/// Sends through a running [`XmtpBridge`]; cheap to clone. Once the bridge is shut down,
/// every send fails as [`SendError::Unavailable`].
#[derive(Debug, Clone)]
pub struct XmtpSender {
    commands: mpsc::Sender<supervisor::SendRequest>,
    send_timeout: Duration,
}

impl XmtpSender {
    /// Sends `content` to a conversation; returns the new message id.
    pub async fn send(
        &self,
        conversation_id: &str,
        content: &XmtpContent,
    ) -> Result<String, SendError> {
        if let XmtpContent::Unsupported { content_type } = content {
            return Err(SendError::Rejected(format!("cannot send {content_type}")));
        }
        let (reply, answer) = oneshot::channel();
        let request = supervisor::SendRequest {
            conversation_id: conversation_id.to_owned(),
            content_type: content.content_type().to_owned(),
            content: content.to_json(),
            reply,
        };
        let exchange = async {
            self.commands
                .send(request)
                .await
                .map_err(|_| SendError::Unavailable)?;
            answer.await.map_err(|_| SendError::Unavailable)?
        };
        tokio::time::timeout(self.send_timeout, exchange)
            .await
            .map_err(|_| SendError::Timeout)?
    }
}

impl Drop for XmtpBridge {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_delays_double_and_are_capped() {
        let mut config = BridgeConfig::node(".", Vec::new());
        config.initial_backoff = Duration::from_millis(100);
        config.max_backoff = Duration::from_millis(700);
        let delays: Vec<_> = (0..5).map(|n| supervisor::backoff(&config, n)).collect();
        assert_eq!(
            delays,
            [100, 200, 400, 700, 700]
                .map(Duration::from_millis)
                .to_vec()
        );
    }

    #[test]
    fn a_rejection_is_permanent_and_a_failure_transient() {
        assert_eq!(
            SendError::classify("rejected: unknown conversation"),
            SendError::Rejected("unknown conversation".into())
        );
        assert!(!SendError::classify("rejected: x").is_transient());
        assert!(SendError::classify("failed: network").is_transient());
        assert!(SendError::classify("odd").is_transient());
    }
}
