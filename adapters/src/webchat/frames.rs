//! The JSON frames of the web chat WebSocket, both directions (see the module docs of
//! [`super`] for the table). Server frames are built from the domain's `Outgoing` with
//! serde; client frames are parsed into [`ClientFrame`] and every field is validated before
//! anything reaches the agent.

use serde::{Deserialize, Serialize};
use worldstore_domain::conversation::cards::{
    Card, FundingRequest, OrderProgress, ProductCard, QuoteCard, TransactionRef,
};
use worldstore_domain::conversation::{Menu, Outgoing};
use worldstore_domain::network::Network;

/// Longest user id and client message id we accept (both also pass `Key::parse`).
pub const MAX_ID_CHARS: usize = 64;
/// Longest text a user may send in one message.
pub const MAX_TEXT_CHARS: usize = 4000;

/// A logged message as the client receives it: `{"seq":N,"type":...,...}`.
#[derive(Debug, Serialize)]
pub struct Sequenced<'a> {
    pub seq: u64,
    #[serde(flatten)]
    pub body: Body<'a>,
}

/// What a logged message holds. `type` names the variant.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Body<'a> {
    Text {
        text: &'a str,
    },
    Menu(&'a Menu),
    Products {
        products: &'a [ProductCard],
    },
    Quote(&'a QuoteCard),
    Funding(&'a FundingRequest),
    Transaction {
        #[serde(flatten)]
        tx: &'a TransactionRef,
        /// A block explorer link, when the network has one and links are enabled.
        explorer: Option<String>,
    },
    Order(&'a OrderProgress),
    /// The user's own message, logged so that every tab and every reload shows it.
    User(&'a UserEcho),
}

impl<'a> Body<'a> {
    pub fn from_outgoing(outgoing: &'a Outgoing, explorer_links: bool) -> Self {
        match outgoing {
            Outgoing::Text(text) => Body::Text { text },
            Outgoing::Actions(menu) => Body::Menu(menu),
            Outgoing::Card(card) => match card {
                Card::Products(products) => Body::Products { products },
                Card::Quote(quote) => Body::Quote(quote),
                Card::Funding(funding) => Body::Funding(funding),
                Card::Transaction(tx) => Body::Transaction {
                    tx,
                    explorer: explorer_links.then(|| explorer_url(tx)).flatten(),
                },
                Card::Order(order) => Body::Order(order),
            },
        }
    }
}

/// The transaction's page on the network's public explorer.
pub fn explorer_url(tx: &TransactionRef) -> Option<String> {
    let base = match tx.network {
        Network::BaseSepolia => "https://sepolia.basescan.org/tx/",
        Network::Base => "https://basescan.org/tx/",
        Network::EthereumSepolia => "https://sepolia.etherscan.io/tx/",
        Network::Ethereum => "https://etherscan.io/tx/",
        Network::ArbitrumSepolia => "https://sepolia.arbiscan.io/tx/",
        Network::Arbitrum => "https://arbiscan.io/tx/",
        Network::Polygon => "https://polygonscan.com/tx/",
    };
    Some(format!("{base}{:#x}", tx.tx_hash))
}

/// The user's own message as logged: `{"type":"user","id":..,"kind":"text","text":..}`,
/// `"kind":"intent"` with `menu_id`/`action_id`, or `"kind":"approve"` with `request_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserEcho {
    pub id: String,
    #[serde(flatten)]
    pub content: UserContent,
}

/// What the user sent, validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum UserContent {
    Text { text: String },
    Intent { menu_id: String, action_id: String },
    Approve { request_id: String },
}

/// Frames without a sequence number: they are about this socket, not the conversation.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Control<'a> {
    /// The answer to `hello`, sent before the replay. `epoch` changes when the server's
    /// log starts afresh (a restart), so a client holding a higher `after` knows to reset.
    Welcome {
        user: &'a str,
        epoch: u64,
        last_seq: u64,
        oldest_seq: u64,
    },
    /// The message with this client id was logged and handed to the agent (or was a
    /// duplicate of one that was).
    Ack { id: &'a str, duplicate: bool },
    Error {
        code: ErrorCode,
        message: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a str>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not JSON, an unknown `type`, a missing field or a binary frame.
    Malformed,
    /// A field failed validation (id, user, text length).
    Invalid,
    /// A message before `hello`, or a second `hello`.
    Protocol,
    /// The agent is not taking messages.
    Unavailable,
}

/// A frame from the browser.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    Hello {
        user: String,
        #[serde(default)]
        after: u64,
    },
    Text {
        id: String,
        text: String,
    },
    Intent {
        id: String,
        menu_id: String,
        action_id: String,
    },
    Approve {
        id: String,
        request_id: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame is not a JSON object of a known type: {0}")]
    Malformed(String),
    #[error("{0}")]
    Invalid(&'static str),
}

impl FrameError {
    pub fn code(&self) -> ErrorCode {
        match self {
            FrameError::Malformed(_) => ErrorCode::Malformed,
            FrameError::Invalid(_) => ErrorCode::Invalid,
        }
    }
}

impl ClientFrame {
    pub fn parse(text: &str) -> Result<Self, FrameError> {
        serde_json::from_str(text).map_err(|e| FrameError::Malformed(e.to_string()))
    }

    /// The client message id, for frames that carry one.
    pub fn id(&self) -> Option<&str> {
        match self {
            ClientFrame::Hello { .. } => None,
            ClientFrame::Text { id, .. }
            | ClientFrame::Intent { id, .. }
            | ClientFrame::Approve { id, .. } => Some(id),
        }
    }
}

/// A short identifier: 1 to [`MAX_ID_CHARS`] of `[A-Za-z0-9._:-]`.
pub fn check_short_id(value: &str, what: &'static str) -> Result<(), FrameError> {
    let ok = !value.is_empty()
        && value.len() <= MAX_ID_CHARS
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(FrameError::Invalid(what))
    }
}

/// Serializes a frame; our frames hold only strings, numbers and our own serde types, so
/// this cannot fail in practice, and a failure is reported rather than unwrapped.
pub fn encode<T: Serialize>(frame: &T) -> Result<String, serde_json::Error> {
    serde_json::to_string(frame)
}
