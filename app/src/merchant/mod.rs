//! The merchant (order server): quotes an order through the `Commerce` port, answers 402
//! with the order's payment offer, settles the buyer's EIP-3009 authorization on chain, and
//! only then pays fulfilment; it follows delivery and refunds the buyer when fulfilment fails.
//!
//! ## The order's life
//! One [`Settlement`] machine per order, stored in the `settlements` table under the order
//! id, with the order's [`PaymentOffer`] inside it: a payment is always checked against the
//! offer stored for the order it names, so an authorization made for one order cannot pay
//! another (and its nonce, reserved in the same commit that accepts it, cannot pay twice).
//!
//! | step | who runs it |
//! |---|---|
//! | create the order, issue the offer (`POST /api/orders`, no payment) | the request |
//! | offline rules, chain facts, nonce reservation, settlement (`POST` with a payment) | the request, one order at a time |
//! | pay fulfilment, watch delivery, refund, reconcile a pending settlement | outbox workers ([`worker`]) |
//! | expire unpaid offers | the worker's sweep |
//!
//! Every state change is one `Store::commit` holding the new state, its outbox effects, the
//! nonce reservation and the money events (the audit log), so a crash loses nothing: the
//! workers pick the outbox up again on start.
//!
//! ## Identifying the order a payment is for
//! v2 payments echo the accepted requirements, whose `extra.orderId` names the order. v1
//! payloads carry no requirements, so the order is the open one created by the same request
//! body (the reference v1 client repeats the request as it was). Re-posting a body while its
//! offer is open returns the same order: unpaid retries leave no orphan orders behind.
//!
//! ## Who may read an order
//! `GET /api/orders/{id}` needs the bearer token issued with the order (an HMAC of the order
//! id under the server's secret); anyone else gets 404, as for an order that does not exist.

mod http;
pub mod worker;

pub use http::router;

use crate::facilitator::Clock;
use alloy_primitives::{Address, B256};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretBox};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use worldstore_domain::UsdcAmount;
use worldstore_domain::money::FeeRate;
use worldstore_domain::network::{Network, UsdcDeployment};
use worldstore_domain::ports::catalog::Asin;
use worldstore_domain::ports::chain::{Chain, ChainError};
use worldstore_domain::ports::commerce::{
    Commerce, CommerceError, OrderRequest, QuoteOutcome, QuoteProblem,
};
use worldstore_domain::ports::store::{
    Commit, Conflict, Expected, Key, MachineIndex, MachineKind, MachineRecord, MachineWrite,
    MoneyEvent, MoneyEventKind, NewEffect, NonceReservation, Status, Store, StoreError,
    StoredState,
};
use worldstore_domain::profile::Recipient;
use worldstore_domain::settlement::{
    self, BuyerNotice, Effect, Input, OrderOffer, PaymentAnswer, Settlement,
};
use worldstore_domain::x402::{
    NonceKey, PaymentOffer, PaymentPayload, PaymentRequirements, ReasonCode, Refusal, VerifyPolicy,
    check_offline,
};

/// The stored document's kind and schema version.
const DOC_KIND: &str = "settlement";
const DOC_VERSION: u32 = 1;
/// The outbox effect's kind.
const EFFECT_KIND: &str = "settlement.effect";

/// How the merchant sells.
#[derive(Clone)]
pub struct MerchantConfig {
    /// The treasury: receives the buyers' USDC and pays fulfilment.
    pub pay_to: Address,
    /// Our fee on top of the quote (`ORDER_FEE_PERCENTAGE`).
    pub fee: FeeRate,
    /// How long an offer stays open (`ORDER_PAYMENT_TIMEOUT_MINUTES`).
    pub offer_ttl_seconds: u64,
    /// x402 `maxTimeoutSeconds`: how long an authorization may be valid.
    pub max_timeout_seconds: u64,
    /// Our address as buyers reach it (the offers' `resource`).
    pub public_url: String,
    /// `/health`'s `environment`.
    pub environment: String,
    /// Keys the order tokens and request fingerprints.
    pub secret: Arc<SecretBox<[u8; 32]>>,
    /// How often delivery is polled.
    pub delivery_poll_seconds: u64,
}

impl std::fmt::Debug for MerchantConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MerchantConfig")
            .field("pay_to", &self.pay_to)
            .field("fee", &self.fee)
            .field("offer_ttl_seconds", &self.offer_ttl_seconds)
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

/// The stored document of one order: its machine and the nonce of the payment it took.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MerchantOrder {
    pub settlement: Settlement,
    /// The authorization that paid (or is paying) this order.
    #[serde(default)]
    pub paid_with: Option<NonceKey>,
    /// Every notice for the buyer, oldest first (the order's timeline).
    #[serde(default)]
    pub notices: Vec<BuyerNotice>,
    /// The verified authorization while it is being settled: a settlement interrupted by a
    /// crash is resumed from it (see [`worker`]).
    #[serde(default)]
    pub in_flight: Option<worldstore_domain::x402::VerifiedPayment>,
}

/// An outbox effect of one order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OrderEffect {
    pub order_id: Key,
    pub effect: Effect,
}

/// The request body of `POST /api/orders` (seed-system.md section 5).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrderBody {
    pub product_locator: String,
    pub email: worldstore_domain::profile::Email,
    pub physical_address: PhysicalAddress,
    #[serde(default)]
    pub payment: Option<PaymentChoice>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PhysicalAddress {
    pub name: worldstore_domain::profile::PersonName,
    #[serde(flatten)]
    pub address: worldstore_domain::profile::ShippingAddress,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PaymentChoice {
    pub method: String,
    #[serde(default)]
    pub currency: Option<String>,
}

/// A request the merchant cannot take, with the HTTP status it deserves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderError {
    /// 400: the request itself is wrong.
    BadRequest(String),
    /// 404: no such order (or not yours).
    NotFound,
    /// 422: the order cannot be sold (unavailable, no price, ...).
    CannotSell { reason: String, message: String },
    /// 503: a dependency is down; nothing was taken.
    Unavailable(String),
}

/// A 402 answer: the order and its offer.
#[derive(Debug, Clone)]
pub struct Offered {
    pub order_id: Key,
    pub token: String,
    pub offer: PaymentOffer,
    /// Set when a payment was presented and refused.
    pub refusal: Option<Refusal>,
}

/// The answer to a payment.
#[derive(Debug, Clone)]
pub enum PayAnswer {
    /// Settled (or broadcast and pending): 200.
    Accepted {
        order_id: Key,
        token: String,
        answer: PaymentAnswer,
        network: Network,
        amount: UsdcAmount,
        status: &'static str,
    },
    /// Refused: 402 with the offer again.
    Refused(Offered),
}

/// Work the request itself must do after a commit.
pub(crate) enum Inline {
    ReadChainFacts(
        settlement::RequestId,
        worldstore_domain::x402::SignedPayment,
    ),
    Submit(
        settlement::RequestId,
        worldstore_domain::x402::VerifiedPayment,
    ),
}

/// The merchant service.
pub struct Merchant<C, M, S> {
    chain: C,
    commerce: M,
    store: S,
    config: MerchantConfig,
    policy: VerifyPolicy,
    token: UsdcDeployment,
    clock: Clock,
    /// One payment at a time per order in this process (other processes meet the store's
    /// revision check).
    locks: Mutex<HashMap<Key, Arc<tokio::sync::Mutex<()>>>>,
    /// The clock second of the last complete sweep (see `worker::sweep`).
    swept_at: std::sync::atomic::AtomicU64,
}

impl<C: Chain, M: Commerce, S: Store> Merchant<C, M, S> {
    /// A merchant selling on `chain`'s network, in its USDC.
    pub async fn new(
        chain: C,
        commerce: M,
        store: S,
        config: MerchantConfig,
        clock: Clock,
    ) -> Result<Self, ChainError> {
        let token = chain.token().await?.deployment;
        Ok(Self {
            policy: VerifyPolicy::new(vec![token.clone()]),
            token,
            chain,
            commerce,
            store,
            config,
            clock,
            locks: Mutex::new(HashMap::new()),
            swept_at: std::sync::atomic::AtomicU64::new(0),
        })
    }

    pub fn config(&self) -> &MerchantConfig {
        &self.config
    }

    pub fn network(&self) -> Network {
        self.token.network
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn chain(&self) -> &C {
        &self.chain
    }

    fn now(&self) -> u64 {
        (self.clock)()
    }

    fn mac(&self, label: &str, data: &[u8]) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.config.secret.expose_secret())
            .expect("HMAC takes any key length");
        mac.update(label.as_bytes());
        mac.update(&[0]);
        mac.update(data);
        mac.finalize().into_bytes().into()
    }

    /// The bearer token that lets the buyer read an order.
    pub fn order_token(&self, order_id: &Key) -> String {
        alloy_primitives::hex::encode(self.mac("order-token", order_id.as_str().as_bytes()))
    }

    fn token_matches(&self, order_id: &Key, presented: &str) -> bool {
        let expected = self.order_token(order_id);
        // Constant time: a token is compared byte by byte in full.
        expected.len() == presented.len()
            && expected
                .bytes()
                .zip(presented.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }

    /// A key naming the buyer's request without holding its personal data.
    fn fingerprint(&self, asin: &Asin, recipient: &Recipient, network: Network) -> Key {
        let a = &recipient.address;
        let text = [
            asin.as_str(),
            recipient.name.expose(),
            recipient.email.expose(),
            a.line1.expose(),
            a.line2.as_ref().map_or("", |l| l.expose()),
            a.city.expose(),
            a.state.as_str(),
            a.postal_code.expose(),
            network.caip2(),
        ]
        .join("\u{1f}");
        let mac = self.mac("order-request", text.as_bytes());
        Key::parse(&format!(
            "buyer-{}",
            alloy_primitives::hex::encode(&mac[..16])
        ))
        .expect("hex is a valid key")
    }

    fn lock(&self, order_id: &Key) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        if locks.len() > 10_000 {
            locks.retain(|_, lock| Arc::strong_count(lock) > 1);
        }
        locks.entry(order_id.clone()).or_default().clone()
    }

    /// Parses the order request: the product, the recipient and the network.
    fn request_of(&self, body: &OrderBody) -> Result<(Asin, Recipient, Network), OrderError> {
        let asin = body
            .product_locator
            .strip_prefix("amazon:")
            .ok_or_else(|| {
                OrderError::BadRequest("productLocator must be \"amazon:<ASIN>\"".into())
            })
            .and_then(|a| {
                Asin::parse(a).map_err(|e| OrderError::BadRequest(format!("productLocator: {e}")))
            })?;
        let network = match &body.payment {
            None => self.network(),
            Some(choice) => {
                if let Some(currency) = &choice.currency
                    && !currency.eq_ignore_ascii_case("usdc")
                {
                    return Err(OrderError::BadRequest(format!(
                        "payment.currency: only USDC is accepted, not {currency:?}"
                    )));
                }
                let network: Network = choice.method.parse().map_err(|_| {
                    OrderError::BadRequest(format!(
                        "payment.method: unknown network {:?}",
                        choice.method
                    ))
                })?;
                if network != self.network() {
                    return Err(OrderError::BadRequest(format!(
                        "payment.method: this store is paid on {}, not {}",
                        self.network().v1_name(),
                        network.v1_name()
                    )));
                }
                network
            }
        };
        let recipient = Recipient {
            name: body.physical_address.name.clone(),
            email: body.email.clone(),
            address: body.physical_address.address.clone(),
        };
        Ok((asin, recipient, network))
    }

    /// `POST /api/orders` without a payment: the open order for this request, or a new one.
    pub async fn offer(&self, body: &OrderBody) -> Result<Offered, OrderError> {
        let now = self.now();
        let (asin, recipient, network) = self.request_of(body)?;
        let buyer = self.fingerprint(&asin, &recipient, network);
        if let Some(open) = self.open_order_of(&buyer, now).await? {
            return Ok(open);
        }
        let request = OrderRequest::new(recipient, vec![asin], network, self.config.pay_to)
            .map_err(|e| OrderError::BadRequest(e.to_string()))?;
        let order = self
            .commerce
            .create_order(now, &request)
            .await
            .map_err(commerce_down)?;
        let (total, quote_expires) = match order.quote_outcome(now) {
            QuoteOutcome::Payable { total, expires_at } => (total, expires_at),
            QuoteOutcome::Expired => {
                return Err(OrderError::CannotSell {
                    reason: "quote_expired".into(),
                    message: "the store's quote expired at once; try again".into(),
                });
            }
            QuoteOutcome::Problem(problem) => return Err(cannot_sell(&problem)),
        };
        let amount =
            self.config
                .fee
                .total_with_fee(total)
                .ok_or_else(|| OrderError::CannotSell {
                    reason: "amount_overflow".into(),
                    message: "the order's total is too large".into(),
                })?;
        let order_id = Key::parse(order.id.as_str())
            .map_err(|e| OrderError::Unavailable(format!("order id: {e}")))?;
        let mut extra = worldstore_domain::x402::messages::Extra::new();
        extra.insert("orderId".into(), order_id.as_str().into());
        let offer = PaymentOffer {
            resource: format!(
                "{}/api/orders/{}",
                self.config.public_url.trim_end_matches('/'),
                order_id
            ),
            description: format!("Amazon order {order_id}"),
            mime_type: "application/json".into(),
            token: self.token.clone(),
            amount,
            pay_to: self.config.pay_to,
            max_timeout_seconds: self.config.max_timeout_seconds,
            extra,
        };
        let mut expires_at = now.saturating_add(self.config.offer_ttl_seconds);
        if let Some(quote_expires) = quote_expires {
            expires_at = expires_at.min(quote_expires);
        }
        let doc = MerchantOrder {
            settlement: Settlement::new(OrderOffer {
                order_id: order_id.clone(),
                offer: offer.clone(),
                expires_at,
            }),
            paid_with: None,
            notices: vec![],
            in_flight: None,
        };
        let event = MoneyEvent {
            kind: MoneyEventKind::QuoteIssued,
            order_id: order_id.clone(),
            amount,
            tx_hash: None,
            at: now,
        };
        self.save(None, &doc, Some(&buyer), vec![Effect::Audit(event)], now)
            .await
            .map_err(store_down)?;
        tracing::info!(order = %order_id, %amount, "offer issued");
        crate::metrics::global().order_offered();
        Ok(Offered {
            token: self.order_token(&order_id),
            order_id,
            offer,
            refusal: None,
        })
    }

    /// The buyer's open offer: its latest order awaiting payment, if not yet expired. A new
    /// offer is made only when none is open, so an older one awaiting payment is older
    /// still, and expired too.
    async fn open_order_of(&self, buyer: &Key, now: u64) -> Result<Option<Offered>, OrderError> {
        let Some(record) = self
            .store
            .latest_machine_of_user(MachineKind::Settlement, buyer, Some(&awaiting_payment()))
            .await
            .map_err(store_down)?
        else {
            return Ok(None);
        };
        let doc = decode(&record).map_err(store_down)?;
        Ok(match &doc.settlement {
            Settlement::AwaitingPayment(s) if now < s.order.expires_at => Some(Offered {
                token: self.order_token(&record.id),
                order_id: record.id.clone(),
                offer: s.order.offer.clone(),
                refusal: None,
            }),
            _ => None,
        })
    }

    /// `POST /api/orders` with a payment header.
    pub async fn pay(
        &self,
        body: &OrderBody,
        payload: &PaymentPayload,
    ) -> Result<PayAnswer, OrderError> {
        let order_id = match payload {
            PaymentPayload::V2(p) => p
                .accepted
                .extra
                .get("orderId")
                .and_then(|v| v.as_str())
                .map(|id| {
                    Key::parse(id)
                        .map_err(|_| OrderError::BadRequest("accepted.extra.orderId".into()))
                })
                .transpose()?,
            PaymentPayload::V1(_) => None,
        };
        let order_id = match order_id {
            Some(id) => id,
            None => {
                let (asin, recipient, network) = self.request_of(body)?;
                let buyer = self.fingerprint(&asin, &recipient, network);
                match self.latest_order_of(&buyer).await? {
                    Some(id) => id,
                    None => {
                        // No order for this request yet: make one and refuse this payment
                        // against it (it was signed for nothing we offered).
                        let mut offered = self.offer(body).await?;
                        offered.refusal = Some(Refusal {
                            reason: ReasonCode::InvalidPaymentRequirements,
                            message: "no open order for this request: pay the offer returned"
                                .into(),
                            payer: Some(payload.exact().authorization.from),
                        });
                        return Ok(PayAnswer::Refused(offered));
                    }
                }
            }
        };
        self.pay_order(&order_id, payload).await
    }

    /// The payment that paid this order, presented again after its window closed (a buyer
    /// that crashed after paying and retried late): checked as of the last moment it could
    /// be settled, the signature and every static rule included, it gets the answer it got
    /// before. Nothing moves.
    fn late_repeat(
        &self,
        order_id: &Key,
        doc: &MerchantOrder,
        payload: &PaymentPayload,
        requirements: &PaymentRequirements,
    ) -> Option<PayAnswer> {
        if matches!(doc.settlement, Settlement::AwaitingPayment(_)) {
            return None;
        }
        let valid_before = payload.exact().authorization.valid_before;
        let last_moment = u64::try_from(valid_before)
            .ok()?
            .checked_sub(worldstore_domain::x402::verify::MIN_SECONDS_TO_SETTLE)?;
        let signed = check_offline(payload, requirements, &self.policy, last_moment).ok()?;
        (doc.paid_with == Some(signed.nonce_key())).then(|| self.accepted_answer(order_id, doc))
    }

    async fn latest_order_of(&self, buyer: &Key) -> Result<Option<Key>, OrderError> {
        let latest = self
            .store
            .latest_machine_of_user(MachineKind::Settlement, buyer, None)
            .await
            .map_err(store_down)?;
        Ok(latest.map(|r| r.id))
    }

    /// Pays order `order_id` with `payload`: the offline rules against the order's own
    /// offer, then the machine (chain facts, nonce reservation, settlement).
    pub async fn pay_order(
        &self,
        order_id: &Key,
        payload: &PaymentPayload,
    ) -> Result<PayAnswer, OrderError> {
        let lock = self.lock(order_id);
        let _guard = lock.lock().await;
        let now = self.now();
        let record = self
            .store
            .load_machine(MachineKind::Settlement, order_id)
            .await
            .map_err(store_down)?
            .ok_or(OrderError::NotFound)?;
        let mut doc = decode(&record).map_err(store_down)?;
        let offer = doc.settlement.order().offer.clone();
        let payer = payload.exact().authorization.from;
        let refused = |refusal: Refusal| {
            PayAnswer::Refused(Offered {
                order_id: order_id.clone(),
                token: self.order_token(order_id),
                offer: offer.clone(),
                refusal: Some(refusal),
            })
        };
        let requirements = match payload {
            PaymentPayload::V1(_) => PaymentRequirements::V1(offer.requirements_v1()),
            PaymentPayload::V2(_) => PaymentRequirements::V2(offer.requirements_v2()),
        };
        let signed = match check_offline(payload, &requirements, &self.policy, now) {
            Ok(signed) => signed,
            Err(refusal) => {
                if let Some(answer) = self.late_repeat(order_id, &doc, payload, &requirements) {
                    return Ok(answer);
                }
                tracing::info!(order = %order_id, reason = %refusal.reason, "payment refused");
                return Ok(refused(refusal));
            }
        };
        if !matches!(doc.settlement, Settlement::AwaitingPayment(_)) {
            // The same authorization again: answer what it already got, move nothing.
            if doc.paid_with == Some(signed.nonce_key()) {
                return Ok(self.accepted_answer(order_id, &doc));
            }
            let message = match doc.settlement {
                Settlement::Expired(_) => "this order's offer has expired",
                _ => "this order is already paid",
            };
            return Ok(refused(Refusal {
                reason: ReasonCode::InvalidPaymentRequirements,
                message: message.into(),
                payer: Some(payer),
            }));
        }
        let mut record = record;
        let mut input = Input::PaymentPresented(signed);
        loop {
            let effects = match doc.settlement.handle(now, input) {
                Ok(effects) => effects,
                Err(rejected) => {
                    tracing::warn!(order = %order_id, %rejected, "payment input rejected");
                    return Ok(refused(Refusal {
                        reason: ReasonCode::InvalidPaymentRequirements,
                        message: rejected.to_string(),
                        payer: Some(payer),
                    }));
                }
            };
            if let Settlement::Settling(s) = &doc.settlement {
                doc.paid_with = Some(s.payment.nonce);
            }
            let (answer, inline) = split_request_work(&effects);
            doc.in_flight = match &inline {
                Some(Inline::Submit(_, payment)) => Some(payment.clone()),
                _ => None,
            };
            match self.save(Some(&record), &doc, None, effects, now).await {
                Ok(saved) => record = saved,
                Err(StoreError::Conflict(Conflict::NonceTaken(_))) => {
                    return Ok(refused(Refusal {
                        reason: ReasonCode::InvalidTransactionState,
                        message: "this authorization already paid another order".into(),
                        payer: Some(payer),
                    }));
                }
                Err(StoreError::Conflict(Conflict::RevisionMoved { .. })) => {
                    return Ok(refused(Refusal {
                        reason: ReasonCode::InvalidPaymentRequirements,
                        message: "the order changed while paying; look it up and retry".into(),
                        payer: Some(payer),
                    }));
                }
                Err(e) => return Err(store_down(e)),
            }
            if let Some(answer) = answer {
                let metrics = crate::metrics::global();
                return Ok(match answer {
                    PaymentAnswer::Refused(refusal) => {
                        metrics.payment(crate::metrics::PaymentOutcome::Refused);
                        refused(refusal)
                    }
                    PaymentAnswer::Paid { .. } => {
                        metrics.payment(crate::metrics::PaymentOutcome::Settled);
                        self.accepted_answer(order_id, &doc)
                    }
                    PaymentAnswer::Pending { .. } => {
                        metrics.payment(crate::metrics::PaymentOutcome::Pending);
                        self.accepted_answer(order_id, &doc)
                    }
                });
            }
            input = match inline {
                Some(Inline::ReadChainFacts(request, payment)) => {
                    match self.chain.chain_facts(&payment).await {
                        Ok(facts) => Input::ChainFactsRead { request, facts },
                        Err(error) => {
                            tracing::error!(order = %order_id, %error, "chain outage reading payment facts");
                            // Back to awaiting payment: nothing was reserved yet.
                            return Ok(refused(Refusal {
                                reason: ReasonCode::UnexpectedVerifyError,
                                message: format!("chain unavailable: {error}"),
                                payer: Some(payer),
                            }));
                        }
                    }
                }
                Some(Inline::Submit(request, payment)) => {
                    let outcome = worker::settle_outcome(&self.chain, &payment).await;
                    Input::SettlementResult { request, outcome }
                }
                None => {
                    return Err(OrderError::Unavailable(
                        "the order stopped without an answer".into(),
                    ));
                }
            };
        }
    }

    fn accepted_answer(&self, order_id: &Key, doc: &MerchantOrder) -> PayAnswer {
        let settlement = &doc.settlement;
        let amount = settlement.order().offer.amount;
        let answer = match settlement {
            Settlement::SettlementPending(s) => PaymentAnswer::Pending {
                tx_hash: s.tx_hash,
                payer: s.payment.payer,
            },
            Settlement::Settling(s) => PaymentAnswer::Pending {
                tx_hash: B256::ZERO,
                payer: s.payment.payer,
            },
            other => match settled_of(other) {
                Some(settled) => PaymentAnswer::Paid {
                    tx_hash: settled.tx_hash,
                    payer: settled.from,
                },
                None => PaymentAnswer::Pending {
                    tx_hash: B256::ZERO,
                    payer: Address::ZERO,
                },
            },
        };
        PayAnswer::Accepted {
            order_id: order_id.clone(),
            token: self.order_token(order_id),
            answer,
            network: self.network(),
            amount,
            status: settlement.status(),
        }
    }

    /// `GET /api/orders/{id}` for the holder of the order's token.
    pub async fn order_view(&self, order_id: &str, token: &str) -> Result<OrderView, OrderError> {
        let order_id = Key::parse(order_id).map_err(|_| OrderError::NotFound)?;
        if !self.token_matches(&order_id, token) {
            return Err(OrderError::NotFound);
        }
        let record = self
            .store
            .load_machine(MachineKind::Settlement, &order_id)
            .await
            .map_err(store_down)?
            .ok_or(OrderError::NotFound)?;
        let doc = decode(&record).map_err(store_down)?;
        Ok(OrderView::of(&order_id, &doc, self.network()))
    }

    /// Persists `doc` with `effects`: nonces, money events and outbox rows in one commit.
    /// Returns the new record.
    pub(crate) async fn save(
        &self,
        record: Option<&MachineRecord>,
        doc: &MerchantOrder,
        buyer: Option<&Key>,
        effects: Vec<Effect>,
        now: u64,
    ) -> Result<MachineRecord, StoreError> {
        let order_id = doc.settlement.order().order_id.clone();
        let mut commit = Commit::default();
        let mut doc = doc.clone();
        for effect in effects {
            match effect {
                Effect::ReserveNonce(key) => commit.nonces.push(NonceReservation {
                    key,
                    order_id: order_id.clone(),
                }),
                Effect::Audit(event) => commit.money_events.push(event),
                Effect::NotifyBuyer(notice) => {
                    tracing::info!(order = %order_id, notice = notice_name(&notice), "buyer notice");
                    doc.notices.push(notice);
                }
                Effect::PayFulfilment { .. }
                | Effect::WatchDelivery { .. }
                | Effect::RefundBuyer { .. }
                | Effect::ReconcileSettlement { .. } => {
                    commit.effects.push(outbox_row(&order_id, &effect)?);
                }
                // Run by the request that produced them (see `split_request_work`).
                Effect::ReadChainFacts { .. }
                | Effect::SubmitSettlement { .. }
                | Effect::AnswerPayment(_) => {}
            }
        }
        let state = StoredState::encode(DOC_KIND, DOC_VERSION, &doc)?;
        let index = MachineIndex {
            user: match (buyer, record) {
                (Some(buyer), _) => Some(buyer.clone()),
                (None, Some(r)) => r.index.user.clone(),
                (None, None) => None,
            },
            order_id: Some(order_id.clone()),
            status: Status::parse(doc.settlement.status()).expect("statuses are valid"),
        };
        let write = match record {
            Some(record) => record.update(index, state),
            None => MachineWrite {
                kind: MachineKind::Settlement,
                id: order_id.clone(),
                expected: Expected::New,
                index,
                state,
            },
        };
        commit.machines.push(write.clone());
        let committed = self.store.commit(commit, now).await?;
        Ok(MachineRecord {
            kind: write.kind,
            id: write.id,
            revision: committed.revisions[0],
            index: write.index,
            state: write.state,
            updated_at: now,
        })
    }

    /// Whether the store and the chain answer (`GET /ready`).
    pub async fn ready(&self) -> Result<(), String> {
        self.store
            .unfinished_effects()
            .await
            .map_err(|e| format!("database: {e}"))?;
        self.chain
            .usdc_balance(self.config.pay_to)
            .await
            .map_err(|e| format!("chain: {e}"))?;
        Ok(())
    }
}

/// The request's own work among `effects`: its answer, or the next inline step.
pub(crate) fn split_request_work(effects: &[Effect]) -> (Option<PaymentAnswer>, Option<Inline>) {
    let mut answer = None;
    let mut inline = None;
    for effect in effects {
        match effect {
            Effect::AnswerPayment(a) => answer = Some(a.clone()),
            Effect::ReadChainFacts { request, payment } => {
                inline = Some(Inline::ReadChainFacts(*request, payment.clone()));
            }
            Effect::SubmitSettlement { request, payment } => {
                inline = Some(Inline::Submit(*request, payment.clone()));
            }
            _ => {}
        }
    }
    (answer, inline)
}

fn outbox_row(order_id: &Key, effect: &Effect) -> Result<NewEffect, StoreError> {
    let (name, request) = match effect {
        Effect::PayFulfilment { request, .. } => ("pay-fulfilment", Some(*request)),
        Effect::WatchDelivery { .. } => ("watch-delivery", None),
        Effect::RefundBuyer { request, .. } => ("refund", Some(*request)),
        Effect::ReconcileSettlement { request, .. } => ("reconcile", Some(*request)),
        _ => ("other", None),
    };
    let idempotency = match request {
        Some(r) => format!("{order_id}:{name}:{}", r.0),
        None => format!("{order_id}:{name}"),
    };
    // Watching delivery lasts days; it must not hold up the order's other effects.
    let ordering = match effect {
        Effect::WatchDelivery { .. } => format!("{order_id}:watch"),
        _ => order_id.to_string(),
    };
    Ok(NewEffect {
        idempotency_key: Key::parse(&idempotency)
            .map_err(|e| StoreError::Rejected(e.to_string()))?,
        ordering_key: Key::parse(&ordering).map_err(|e| StoreError::Rejected(e.to_string()))?,
        effect: StoredState::encode(
            EFFECT_KIND,
            DOC_VERSION,
            &OrderEffect {
                order_id: order_id.clone(),
                effect: effect.clone(),
            },
        )?,
    })
}

fn notice_name(notice: &BuyerNotice) -> &'static str {
    match notice {
        BuyerNotice::Shipped(_) => "shipped",
        BuyerNotice::Delivered => "delivered",
        BuyerNotice::Refunded { .. } => "refunded",
    }
}

/// The stored status of an order awaiting payment: an offer, open until it expires.
pub(crate) fn awaiting_payment() -> Status {
    Status::parse("awaiting_payment").expect("a valid status")
}

pub(crate) fn decode(record: &MachineRecord) -> Result<MerchantOrder, StoreError> {
    record.decode(DOC_KIND, DOC_VERSION..=DOC_VERSION)
}

fn settled_of(settlement: &Settlement) -> Option<&settlement::SettledTransfer> {
    match settlement {
        Settlement::Fulfilling(s) => Some(&s.settled),
        Settlement::InDelivery(s) => Some(&s.settled),
        Settlement::Refunding(s) => Some(&s.settled),
        Settlement::Fulfilled(s) => Some(&s.settled),
        Settlement::Refunded(s) => Some(&s.settled),
        _ => None,
    }
}

fn store_down(error: StoreError) -> OrderError {
    tracing::error!(%error, "store outage");
    OrderError::Unavailable("the order database is unavailable".into())
}

fn commerce_down(error: CommerceError) -> OrderError {
    match error {
        CommerceError::Refused { code, message } => {
            // The order service's own words may quote the order (names, addresses): the log
            // gets its code and class only; the buyer gets the words in the answer.
            let reason = code.unwrap_or_else(|| "refused".into());
            tracing::warn!(code = %reason, class = "rejected", "order service refused the order");
            OrderError::CannotSell {
                reason,
                message: message.to_string(),
            }
        }
        CommerceError::NotFound => {
            tracing::warn!(
                code = "not_found",
                class = "rejected",
                "order service refused the order"
            );
            OrderError::CannotSell {
                reason: "not_found".into(),
                message: "the store does not know this product".into(),
            }
        }
        other => {
            tracing::error!(error = %other, "order service outage");
            OrderError::Unavailable(other.to_string())
        }
    }
}

fn cannot_sell(problem: &QuoteProblem) -> OrderError {
    let reason = match problem {
        QuoteProblem::RequiresRecipient => "requires_recipient",
        QuoteProblem::RequiresPhysicalAddress => "requires_physical_address",
        QuoteProblem::ItemsUnavailable(_) => "item_unavailable",
        QuoteProblem::PayerInsufficientFunds => "store_insufficient_funds",
        QuoteProblem::NotPayable => "not_payable",
        QuoteProblem::NoPrice => "no_price",
        QuoteProblem::Other(_) => "cannot_sell",
    };
    OrderError::CannotSell {
        reason: reason.into(),
        message: problem.to_string(),
    }
}

/// What the buyer sees of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderView {
    pub order_id: String,
    pub status: &'static str,
    pub stage: &'static str,
    pub amount: String,
    pub network: String,
    pub expires_at: u64,
    pub payment: Option<PaymentView>,
    pub tracking: Option<TrackingView>,
    pub refund: Option<RefundView>,
    pub timeline: Vec<&'static str>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentView {
    pub tx_hash: String,
    pub payer: String,
    pub amount: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrackingView {
    pub carrier: String,
    pub number: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RefundView {
    pub tx_hash: String,
    pub reason: String,
}

impl OrderView {
    fn of(order_id: &Key, doc: &MerchantOrder, network: Network) -> Self {
        let s = &doc.settlement;
        let (stage, tracking) = match s {
            Settlement::AwaitingPayment(_) => ("awaiting_payment", None),
            Settlement::CheckingChain(_)
            | Settlement::Settling(_)
            | Settlement::SettlementPending(_) => ("settling", None),
            Settlement::Fulfilling(_) => ("paid", None),
            Settlement::InDelivery(d) => match &d.tracking {
                Some(t) => ("shipped", Some(t.clone())),
                None => ("paid", None),
            },
            Settlement::Fulfilled(d) => ("delivered", d.tracking.clone()),
            Settlement::Refunding(_) => ("failed", None),
            Settlement::Refunded(_) => ("refunded", None),
            Settlement::Expired(_) => ("expired", None),
        };
        let payment = settled_of(s).map(|t| PaymentView {
            tx_hash: format!("{:#x}", t.tx_hash),
            payer: t.from.to_checksum(None),
            amount: t.amount.to_string(),
        });
        let refund = match s {
            Settlement::Refunded(r) => Some(RefundView {
                tx_hash: format!("{:#x}", r.refund_tx),
                reason: failure_text(&r.reason),
            }),
            _ => None,
        };
        let mut timeline = Vec::new();
        if payment.is_some() {
            timeline.push("paid");
        }
        for notice in &doc.notices {
            timeline.push(notice_name(notice));
        }
        Self {
            order_id: order_id.to_string(),
            status: s.status(),
            stage,
            amount: s.order().offer.amount.to_string(),
            network: network.v1_name().to_owned(),
            expires_at: s.order().expires_at,
            payment,
            tracking: tracking.map(|t| TrackingView {
                carrier: t.carrier,
                number: t.number,
            }),
            refund,
            timeline,
        }
    }
}

pub(crate) fn failure_text(failure: &settlement::FulfilmentFailure) -> String {
    match failure {
        settlement::FulfilmentFailure::ItemUnavailable => "the item became unavailable".into(),
        settlement::FulfilmentFailure::QuoteExpired => {
            "the store's price quote expired before it could be paid".into()
        }
        settlement::FulfilmentFailure::DeliveryFailed(reason) => {
            format!("delivery failed: {reason}")
        }
        settlement::FulfilmentFailure::Rejected(reason) => {
            format!("the store refused the order: {reason}")
        }
    }
}
