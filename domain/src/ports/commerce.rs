//! The `Commerce` port: Amazon orders placed and fulfilled through a commerce provider
//! (Crossmint live, our own deterministic fulfilment in the sandbox).
//!
//! Contract, in the order the merchant's `Settlement` machine uses it:
//!
//! | call | when | answer |
//! |------|------|--------|
//! | [`Commerce::create_order`] | buyer asks to buy | an [`Order`] whose [`Order::quote_outcome`] is payable, or a [`QuoteProblem`] the agent can explain |
//! | [`Commerce::fresh_quote`] | before paying | the same order while its quote is valid, else a new order for the same request (line items cannot be edited; an expired quote needs a new order) |
//! | [`Commerce::pay_order`] | **only after the buyer's USDC settlement is confirmed** | [`PaymentOutcome`]: paid, already submitted (safe repeat), or not paid with a reason |
//! | [`Commerce::order`] | polling after payment, no faster than [`ORDER_POLL_INTERVAL_MS`] | the order; [`Order::fulfilment`] says per line item what was delivered or failed |
//! | [`Commerce::tracking`] | after shipping | parcels with carrier and tracking number |
//! | [`Commerce::request_return`] | the buyer wants to return a delivered item | the provider's acknowledgement |
//!
//! Outcomes versus errors: a problem the business must act on (quote expired, item
//! unavailable, delivery failed, the payment transaction rejected) is an `Ok` value, and
//! [`PaymentOutcome::refund_required`] / [`Fulfilment::refund_required`] say when the buyer
//! must be refunded. `Err(CommerceError)` is only for the call itself failing; its
//! [`ErrorClass`] tells a transient failure (retry the same call, with the same idempotency
//! key) from a fatal one. A transient error never means "refund".
//!
//! Time is an input (`now`, unix seconds): quote expiry is judged against it and the
//! sandbox's lifecycle runs on it.

use super::ErrorClass;
use super::catalog::{Asin, ProductText};
use crate::money::UsdcAmount;
use crate::network::Network;
use crate::profile::Recipient;
use alloy_primitives::Address;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::future::Future;

/// Polling an order faster than this is refused by the provider's guidance.
pub const ORDER_POLL_INTERVAL_MS: u64 = 2_500;

macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $wire:literal),+ $(,)? }) => {
        $(#[$doc])*
        ///
        /// Values this version does not know are kept in `Unknown`, never refused.
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(from = "String", into = "String")]
        pub enum $name {
            $($variant,)+
            Unknown(String),
        }

        impl $name {
            pub fn from_wire(value: &str) -> Self {
                match value {
                    $($wire => Self::$variant,)+
                    other => Self::Unknown(other.to_owned()),
                }
            }

            pub fn as_wire(&self) -> &str {
                match self {
                    $(Self::$variant => $wire,)+
                    Self::Unknown(other) => other,
                }
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                Self::from_wire(&value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> Self {
                value.as_wire().to_owned()
            }
        }
    };
}

wire_enum!(
    /// Where an order is in its life.
    OrderPhase {
        Quote => "quote",
        Payment => "payment",
        Delivery => "delivery",
        Completed => "completed",
        Failed => "failed",
    }
);

wire_enum!(
    /// The state of an order's quote.
    QuoteStatus {
        Valid => "valid",
        Expired => "expired",
        RequiresRecipient => "requires-recipient",
        RequiresPhysicalAddress => "requires-physical-address",
        AllLineItemsUnavailable => "all-line-items-unavailable",
    }
);

wire_enum!(
    /// The state of one line item's quote.
    LineItemQuoteStatus {
        Valid => "valid",
        Expired => "expired",
        RequiresRecipient => "requires-recipient",
        ItemUnavailable => "item-unavailable",
    }
);

wire_enum!(
    /// The delivery of one line item.
    DeliveryStatus {
        AwaitingPayment => "awaiting-payment",
        InProgress => "in-progress",
        Completed => "completed",
        Failed => "failed",
    }
);

wire_enum!(
    /// The state of the order's payment.
    PaymentStatus {
        RequiresQuote => "requires-quote",
        RequiresCryptoPayerAddress => "requires-crypto-payer-address",
        CryptoPayerInsufficientFunds => "crypto-payer-insufficient-funds",
        RequiresKyc => "requires-kyc",
        FailedKyc => "failed-kyc",
        ManualKyc => "manual-kyc",
        AwaitingPayment => "awaiting-payment",
        InProgress => "in-progress",
        Completed => "completed",
    }
);

macro_rules! token {
    ($(#[$doc:meta])* $name:ident, $max:expr, $extra:expr, $err:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn parse(input: &str) -> Result<Self, TokenError> {
                let extra: &[u8] = $extra;
                let ok = !input.is_empty()
                    && input.len() <= $max
                    && input
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || extra.contains(&b));
                ok.then(|| Self(input.to_owned()))
                    .ok_or(TokenError($err))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = TokenError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> Self {
                value.0
            }
        }
    };
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TokenError(&'static str);

token!(
    /// The provider's order id. Safe to put in a URL path.
    OrderId, 128, b"-_", "an order id is 1 to 128 letters, digits, '-' or '_'"
);
token!(
    /// A key that makes a payment submission safe to repeat: the same key is paid once.
    IdempotencyKey, 128, b"-_.:", "an idempotency key is 1 to 128 letters, digits, '-', '_', '.' or ':'"
);

/// What to order, for whom, and who pays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRequest {
    pub recipient: Recipient,
    items: Vec<Asin>,
    /// The chain the provider is paid on, in USDC.
    pub network: Network,
    /// The treasury address that pays the provider.
    pub payer: Address,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an order has 1 to 10 products")]
pub struct OrderRequestError;

impl OrderRequest {
    pub const MAX_ITEMS: usize = 10;

    pub fn new(
        recipient: Recipient,
        items: Vec<Asin>,
        network: Network,
        payer: Address,
    ) -> Result<Self, OrderRequestError> {
        if items.is_empty() || items.len() > Self::MAX_ITEMS {
            return Err(OrderRequestError);
        }
        Ok(Self {
            recipient,
            items,
            network,
            payer,
        })
    }

    pub fn items(&self) -> &[Asin] {
        &self.items
    }
}

/// An order's quote: its state, its validity window and its total.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quote {
    pub status: QuoteStatus,
    pub quoted_at: Option<u64>,
    pub expires_at: Option<u64>,
    pub total: Option<UsdcAmount>,
}

/// Why a line item cannot be bought.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unavailability {
    pub code: String,
    pub message: ProductText,
}

/// One product of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineItem {
    pub name: Option<ProductText>,
    pub quantity: u32,
    pub quote_status: LineItemQuoteStatus,
    pub unavailability: Option<Unavailability>,
    pub total: Option<UsdcAmount>,
    pub delivery: DeliveryStatus,
    /// The on-chain transaction of the item's delivery, when the provider gives one.
    pub delivery_tx: Option<String>,
}

/// What the provider needs signed to be paid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentPreparation {
    pub chain: Option<String>,
    pub payer_address: Option<String>,
    /// The transaction that pays the order; missing means the order cannot be paid.
    pub serialized_transaction: Option<String>,
}

/// Money the provider sent back (e.g. for a failed delivery), to the payer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderRefund {
    pub amount: UsdcAmount,
    pub tx_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    pub status: PaymentStatus,
    pub failure_reason: Option<ProductText>,
    pub preparation: Option<PaymentPreparation>,
    pub refunded: Option<ProviderRefund>,
}

/// An order as the provider last reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub id: OrderId,
    pub phase: OrderPhase,
    pub quote: Quote,
    pub line_items: Vec<LineItem>,
    pub payment: Payment,
}

/// A quote the order cannot be paid under, worded for the buyer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum QuoteProblem {
    #[error("the order needs the recipient's details")]
    RequiresRecipient,
    #[error("the order needs a complete US shipping address")]
    RequiresPhysicalAddress,
    #[error("the product is not available right now")]
    ItemsUnavailable(Vec<Unavailability>),
    #[error("the store's payment wallet does not hold enough USDC right now")]
    PayerInsufficientFunds,
    #[error("the store cannot pay for this order (no payment transaction was prepared)")]
    NotPayable,
    #[error("the store did not give a price for this order")]
    NoPrice,
    #[error("the order cannot be paid right now (state {0})")]
    Other(String),
}

/// Whether an order can be paid at `now`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum QuoteOutcome {
    Payable {
        total: UsdcAmount,
        expires_at: Option<u64>,
    },
    /// The quote ran out: a new order must be created ([`Commerce::fresh_quote`]).
    Expired,
    Problem(QuoteProblem),
}

impl Order {
    /// Whether the order can be paid at `now`, or why not.
    pub fn quote_outcome(&self, now: u64) -> QuoteOutcome {
        let expired_by_clock = self.quote.expires_at.is_some_and(|at| now >= at);
        match &self.quote.status {
            QuoteStatus::Expired => return QuoteOutcome::Expired,
            QuoteStatus::Valid if expired_by_clock => return QuoteOutcome::Expired,
            QuoteStatus::Valid => {}
            QuoteStatus::RequiresRecipient => {
                return QuoteOutcome::Problem(QuoteProblem::RequiresRecipient);
            }
            QuoteStatus::RequiresPhysicalAddress => {
                return QuoteOutcome::Problem(QuoteProblem::RequiresPhysicalAddress);
            }
            QuoteStatus::AllLineItemsUnavailable => {
                return QuoteOutcome::Problem(QuoteProblem::ItemsUnavailable(
                    self.unavailabilities(),
                ));
            }
            QuoteStatus::Unknown(other) => {
                return QuoteOutcome::Problem(QuoteProblem::Other(other.clone()));
            }
        }
        // A valid quote with some items unavailable still charges for them only if we
        // accept a partial order; we do not: the buyer confirmed every item.
        let unavailable = self.unavailabilities();
        if !unavailable.is_empty() {
            return QuoteOutcome::Problem(QuoteProblem::ItemsUnavailable(unavailable));
        }
        match &self.payment.status {
            PaymentStatus::CryptoPayerInsufficientFunds => {
                return QuoteOutcome::Problem(QuoteProblem::PayerInsufficientFunds);
            }
            PaymentStatus::AwaitingPayment => {}
            other => return QuoteOutcome::Problem(QuoteProblem::Other(other.as_wire().into())),
        }
        if self.serialized_transaction().is_none() {
            return QuoteOutcome::Problem(QuoteProblem::NotPayable);
        }
        match self.quote.total {
            Some(total) => QuoteOutcome::Payable {
                total,
                expires_at: self.quote.expires_at,
            },
            None => QuoteOutcome::Problem(QuoteProblem::NoPrice),
        }
    }

    /// The transaction that pays this order, if the provider prepared one.
    pub fn serialized_transaction(&self) -> Option<&str> {
        self.payment
            .preparation
            .as_ref()
            .and_then(|p| p.serialized_transaction.as_deref())
            .filter(|tx| !tx.is_empty())
    }

    fn unavailabilities(&self) -> Vec<Unavailability> {
        self.line_items
            .iter()
            .filter(|item| item.quote_status == LineItemQuoteStatus::ItemUnavailable)
            .map(|item| {
                item.unavailability.clone().unwrap_or(Unavailability {
                    code: "item-unavailable".into(),
                    message: ProductText::clean("The item is unavailable."),
                })
            })
            .collect()
    }

    /// Where delivery stands, judged per line item: the order's `completed` phase does
    /// not mean every item arrived.
    pub fn fulfilment(&self) -> Fulfilment {
        let paid = matches!(
            self.payment.status,
            PaymentStatus::Completed | PaymentStatus::InProgress
        ) || matches!(self.phase, OrderPhase::Delivery | OrderPhase::Completed);
        // A failed order will deliver nothing more: its pending items count as failed.
        let order_failed = self.phase == OrderPhase::Failed;
        let (mut delivered, mut failed, mut pending) = (Vec::new(), Vec::new(), false);
        for (index, item) in self.line_items.iter().enumerate() {
            match item.delivery {
                DeliveryStatus::Completed => delivered.push(index),
                DeliveryStatus::Failed => failed.push(index),
                _ if order_failed => failed.push(index),
                _ => pending = true,
            }
        }
        if pending {
            if paid || !delivered.is_empty() || !failed.is_empty() {
                Fulfilment::InProgress
            } else {
                Fulfilment::AwaitingPayment
            }
        } else if !failed.is_empty() {
            Fulfilment::Failed { failed, delivered }
        } else if delivered.is_empty() {
            Fulfilment::AwaitingPayment
        } else {
            Fulfilment::Delivered
        }
    }
}

/// Delivery of an order as a whole, from its line items.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Fulfilment {
    AwaitingPayment,
    /// Some items are still on their way: keep polling.
    InProgress,
    /// Every item arrived.
    Delivered,
    /// Settled with failures: the items at `failed` (indexes into `line_items`) will not
    /// arrive and their price must be refunded to the buyer.
    Failed {
        failed: Vec<usize>,
        delivered: Vec<usize>,
    },
}

impl Fulfilment {
    pub fn is_settled(&self) -> bool {
        matches!(self, Fulfilment::Delivered | Fulfilment::Failed { .. })
    }

    pub fn refund_required(&self) -> bool {
        matches!(self, Fulfilment::Failed { .. })
    }
}

/// Why an order was not paid. In every case nothing left the treasury for this order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum NotPaid {
    #[error("the price quote expired before the order was paid")]
    QuoteExpired,
    #[error("{0}")]
    Quote(QuoteProblem),
    #[error("the payment was refused before sending ({reason}): {message}")]
    SimulationFailed {
        reason: String,
        message: ProductText,
    },
    #[error("the payment transaction failed on chain")]
    TransactionFailed { transaction_id: String },
}

/// The result of paying an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PaymentOutcome {
    /// The treasury's payment succeeded: poll [`Commerce::order`] for delivery.
    Paid {
        transaction_id: String,
        tx_hash: Option<String>,
    },
    /// A payment with this idempotency key was submitted before (a repeat after a crash):
    /// nothing new was sent; poll [`Commerce::order`] to learn how it ended.
    AlreadySubmitted,
    NotPaid(NotPaid),
}

impl PaymentOutcome {
    /// After the buyer's settlement, `true` means fulfilment has definitively failed and
    /// the buyer must be refunded. For [`NotPaid::QuoteExpired`] the machine may first try
    /// [`Commerce::fresh_quote`] and pay the new order if it costs no more than was
    /// settled; it returns `true` here because without that the order is dead.
    pub fn refund_required(&self) -> bool {
        matches!(self, PaymentOutcome::NotPaid(_))
    }
}

/// One parcel of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tracking {
    pub status: ProductText,
    pub carrier: Option<ProductText>,
    pub tracking_number: Option<ProductText>,
    /// Expected delivery window, unix seconds (equal bounds once delivered).
    pub delivery_window: Option<(u64, u64)>,
}

/// The provider's acknowledgement of a return request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReturnAccepted {
    pub line_item: u32,
    pub status: String,
}

/// Why a commerce call failed. Business problems are not errors (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommerceError {
    #[error("the order service is rate limiting us")]
    RateLimited { retry_after_secs: Option<u64> },
    #[error("the order service is unavailable: {0}")]
    Unavailable(String),
    #[error("the payment transaction {transaction_id} is still pending")]
    StillPending { transaction_id: String },
    #[error("the order service knows no such order")]
    NotFound,
    #[error("the order service refused the request: {message}")]
    Refused {
        code: Option<String>,
        message: ProductText,
    },
    #[error("the order service refused our credentials")]
    Unauthorized,
    #[error("the order service answered something we cannot read: {0}")]
    Malformed(String),
}

impl CommerceError {
    pub fn class(&self) -> ErrorClass {
        match self {
            CommerceError::RateLimited { .. }
            | CommerceError::Unavailable(_)
            | CommerceError::StillPending { .. } => ErrorClass::Transient,
            CommerceError::NotFound | CommerceError::Refused { .. } => ErrorClass::Rejected,
            CommerceError::Unauthorized | CommerceError::Malformed(_) => ErrorClass::Fatal,
        }
    }
}

/// Orders, payment, delivery, tracking and returns.
pub trait Commerce: Send + Sync {
    /// Creates an order and returns it with its quote. Problems with the quote come back
    /// inside the order ([`Order::quote_outcome`]), not as errors.
    fn create_order(
        &self,
        now: u64,
        request: &OrderRequest,
    ) -> impl Future<Output = Result<Order, CommerceError>> + Send;

    /// The order as the provider sees it now.
    fn order(
        &self,
        now: u64,
        id: &OrderId,
    ) -> impl Future<Output = Result<Order, CommerceError>> + Send;

    /// Pays the order from the treasury. Call only after the buyer's settlement is
    /// confirmed on chain. Safe to repeat with the same `key`: the provider pays once.
    fn pay_order(
        &self,
        now: u64,
        id: &OrderId,
        key: &IdempotencyKey,
    ) -> impl Future<Output = Result<PaymentOutcome, CommerceError>> + Send;

    /// Parcels of a shipped order (empty before shipping).
    fn tracking(
        &self,
        now: u64,
        id: &OrderId,
    ) -> impl Future<Output = Result<Vec<Tracking>, CommerceError>> + Send;

    /// Asks the provider to take back one delivered item (`line_item` indexes
    /// `Order::line_items`) and refund it.
    fn request_return(
        &self,
        now: u64,
        id: &OrderId,
        line_item: u32,
        reason: &str,
    ) -> impl Future<Output = Result<ReturnAccepted, CommerceError>> + Send;

    /// `order` while its quote is still valid at `now`, otherwise a new order for the same
    /// request (the provider's quotes expire and orders cannot be edited).
    fn fresh_quote(
        &self,
        now: u64,
        order: &Order,
        request: &OrderRequest,
    ) -> impl Future<Output = Result<Order, CommerceError>> + Send {
        async move {
            match order.quote_outcome(now) {
                QuoteOutcome::Expired => self.create_order(now, request).await,
                _ => Ok(order.clone()),
            }
        }
    }
}

/// A shared provider is a provider (one process's merchant and its workers share one).
impl<T: Commerce> Commerce for std::sync::Arc<T> {
    fn create_order(
        &self,
        now: u64,
        request: &OrderRequest,
    ) -> impl Future<Output = Result<Order, CommerceError>> + Send {
        (**self).create_order(now, request)
    }

    fn order(
        &self,
        now: u64,
        id: &OrderId,
    ) -> impl Future<Output = Result<Order, CommerceError>> + Send {
        (**self).order(now, id)
    }

    fn pay_order(
        &self,
        now: u64,
        id: &OrderId,
        key: &IdempotencyKey,
    ) -> impl Future<Output = Result<PaymentOutcome, CommerceError>> + Send {
        (**self).pay_order(now, id, key)
    }

    fn tracking(
        &self,
        now: u64,
        id: &OrderId,
    ) -> impl Future<Output = Result<Vec<Tracking>, CommerceError>> + Send {
        (**self).tracking(now, id)
    }

    fn request_return(
        &self,
        now: u64,
        id: &OrderId,
        line_item: u32,
        reason: &str,
    ) -> impl Future<Output = Result<ReturnAccepted, CommerceError>> + Send {
        (**self).request_return(now, id, line_item, reason)
    }

    fn fresh_quote(
        &self,
        now: u64,
        order: &Order,
        request: &OrderRequest,
    ) -> impl Future<Output = Result<Order, CommerceError>> + Send {
        (**self).fresh_quote(now, order, request)
    }
}

#[cfg(test)]
#[path = "commerce_tests.rs"]
mod tests;
