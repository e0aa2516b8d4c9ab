use super::*;
use crate::UsdcAmount;
use crate::eip3009::{LocalSigner, Nonce};
use crate::network::Network;
use crate::ports::store::{Key, MoneyEventKind};
use crate::x402::client::{PaymentChallenge, sign_payment};
use crate::x402::{
    ChainFacts, NonceState, PaymentOffer, PaymentRequiredAnswer, PaymentRequirements, ReasonCode,
    SignedPayment, Simulation, VerifyPolicy, check_offline,
};
use alloy_primitives::{Address, B256, U256};
use proptest::prelude::*;

const NOW: u64 = 1_800_000_000;
const TREASURY: Address = Address::repeat_byte(0x7a);

fn offer(amount: u128) -> OrderOffer {
    OrderOffer {
        order_id: Key::parse("ord_1").unwrap(),
        offer: PaymentOffer {
            resource: "http://127.0.0.1:8080/api/orders".into(),
            description: "Order ord_1".into(),
            mime_type: "application/json".into(),
            token: Network::BaseSepolia.usdc(),
            amount: UsdcAmount::from_atomic(amount),
            pay_to: TREASURY,
            max_timeout_seconds: 600,
            extra: Default::default(),
        },
        expires_at: NOW + 600,
    }
}

/// A payment signed by a buyer for `offer`, checked offline against `offer`.
fn payment_for(order: &OrderOffer, nonce: u8) -> SignedPayment {
    let buyer = LocalSigner::from_bytes([9; 32]).unwrap();
    let answer = PaymentRequiredAnswer::new("Payment required", std::slice::from_ref(&order.offer));
    let challenge = PaymentChallenge::V2(answer.v2);
    let payment = sign_payment(
        &buyer,
        &challenge,
        0,
        &order.offer.token,
        Nonce::new([nonce; 32]),
        NOW,
    )
    .unwrap();
    let policy = VerifyPolicy::new(vec![order.offer.token.clone()]);
    check_offline(
        &payment,
        &PaymentRequirements::V2(order.offer.requirements_v2()),
        &policy,
        NOW,
    )
    .unwrap()
}

fn funded() -> ChainFacts {
    ChainFacts {
        token_has_code: true,
        payer_balance: U256::from(u64::MAX),
        nonce: NonceState::Unused,
        simulation: Simulation::Succeeded,
    }
}

fn transfer_of(payment: &SignedPayment, tx: u8) -> SettledTransfer {
    SettledTransfer {
        tx_hash: B256::repeat_byte(tx),
        from: payment.payer,
        to: payment.authorization.to,
        token: payment.token.address,
        amount: UsdcAmount::from_u256(payment.authorization.value).unwrap(),
    }
}

/// Drives one machine with a simulated clock, checking that a rejected input changes nothing.
struct Harness {
    machine: Settlement,
    now: u64,
}

impl Harness {
    fn new(amount: u128) -> Self {
        Self {
            machine: Settlement::new(offer(amount)),
            now: NOW,
        }
    }

    fn handle(&mut self, input: Input) -> Result<Vec<Effect>, Rejected> {
        let before = self.machine.clone();
        let result = self.machine.handle(self.now, input);
        if result.is_err() {
            assert_eq!(
                self.machine, before,
                "a rejected input must not change the state"
            );
        }
        // Every state survives the store's JSON round trip.
        let json = serde_json::to_string(&self.machine).unwrap();
        assert_eq!(
            serde_json::from_str::<Settlement>(&json).unwrap(),
            self.machine
        );
        result
    }

    fn request_of(effects: &[Effect]) -> RequestId {
        effects
            .iter()
            .find_map(|e| match e {
                Effect::ReadChainFacts { request, .. }
                | Effect::SubmitSettlement { request, .. }
                | Effect::ReconcileSettlement { request, .. }
                | Effect::PayFulfilment { request, .. }
                | Effect::RefundBuyer { request, .. } => Some(*request),
                _ => None,
            })
            .expect("an effect that expects an answer")
    }

    /// Presents a payment and answers the chain-facts read; returns the settlement request.
    fn pay(&mut self, payment: &SignedPayment) -> RequestId {
        let effects = self
            .handle(Input::PaymentPresented(payment.clone()))
            .unwrap();
        let request = Self::request_of(&effects);
        let effects = self
            .handle(Input::ChainFactsRead {
                request,
                facts: funded(),
            })
            .unwrap();
        assert!(effects.contains(&Effect::ReserveNonce(payment.nonce_key())));
        Self::request_of(&effects)
    }

    /// Pays and confirms; returns the fulfilment request.
    fn settle(&mut self, payment: &SignedPayment) -> RequestId {
        let request = self.pay(payment);
        let effects = self
            .handle(Input::SettlementResult {
                request,
                outcome: SettlementOutcome::Confirmed(transfer_of(payment, 0xaa)),
            })
            .unwrap();
        Self::request_of(&effects)
    }
}

fn audits(effects: &[Effect]) -> Vec<MoneyEventKind> {
    effects
        .iter()
        .filter_map(|e| {
            if let Effect::Audit(event) = e {
                Some(event.kind)
            } else {
                None
            }
        })
        .collect()
}

#[test]
fn a_paid_order_is_settled_then_fulfilment_is_paid_then_it_is_delivered() {
    let mut h = Harness::new(12_650_000);
    let payment = payment_for(h.machine.order(), 1);
    let effects = h.handle(Input::PaymentPresented(payment.clone())).unwrap();
    assert!(matches!(
        effects.as_slice(),
        [Effect::ReadChainFacts { .. }]
    ));
    assert_eq!(h.machine.status(), "checking_chain");

    let request = Harness::request_of(&effects);
    let effects = h
        .handle(Input::ChainFactsRead {
            request,
            facts: funded(),
        })
        .unwrap();
    assert_eq!(
        audits(&effects),
        vec![MoneyEventKind::AuthorizationReceived]
    );
    assert!(
        effects
            .iter()
            .any(|e| matches!(e, Effect::SubmitSettlement { .. }))
    );
    assert!(
        !effects
            .iter()
            .any(|e| matches!(e, Effect::PayFulfilment { .. })),
        "not before settlement"
    );

    let request = Harness::request_of(&effects);
    let settled = transfer_of(&payment, 0xaa);
    let effects = h
        .handle(Input::SettlementResult {
            request,
            outcome: SettlementOutcome::Confirmed(settled.clone()),
        })
        .unwrap();
    assert_eq!(audits(&effects), vec![MoneyEventKind::Settled]);
    assert!(
        effects.contains(&Effect::AnswerPayment(PaymentAnswer::Paid {
            tx_hash: settled.tx_hash,
            payer: payment.payer
        }))
    );
    let request = Harness::request_of(&effects);
    assert!(effects.contains(&Effect::PayFulfilment {
        request,
        order_id: Key::parse("ord_1").unwrap()
    }));

    let effects = h.handle(Input::FulfilmentPaid { request }).unwrap();
    assert_eq!(audits(&effects), vec![MoneyEventKind::PaidToFulfilment]);
    let tracking = Tracking {
        carrier: "UPS".into(),
        number: "1Z999".into(),
    };
    let effects = h
        .handle(Input::Delivery(DeliveryUpdate::Shipped(tracking.clone())))
        .unwrap();
    assert_eq!(
        effects,
        vec![Effect::NotifyBuyer(BuyerNotice::Shipped(tracking))]
    );
    let effects = h
        .handle(Input::Delivery(DeliveryUpdate::Delivered))
        .unwrap();
    assert_eq!(effects, vec![Effect::NotifyBuyer(BuyerNotice::Delivered)]);
    assert_eq!(h.machine.status(), "fulfilled");
    assert!(h.machine.is_final());
}

#[test]
fn a_payment_made_for_another_order_is_refused_and_changes_nothing() {
    let mut h = Harness::new(90_000_000);
    let cheap = offer(1_000_000);
    let payment = payment_for(&cheap, 2);
    let effects = h.handle(Input::PaymentPresented(payment)).unwrap();
    assert!(matches!(
        effects.as_slice(),
        [Effect::AnswerPayment(PaymentAnswer::Refused(refusal))] if refusal.reason == ReasonCode::InvalidValue
    ));
    assert_eq!(h.machine.status(), "awaiting_payment");
}

#[test]
fn a_chain_refusal_answers_the_reason_and_waits_for_another_payment() {
    let mut h = Harness::new(5_000_000);
    let payment = payment_for(h.machine.order(), 3);
    let effects = h.handle(Input::PaymentPresented(payment.clone())).unwrap();
    let request = Harness::request_of(&effects);
    let broke = ChainFacts {
        payer_balance: U256::from(1),
        ..funded()
    };
    let effects = h
        .handle(Input::ChainFactsRead {
            request,
            facts: broke,
        })
        .unwrap();
    assert!(matches!(
        effects.as_slice(),
        [Effect::AnswerPayment(PaymentAnswer::Refused(refusal))] if refusal.reason == ReasonCode::InsufficientFunds
    ));
    assert_eq!(h.machine.status(), "awaiting_payment");
    // A new payment can then go through.
    let payment = payment_for(h.machine.order(), 4);
    h.settle(&payment);
    assert_eq!(h.machine.status(), "fulfilling");
}

#[test]
fn a_late_receipt_is_answered_pending_and_reconciled_later() {
    let mut h = Harness::new(5_000_000);
    let payment = payment_for(h.machine.order(), 5);
    let request = h.pay(&payment);
    let tx_hash = B256::repeat_byte(0xbb);
    let effects = h
        .handle(Input::SettlementResult {
            request,
            outcome: SettlementOutcome::Pending { tx_hash },
        })
        .unwrap();
    assert!(
        effects.contains(&Effect::AnswerPayment(PaymentAnswer::Pending {
            tx_hash,
            payer: payment.payer
        }))
    );
    let reconcile = Harness::request_of(&effects);
    assert!(effects.contains(&Effect::ReconcileSettlement {
        request: reconcile,
        tx_hash
    }));
    // Still pending on the next try: reconcile again, without answering the buyer twice.
    let effects = h
        .handle(Input::SettlementResult {
            request: reconcile,
            outcome: SettlementOutcome::Pending { tx_hash },
        })
        .unwrap();
    assert!(matches!(
        effects.as_slice(),
        [Effect::ReconcileSettlement { .. }]
    ));
    let reconcile = Harness::request_of(&effects);
    let effects = h
        .handle(Input::SettlementResult {
            request: reconcile,
            outcome: SettlementOutcome::Confirmed(transfer_of(&payment, 0xbb)),
        })
        .unwrap();
    assert!(
        effects
            .iter()
            .any(|e| matches!(e, Effect::PayFulfilment { .. }))
    );
}

#[test]
fn fulfilment_failing_after_settlement_refunds_the_buyer() {
    for failure in [
        FulfilmentFailure::ItemUnavailable,
        FulfilmentFailure::QuoteExpired,
    ] {
        let mut h = Harness::new(7_000_000);
        let payment = payment_for(h.machine.order(), 6);
        let request = h.settle(&payment);
        let effects = h
            .handle(Input::FulfilmentFailed {
                request,
                failure: failure.clone(),
            })
            .unwrap();
        let refund = Harness::request_of(&effects);
        assert_eq!(
            effects,
            vec![Effect::RefundBuyer {
                request: refund,
                to: payment.payer,
                amount: UsdcAmount::from_atomic(7_000_000)
            }]
        );
        let tx_hash = B256::repeat_byte(0xcc);
        let effects = h
            .handle(Input::RefundSent {
                request: refund,
                tx_hash,
            })
            .unwrap();
        assert_eq!(audits(&effects), vec![MoneyEventKind::Refunded]);
        assert!(
            effects.contains(&Effect::NotifyBuyer(BuyerNotice::Refunded {
                amount: UsdcAmount::from_atomic(7_000_000),
                tx_hash,
                reason: failure
            }))
        );
        assert_eq!(h.machine.status(), "refunded");
    }
}

#[test]
fn a_failed_delivery_refunds_the_buyer() {
    let mut h = Harness::new(7_000_000);
    let payment = payment_for(h.machine.order(), 7);
    let request = h.settle(&payment);
    h.handle(Input::FulfilmentPaid { request }).unwrap();
    let effects = h
        .handle(Input::Delivery(DeliveryUpdate::Failed(
            "address not found".into(),
        )))
        .unwrap();
    assert!(matches!(effects.as_slice(), [Effect::RefundBuyer { .. }]));
    assert_eq!(h.machine.status(), "refunding");
}

#[test]
fn stale_and_duplicate_answers_are_rejected() {
    let mut h = Harness::new(7_000_000);
    let payment = payment_for(h.machine.order(), 8);
    let request = h.settle(&payment);
    let stale = RequestId(request.0 - 1);
    assert!(matches!(
        h.handle(Input::FulfilmentPaid { request: stale }),
        Err(Rejected::StaleAnswer { .. })
    ));
    h.handle(Input::FulfilmentPaid { request }).unwrap();
    assert!(
        h.handle(Input::FulfilmentPaid { request }).is_err(),
        "a duplicate answer changes nothing"
    );
}

#[test]
fn a_settlement_for_a_different_transfer_never_pays_fulfilment() {
    let mut h = Harness::new(7_000_000);
    let payment = payment_for(h.machine.order(), 9);
    let request = h.pay(&payment);
    let mut short = transfer_of(&payment, 0xdd);
    short.amount = UsdcAmount::from_atomic(6_999_999);
    assert!(
        h.handle(Input::SettlementResult {
            request,
            outcome: SettlementOutcome::Confirmed(short)
        })
        .is_err()
    );
    assert_eq!(h.machine.status(), "settling");
}

#[test]
fn an_unpaid_offer_expires_and_refuses_late_payments() {
    let mut h = Harness::new(7_000_000);
    let payment = payment_for(h.machine.order(), 10);
    h.now = NOW + 599;
    h.handle(Input::Tick).unwrap();
    assert_eq!(h.machine.status(), "awaiting_payment");
    h.now = NOW + 600;
    h.handle(Input::Tick).unwrap();
    assert_eq!(h.machine.status(), "expired");
    assert!(h.handle(Input::PaymentPresented(payment)).is_err());
}

#[test]
fn a_failed_settlement_lets_the_buyer_pay_again() {
    let mut h = Harness::new(7_000_000);
    let payment = payment_for(h.machine.order(), 11);
    let request = h.pay(&payment);
    let effects = h
        .handle(Input::SettlementResult {
            request,
            outcome: SettlementOutcome::Failed {
                reason: ReasonCode::InvalidTransactionState,
                message: "authorization is used or canceled".into(),
            },
        })
        .unwrap();
    assert!(matches!(
        effects.as_slice(),
        [Effect::AnswerPayment(PaymentAnswer::Refused(_))]
    ));
    assert_eq!(h.machine.status(), "awaiting_payment");
}

/// One step a fuzzing driver can take. Answers carry the id of the latest request (`None`)
/// or any id (often stale); outcomes vary.
#[derive(Debug, Clone)]
enum Step {
    Present {
        foreign: bool,
    },
    Facts {
        request: Option<u64>,
        broke: bool,
    },
    Settle {
        request: Option<u64>,
        kind: u8,
        amount_off: bool,
    },
    FulfilmentPaid {
        request: Option<u64>,
    },
    FulfilmentFailed {
        request: Option<u64>,
    },
    Delivery(u8),
    Refund {
        request: Option<u64>,
    },
    Tick {
        advance: u64,
    },
}

fn request_id() -> impl Strategy<Value = Option<u64>> {
    proptest::option::weighted(0.3, 0u64..8)
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        any::<bool>().prop_map(|foreign| Step::Present { foreign }),
        (request_id(), any::<bool>()).prop_map(|(request, broke)| Step::Facts { request, broke }),
        (request_id(), 0u8..3, any::<bool>()).prop_map(|(request, kind, amount_off)| {
            Step::Settle {
                request,
                kind,
                amount_off,
            }
        }),
        request_id().prop_map(|request| Step::FulfilmentPaid { request }),
        request_id().prop_map(|request| Step::FulfilmentFailed { request }),
        (0u8..3).prop_map(Step::Delivery),
        request_id().prop_map(|request| Step::Refund { request }),
        (0u64..400).prop_map(|advance| Step::Tick { advance }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn fulfilment_is_paid_only_after_an_exact_confirmed_settlement_and_settled_orders_never_go_back(
        steps in proptest::collection::vec(step(), 1..40)
    ) {
        let mut h = Harness::new(3_000_000);
        let own = payment_for(h.machine.order(), 1);
        let foreign = payment_for(&offer(2_000_000), 2);
        let mut confirmed_exactly = false;
        let mut settled = false;
        let mut latest = RequestId(0);
        let mut ended_final = false;
        for step in steps {
            let pick = |request: Option<u64>| request.map_or(latest, RequestId);
            let input = match step {
                Step::Present { foreign: true } => Input::PaymentPresented(foreign.clone()),
                Step::Present { .. } => Input::PaymentPresented(own.clone()),
                Step::Facts { request, broke } => Input::ChainFactsRead {
                    request: pick(request),
                    facts: if broke { ChainFacts { payer_balance: U256::ZERO, ..funded() } } else { funded() },
                },
                Step::Settle { request, kind, amount_off } => {
                    let mut transfer = transfer_of(&own, 0xee);
                    if amount_off { transfer.amount = UsdcAmount::from_atomic(1); }
                    let outcome = match kind {
                        0 => SettlementOutcome::Confirmed(transfer),
                        1 => SettlementOutcome::Pending { tx_hash: B256::repeat_byte(0xee) },
                        _ => SettlementOutcome::Failed { reason: ReasonCode::InvalidTransactionState, message: String::new() },
                    };
                    Input::SettlementResult { request: pick(request), outcome }
                }
                Step::FulfilmentPaid { request } => Input::FulfilmentPaid { request: pick(request) },
                Step::FulfilmentFailed { request } => Input::FulfilmentFailed { request: pick(request), failure: FulfilmentFailure::ItemUnavailable },
                Step::Delivery(0) => Input::Delivery(DeliveryUpdate::Shipped(Tracking { carrier: "UPS".into(), number: "1".into() })),
                Step::Delivery(1) => Input::Delivery(DeliveryUpdate::Delivered),
                Step::Delivery(_) => Input::Delivery(DeliveryUpdate::Failed("lost".into())),
                Step::Refund { request } => Input::RefundSent { request: pick(request), tx_hash: B256::repeat_byte(0x11) },
                Step::Tick { advance } => { h.now += advance; Input::Tick }
            };
            let was_confirm = matches!(&input, Input::SettlementResult { outcome: SettlementOutcome::Confirmed(t), .. } if t.amount == UsdcAmount::from_atomic(3_000_000));
            if let Ok(effects) = h.handle(input) {
                if let Some(request) = effects.iter().find_map(|e| match e {
                    Effect::ReadChainFacts { request, .. }
                    | Effect::SubmitSettlement { request, .. }
                    | Effect::ReconcileSettlement { request, .. }
                    | Effect::PayFulfilment { request, .. }
                    | Effect::RefundBuyer { request, .. } => Some(*request),
                    _ => None,
                }) {
                    latest = request;
                }
                if effects.iter().any(|e| matches!(e, Effect::PayFulfilment { .. })) {
                    prop_assert!(was_confirm, "PayFulfilment without an exact confirmed settlement");
                    confirmed_exactly = true;
                }
                if effects.iter().any(|e| matches!(e, Effect::Audit(ev) if ev.kind == MoneyEventKind::Settled)) {
                    settled = true;
                }
            }
            if settled {
                prop_assert!(!matches!(h.machine, Settlement::AwaitingPayment(_) | Settlement::Expired(_) | Settlement::CheckingChain(_)),
                    "a settled order went back to {}", h.machine.status());
            }
            ended_final |= h.machine.is_final();
            if ended_final {
                prop_assert!(h.machine.is_final(), "a final state was left");
            }
        }
        prop_assert_eq!(settled, confirmed_exactly);
    }

    #[test]
    fn stale_answers_around_a_purchase_do_not_disturb_it(seed in any::<u64>()) {
        let mut h = Harness::new(3_000_000);
        let own = payment_for(h.machine.order(), 1);
        let noise = Input::FulfilmentPaid { request: RequestId(seed % 8 + 100) };
        let _ = h.handle(noise.clone());
        h.settle(&own);
        let _ = h.handle(noise);
        prop_assert_eq!(h.machine.status(), "fulfilling");
    }
}
