//! The agent's messengers (the web chat, XMTP) behind one [`Channel`], and the loops that
//! hand what users write to the agent.
//!
//! ## Contract
//! - **A user is named by their messenger**: `web:<name>` for a web chat user,
//!   `xmtp:<inbox id>` for an XMTP inbox ([`UserKey`]). A web name can never reach an
//!   XMTP user's conversation or wallet, whatever it spells.
//! - **The user is always the sender** the messenger reported (the web chat's socket
//!   `hello`, the XMTP message's `senderInboxId`), never anything inside the message.
//! - **Replies go back where the user came from**: [`Messengers`] routes each message by
//!   the key's messenger. A messenger that is not running refuses the message for good
//!   ([`ChannelError::Rejected`]); a messenger that is down is [`ChannelError::Unavailable`]
//!   and the outbox retries.
//! - **[`Arrivals`]** is what happens around each inbound message besides the agent: the
//!   sandbox credits a newcomer's wallet and simulates wallet approvals; live does neither.
//!
//! | module | what |
//! |---|---|
//! | [`web`] | the web chat as a channel, and its inbound loop |
//! | [`xmtp`] | XMTP through the bridge as a channel, and its inbound loop |

pub mod web;
pub mod xmtp;

use crate::agent::{Agent, AgentPorts, Channel, ChannelError, Received};
use crate::sandbox::{SandboxPorts, SandboxWorld};
use std::future::Future;
use std::sync::Arc;
use worldstore_domain::conversation::{FundingRequest, InboundContent, Outgoing};
use worldstore_domain::money::UsdcAmount;
use worldstore_domain::ports::store::Key;

/// Where a user talks to the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Messenger {
    Web,
    Xmtp,
}

impl Messenger {
    pub fn prefix(self) -> &'static str {
        match self {
            Messenger::Web => "web",
            Messenger::Xmtp => "xmtp",
        }
    }

    /// The configuration name (`agent.messengers`).
    pub fn parse(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "web" => Some(Messenger::Web),
            "xmtp" => Some(Messenger::Xmtp),
            _ => None,
        }
    }
}

/// A user key split into its messenger and the messenger's own name for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserKey {
    pub messenger: Messenger,
    /// The web chat's user name, or the XMTP inbox id.
    pub name: String,
}

impl UserKey {
    /// The agent's key for `name` on `messenger`.
    pub fn key(messenger: Messenger, name: &str) -> Result<Key, ChannelError> {
        Key::parse(&format!("{}:{name}", messenger.prefix()))
            .map_err(|e| ChannelError::Rejected(format!("unusable user name: {e}")))
    }

    /// Splits an agent key; `None` for a key no messenger made.
    pub fn split(key: &Key) -> Option<Self> {
        let (prefix, name) = key.as_str().split_once(':')?;
        let messenger = [Messenger::Web, Messenger::Xmtp]
            .into_iter()
            .find(|m| m.prefix() == prefix)?;
        (!name.is_empty()).then(|| UserKey {
            messenger,
            name: name.to_owned(),
        })
    }
}

/// The name `user`'s agent wallet is derived under: an XMTP user's bare inbox id, as the
/// original system derived it (so its users keep their wallets under the `legacy` scheme);
/// any other user's whole key. Inbox ids are hex, so no `web:` key can reach one.
pub fn wallet_id(user: &Key) -> &str {
    match user.as_str().strip_prefix("xmtp:") {
        Some(inbox) if !inbox.is_empty() => inbox,
        _ => user.as_str(),
    }
}

/// Every running messenger as one channel, routing by the user key's messenger.
#[derive(Clone, Default)]
pub struct Messengers {
    pub web: Option<web::WebMessenger>,
    pub xmtp: Option<xmtp::XmtpChannel>,
}

impl Messengers {
    fn route(&self, user: &Key) -> Result<(Route<'_>, String), ChannelError> {
        let split = UserKey::split(user)
            .ok_or_else(|| ChannelError::Rejected("the user key names no messenger".into()))?;
        let route = match split.messenger {
            Messenger::Web => self.web.as_ref().map(Route::Web),
            Messenger::Xmtp => self.xmtp.as_ref().map(Route::Xmtp),
        };
        let route = route.ok_or_else(|| {
            ChannelError::Rejected(format!(
                "the {} messenger is not running",
                split.messenger.prefix()
            ))
        })?;
        Ok((route, split.name))
    }
}

enum Route<'a> {
    Web(&'a web::WebMessenger),
    Xmtp(&'a xmtp::XmtpChannel),
}

impl Channel for Messengers {
    async fn send(&self, user: &Key, message: &Outgoing) -> Result<(), ChannelError> {
        match self.route(user)? {
            (Route::Web(web), name) => web.send_to(user, &name, message),
            (Route::Xmtp(xmtp), inbox) => xmtp.send_to(&inbox, message).await,
        }
    }

    async fn react(&self, user: &Key, to: &Key, emoji: &str) -> Result<(), ChannelError> {
        match self.route(user)? {
            // The page shows its own delivery tick; reactions are an XMTP affordance.
            (Route::Web(_), _) => Ok(()),
            (Route::Xmtp(xmtp), inbox) => xmtp.react_to(&inbox, to, emoji).await,
        }
    }
}

/// What happens around an inbound message besides the agent's own handling.
pub trait Arrivals<P: AgentPorts>: Send + Sync + 'static {
    /// Before the agent sees a message from `user` (the sandbox's faucet).
    fn before(&self, agent: &Agent<P>, user: &Key) -> impl Future<Output = ()> + Send;

    /// The user approved `request` in the web chat (only the sandbox can act on it: a live
    /// user funds their agent wallet from their own wallet).
    fn approve(
        &self,
        agent: &Agent<P>,
        user: &Key,
        request: &FundingRequest,
    ) -> impl Future<Output = Result<(), String>> + Send;
}

/// Live: nothing happens besides the agent.
#[derive(Debug, Clone, Copy, Default)]
pub struct LiveArrivals;

impl<P: AgentPorts> Arrivals<P> for LiveArrivals {
    async fn before(&self, _agent: &Agent<P>, _user: &Key) {}

    async fn approve(
        &self,
        agent: &Agent<P>,
        user: &Key,
        request: &FundingRequest,
    ) -> Result<(), String> {
        let text = format!(
            "Please send {} USDC to your agent wallet {} from your own wallet; the purchase resumes when it arrives.",
            request.amount, request.to
        );
        agent
            .channel()
            .send(user, &Outgoing::Text(text))
            .await
            .map_err(|e| e.to_string())
    }
}

/// Faucet amount for a user, by their agent key.
pub type Faucet = Arc<dyn Fn(&Key) -> UsdcAmount + Send + Sync>;

/// The sandbox: a newcomer's agent wallet is credited once, and a funding approval moves
/// sandbox USDC from the user's simulated own wallet.
#[derive(Clone)]
pub struct SandboxArrivals {
    pub world: Arc<SandboxWorld>,
    pub faucet: Faucet,
}

impl<M: Channel> Arrivals<SandboxPorts<M>> for SandboxArrivals {
    async fn before(&self, agent: &Agent<SandboxPorts<M>>, user: &Key) {
        let amount = (self.faucet)(user);
        if let Err(error) = self.world.welcome_with(agent, user, amount).await {
            tracing::error!(%error, user = %user, "faucet");
        }
    }

    async fn approve(
        &self,
        agent: &Agent<SandboxPorts<M>>,
        user: &Key,
        request: &FundingRequest,
    ) -> Result<(), String> {
        self.world
            .approve(agent, user, request.amount)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// Hands one message to the agent after the arrival hook; logs what went wrong.
pub(crate) async fn deliver_inbound<P: AgentPorts, A: Arrivals<P>>(
    agent: &Agent<P>,
    arrivals: &A,
    user: &Key,
    message_id: &str,
    content: InboundContent,
) -> Option<Received> {
    arrivals.before(agent, user).await;
    match agent.receive(user, message_id, content).await {
        Ok(received) => Some(received),
        Err(error) => {
            tracing::error!(%error, user = %user, "inbound message not processed");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_keys_carry_their_messenger() {
        let key = UserKey::key(Messenger::Xmtp, "abc123").unwrap();
        assert_eq!(key.as_str(), "xmtp:abc123");
        assert_eq!(
            UserKey::split(&key),
            Some(UserKey {
                messenger: Messenger::Xmtp,
                name: "abc123".into()
            })
        );
        // A web name that spells an XMTP key stays a web user.
        let web = UserKey::key(Messenger::Web, "xmtp:abc123").unwrap();
        assert_eq!(web.as_str(), "web:xmtp:abc123");
        assert_ne!(web, key);
        assert_eq!(UserKey::split(&web).unwrap().messenger, Messenger::Web);
        assert_eq!(UserKey::split(&Key::parse("demo").unwrap()), None);
        assert_eq!(UserKey::split(&Key::parse("xmtp:").unwrap()), None);
    }

    #[test]
    fn an_xmtp_users_wallet_is_derived_from_the_bare_inbox_id() {
        let inbox = "4a2b".repeat(16);
        let xmtp = UserKey::key(Messenger::Xmtp, &inbox).unwrap();
        assert_eq!(wallet_id(&xmtp), inbox);
        let web = UserKey::key(Messenger::Web, &inbox).unwrap();
        assert_eq!(wallet_id(&web), format!("web:{inbox}"));
        assert_eq!(wallet_id(&Key::parse("demo").unwrap()), "demo");
    }

    #[tokio::test]
    async fn a_user_of_a_messenger_that_is_not_running_is_refused_for_good() {
        let none = Messengers::default();
        let user = UserKey::key(Messenger::Xmtp, "abc").unwrap();
        let error = none
            .send(&user, &Outgoing::Text("hi".into()))
            .await
            .unwrap_err();
        assert!(!error.is_transient(), "{error}");
        let unknown = Key::parse("carrier-pigeon:7").unwrap();
        assert!(
            !none
                .send(&unknown, &Outgoing::Text("hi".into()))
                .await
                .unwrap_err()
                .is_transient()
        );
    }
}
