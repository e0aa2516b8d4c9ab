//! The web chat ([`WebChat`]) as a messenger: users are `web:<name>`, where the name is
//! the one the page said hello with (the socket's own user, never message content).
//!
//! The web chat trusts the name the page sends: it is for the sandbox and for local use on
//! 127.0.0.1, not a sign-in.

use super::{Arrivals, Messenger, UserKey, deliver_inbound};
use crate::agent::{Agent, AgentPorts, Channel, ChannelError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::mpsc;
use worldstore_adapters::webchat::{WebChat, WebEvent, WebInbound};
use worldstore_domain::conversation::{Card, FundingRequest, Outgoing};
use worldstore_domain::ports::store::Key;

/// The web chat's sending half; remembers each user's funding requests so that an
/// approval names one the agent really sent.
#[derive(Clone)]
pub struct WebMessenger {
    chat: WebChat,
    funding: Arc<Mutex<HashMap<(Key, String), FundingRequest>>>,
}

impl WebMessenger {
    pub fn new(chat: WebChat) -> Self {
        Self {
            chat,
            funding: Arc::default(),
        }
    }

    /// Draws `message` for the web chat user `name` (agent key `user`).
    pub(super) fn send_to(
        &self,
        user: &Key,
        name: &str,
        message: &Outgoing,
    ) -> Result<(), ChannelError> {
        let socket_user = Key::parse(name)
            .map_err(|e| ChannelError::Rejected(format!("unusable web user: {e}")))?;
        if let Outgoing::Card(Card::Funding(request)) = message {
            self.funding
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert((user.clone(), request.id.clone()), request.clone());
        }
        self.chat
            .deliver(&socket_user, message)
            .map(|_| ())
            .map_err(|e| ChannelError::Unavailable(e.to_string()))
    }

    /// The open funding request `request_id` of `user`, taken (an approval answers it once).
    fn take_funding(&self, user: &Key, request_id: String) -> Option<FundingRequest> {
        self.funding
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&(user.clone(), request_id))
    }
}

/// Hands every web chat event to `agent` until the web chat closes.
pub async fn run_inbound<P: AgentPorts, A: Arrivals<P>>(
    agent: Agent<P>,
    web: WebMessenger,
    arrivals: A,
    mut inbound: mpsc::Receiver<WebInbound>,
) {
    while let Some(event) = inbound.recv().await {
        let user = match UserKey::key(Messenger::Web, event.user.as_str()) {
            Ok(user) => user,
            Err(error) => {
                tracing::warn!(%error, "web chat user refused");
                continue;
            }
        };
        match event.event {
            WebEvent::Content(content) => {
                deliver_inbound(&agent, &arrivals, &user, event.message_id.as_str(), content).await;
            }
            WebEvent::ApproveFunding { request_id } => {
                arrivals.before(&agent, &user).await;
                let result = match web.take_funding(&user, request_id) {
                    Some(request) => arrivals.approve(&agent, &user, &request).await,
                    None => agent
                        .channel()
                        .send(
                            &user,
                            &Outgoing::Text("That funding request is no longer open.".into()),
                        )
                        .await
                        .map_err(|e| e.to_string()),
                };
                if let Err(error) = result {
                    tracing::error!(%error, user = %user, "web chat funding approval");
                }
            }
        }
    }
}
