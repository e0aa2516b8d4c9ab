//! The merchant's background work: outbox effects (pay fulfilment, watch delivery, refund,
//! reconcile a pending settlement) and a sweep (expire unpaid offers, resume settlements
//! interrupted by a crash).
//!
//! Each effect's result is fed back into the order's machine and committed with the effects
//! it produces before the outbox row is marked done; a crash in between repeats the effect,
//! which is harmless: fulfilment is paid under an idempotency key, and a late answer to an
//! old request is rejected by the machine as stale.

use super::{EFFECT_KIND, Merchant, MerchantOrder, OrderEffect, awaiting_payment, decode};
use alloy_primitives::B256;
use std::sync::atomic::Ordering;
use worldstore_domain::UsdcAmount;
use worldstore_domain::ports::ErrorClass;
use worldstore_domain::ports::chain::{
    Chain, ChainError, Settlement as ChainSettlement, UsdcTransfer,
};
use worldstore_domain::ports::commerce::{
    Commerce, CommerceError, Fulfilment, IdempotencyKey, NotPaid, OrderId, PaymentOutcome,
    QuoteProblem,
};
use worldstore_domain::ports::store::{
    Backoff, ClaimedEffect, Conflict, EffectFailure, Key, MachineKind, Status, Store, StoreError,
};
use worldstore_domain::settlement::{
    DeliveryUpdate, Effect, FulfilmentFailure, Input, SettledTransfer, Settlement,
    SettlementOutcome, Tracking,
};
use worldstore_domain::x402::{ReasonCode, VerifiedPayment};

/// How long a settlement may sit in `settling` before the sweep resumes it.
pub const STALE_SETTLING_SECONDS: u64 = 120;

/// How long a claimed merchant effect stays this worker's.
const LEASE_SECONDS: u64 = 120;

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    pub effects_run: usize,
    pub expired: usize,
    pub resumed: usize,
}

/// What running one effect came to.
enum Ran {
    /// Feed this input to the order, then mark the effect done.
    Feed(Input),
    /// Nothing to feed; done.
    Done,
    /// Not yet (delivery still on its way, receipt not in): look again at this time.
    Later(u64),
    Failed(EffectFailure),
}

/// The chain's answer to a settlement, as the machine's input.
pub async fn settle_outcome<C: Chain>(chain: &C, payment: &VerifiedPayment) -> SettlementOutcome {
    outcome_of(chain.settle(payment).await, payment)
}

fn outcome_of(
    result: Result<ChainSettlement, ChainError>,
    payment: &VerifiedPayment,
) -> SettlementOutcome {
    match result {
        Ok(ChainSettlement::Confirmed(c)) => SettlementOutcome::Confirmed(settled(&c)),
        Ok(ChainSettlement::Pending { tx_hash }) => SettlementOutcome::Pending { tx_hash },
        Err(ChainError::WouldRevert(reason)) => SettlementOutcome::Failed {
            reason: worldstore_domain::x402::verify::reason_for_revert(&reason),
            message: reason,
        },
        Err(ChainError::Failed { tx_hash, reason }) => SettlementOutcome::Failed {
            reason: ReasonCode::InvalidTransactionState,
            message: format!(
                "transaction {tx_hash:#x} failed on chain{}",
                reason.map(|r| format!(": {r}")).unwrap_or_default()
            ),
        },
        Err(error) => {
            tracing::error!(%error, payer = %payment.payer, "chain outage while settling");
            SettlementOutcome::Failed {
                reason: ReasonCode::UnexpectedSettleError,
                message: format!("chain unavailable while settling: {error}"),
            }
        }
    }
}

fn settled(c: &worldstore_domain::ports::chain::Confirmed) -> SettledTransfer {
    SettledTransfer {
        tx_hash: c.tx_hash,
        from: c.transfer.from,
        to: c.transfer.to,
        token: c.transfer.token,
        amount: UsdcAmount::from_u256(c.transfer.value).unwrap_or(UsdcAmount::ZERO),
    }
}

impl<C: Chain, M: Commerce, S: Store> Merchant<C, M, S> {
    /// One pass: the sweep, then up to `limit` ready effects.
    pub async fn work_once(&self, worker: &Key, limit: u32) -> Result<Pass, StoreError> {
        let mut pass = self.sweep().await?;
        let now = self.now();
        // Only the merchant's own kind: an agent sharing this store keeps its effects.
        let claimed = self
            .store
            .claim_effects(worker, &[EFFECT_KIND], limit, now, now + LEASE_SECONDS)
            .await?;
        for effect in claimed {
            // The write completing an effect claims its order's next one, if ready.
            let mut next = Some(effect);
            while let Some(effect) = next.take() {
                next = self.run_claimed(worker, effect).await?;
                pass.effects_run += 1;
            }
        }
        Ok(pass)
    }

    /// Runs the background work until `stop` resolves.
    pub async fn work(&self, worker: Key, mut stop: tokio::sync::watch::Receiver<bool>) {
        loop {
            match self.work_once(&worker, 16).await {
                Ok(pass) if pass.effects_run > 0 => continue,
                Ok(_) => {}
                Err(error) => tracing::error!(%error, "merchant worker: store outage"),
            }
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_millis(250)) => {}
                _ = stop.changed() => return,
            }
            if *stop.borrow() {
                return;
            }
        }
    }

    /// Runs one claimed effect and records the outcome; returns the order's next effect
    /// when the completing write claimed it.
    async fn run_claimed(
        &self,
        worker: &Key,
        claimed: ClaimedEffect,
    ) -> Result<Option<ClaimedEffect>, StoreError> {
        let now = self.now();
        let effect: OrderEffect =
            match claimed
                .effect
                .decode(EFFECT_KIND, 1..=1, "outbox", &claimed.id.0.to_string())
            {
                Ok(effect) => effect,
                Err(error) => {
                    tracing::error!(%error, "undecodable merchant effect parked");
                    let failure = EffectFailure::Permanent {
                        reason: error.to_string(),
                    };
                    return self
                        .store
                        .fail_effect(claimed.id, worker, failure, now)
                        .await
                        .map(|()| None);
                }
            };
        let ran = self.run(&effect).await;
        let ran = match ran {
            Ran::Feed(input) => match self.feed(&effect.order_id, input).await {
                Ok(()) => Ran::Done,
                Err(StoreError::Conflict(Conflict::RevisionMoved { .. })) => Ran::Later(now),
                Err(error) => return Err(error),
            },
            other => other,
        };
        let failure = match ran {
            Ran::Done | Ran::Feed(_) => {
                return self
                    .store
                    .complete_effect_and_claim_next(
                        claimed.id,
                        worker,
                        &[EFFECT_KIND],
                        now,
                        now + LEASE_SECONDS,
                    )
                    .await;
            }
            Ran::Later(at) => EffectFailure::Transient {
                retry_at: at,
                reason: "not yet".into(),
            },
            Ran::Failed(EffectFailure::Transient { reason, .. }) => {
                let retry_at = Backoff::default()
                    .retry_at(claimed.attempts.min(8), now)
                    .unwrap_or(now + 300);
                tracing::warn!(order = %effect.order_id, %reason, attempts = claimed.attempts, "merchant effect will be retried");
                EffectFailure::Transient { retry_at, reason }
            }
            Ran::Failed(failure) => {
                tracing::error!(order = %effect.order_id, ?failure, "merchant effect failed for good");
                failure
            }
        };
        self.store
            .fail_effect(claimed.id, worker, failure, now)
            .await
            .map(|()| None)
    }

    /// Feeds `input` to the order's machine and commits the result with its effects.
    pub(crate) async fn feed(&self, order_id: &Key, input: Input) -> Result<(), StoreError> {
        let now = self.now();
        let Some(record) = self
            .store
            .load_machine(MachineKind::Settlement, order_id)
            .await?
        else {
            tracing::error!(order = %order_id, "effect for an order that does not exist");
            return Ok(());
        };
        let mut doc: MerchantOrder = decode(&record)?;
        match doc.settlement.handle(now, input) {
            Ok(effects) => {
                doc.in_flight = None;
                self.save(Some(&record), &doc, None, effects, now).await?;
                Ok(())
            }
            Err(rejected) => {
                // A repeated effect's answer, or one the order no longer waits for.
                tracing::info!(order = %order_id, %rejected, "stale answer ignored");
                Ok(())
            }
        }
    }

    async fn run(&self, effect: &OrderEffect) -> Ran {
        let now = self.now();
        let order_id = &effect.order_id;
        let Ok(provider_id) = OrderId::parse(order_id.as_str()) else {
            return Ran::Failed(EffectFailure::Permanent {
                reason: format!("{order_id} is not a provider order id"),
            });
        };
        match &effect.effect {
            Effect::PayFulfilment { request, .. } => {
                let key = IdempotencyKey::parse(&format!("{order_id}-fulfil"))
                    .expect("order ids make valid keys");
                match self.commerce.pay_order(now, &provider_id, &key).await {
                    Ok(PaymentOutcome::Paid { .. } | PaymentOutcome::AlreadySubmitted) => {
                        crate::metrics::global().fulfilment_paid();
                        Ran::Feed(Input::FulfilmentPaid { request: *request })
                    }
                    Ok(PaymentOutcome::NotPaid(not_paid)) => {
                        tracing::warn!(order = %order_id, reason = %not_paid, "fulfilment not paid: refunding the buyer");
                        Ran::Feed(Input::FulfilmentFailed {
                            request: *request,
                            failure: failure_of(&not_paid),
                        })
                    }
                    Err(CommerceError::NotFound) => Ran::Feed(Input::FulfilmentFailed {
                        request: *request,
                        failure: FulfilmentFailure::Rejected("the order no longer exists".into()),
                    }),
                    Err(CommerceError::Refused { message, .. }) => {
                        Ran::Feed(Input::FulfilmentFailed {
                            request: *request,
                            failure: FulfilmentFailure::Rejected(message.to_string()),
                        })
                    }
                    Err(error) => transient(&error.to_string(), error.class()),
                }
            }
            Effect::WatchDelivery { .. } => self.watch_delivery(order_id, &provider_id).await,
            Effect::RefundBuyer {
                request,
                to,
                amount,
            } => match self.chain.transfer_usdc(*to, amount.to_u256()).await {
                Ok(done) => {
                    let tx_hash = done.tx_hash();
                    tracing::info!(order = %order_id, tx = %tx_hash, %amount, "buyer refunded");
                    Ran::Feed(Input::RefundSent {
                        request: *request,
                        tx_hash,
                    })
                }
                Err(error) => transient(&error.to_string(), error.class()),
            },
            Effect::ReconcileSettlement { request, tx_hash } => {
                self.reconcile(order_id, *request, *tx_hash).await
            }
            _ => Ran::Done,
        }
    }

    /// The order's document, or what the effect comes to without it.
    async fn order_doc(&self, order_id: &Key) -> Result<MerchantOrder, Ran> {
        match self
            .store
            .load_machine(MachineKind::Settlement, order_id)
            .await
        {
            Ok(Some(record)) => decode(&record).map_err(|error| {
                Ran::Failed(EffectFailure::Permanent {
                    reason: error.to_string(),
                })
            }),
            Ok(None) => Err(Ran::Done),
            Err(error) => Err(transient(&error.to_string(), ErrorClass::Transient)),
        }
    }

    async fn watch_delivery(&self, order_id: &Key, provider_id: &OrderId) -> Ran {
        let now = self.now();
        let later = Ran::Later(now + self.config.delivery_poll_seconds);
        let doc = match self.order_doc(order_id).await {
            Ok(doc) => doc,
            Err(ran) => return ran,
        };
        let Settlement::InDelivery(delivery) = &doc.settlement else {
            return Ran::Done;
        };
        let order = match self.commerce.order(now, provider_id).await {
            Ok(order) => order,
            Err(error) => return transient(&error.to_string(), error.class()),
        };
        match order.fulfilment() {
            Fulfilment::Delivered => Ran::Feed(Input::Delivery(DeliveryUpdate::Delivered)),
            Fulfilment::Failed { .. } => Ran::Feed(Input::Delivery(DeliveryUpdate::Failed(
                "the carrier could not deliver the parcel".into(),
            ))),
            Fulfilment::InProgress | Fulfilment::AwaitingPayment => {
                if delivery.tracking.is_none() {
                    let parcels = match self.commerce.tracking(now, provider_id).await {
                        Ok(parcels) => parcels,
                        Err(error) => return transient(&error.to_string(), error.class()),
                    };
                    if let Some(number) = parcels.iter().find_map(|p| p.tracking_number.as_ref()) {
                        let carrier = parcels
                            .iter()
                            .find_map(|p| p.carrier.as_ref())
                            .map_or_else(|| "carrier".to_owned(), |c| c.to_string());
                        let update = DeliveryUpdate::Shipped(Tracking {
                            carrier,
                            number: number.to_string(),
                        });
                        if let Err(error) = self.feed(order_id, Input::Delivery(update)).await {
                            return transient(&error.to_string(), ErrorClass::Transient);
                        }
                    }
                }
                later
            }
        }
    }

    async fn reconcile(
        &self,
        order_id: &Key,
        request: worldstore_domain::settlement::RequestId,
        tx_hash: B256,
    ) -> Ran {
        let now = self.now();
        let doc = match self.order_doc(order_id).await {
            Ok(doc) => doc,
            Err(ran) => return ran,
        };
        let Settlement::SettlementPending(pending) = &doc.settlement else {
            return Ran::Done;
        };
        let offer = &pending.order.offer;
        let expected = UsdcTransfer {
            token: offer.token.address,
            from: pending.payment.payer,
            to: offer.pay_to,
            value: offer.amount.to_u256(),
        };
        match self.chain.reconcile(tx_hash, expected).await {
            Ok(ChainSettlement::Confirmed(c)) => Ran::Feed(Input::SettlementResult {
                request,
                outcome: SettlementOutcome::Confirmed(settled(&c)),
            }),
            Ok(ChainSettlement::Pending { .. }) => Ran::Later(now + 5),
            Err(ChainError::Failed { tx_hash, reason }) => Ran::Feed(Input::SettlementResult {
                request,
                outcome: SettlementOutcome::Failed {
                    reason: ReasonCode::InvalidTransactionState,
                    message: format!(
                        "transaction {tx_hash:#x} failed{}",
                        reason.map(|r| format!(": {r}")).unwrap_or_default()
                    ),
                },
            }),
            Err(error) => transient(&error.to_string(), error.class()),
        }
    }

    /// Expires unpaid offers and resumes settlements a crash interrupted, once per clock
    /// second: both come due by whole seconds (an offer at its expiry, a settlement once
    /// it is [`STALE_SETTLING_SECONDS`] old), so a second sweep within the second a sweep
    /// completed finds nothing new. A busy worker passes many times a second, and each
    /// sweep reads and decodes every offer awaiting payment.
    async fn sweep(&self) -> Result<Pass, StoreError> {
        let now = self.now();
        if self.swept_at.load(Ordering::Relaxed) == now {
            return Ok(Pass::default());
        }
        let mut pass = Pass::default();
        let awaiting = awaiting_payment();
        for record in self
            .store
            .machines_in_status(MachineKind::Settlement, &awaiting, 200)
            .await?
        {
            let doc = decode(&record)?;
            if now >= doc.settlement.order().expires_at {
                self.feed(&record.id, Input::Tick).await?;
                pass.expired += 1;
            }
        }
        let settling = Status::parse("settling").expect("valid status");
        for record in self
            .store
            .machines_in_status(MachineKind::Settlement, &settling, 50)
            .await?
        {
            if now < record.updated_at + STALE_SETTLING_SECONDS {
                continue;
            }
            let doc = decode(&record)?;
            if let (Settlement::Settling(s), Some(payment)) = (&doc.settlement, &doc.in_flight) {
                pass.resumed +=
                    self.resume_settling(&record.id, s.request, payment).await? as usize;
            }
        }
        self.swept_at.store(now, Ordering::Relaxed);
        Ok(pass)
    }

    /// Resumes a settlement whose request died: submits the authorization again if the
    /// chain has not used it; if it has, the outcome is unknown here and left for an
    /// operator (logged), never guessed.
    async fn resume_settling(
        &self,
        order_id: &Key,
        request: worldstore_domain::settlement::RequestId,
        payment: &VerifiedPayment,
    ) -> Result<bool, StoreError> {
        let lock = self.lock(order_id);
        let _guard = lock.lock().await;
        match self
            .chain
            .authorization_used(payment.payer, payment.authorization.nonce)
            .await
        {
            Ok(false) => {
                let outcome = settle_outcome(&self.chain, payment).await;
                tracing::info!(order = %order_id, "resumed an interrupted settlement");
                self.feed(order_id, Input::SettlementResult { request, outcome })
                    .await?;
                Ok(true)
            }
            Ok(true) => {
                tracing::error!(order = %order_id, payer = %payment.payer, "interrupted settlement: the authorization is used on chain but no receipt was recorded; reconcile by hand");
                Ok(false)
            }
            Err(error) => {
                tracing::warn!(order = %order_id, %error, "chain outage; settlement resumes later");
                Ok(false)
            }
        }
    }
}

fn transient(reason: &str, class: ErrorClass) -> Ran {
    match class {
        ErrorClass::Transient => Ran::Failed(EffectFailure::Transient {
            retry_at: 0,
            reason: reason.to_owned(),
        }),
        // A configuration problem (credentials) or an answer we cannot read: keep the
        // effect alive with backoff so that fixing the configuration resumes it.
        _ => Ran::Failed(EffectFailure::Transient {
            retry_at: 0,
            reason: format!("needs attention: {reason}"),
        }),
    }
}

fn failure_of(not_paid: &NotPaid) -> FulfilmentFailure {
    match not_paid {
        NotPaid::QuoteExpired => FulfilmentFailure::QuoteExpired,
        NotPaid::Quote(QuoteProblem::ItemsUnavailable(_)) => FulfilmentFailure::ItemUnavailable,
        other => FulfilmentFailure::Rejected(other.to_string()),
    }
}
