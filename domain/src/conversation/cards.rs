//! Structured messages beyond text and menus: product cards, the quote card, a funding
//! request, a transaction reference and an order's progress.
//!
//! Every channel can show every card: the web chat draws them, XMTP maps the funding
//! request to `xmtp.org/walletSendCalls:1.0` and the transaction to
//! `xmtp.org/transactionReference:1.0`, and a text channel prints [`Card::fallback_text`].
//! Product and quote cards are always followed by a menu that carries the same choice as
//! buttons, so a channel that cannot draw them may skip them ([`Card::menu_follows`]).

use crate::money::UsdcAmount;
use crate::network::Network;
use alloy_primitives::{Address, B256};
use serde::{Deserialize, Serialize};

/// A product as a quick-buy card shows it. Title and image come from the catalogue:
/// untrusted text, escaped by every renderer.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ProductCard {
    pub asin: String,
    pub title: String,
    pub price: Option<UsdcAmount>,
    #[serde(default)]
    pub image: Option<String>,
    /// Stars out of 5 as the catalogue writes them ("4.6").
    #[serde(default)]
    pub rating: Option<String>,
    #[serde(default)]
    pub reviews: Option<u64>,
}

/// The quote the user is asked to confirm: exactly what will be signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuoteCard {
    pub asin: String,
    pub title: String,
    pub price: UsdcAmount,
    pub fee: UsdcAmount,
    pub total: UsdcAmount,
    pub network: Network,
    /// The merchant's order id.
    pub order_id: String,
    /// Unix seconds after which the quote is no longer honoured.
    pub expires_at: Option<u64>,
}

/// A request to move USDC from the user's own wallet to their agent wallet
/// (`walletSendCalls` on XMTP, an approval card in the web chat).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FundingRequest {
    /// Unique per request; approving answers it.
    pub id: String,
    /// The user's own wallet, when the channel knows it.
    pub from: Option<Address>,
    /// The user's agent wallet.
    pub to: Address,
    pub amount: UsdcAmount,
    pub network: Network,
    pub token: Address,
}

/// What a transaction did for the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransactionPurpose {
    Payment,
    Refund,
    Funding,
}

/// A transaction on chain, shown as a link where the network has an explorer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransactionRef {
    pub network: Network,
    pub tx_hash: B256,
    pub purpose: TransactionPurpose,
    pub amount: Option<UsdcAmount>,
}

/// Where an order stands, as the order timeline shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStage {
    Paid,
    Shipped,
    Delivered,
    Refunded,
    Failed,
}

impl OrderStage {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStage::Paid => "paid",
            OrderStage::Shipped => "shipped",
            OrderStage::Delivered => "delivered",
            OrderStage::Refunded => "refunded",
            OrderStage::Failed => "failed",
        }
    }
}

/// One step of an order's progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderProgress {
    pub order_id: String,
    pub title: Option<String>,
    pub stage: OrderStage,
    /// Carrier and tracking number, refund reason, and the like.
    pub detail: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Card {
    Products(Vec<ProductCard>),
    Quote(QuoteCard),
    Funding(FundingRequest),
    Transaction(TransactionRef),
    Order(OrderProgress),
}

impl Card {
    /// True when a menu with the same choice follows this card.
    pub fn menu_follows(&self) -> bool {
        matches!(self, Card::Products(_) | Card::Quote(_))
    }

    /// The card as plain text, for channels that cannot draw it.
    pub fn fallback_text(&self) -> String {
        match self {
            Card::Products(products) => products
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let price = p
                        .price
                        .map_or_else(|| "price unknown".into(), |a| format!("{a} USDC"));
                    format!("{}. {} ({price})", i + 1, p.title)
                })
                .collect::<Vec<_>>()
                .join("\n"),
            Card::Quote(q) => format!(
                "{}\nPrice {} USDC + fee {} USDC = {} USDC on {}",
                q.title,
                q.price,
                q.fee,
                q.total,
                q.network.v1_name()
            ),
            Card::Funding(f) => format!(
                "Send {} USDC on {} to your agent wallet {}",
                f.amount,
                f.network.v1_name(),
                f.to.to_checksum(None)
            ),
            Card::Transaction(t) => {
                let what = match t.purpose {
                    TransactionPurpose::Payment => "Payment",
                    TransactionPurpose::Refund => "Refund",
                    TransactionPurpose::Funding => "Funding",
                };
                format!(
                    "{what} transaction on {}: {:#x}",
                    t.network.v1_name(),
                    t.tx_hash
                )
            }
            Card::Order(o) => {
                let mut text = format!("Order {}: {}", o.order_id, o.stage.as_str());
                if let Some(detail) = &o.detail {
                    text.push_str(&format!(" ({detail})"));
                }
                text
            }
        }
    }
}
