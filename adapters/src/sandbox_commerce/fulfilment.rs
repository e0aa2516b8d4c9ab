//! The sandbox `Commerce`: a deterministic order lifecycle on the driver's clock, with no
//! network and no keys, and failures injected per product so that every refund path of
//! the merchant's `Settlement` machine can be exercised.
//!
//! Lifecycle of an order created at `t0` and paid at `tp` (all times are the `now` the
//! caller passes; durations from [`FulfilmentConfig`]):
//!
//! | when | phase | quote | line items | tracking |
//! |------|-------|-------|------------|----------|
//! | `t0 <= now < t0 + quote_ttl`, unpaid | payment | valid, priced from the catalogue | awaiting-payment | none |
//! | `now >= t0 + quote_ttl`, unpaid | quote | expired | awaiting-payment | none |
//! | `tp <= now < tp + deliver_after` | delivery | valid | in-progress | shipped from `tp + ship_after` |
//! | `now >= tp + deliver_after` | completed | valid | completed (or failed) | delivered (or failed) |
//!
//! Injected failures ([`InjectedFailure`], per ASIN): `Unavailable` (the quote reports the
//! item unavailable), `QuoteExpiresBeforePayment` (the quote lives one second, so payment
//! after settlement finds it expired), `PaymentFails` (the treasury's transaction fails),
//! `DeliveryFails` (delivery fails after payment; the provider refunds the treasury).
//! Products absent from the catalogue or without a price are unavailable too.
//!
//! Ids, transaction hashes and tracking numbers are derived from a sequence number, so two
//! runs with the same inputs give the same outputs.

use super::catalog::SandboxCatalog;
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use worldstore_domain::UsdcAmount;
use worldstore_domain::ports::catalog::{Asin, ProductText};
use worldstore_domain::ports::commerce::{
    Commerce, CommerceError, DeliveryStatus, IdempotencyKey, LineItem, LineItemQuoteStatus,
    NotPaid, Order, OrderId, OrderPhase, OrderRequest, Payment, PaymentOutcome, PaymentPreparation,
    PaymentStatus, ProviderRefund, Quote, QuoteOutcome, QuoteStatus, ReturnAccepted, Tracking,
    Unavailability,
};

/// A failure to inject for every order line of one product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InjectedFailure {
    Unavailable,
    QuoteExpiresBeforePayment,
    PaymentFails,
    DeliveryFails,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FulfilmentConfig {
    pub quote_ttl_secs: u64,
    pub ship_after_secs: u64,
    pub deliver_after_secs: u64,
    pub failures: BTreeMap<Asin, InjectedFailure>,
    /// Order ids are `<prefix>-<seq>`: give each process run its own prefix so ids never
    /// repeat across restarts (the merchant keys its records by order id).
    pub id_prefix: String,
}

impl Default for FulfilmentConfig {
    fn default() -> Self {
        Self {
            quote_ttl_secs: 600,
            ship_after_secs: 60,
            deliver_after_secs: 300,
            failures: BTreeMap::new(),
            id_prefix: "sbx-order".into(),
        }
    }
}

impl FulfilmentConfig {
    pub fn with_failure(mut self, asin: Asin, failure: InjectedFailure) -> Self {
        self.failures.insert(asin, failure);
        self
    }
}

#[derive(Debug, Clone)]
struct Line {
    name: Option<ProductText>,
    /// `None`: the item cannot be bought.
    price: Option<UsdcAmount>,
    failure: Option<InjectedFailure>,
}

impl Line {
    fn available(&self) -> bool {
        self.price.is_some() && self.failure != Some(InjectedFailure::Unavailable)
    }
}

#[derive(Debug, Clone)]
struct Paid {
    at: u64,
    key: IdempotencyKey,
}

#[derive(Debug, Clone)]
struct SandboxOrder {
    seq: u64,
    lines: Vec<Line>,
    expires_at: u64,
    paid: Option<Paid>,
}

#[derive(Debug, Default)]
struct Ledger {
    next_seq: u64,
    orders: BTreeMap<OrderId, SandboxOrder>,
}

/// Deterministic fulfilment for the sandbox.
#[derive(Debug)]
pub struct SandboxFulfilment {
    catalog: SandboxCatalog,
    config: FulfilmentConfig,
    ledger: Mutex<Ledger>,
}

fn hash_like(tag: u8, seq: u64) -> String {
    format!("0x{tag:02x}{seq:062x}")
}

impl SandboxFulfilment {
    pub fn new(catalog: SandboxCatalog, config: FulfilmentConfig) -> Self {
        Self {
            catalog,
            config,
            ledger: Mutex::new(Ledger::default()),
        }
    }

    fn ledger(&self) -> MutexGuard<'_, Ledger> {
        // The ledger is consistent after every statement; a panic elsewhere cannot leave
        // it half-written, so a poisoned lock is still usable.
        self.ledger.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn delivered_at(&self, paid: &Paid) -> u64 {
        paid.at.saturating_add(self.config.deliver_after_secs)
    }

    fn render(&self, id: &OrderId, order: &SandboxOrder, now: u64) -> Order {
        let all_available = order.lines.iter().all(Line::available);
        let none_available = !order.lines.iter().any(Line::available);
        let expired = order.paid.is_none() && now >= order.expires_at;
        let settled = order
            .paid
            .as_ref()
            .is_some_and(|p| now >= self.delivered_at(p));
        let line_items: Vec<LineItem> = order
            .lines
            .iter()
            .map(|line| LineItem {
                name: line.name.clone(),
                quantity: 1,
                quote_status: if !line.available() {
                    LineItemQuoteStatus::ItemUnavailable
                } else if expired {
                    LineItemQuoteStatus::Expired
                } else {
                    LineItemQuoteStatus::Valid
                },
                unavailability: (!line.available()).then(|| Unavailability {
                    code: "out-of-stock".into(),
                    message: ProductText::clean("This item is currently unavailable."),
                }),
                total: line.price,
                delivery: match (&order.paid, settled) {
                    (None, _) => DeliveryStatus::AwaitingPayment,
                    (Some(_), false) => DeliveryStatus::InProgress,
                    (Some(_), true) if line.failure == Some(InjectedFailure::DeliveryFails) => {
                        DeliveryStatus::Failed
                    }
                    (Some(_), true) => DeliveryStatus::Completed,
                },
                delivery_tx: None,
            })
            .collect();
        let failed_total = line_items
            .iter()
            .filter(|item| item.delivery == DeliveryStatus::Failed)
            .filter_map(|item| item.total)
            .fold(UsdcAmount::ZERO, |sum, p| sum.checked_add(p).unwrap_or(sum));
        let total = all_available
            .then(|| {
                order
                    .lines
                    .iter()
                    .try_fold(UsdcAmount::ZERO, |sum, l| sum.checked_add(l.price?))
            })
            .flatten();
        Order {
            id: id.clone(),
            phase: match (&order.paid, settled) {
                (Some(_), true) => OrderPhase::Completed,
                (Some(_), false) => OrderPhase::Delivery,
                (None, _) if expired || none_available => OrderPhase::Quote,
                (None, _) => OrderPhase::Payment,
            },
            quote: Quote {
                status: if none_available {
                    QuoteStatus::AllLineItemsUnavailable
                } else if expired {
                    QuoteStatus::Expired
                } else {
                    QuoteStatus::Valid
                },
                quoted_at: Some(order.expires_at.saturating_sub(self.quote_ttl(order))),
                expires_at: Some(order.expires_at),
                total,
            },
            line_items,
            payment: Payment {
                status: if order.paid.is_some() {
                    PaymentStatus::Completed
                } else if none_available {
                    PaymentStatus::RequiresQuote
                } else {
                    PaymentStatus::AwaitingPayment
                },
                failure_reason: None,
                preparation: (!none_available).then(|| PaymentPreparation {
                    chain: Some("sandbox".into()),
                    payer_address: None,
                    serialized_transaction: Some(hash_like(0xaa, order.seq)),
                }),
                refunded: (!failed_total.is_zero()).then(|| ProviderRefund {
                    amount: failed_total,
                    tx_id: Some(hash_like(0xee, order.seq)),
                }),
            },
        }
    }

    fn quote_ttl(&self, order: &SandboxOrder) -> u64 {
        if order
            .lines
            .iter()
            .any(|l| l.failure == Some(InjectedFailure::QuoteExpiresBeforePayment))
        {
            1
        } else {
            self.config.quote_ttl_secs
        }
    }

    fn find<'a>(ledger: &'a Ledger, id: &OrderId) -> Result<&'a SandboxOrder, CommerceError> {
        ledger.orders.get(id).ok_or(CommerceError::NotFound)
    }
}

impl Commerce for SandboxFulfilment {
    async fn create_order(&self, now: u64, request: &OrderRequest) -> Result<Order, CommerceError> {
        let lines: Vec<Line> = request
            .items()
            .iter()
            .map(|asin| {
                let product = self.catalog.products().iter().find(|p| &p.asin == asin);
                Line {
                    name: product.map(|p| p.title.clone()),
                    price: product.and_then(|p| p.price),
                    failure: self.config.failures.get(asin).copied(),
                }
            })
            .collect();
        let mut ledger = self.ledger();
        ledger.next_seq += 1;
        let seq = ledger.next_seq;
        let id = OrderId::parse(&format!("{}-{seq:06}", self.config.id_prefix))
            .map_err(|e| CommerceError::Malformed(e.to_string()))?;
        let mut order = SandboxOrder {
            seq,
            lines,
            expires_at: now,
            paid: None,
        };
        order.expires_at = now.saturating_add(self.quote_ttl(&order));
        let rendered = self.render(&id, &order, now);
        ledger.orders.insert(id, order);
        Ok(rendered)
    }

    async fn order(&self, now: u64, id: &OrderId) -> Result<Order, CommerceError> {
        let ledger = self.ledger();
        Ok(self.render(id, Self::find(&ledger, id)?, now))
    }

    async fn pay_order(
        &self,
        now: u64,
        id: &OrderId,
        key: &IdempotencyKey,
    ) -> Result<PaymentOutcome, CommerceError> {
        let mut ledger = self.ledger();
        let order = Self::find(&ledger, id)?.clone();
        if order.paid.is_some() {
            return Ok(PaymentOutcome::AlreadySubmitted);
        }
        let transaction_id = format!("sbx-tx-{:06}", order.seq);
        match self.render(id, &order, now).quote_outcome(now) {
            QuoteOutcome::Expired => return Ok(PaymentOutcome::NotPaid(NotPaid::QuoteExpired)),
            QuoteOutcome::Problem(p) => return Ok(PaymentOutcome::NotPaid(NotPaid::Quote(p))),
            QuoteOutcome::Payable { .. } => {}
        }
        if order
            .lines
            .iter()
            .any(|l| l.failure == Some(InjectedFailure::PaymentFails))
        {
            return Ok(PaymentOutcome::NotPaid(NotPaid::TransactionFailed {
                transaction_id,
            }));
        }
        if let Some(stored) = ledger.orders.get_mut(id) {
            stored.paid = Some(Paid {
                at: now,
                key: key.clone(),
            });
        }
        Ok(PaymentOutcome::Paid {
            transaction_id,
            tx_hash: Some(hash_like(0xbb, order.seq)),
        })
    }

    async fn tracking(&self, now: u64, id: &OrderId) -> Result<Vec<Tracking>, CommerceError> {
        let ledger = self.ledger();
        let order = Self::find(&ledger, id)?;
        let Some(paid) = &order.paid else {
            return Ok(Vec::new());
        };
        if now < paid.at.saturating_add(self.config.ship_after_secs) {
            return Ok(Vec::new());
        }
        let arrival = self.delivered_at(paid);
        let settled = now >= arrival;
        Ok(order
            .lines
            .iter()
            .enumerate()
            .map(|(index, line)| {
                let failed = line.failure == Some(InjectedFailure::DeliveryFails);
                let status = match (settled, failed) {
                    (false, _) => "shipped",
                    (true, false) => "delivered",
                    (true, true) => "failed",
                };
                Tracking {
                    status: ProductText::clean(status),
                    carrier: Some(ProductText::clean("Sandbox Parcel Service")),
                    tracking_number: Some(ProductText::clean(&format!(
                        "SBX{:06}{index:02}",
                        order.seq
                    ))),
                    delivery_window: Some(if settled {
                        (arrival, arrival)
                    } else {
                        (arrival, arrival.saturating_add(86_400))
                    }),
                }
            })
            .collect())
    }

    async fn request_return(
        &self,
        now: u64,
        id: &OrderId,
        line_item: u32,
        _reason: &str,
    ) -> Result<ReturnAccepted, CommerceError> {
        let ledger = self.ledger();
        let order = self.render(id, Self::find(&ledger, id)?, now);
        let delivered = order
            .line_items
            .get(line_item as usize)
            .is_some_and(|item| item.delivery == DeliveryStatus::Completed);
        if !delivered {
            return Err(CommerceError::Refused {
                code: Some("not-delivered".into()),
                message: ProductText::clean("Only a delivered item can be returned."),
            });
        }
        Ok(ReturnAccepted {
            line_item,
            status: "refund-request-initiated".into(),
        })
    }
}

impl SandboxFulfilment {
    /// The idempotency key an order was paid with (for tests and diagnostics).
    pub fn payment_key(&self, id: &OrderId) -> Option<IdempotencyKey> {
        self.ledger()
            .orders
            .get(id)
            .and_then(|o| o.paid.as_ref().map(|p| p.key.clone()))
    }
}

#[cfg(test)]
#[path = "fulfilment_tests.rs"]
mod tests;
