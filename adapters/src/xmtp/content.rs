//! The XMTP content types of `xmtp.md` as typed Rust values, their JSON as the bridge
//! speaks it (the same JSON `bridge/codec.mjs` maps to the SDK, pinned by
//! `fixtures/xmtp/*.json`), and the mapping to and from the conversation machine.
//!
//! | direction | XMTP type | ours |
//! |---|---|---|
//! | in | text, markdown | `InboundContent::Text` |
//! | in | reply with text or markdown inside | `InboundContent::Text` (a reply "2" picks action 2) |
//! | in | reaction | `InboundContent::Reaction` |
//! | in | intent | `InboundContent::Intent { menu_id, action_id }` |
//! | in | transactionReference | `InboundContent::TransactionReference { tx_hash }` |
//! | in | walletSendCalls, actions, unknown types | none: the machine takes no such input (we never sign for a user) |
//! | out | `Outgoing::Text` | text |
//! | out | `Outgoing::Actions(menu)` | `coinbase.com/actions:1.0`, `expiresAt` in ISO-8601 |
//! | out | [`funding_request`], [`transaction_reference`], [`reaction`] | walletSendCalls, transactionReference, reaction |
//!
//! Parsing is strict per type (serde structs), so a malformed payload is an error the
//! supervisor logs and skips, never a panic.

use alloy_primitives::{Address, B256};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use worldstore_domain::conversation::{InboundContent, Menu, Outgoing};
use worldstore_domain::money::UsdcAmount;

pub const TEXT: &str = "xmtp.org/text:1.0";
pub const MARKDOWN: &str = "xmtp.org/markdown:1.0";
pub const REPLY: &str = "xmtp.org/reply:1.0";
pub const REACTION: &str = "xmtp.org/reaction:1.0";
pub const WALLET_SEND_CALLS: &str = "xmtp.org/walletSendCalls:1.0";
pub const TRANSACTION_REFERENCE: &str = "xmtp.org/transactionReference:1.0";
pub const ACTIONS: &str = "coinbase.com/actions:1.0";
pub const INTENT: &str = "coinbase.com/intent:1.0";

/// `transfer(address,uint256)`.
const TRANSFER_SELECTOR: &str = "a9059cbb";

#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    #[error("malformed {content_type} content: {source}")]
    Malformed {
        content_type: &'static str,
        source: serde_json::Error,
    },
    #[error("a reply cannot hold a reply")]
    NestedReply,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReactionAction {
    Added,
    Removed,
    #[serde(other)]
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReactionSchema {
    Unicode,
    Shortcode,
    Custom,
    #[serde(other)]
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reaction {
    pub reference: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_inbox_id: Option<String>,
    pub action: ReactionAction,
    pub content: String,
    pub schema: ReactionSchema,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionStyle {
    Primary,
    Secondary,
    Danger,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Action {
    pub id: String,
    pub label: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub style: Option<ActionStyle>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Actions {
    pub id: String,
    pub description: String,
    pub actions: Vec<Action>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Intent {
    pub id: String,
    pub action_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransactionMetadata {
    pub transaction_type: String,
    pub currency: String,
    /// Atomic units (a JSON number in the SDK's type).
    pub amount: u64,
    pub decimals: u32,
    pub from_address: String,
    pub to_address: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransactionReference {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub network_id: String,
    /// The transaction hash, `0x`-prefixed.
    pub reference: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<TransactionMetadata>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WalletCall {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gas: Option<String>,
    /// `description, transactionType, currency, amount, decimals, networkId` (all strings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WalletSendCalls {
    pub version: String,
    pub chain_id: String,
    pub from: String,
    pub calls: Vec<WalletCall>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub reference: String,
    pub reference_inbox_id: Option<String>,
    pub content: XmtpContent,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReplyWire {
    reference: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reference_inbox_id: Option<String>,
    content_type: String,
    content: Value,
}

/// One message's content, by XMTP content type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XmtpContent {
    Text(String),
    Markdown(String),
    Reply(Box<Reply>),
    Reaction(Reaction),
    Actions(Actions),
    Intent(Intent),
    TransactionReference(TransactionReference),
    WalletSendCalls(WalletSendCalls),
    /// A type we do not map (attachments, read receipts, group updates...).
    Unsupported {
        content_type: String,
    },
}

fn typed<T: for<'de> Deserialize<'de>>(
    content_type: &'static str,
    content: Value,
) -> Result<T, ContentError> {
    serde_json::from_value(content).map_err(|source| ContentError::Malformed {
        content_type,
        source,
    })
}

fn json<T: Serialize>(value: &T) -> Value {
    // Serialising these plain structs (string keys, no custom serialisers) cannot fail.
    serde_json::to_value(value).unwrap_or(Value::Null)
}

impl XmtpContent {
    /// Parses the bridge's `contentType` and `content`.
    pub fn parse(content_type: &str, content: Value) -> Result<Self, ContentError> {
        Ok(match content_type {
            TEXT => Self::Text(typed(TEXT, content)?),
            MARKDOWN => Self::Markdown(typed(MARKDOWN, content)?),
            REACTION => Self::Reaction(typed(REACTION, content)?),
            ACTIONS => Self::Actions(typed(ACTIONS, content)?),
            INTENT => Self::Intent(typed(INTENT, content)?),
            TRANSACTION_REFERENCE => {
                Self::TransactionReference(typed(TRANSACTION_REFERENCE, content)?)
            }
            WALLET_SEND_CALLS => Self::WalletSendCalls(typed(WALLET_SEND_CALLS, content)?),
            REPLY => {
                let wire: ReplyWire = typed(REPLY, content)?;
                let inner = Self::parse(&wire.content_type, wire.content)?;
                if matches!(inner, Self::Reply(_)) {
                    return Err(ContentError::NestedReply);
                }
                Self::Reply(Box::new(Reply {
                    reference: wire.reference,
                    reference_inbox_id: wire.reference_inbox_id,
                    content: inner,
                }))
            }
            other => Self::Unsupported {
                content_type: other.to_owned(),
            },
        })
    }

    pub fn content_type(&self) -> &str {
        match self {
            Self::Text(_) => TEXT,
            Self::Markdown(_) => MARKDOWN,
            Self::Reply(_) => REPLY,
            Self::Reaction(_) => REACTION,
            Self::Actions(_) => ACTIONS,
            Self::Intent(_) => INTENT,
            Self::TransactionReference(_) => TRANSACTION_REFERENCE,
            Self::WalletSendCalls(_) => WALLET_SEND_CALLS,
            Self::Unsupported { content_type } => content_type,
        }
    }

    /// The `content` JSON the bridge takes (inverse of [`XmtpContent::parse`]).
    pub fn to_json(&self) -> Value {
        match self {
            Self::Text(text) | Self::Markdown(text) => Value::String(text.clone()),
            Self::Reply(reply) => json(&ReplyWire {
                reference: reply.reference.clone(),
                reference_inbox_id: reply.reference_inbox_id.clone(),
                content_type: reply.content.content_type().to_owned(),
                content: reply.content.to_json(),
            }),
            Self::Reaction(r) => json(r),
            Self::Actions(a) => json(a),
            Self::Intent(i) => json(i),
            Self::TransactionReference(t) => json(t),
            Self::WalletSendCalls(w) => json(w),
            Self::Unsupported { .. } => Value::Null,
        }
    }

    /// What the conversation machine sees, if it takes this content at all.
    pub fn to_inbound(&self) -> Option<InboundContent> {
        match self {
            Self::Text(text) | Self::Markdown(text) => Some(InboundContent::Text(text.clone())),
            Self::Reply(reply) => match &reply.content {
                Self::Text(text) | Self::Markdown(text) => Some(InboundContent::Text(text.clone())),
                _ => None,
            },
            Self::Reaction(_) => Some(InboundContent::Reaction),
            Self::Intent(intent) => Some(InboundContent::Intent {
                menu_id: intent.id.clone(),
                action_id: intent.action_id.clone(),
            }),
            Self::TransactionReference(t) => Some(InboundContent::TransactionReference {
                tx_hash: t.reference.clone(),
            }),
            Self::Actions(_) | Self::WalletSendCalls(_) | Self::Unsupported { .. } => None,
        }
    }
}

impl From<&Outgoing> for XmtpContent {
    fn from(outgoing: &Outgoing) -> Self {
        match outgoing {
            Outgoing::Text(text) => Self::Text(text.clone()),
            Outgoing::Actions(menu) => Self::Actions(actions_of(menu)),
            Outgoing::Card(card) => Self::Text(card.fallback_text()),
        }
    }
}

/// A menu as `coinbase.com/actions:1.0`.
pub fn actions_of(menu: &Menu) -> Actions {
    Actions {
        id: menu.id.clone(),
        description: menu.description.clone(),
        actions: menu
            .actions
            .iter()
            .map(|item| Action {
                id: item.id.clone(),
                label: item.label.clone(),
                image_url: None,
                style: None,
                expires_at: None,
            })
            .collect(),
        expires_at: Some(iso_8601(menu.expires_at)),
    }
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SS.000Z` (the form the SDK writes).
pub fn iso_8601(unix_seconds: u64) -> String {
    let days = unix_seconds / 86_400;
    let secs = unix_seconds % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm), for days since 1970-01-01.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.000Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// `0x` + hex chain id, as walletSendCalls wants it (Base Sepolia is `0x14a34`).
pub fn chain_id_hex(chain_id: u64) -> String {
    format!("0x{chain_id:x}")
}

/// `transfer(to, amount)` call data: selector, 32-byte recipient, 32-byte amount.
pub fn usdc_transfer_calldata(to: Address, amount: UsdcAmount) -> String {
    format!(
        "0x{TRANSFER_SELECTOR}{:0>64}{:064x}",
        alloy_primitives::hex::encode(to.as_slice()),
        amount.atomic()
    )
}

/// A request that the user's wallet send `amount` USDC to `recipient`.
pub struct FundingRequest<'a> {
    pub chain_id: u64,
    pub usdc: Address,
    pub from: Address,
    pub recipient: Address,
    pub amount: UsdcAmount,
    pub description: &'a str,
}

/// The walletSendCalls for a [`FundingRequest`] (one USDC `transfer` call).
pub fn funding_request(request: &FundingRequest<'_>) -> XmtpContent {
    let network = chain_id_hex(request.chain_id);
    let metadata = BTreeMap::from([
        ("description".to_owned(), request.description.to_owned()),
        ("transactionType".to_owned(), "transfer".to_owned()),
        ("currency".to_owned(), "USDC".to_owned()),
        ("amount".to_owned(), request.amount.atomic().to_string()),
        ("decimals".to_owned(), "6".to_owned()),
        ("networkId".to_owned(), network.clone()),
    ]);
    XmtpContent::WalletSendCalls(WalletSendCalls {
        version: "1.0".to_owned(),
        chain_id: network,
        from: request.from.to_string(),
        calls: vec![WalletCall {
            to: Some(request.usdc.to_string()),
            data: Some(usdc_transfer_calldata(request.recipient, request.amount)),
            value: None,
            gas: None,
            metadata: Some(metadata),
        }],
        capabilities: None,
    })
}

/// A reference to a mined USDC transfer, so the user's client can show it.
pub fn transaction_reference(
    chain_id: u64,
    tx_hash: B256,
    metadata: Option<TransactionMetadata>,
) -> XmtpContent {
    XmtpContent::TransactionReference(TransactionReference {
        namespace: Some("eip155".to_owned()),
        network_id: chain_id_hex(chain_id),
        reference: tx_hash.to_string(),
        metadata,
    })
}

/// An emoji reaction added to the message `reference`.
pub fn reaction(reference: &str, emoji: &str) -> XmtpContent {
    XmtpContent::Reaction(Reaction {
        reference: reference.to_owned(),
        reference_inbox_id: None,
        action: ReactionAction::Added,
        content: emoji.to_owned(),
        schema: ReactionSchema::Unicode,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn fixtures() -> Vec<(String, String, Value)> {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/xmtp");
        let mut all: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| {
                let path = entry.unwrap().path();
                let fixture: Value =
                    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
                (
                    path.file_name().unwrap().to_string_lossy().into_owned(),
                    fixture["contentType"].as_str().unwrap().to_owned(),
                    fixture["content"].clone(),
                )
            })
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    fn fixture(name: &str) -> Value {
        fixtures()
            .into_iter()
            .find(|(file, _, _)| file == name)
            .unwrap()
            .2
    }

    #[test]
    fn every_fixture_parses_and_serialises_back_to_the_same_json() {
        for (name, content_type, content) in fixtures() {
            let parsed = XmtpContent::parse(&content_type, content.clone()).unwrap();
            assert!(
                !matches!(parsed, XmtpContent::Unsupported { .. }),
                "{name} is unsupported"
            );
            assert_eq!(parsed.content_type(), content_type, "{name}");
            assert_eq!(parsed.to_json(), content, "{name}");
        }
    }

    #[test]
    fn every_content_type_of_the_reference_has_a_fixture() {
        let covered: Vec<_> = fixtures().into_iter().map(|(_, t, _)| t).collect();
        for t in [
            TEXT,
            MARKDOWN,
            REPLY,
            REACTION,
            WALLET_SEND_CALLS,
            TRANSACTION_REFERENCE,
            ACTIONS,
            INTENT,
        ] {
            assert!(covered.iter().any(|c| c == t), "no fixture for {t}");
        }
    }

    #[test]
    fn a_malformed_payload_is_an_error_not_a_panic() {
        let intent = serde_json::json!({"id": 7});
        assert!(XmtpContent::parse(INTENT, intent).is_err());
        let nested = serde_json::json!({"reference": "a", "contentType": REPLY,
            "content": {"reference": "b", "contentType": TEXT, "content": "x"}});
        assert!(matches!(
            XmtpContent::parse(REPLY, nested),
            Err(ContentError::NestedReply)
        ));
    }

    #[test]
    fn a_funding_request_is_a_usdc_transfer_call() {
        let request = FundingRequest {
            chain_id: 84_532,
            usdc: "0x036CbD53842c5426634e7929541eC2318f3dCF7e"
                .parse()
                .unwrap(),
            from: Address::repeat_byte(0x22),
            recipient: Address::repeat_byte(0x11),
            amount: UsdcAmount::from_usdc(5),
            description: "Add 5 USDC to your Worldstore balance",
        };
        assert_eq!(
            funding_request(&request).to_json(),
            fixture("wallet_send_calls.json")
        );
    }

    #[test]
    fn calldata_is_selector_recipient_and_amount_in_32_byte_words() {
        let data = usdc_transfer_calldata(Address::repeat_byte(0xab), UsdcAmount::from_atomic(1));
        assert_eq!(data.len(), 2 + 8 + 64 + 64);
        assert!(data.starts_with("0xa9059cbb000000000000000000000000abab"));
        assert!(data.ends_with(&format!("{:064x}", 1)));
    }

    #[test]
    fn chain_ids_are_hex() {
        assert_eq!(chain_id_hex(84_532), "0x14a34");
        assert_eq!(chain_id_hex(8453), "0x2105");
    }

    #[test]
    fn times_are_iso_8601_in_utc() {
        assert_eq!(iso_8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_8601(951_782_400), "2000-02-29T00:00:00.000Z");
        assert_eq!(iso_8601(1_795_698_000), "2026-11-26T13:00:00.000Z");
    }

    #[test]
    fn a_transaction_reference_names_the_network_and_hash() {
        let hash = B256::repeat_byte(0x5e);
        let json = transaction_reference(84_532, hash, None).to_json();
        assert_eq!(json["namespace"], "eip155");
        assert_eq!(json["networkId"], "0x14a34");
        assert_eq!(json["reference"], hash.to_string());
    }
}
