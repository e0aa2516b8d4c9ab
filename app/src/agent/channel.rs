//! Where replies go: a messaging channel (the terminal, the web chat, XMTP). The agent hands
//! it finished messages for one user; the channel decides how to draw them (buttons or
//! numbered text, cards or their fallback text).

use std::future::Future;
use std::sync::{Arc, Mutex};
use worldstore_domain::conversation::Outgoing;
use worldstore_domain::ports::store::Key;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    /// The channel is down or throttled: the message is sent again later.
    #[error("channel unavailable: {0}")]
    Unavailable(String),
    /// The channel refused this message for good (no route to the user, content it cannot
    /// carry): retrying cannot help, so the effect is parked.
    #[error("channel refused the message: {0}")]
    Rejected(String),
}

impl ChannelError {
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

pub trait Channel: Send + Sync + 'static {
    fn send(
        &self,
        user: &Key,
        message: &Outgoing,
    ) -> impl Future<Output = Result<(), ChannelError>> + Send;

    /// Acknowledges an inbound message with an emoji (channels without reactions ignore it).
    fn react(
        &self,
        user: &Key,
        to: &Key,
        emoji: &str,
    ) -> impl Future<Output = Result<(), ChannelError>> + Send;
}

/// A message as plain text: menus numbered, cards as their fallback text.
pub fn as_text(message: &Outgoing) -> String {
    match message {
        Outgoing::Text(text) => text.clone(),
        Outgoing::Actions(menu) => menu.fallback_text(),
        Outgoing::Card(card) => card.fallback_text(),
    }
}

/// A channel that keeps what it was sent, per user, and wakes whoever waits for it (tests,
/// the terminal chat).
#[derive(Debug, Clone, Default)]
pub struct Mailbox {
    inner: Arc<MailboxInner>,
}

#[derive(Debug, Default)]
struct MailboxInner {
    sent: Mutex<Vec<(Key, Outgoing)>>,
    changed: tokio::sync::Notify,
}

impl Mailbox {
    pub fn new() -> Self {
        Self::default()
    }

    /// Everything sent to `user`, in order.
    pub fn messages_to(&self, user: &Key) -> Vec<Outgoing> {
        self.lock()
            .iter()
            .filter(|(u, _)| u == user)
            .map(|(_, m)| m.clone())
            .collect()
    }

    /// Everything sent, to anyone.
    pub fn all(&self) -> Vec<(Key, Outgoing)> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(Key, Outgoing)>> {
        self.inner
            .sent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Waits until `check` holds for the messages sent to `user`, or `timeout` passes;
    /// returns whether it held.
    pub async fn wait_until(
        &self,
        user: &Key,
        timeout: std::time::Duration,
        check: impl Fn(&[Outgoing]) -> bool,
    ) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let changed = self.inner.changed.notified();
            if check(&self.messages_to(user)) {
                return true;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return check(&self.messages_to(user));
            }
        }
    }

    /// Waits until some message to `user` contains `needle` (as text).
    pub async fn wait_for_text(
        &self,
        user: &Key,
        needle: &str,
        timeout: std::time::Duration,
    ) -> bool {
        self.wait_until(user, timeout, |ms| {
            ms.iter().any(|m| as_text(m).contains(needle))
        })
        .await
    }
}

impl Channel for Mailbox {
    async fn send(&self, user: &Key, message: &Outgoing) -> Result<(), ChannelError> {
        self.lock().push((user.clone(), message.clone()));
        self.inner.changed.notify_waiters();
        Ok(())
    }

    async fn react(&self, _user: &Key, _to: &Key, _emoji: &str) -> Result<(), ChannelError> {
        Ok(())
    }
}
