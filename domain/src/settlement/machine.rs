use crate::money::UsdcAmount;
use crate::ports::store::{Key, MoneyEvent, MoneyEventKind};
use crate::x402::{
    ChainFacts, NonceKey, PaymentOffer, ReasonCode, Refusal, SignedPayment, VerifiedPayment,
    check_chain,
};
use alloy_primitives::{Address, B256};
use serde::{Deserialize, Serialize};

/// Identifies an effect that expects an answer; the answer echoes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RequestId(pub u64);

/// What the buyer was offered for this order: fixed when the 402 answer is issued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderOffer {
    pub order_id: Key,
    pub offer: PaymentOffer,
    /// Unix seconds after which an unpaid offer expires.
    pub expires_at: u64,
}

/// A payment this order accepted: who paid, how much, under which nonce.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptedPayment {
    pub payer: Address,
    pub amount: UsdcAmount,
    pub nonce: NonceKey,
}

/// A settled transfer on chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettledTransfer {
    pub tx_hash: B256,
    pub from: Address,
    pub to: Address,
    pub token: Address,
    pub amount: UsdcAmount,
}

/// Tracking of a shipment, as fulfilment reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tracking {
    pub carrier: String,
    pub number: String,
}

/// Why fulfilment could not complete after the buyer paid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FulfilmentFailure {
    ItemUnavailable,
    QuoteExpired,
    DeliveryFailed(String),
    Rejected(String),
}

/// The machine's states. Each holds only what is valid in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Settlement {
    AwaitingPayment(AwaitingPayment),
    CheckingChain(CheckingChain),
    Settling(Settling),
    SettlementPending(SettlementPending),
    Fulfilling(Fulfilling),
    InDelivery(InDelivery),
    Refunding(Refunding),
    Fulfilled(Done),
    Refunded(RefundedOrder),
    Expired(ExpiredOrder),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AwaitingPayment {
    pub order: OrderOffer,
    pub next_request: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckingChain {
    pub order: OrderOffer,
    pub next_request: u64,
    pub request: RequestId,
    pub payment: SignedPayment,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settling {
    pub order: OrderOffer,
    pub next_request: u64,
    pub request: RequestId,
    pub payment: AcceptedPayment,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettlementPending {
    pub order: OrderOffer,
    pub next_request: u64,
    pub request: RequestId,
    pub payment: AcceptedPayment,
    pub tx_hash: B256,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fulfilling {
    pub order: OrderOffer,
    pub next_request: u64,
    pub request: RequestId,
    pub settled: SettledTransfer,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InDelivery {
    pub order: OrderOffer,
    pub next_request: u64,
    pub settled: SettledTransfer,
    pub tracking: Option<Tracking>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refunding {
    pub order: OrderOffer,
    pub next_request: u64,
    pub request: RequestId,
    pub settled: SettledTransfer,
    pub reason: FulfilmentFailure,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Done {
    pub order: OrderOffer,
    pub settled: SettledTransfer,
    pub tracking: Option<Tracking>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundedOrder {
    pub order: OrderOffer,
    pub settled: SettledTransfer,
    pub reason: FulfilmentFailure,
    pub refund_tx: B256,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpiredOrder {
    pub order: OrderOffer,
}

/// How the chain answered a settlement (the `Chain` port's outcome, as data).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SettlementOutcome {
    /// Mined, succeeded, and holds this `Transfer` log.
    Confirmed(SettledTransfer),
    /// Broadcast; no receipt yet.
    Pending { tx_hash: B256 },
    /// Not settled (reverted, or refused before broadcast).
    Failed { reason: ReasonCode, message: String },
}

/// Everything that can happen to an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Input {
    /// A payment that passed the offline rules against this order's offer.
    PaymentPresented(SignedPayment),
    ChainFactsRead {
        request: RequestId,
        facts: ChainFacts,
    },
    SettlementResult {
        request: RequestId,
        outcome: SettlementOutcome,
    },
    FulfilmentPaid {
        request: RequestId,
    },
    FulfilmentFailed {
        request: RequestId,
        failure: FulfilmentFailure,
    },
    Delivery(DeliveryUpdate),
    RefundSent {
        request: RequestId,
        tx_hash: B256,
    },
    Tick,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeliveryUpdate {
    Shipped(Tracking),
    Delivered,
    Failed(String),
}

/// How the order server answers the buyer's paying request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PaymentAnswer {
    Paid { tx_hash: B256, payer: Address },
    Pending { tx_hash: B256, payer: Address },
    Refused(Refusal),
}

/// A message for the buyer about their order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BuyerNotice {
    Shipped(Tracking),
    Delivered,
    Refunded {
        amount: UsdcAmount,
        tx_hash: B256,
        reason: FulfilmentFailure,
    },
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Effect {
    ReadChainFacts {
        request: RequestId,
        payment: SignedPayment,
    },
    /// Written in the same transaction as the state that uses the nonce.
    ReserveNonce(NonceKey),
    SubmitSettlement {
        request: RequestId,
        payment: VerifiedPayment,
    },
    ReconcileSettlement {
        request: RequestId,
        tx_hash: B256,
    },
    AnswerPayment(PaymentAnswer),
    PayFulfilment {
        request: RequestId,
        order_id: Key,
    },
    WatchDelivery {
        order_id: Key,
    },
    RefundBuyer {
        request: RequestId,
        to: Address,
        amount: UsdcAmount,
    },
    NotifyBuyer(BuyerNotice),
    Audit(MoneyEvent),
}

/// Why an input was rejected (the state did not change).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    #[error("{input} does not apply in state {state}")]
    NotNow {
        input: &'static str,
        state: &'static str,
    },
    #[error("answer to request {got:?} is stale; waiting for {expected:?}")]
    StaleAnswer {
        expected: Option<RequestId>,
        got: RequestId,
    },
}

impl Settlement {
    /// A new order whose offer has just been issued.
    pub fn new(order: OrderOffer) -> Self {
        Settlement::AwaitingPayment(AwaitingPayment {
            order,
            next_request: 1,
        })
    }

    pub fn order(&self) -> &OrderOffer {
        match self {
            Settlement::AwaitingPayment(s) => &s.order,
            Settlement::CheckingChain(s) => &s.order,
            Settlement::Settling(s) => &s.order,
            Settlement::SettlementPending(s) => &s.order,
            Settlement::Fulfilling(s) => &s.order,
            Settlement::InDelivery(s) => &s.order,
            Settlement::Refunding(s) => &s.order,
            Settlement::Fulfilled(s) => &s.order,
            Settlement::Refunded(s) => &s.order,
            Settlement::Expired(s) => &s.order,
        }
    }

    /// The state's name, as stored in the status column.
    pub fn status(&self) -> &'static str {
        match self {
            Settlement::AwaitingPayment(_) => "awaiting_payment",
            Settlement::CheckingChain(_) => "checking_chain",
            Settlement::Settling(_) => "settling",
            Settlement::SettlementPending(_) => "settlement_pending",
            Settlement::Fulfilling(_) => "fulfilling",
            Settlement::InDelivery(_) => "in_delivery",
            Settlement::Refunding(_) => "refunding",
            Settlement::Fulfilled(_) => "fulfilled",
            Settlement::Refunded(_) => "refunded",
            Settlement::Expired(_) => "expired",
        }
    }

    /// True once nothing more can happen to the order.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            Settlement::Fulfilled(_) | Settlement::Refunded(_) | Settlement::Expired(_)
        )
    }

    /// Handles one input. On `Err` the state is unchanged.
    pub fn handle(&mut self, now: u64, input: Input) -> Result<Vec<Effect>, Rejected> {
        let (next, effects) = transition(self, now, input)?;
        *self = next;
        Ok(effects)
    }
}

fn input_name(input: &Input) -> &'static str {
    match input {
        Input::PaymentPresented(_) => "PaymentPresented",
        Input::ChainFactsRead { .. } => "ChainFactsRead",
        Input::SettlementResult { .. } => "SettlementResult",
        Input::FulfilmentPaid { .. } => "FulfilmentPaid",
        Input::FulfilmentFailed { .. } => "FulfilmentFailed",
        Input::Delivery(_) => "Delivery",
        Input::RefundSent { .. } => "RefundSent",
        Input::Tick => "Tick",
    }
}

fn expect(expected: RequestId, got: RequestId) -> Result<(), Rejected> {
    if expected == got {
        Ok(())
    } else {
        Err(Rejected::StaleAnswer {
            expected: Some(expected),
            got,
        })
    }
}

fn audit(
    kind: MoneyEventKind,
    order: &OrderOffer,
    amount: UsdcAmount,
    tx_hash: Option<B256>,
    now: u64,
) -> Effect {
    Effect::Audit(MoneyEvent {
        kind,
        order_id: order.order_id.clone(),
        amount,
        tx_hash,
        at: now,
    })
}

/// The offer's terms that a payment and its settlement must match exactly.
fn matches_offer(order: &OrderOffer, token: Address, to: Address, amount: UsdcAmount) -> bool {
    token == order.offer.token.address && to == order.offer.pay_to && amount == order.offer.amount
}

fn refuse(payer: Address, reason: ReasonCode, message: impl Into<String>) -> Effect {
    Effect::AnswerPayment(PaymentAnswer::Refused(Refusal {
        reason,
        message: message.into(),
        payer: Some(payer),
    }))
}

fn transition(
    state: &Settlement,
    now: u64,
    input: Input,
) -> Result<(Settlement, Vec<Effect>), Rejected> {
    let not_now = |input: &Input| Rejected::NotNow {
        input: input_name(input),
        state: state.status(),
    };
    match (state, input) {
        (Settlement::AwaitingPayment(s), Input::Tick) => {
            if now >= s.order.expires_at {
                Ok((
                    Settlement::Expired(ExpiredOrder {
                        order: s.order.clone(),
                    }),
                    vec![],
                ))
            } else {
                Ok((state.clone(), vec![]))
            }
        }
        (Settlement::AwaitingPayment(s), Input::PaymentPresented(payment)) => {
            let amount = UsdcAmount::from_u256(payment.authorization.value);
            let exact = amount
                .is_some_and(|a| matches_offer(&s.order, payment.token.address, payment.pay_to, a))
                && payment.authorization.to == s.order.offer.pay_to
                && payment.token.network == s.order.offer.token.network;
            if now >= s.order.expires_at {
                let effect = refuse(
                    payment.payer,
                    ReasonCode::InvalidPaymentRequirements,
                    "this order's payment offer has expired",
                );
                return Ok((
                    Settlement::Expired(ExpiredOrder {
                        order: s.order.clone(),
                    }),
                    vec![effect],
                ));
            }
            if !exact {
                // Invariant 3: an authorization made for another order (or amount, token,
                // recipient) never pays this one.
                let effect = refuse(
                    payment.payer,
                    ReasonCode::InvalidValue,
                    "the payment does not match this order's offer",
                );
                return Ok((state.clone(), vec![effect]));
            }
            let request = RequestId(s.next_request);
            let effect = Effect::ReadChainFacts {
                request,
                payment: payment.clone(),
            };
            Ok((
                Settlement::CheckingChain(CheckingChain {
                    order: s.order.clone(),
                    next_request: s.next_request + 1,
                    request,
                    payment,
                }),
                vec![effect],
            ))
        }
        (Settlement::CheckingChain(s), Input::ChainFactsRead { request, facts }) => {
            expect(s.request, request)?;
            let back = Settlement::AwaitingPayment(AwaitingPayment {
                order: s.order.clone(),
                next_request: s.next_request,
            });
            match check_chain(s.payment.clone(), &facts) {
                Err(refusal) => Ok((
                    back,
                    vec![Effect::AnswerPayment(PaymentAnswer::Refused(refusal))],
                )),
                Ok(verified) => {
                    let request = RequestId(s.next_request);
                    let amount = s.order.offer.amount;
                    let accepted = AcceptedPayment {
                        payer: verified.payer,
                        amount,
                        nonce: verified.nonce_key(),
                    };
                    let effects = vec![
                        Effect::ReserveNonce(verified.nonce_key()),
                        audit(
                            MoneyEventKind::AuthorizationReceived,
                            &s.order,
                            amount,
                            None,
                            now,
                        ),
                        Effect::SubmitSettlement {
                            request,
                            payment: verified,
                        },
                    ];
                    Ok((
                        Settlement::Settling(Settling {
                            order: s.order.clone(),
                            next_request: s.next_request + 1,
                            request,
                            payment: accepted,
                        }),
                        effects,
                    ))
                }
            }
        }
        (
            Settlement::Settling(Settling {
                order,
                next_request,
                request: expected,
                payment,
            }),
            Input::SettlementResult { request, outcome },
        )
        | (
            Settlement::SettlementPending(SettlementPending {
                order,
                next_request,
                request: expected,
                payment,
                ..
            }),
            Input::SettlementResult { request, outcome },
        ) => {
            expect(*expected, request)?;
            settlement_result(order, *next_request, payment, outcome, now, state)
        }
        (Settlement::Fulfilling(s), Input::FulfilmentPaid { request }) => {
            expect(s.request, request)?;
            Ok((
                Settlement::InDelivery(InDelivery {
                    order: s.order.clone(),
                    next_request: s.next_request,
                    settled: s.settled.clone(),
                    tracking: None,
                }),
                vec![
                    audit(
                        MoneyEventKind::PaidToFulfilment,
                        &s.order,
                        s.settled.amount,
                        None,
                        now,
                    ),
                    Effect::WatchDelivery {
                        order_id: s.order.order_id.clone(),
                    },
                ],
            ))
        }
        (Settlement::Fulfilling(s), Input::FulfilmentFailed { request, failure }) => {
            expect(s.request, request)?;
            Ok(start_refund(&s.order, s.next_request, &s.settled, failure))
        }
        (Settlement::InDelivery(s), Input::Delivery(update)) => match update {
            DeliveryUpdate::Shipped(tracking) => Ok((
                Settlement::InDelivery(InDelivery {
                    tracking: Some(tracking.clone()),
                    ..s.clone()
                }),
                vec![Effect::NotifyBuyer(BuyerNotice::Shipped(tracking))],
            )),
            DeliveryUpdate::Delivered => Ok((
                Settlement::Fulfilled(Done {
                    order: s.order.clone(),
                    settled: s.settled.clone(),
                    tracking: s.tracking.clone(),
                }),
                vec![Effect::NotifyBuyer(BuyerNotice::Delivered)],
            )),
            DeliveryUpdate::Failed(reason) => Ok(start_refund(
                &s.order,
                s.next_request,
                &s.settled,
                FulfilmentFailure::DeliveryFailed(reason),
            )),
        },
        (Settlement::Refunding(s), Input::RefundSent { request, tx_hash }) => {
            expect(s.request, request)?;
            Ok((
                Settlement::Refunded(RefundedOrder {
                    order: s.order.clone(),
                    settled: s.settled.clone(),
                    reason: s.reason.clone(),
                    refund_tx: tx_hash,
                }),
                vec![
                    audit(
                        MoneyEventKind::Refunded,
                        &s.order,
                        s.settled.amount,
                        Some(tx_hash),
                        now,
                    ),
                    Effect::NotifyBuyer(BuyerNotice::Refunded {
                        amount: s.settled.amount,
                        tx_hash,
                        reason: s.reason.clone(),
                    }),
                ],
            ))
        }
        // A tick means "nothing new": it never changes a state other than expiry.
        (_, Input::Tick) => Ok((state.clone(), vec![])),
        (_, input) => Err(match &input {
            Input::ChainFactsRead { request, .. }
            | Input::SettlementResult { request, .. }
            | Input::FulfilmentPaid { request }
            | Input::FulfilmentFailed { request, .. }
            | Input::RefundSent { request, .. } => Rejected::StaleAnswer {
                expected: None,
                got: *request,
            },
            _ => not_now(&input),
        }),
    }
}

fn settlement_result(
    order: &OrderOffer,
    next_request: u64,
    payment: &AcceptedPayment,
    outcome: SettlementOutcome,
    now: u64,
    state: &Settlement,
) -> Result<(Settlement, Vec<Effect>), Rejected> {
    match outcome {
        SettlementOutcome::Confirmed(settled) => {
            // Invariant 1: fulfilment is paid only for exactly the offered transfer, from
            // the payer whose authorization we accepted.
            if !matches_offer(order, settled.token, settled.to, settled.amount)
                || settled.from != payment.payer
            {
                return Err(Rejected::NotNow {
                    input: "SettlementResult(mismatched transfer)",
                    state: state.status(),
                });
            }
            let request = RequestId(next_request);
            let effects = vec![
                audit(
                    MoneyEventKind::Settled,
                    order,
                    settled.amount,
                    Some(settled.tx_hash),
                    now,
                ),
                Effect::AnswerPayment(PaymentAnswer::Paid {
                    tx_hash: settled.tx_hash,
                    payer: payment.payer,
                }),
                Effect::PayFulfilment {
                    request,
                    order_id: order.order_id.clone(),
                },
            ];
            Ok((
                Settlement::Fulfilling(Fulfilling {
                    order: order.clone(),
                    next_request: next_request + 1,
                    request,
                    settled,
                }),
                effects,
            ))
        }
        SettlementOutcome::Pending { tx_hash } => {
            let request = RequestId(next_request);
            let mut effects = vec![Effect::ReconcileSettlement { request, tx_hash }];
            if matches!(state, Settlement::Settling(_)) {
                effects.insert(
                    0,
                    Effect::AnswerPayment(PaymentAnswer::Pending {
                        tx_hash,
                        payer: payment.payer,
                    }),
                );
            }
            Ok((
                Settlement::SettlementPending(SettlementPending {
                    order: order.clone(),
                    next_request: next_request + 1,
                    request,
                    payment: payment.clone(),
                    tx_hash,
                }),
                effects,
            ))
        }
        SettlementOutcome::Failed { reason, message } => {
            let effects = match state {
                Settlement::Settling(_) => vec![refuse(payment.payer, reason, message)],
                _ => vec![],
            };
            Ok((
                Settlement::AwaitingPayment(AwaitingPayment {
                    order: order.clone(),
                    next_request,
                }),
                effects,
            ))
        }
    }
}

fn start_refund(
    order: &OrderOffer,
    next_request: u64,
    settled: &SettledTransfer,
    reason: FulfilmentFailure,
) -> (Settlement, Vec<Effect>) {
    let request = RequestId(next_request);
    (
        Settlement::Refunding(Refunding {
            order: order.clone(),
            next_request: next_request + 1,
            request,
            settled: settled.clone(),
            reason,
        }),
        vec![Effect::RefundBuyer {
            request,
            to: settled.from,
            amount: settled.amount,
        }],
    )
}
