//! XMTP as a messenger: users are `xmtp:<sender inbox id>`; replies go to the conversation
//! the user last wrote from.
//!
//! | agent message | XMTP content |
//! |---|---|
//! | `Outgoing::Text` | `xmtp.org/text:1.0` |
//! | `Outgoing::Actions(menu)` | `coinbase.com/actions:1.0` (a reply "2" still picks action 2) |
//! | funding card | `xmtp.org/walletSendCalls:1.0`: one USDC `transfer` to the agent wallet, from the user's own address (text when we know no address) |
//! | transaction card | `xmtp.org/transactionReference:1.0` |
//! | product, quote, order cards | their text (the confirmation itself is an actions menu) |
//! | `react` | `xmtp.org/reaction:1.0` on the user's message |
//!
//! | inbound XMTP content | agent input |
//! |---|---|
//! | text, markdown, a reply holding text | text |
//! | intent | the menu button |
//! | transaction reference | the user says they sent funds |
//! | reaction | a reaction |
//! | anything else | dropped |
//!
//! Our own messages and recently seen ids are dropped by the bridge; the agent's store
//! drops any message id it processed before. A send the bridge rejects is refused for good
//! ([`ChannelError::Rejected`]); a bridge that is down, slow or failing is
//! [`ChannelError::Unavailable`], so the outbox tries again.
//!
//! Which conversation reaches a user is learnt from their messages and kept in memory: a
//! message for a user who has not written since this process started waits in the outbox
//! (retried) until they write again.

use super::{Arrivals, Messenger, UserKey, deliver_inbound};
use crate::agent::{Agent, AgentPorts, ChannelError};
use alloy_primitives::Address;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::watch;
use worldstore_adapters::xmtp::content::{self, FundingRequest, XmtpContent};
use worldstore_adapters::xmtp::{SendError, XmtpBridge, XmtpSender};
use worldstore_domain::conversation::{Card, Outgoing};
use worldstore_domain::ports::store::Key;

/// Where one XMTP user is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Peer {
    conversation_id: String,
    /// Their own wallet address, the sender of a funding request.
    address: Option<Address>,
}

/// XMTP's sending half, over a running bridge.
#[derive(Clone)]
pub struct XmtpChannel {
    sender: XmtpSender,
    peers: Arc<Mutex<HashMap<String, Peer>>>,
}

impl XmtpChannel {
    pub fn new(bridge: &XmtpBridge) -> Self {
        Self {
            sender: bridge.sender(),
            peers: Arc::default(),
        }
    }

    fn peers(&self) -> std::sync::MutexGuard<'_, HashMap<String, Peer>> {
        self.peers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records that `inbox` writes from `conversation_id`.
    fn remember(&self, inbox: &str, conversation_id: &str, address: Option<&str>) {
        let peer = Peer {
            conversation_id: conversation_id.to_owned(),
            address: address.and_then(|a| a.parse().ok()),
        };
        self.peers().insert(inbox.to_owned(), peer);
    }

    fn peer(&self, inbox: &str) -> Result<Peer, ChannelError> {
        self.peers().get(inbox).cloned().ok_or_else(|| {
            ChannelError::Unavailable(
                "no XMTP conversation with this user since the start; waiting for them to write"
                    .into(),
            )
        })
    }

    pub(super) async fn send_to(
        &self,
        inbox: &str,
        message: &Outgoing,
    ) -> Result<(), ChannelError> {
        let peer = self.peer(inbox)?;
        let content = xmtp_content(message, peer.address);
        self.send(&peer.conversation_id, &content).await
    }

    pub(super) async fn react_to(
        &self,
        inbox: &str,
        to: &Key,
        emoji: &str,
    ) -> Result<(), ChannelError> {
        let peer = self.peer(inbox)?;
        self.send(
            &peer.conversation_id,
            &content::reaction(to.as_str(), emoji),
        )
        .await
    }

    async fn send(&self, conversation_id: &str, content: &XmtpContent) -> Result<(), ChannelError> {
        match self.sender.send(conversation_id, content).await {
            Ok(_) => Ok(()),
            Err(SendError::Rejected(reason)) => Err(ChannelError::Rejected(reason)),
            Err(error) => Err(ChannelError::Unavailable(error.to_string())),
        }
    }
}

/// The XMTP content for an agent message to a user whose own address is `own`.
pub fn xmtp_content(message: &Outgoing, own: Option<Address>) -> XmtpContent {
    match message {
        Outgoing::Card(Card::Funding(request)) => match request.from.or(own) {
            Some(from) => {
                let description = format!(
                    "Add {} USDC to your Worldstore agent wallet",
                    request.amount
                );
                content::funding_request(&FundingRequest {
                    chain_id: request.network.chain_id(),
                    usdc: request.token,
                    from,
                    recipient: request.to,
                    amount: request.amount,
                    description: &description,
                })
            }
            None => XmtpContent::Text(Card::Funding(request.clone()).fallback_text()),
        },
        Outgoing::Card(Card::Transaction(tx)) => {
            content::transaction_reference(tx.network.chain_id(), tx.tx_hash, None)
        }
        other => XmtpContent::from(other),
    }
}

/// Hands every XMTP message to `agent` until `stop` turns true, then stops the bridge.
pub async fn run_inbound<P: AgentPorts, A: Arrivals<P>>(
    agent: Agent<P>,
    channel: XmtpChannel,
    arrivals: A,
    mut bridge: XmtpBridge,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let message = tokio::select! {
            message = bridge.next_message() => message,
            _ = stop.wait_for(|stopped| *stopped) => None,
        };
        let Some(message) = message else { break };
        let Some(content) = message.content.to_inbound() else {
            tracing::debug!(message_id = %message.id, content_type = %message.content.content_type(), "XMTP content the agent does not take");
            continue;
        };
        let user = match UserKey::key(Messenger::Xmtp, &message.sender_inbox_id) {
            Ok(user) => user,
            Err(error) => {
                tracing::warn!(%error, "XMTP sender refused");
                continue;
            }
        };
        channel.remember(
            &message.sender_inbox_id,
            &message.conversation_id,
            message.sender_address.as_deref(),
        );
        deliver_inbound(&agent, &arrivals, &user, message.id.as_str(), content).await;
    }
    bridge.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::B256;
    use worldstore_domain::conversation::{TransactionPurpose, TransactionRef};
    use worldstore_domain::money::UsdcAmount;
    use worldstore_domain::network::Network;

    fn funding(from: Option<Address>) -> Outgoing {
        Outgoing::Card(Card::Funding(
            worldstore_domain::conversation::FundingRequest {
                id: "fund-1".into(),
                from,
                to: Address::repeat_byte(0x11),
                amount: UsdcAmount::from_usdc(5),
                network: Network::BaseSepolia,
                token: Network::BaseSepolia.usdc().address,
            },
        ))
    }

    #[test]
    fn a_funding_card_is_a_usdc_transfer_from_the_users_own_address() {
        let own = Address::repeat_byte(0x22);
        let XmtpContent::WalletSendCalls(calls) = xmtp_content(&funding(None), Some(own)) else {
            panic!("wallet send calls expected")
        };
        assert_eq!(calls.chain_id, "0x14a34");
        assert_eq!(calls.from, own.to_string());
        assert_eq!(
            calls.calls[0].to.as_deref(),
            Some(Network::BaseSepolia.usdc().address.to_string().as_str())
        );
        assert_eq!(
            calls.calls[0].data.as_deref(),
            Some(
                content::usdc_transfer_calldata(
                    Address::repeat_byte(0x11),
                    UsdcAmount::from_usdc(5)
                )
                .as_str()
            )
        );
        // Without any address of theirs, the card's text.
        assert!(matches!(
            xmtp_content(&funding(None), None),
            XmtpContent::Text(_)
        ));
    }

    /// The fake bridge of the adapter tests, saying nothing unprompted.
    fn quiet_bridge(state: &std::path::Path) -> XmtpBridge {
        let tests = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../adapters/tests");
        let mut config = worldstore_adapters::xmtp::BridgeConfig::node(&tests, Vec::new());
        config.args = vec!["fake_xmtp_bridge.mjs".into()];
        config.env = [
            ("FAKE_SCENARIO", "quiet".to_owned()),
            ("FAKE_STATE_DIR", state.display().to_string()),
            (
                "FAKE_FIXTURES",
                tests.join("../../fixtures/xmtp").display().to_string(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.into()))
        .collect();
        config.initial_backoff = std::time::Duration::from_millis(20);
        config.send_timeout = std::time::Duration::from_secs(20);
        XmtpBridge::spawn(config)
    }

    #[tokio::test]
    async fn bridge_failures_are_retried_and_rejections_are_not() {
        use crate::agent::Channel;
        let state =
            std::env::temp_dir().join(format!("worldstore-xmtp-channel-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&state);
        std::fs::create_dir_all(&state).unwrap();
        let mut bridge = quiet_bridge(&state);
        bridge.ready().await.unwrap();
        let channel = XmtpChannel::new(&bridge);
        let messengers = super::super::Messengers {
            web: None,
            xmtp: Some(channel.clone()),
        };
        let hello = Outgoing::Text("hi".into());
        let user = |inbox: &str| Key::parse(&format!("xmtp:{inbox}")).unwrap();
        // Nobody has written from "stranger" yet: wait for them (transient).
        let unknown = messengers
            .send(&user("stranger"), &hello)
            .await
            .unwrap_err();
        assert!(unknown.is_transient(), "{unknown}");
        channel.remember("flaky", "fail-me", None);
        channel.remember("refused", "reject-me", None);
        channel.remember("crasher", "crash-me", None);
        channel.remember("pat", "conv-1", None);
        let failed = messengers.send(&user("flaky"), &hello).await.unwrap_err();
        assert!(failed.is_transient(), "{failed}");
        let rejected = messengers.send(&user("refused"), &hello).await.unwrap_err();
        assert!(!rejected.is_transient(), "{rejected}");
        let crashed = messengers.send(&user("crasher"), &hello).await.unwrap_err();
        assert!(crashed.is_transient(), "{crashed}");
        // The restarted bridge takes the next message.
        messengers.send(&user("pat"), &hello).await.unwrap();
        messengers
            .react(&user("pat"), &Key::parse("m-9").unwrap(), "👀")
            .await
            .unwrap();
        let written: Vec<serde_json::Value> =
            std::fs::read_to_string(state.join("commands.ndjson"))
                .unwrap()
                .lines()
                .map(|line| serde_json::from_str(line).unwrap())
                .collect();
        let last = &written[written.len() - 2..];
        assert_eq!(last[0]["conversationId"], "conv-1");
        assert_eq!(last[0]["content"], "hi");
        assert_eq!(last[1]["contentType"], content::REACTION);
        assert_eq!(last[1]["content"]["reference"], "m-9");
        bridge.shutdown().await;
        let gone = messengers.send(&user("pat"), &hello).await.unwrap_err();
        assert!(gone.is_transient(), "{gone}");
        std::fs::remove_dir_all(&state).unwrap();
    }

    #[test]
    fn a_transaction_card_is_a_transaction_reference() {
        let hash = B256::repeat_byte(0x5e);
        let card = Outgoing::Card(Card::Transaction(TransactionRef {
            network: Network::BaseSepolia,
            tx_hash: hash,
            purpose: TransactionPurpose::Payment,
            amount: Some(UsdcAmount::from_usdc(3)),
        }));
        let XmtpContent::TransactionReference(reference) = xmtp_content(&card, None) else {
            panic!("transaction reference expected")
        };
        assert_eq!(reference.reference, hash.to_string());
        assert_eq!(reference.network_id, "0x14a34");
    }
}
