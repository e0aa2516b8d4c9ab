use super::*;
use crate::money::{FeeRate, UsdcAmount};
use crate::network::Network;
use crate::ports::store::Key;
use crate::x402::client::PaymentChallenge;
use crate::x402::{PaymentOffer, PaymentRequiredAnswer, ReasonCode};
use alloy_primitives::{Address, B256};
use proptest::prelude::*;

const NOW: u64 = 1_800_000_000;
const TREASURY: Address = Address::repeat_byte(0x7a);

fn policy() -> CheckoutPolicy {
    CheckoutPolicy {
        tokens: vec![Network::BaseSepolia.usdc(), Network::ArbitrumSepolia.usdc()],
        pay_to_allowlist: vec![TREASURY],
        fee: FeeRate::parse_percentage("2.5").unwrap(),
        per_order_limit: UsdcAmount::from_usdc(100),
        per_day_limit: UsdcAmount::from_usdc(150),
    }
}

fn product() -> ProductChoice {
    ProductChoice {
        asin: "B0TESTASIN".into(),
        title: "Wireless earbuds".into(),
    }
}

/// The merchant's honest 402 answer for a price, on the given networks.
fn merchant_quote(
    price: &str,
    networks: &[Network],
    tamper: impl Fn(&mut PaymentOffer),
) -> MerchantQuote {
    let price = UsdcAmount::parse_decimal(price).unwrap();
    let total = policy().fee.total_with_fee(price).unwrap();
    let offers: Vec<PaymentOffer> = networks
        .iter()
        .map(|n| {
            let mut offer = PaymentOffer {
                resource: "http://127.0.0.1:8080/api/orders".into(),
                description: "Order ord_1".into(),
                mime_type: "application/json".into(),
                token: n.usdc(),
                amount: total,
                pay_to: TREASURY,
                max_timeout_seconds: 600,
                extra: Default::default(),
            };
            tamper(&mut offer);
            offer
        })
        .collect();
    let answer = PaymentRequiredAnswer::new("Payment required", &offers);
    MerchantQuote {
        order_id: Key::parse("ord_1").unwrap(),
        quoted_price: price,
        challenge: PaymentChallenge::V2(answer.v2),
    }
}

struct Harness {
    checkout: Checkout,
    now: u64,
    request: RequestId,
}

impl Harness {
    fn start() -> (Self, Vec<Effect>) {
        let (checkout, effects) = Checkout::start(product(), policy());
        (
            Self {
                checkout,
                now: NOW,
                request: RequestId(1),
            },
            effects,
        )
    }

    fn handle(&mut self, input: Input) -> Result<Vec<Effect>, Rejected> {
        let before = self.checkout.clone();
        let result = self.checkout.handle(self.now, input);
        match &result {
            Err(_) => assert_eq!(self.checkout, before, "a rejected input changed the state"),
            Ok(effects) => {
                for effect in effects {
                    if let Effect::ReadBalances { request }
                    | Effect::Pay { request, .. }
                    | Effect::WatchBalance { request, .. } = effect
                    {
                        self.request = *request;
                    }
                }
            }
        }
        let json = serde_json::to_string(&self.checkout).unwrap();
        assert_eq!(
            serde_json::from_str::<Checkout>(&json).unwrap(),
            self.checkout
        );
        result
    }

    fn quoted(price: &str) -> Self {
        let (mut h, _) = Self::start();
        let quote = merchant_quote(price, &[Network::BaseSepolia], |_| {});
        h.handle(Input::QuoteReceived {
            request: RequestId(1),
            quote,
            spent_today: UsdcAmount::ZERO,
        })
        .unwrap();
        h
    }
}

fn pays(effects: &[Effect]) -> bool {
    effects.iter().any(|e| matches!(e, Effect::Pay { .. }))
}

#[test]
fn a_confirmed_quote_is_paid_when_the_wallet_holds_enough() {
    let (mut h, effects) = Harness::start();
    assert!(matches!(effects.as_slice(), [Effect::RequestQuote { .. }]));
    let quote = merchant_quote("12.34", &[Network::BaseSepolia], |_| {});
    let effects = h
        .handle(Input::QuoteReceived {
            request: RequestId(1),
            quote,
            spent_today: UsdcAmount::ZERO,
        })
        .unwrap();
    let Some(Effect::Notify(CheckoutNotice::QuoteReady(checked))) = effects.first() else {
        panic!("{effects:?}")
    };
    assert_eq!(checked.price, UsdcAmount::from_atomic(12_340_000));
    assert_eq!(checked.fee, UsdcAmount::from_atomic(308_500));
    assert_eq!(checked.total, UsdcAmount::from_atomic(12_648_500));
    assert!(!pays(&effects), "nothing is paid before the user confirms");

    let effects = h.handle(Input::Confirm).unwrap();
    assert_eq!(effects, vec![Effect::ReadBalances { request: h.request }]);
    let effects = h
        .handle(Input::BalancesRead {
            request: h.request,
            balances: vec![(Network::BaseSepolia, UsdcAmount::from_usdc(20))],
        })
        .unwrap();
    assert!(
        matches!(effects.as_slice(), [Effect::Pay { index: 0, total, .. }] if *total == UsdcAmount::from_atomic(12_648_500))
    );
    let tx_hash = B256::repeat_byte(1);
    let effects = h
        .handle(Input::PaymentResult {
            request: h.request,
            outcome: PaymentOutcome::Paid { tx_hash },
        })
        .unwrap();
    assert!(matches!(
        effects.as_slice(),
        [Effect::Notify(CheckoutNotice::Paid {
            network: Network::BaseSepolia,
            ..
        })]
    ));
    h.handle(Input::OrderUpdate(OrderUpdate::Shipped {
        carrier: "UPS".into(),
        tracking_number: "1Z".into(),
    }))
    .unwrap();
    h.handle(Input::OrderUpdate(OrderUpdate::Delivered))
        .unwrap();
    assert_eq!(h.checkout.status(), "delivered");
}

#[test]
fn a_402_answer_that_asks_for_the_wrong_thing_is_never_shown_or_paid() {
    type Tamper = Box<dyn Fn(&mut PaymentOffer)>;
    let tampers: Vec<(&str, Tamper)> = vec![
        (
            "recipient not on the allowlist",
            Box::new(|o| o.pay_to = Address::repeat_byte(0x66)),
        ),
        (
            "amount above price plus fee",
            Box::new(|o| o.amount = o.amount.checked_add(UsdcAmount::from_atomic(1)).unwrap()),
        ),
        (
            "unknown asset",
            Box::new(|o| o.token.address = Address::repeat_byte(0x55)),
        ),
        (
            "network we hold no funds on",
            Box::new(|o| o.token = Network::Base.usdc()),
        ),
        (
            "wrong EIP-712 domain name",
            Box::new(|o| o.token.eip712_name = "USD Coin".into()),
        ),
    ];
    for (name, tamper) in tampers {
        let (mut h, _) = Harness::start();
        let quote = merchant_quote("12.34", &[Network::BaseSepolia], tamper);
        let effects = h
            .handle(Input::QuoteReceived {
                request: RequestId(1),
                quote,
                spent_today: UsdcAmount::ZERO,
            })
            .unwrap();
        assert!(
            matches!(
                effects.as_slice(),
                [Effect::Notify(CheckoutNotice::CannotBuy(
                    CannotBuy::SuspiciousPaymentRequest(_)
                ))]
            ),
            "{name}: {effects:?}"
        );
        assert_eq!(h.checkout.status(), "failed", "{name}");
        assert!(
            h.handle(Input::Confirm).is_err(),
            "{name}: nothing left to confirm"
        );
    }
}

#[test]
fn per_order_and_per_day_limits_stop_a_purchase_before_confirmation() {
    let (mut h, _) = Harness::start();
    let quote = merchant_quote("99.00", &[Network::BaseSepolia], |_| {});
    let effects = h
        .handle(Input::QuoteReceived {
            request: RequestId(1),
            quote,
            spent_today: UsdcAmount::ZERO,
        })
        .unwrap();
    assert!(matches!(
        effects.as_slice(),
        [Effect::Notify(CheckoutNotice::CannotBuy(
            CannotBuy::OverOrderLimit { .. }
        ))]
    ));

    let (mut h, _) = Harness::start();
    let quote = merchant_quote("50.00", &[Network::BaseSepolia], |_| {});
    let effects = h
        .handle(Input::QuoteReceived {
            request: RequestId(1),
            quote,
            spent_today: UsdcAmount::from_usdc(110),
        })
        .unwrap();
    assert!(matches!(
        effects.as_slice(),
        [Effect::Notify(CheckoutNotice::CannotBuy(
            CannotBuy::OverDailyLimit { .. }
        ))]
    ));
}

#[test]
fn a_short_wallet_gets_a_funding_request_and_the_purchase_resumes_when_funds_arrive() {
    let mut h = Harness::quoted("12.34");
    h.handle(Input::Confirm).unwrap();
    let effects = h
        .handle(Input::BalancesRead {
            request: h.request,
            balances: vec![(Network::BaseSepolia, UsdcAmount::from_usdc(2))],
        })
        .unwrap();
    let shortfall = UsdcAmount::from_atomic(12_648_500 - 2_000_000);
    assert!(effects.contains(&Effect::RequestFunding {
        network: Network::BaseSepolia,
        shortfall
    }));
    assert!(
        effects
            .iter()
            .any(|e| matches!(e, Effect::WatchBalance { .. }))
    );
    assert!(!pays(&effects));
    assert_eq!(h.checkout.status(), "awaiting_funds");

    // Not enough yet: keep watching.
    let effects = h
        .handle(Input::FundsArrived {
            request: h.request,
            balance: UsdcAmount::from_usdc(5),
        })
        .unwrap();
    assert!(matches!(effects.as_slice(), [Effect::WatchBalance { .. }]));
    // Enough: resume by itself and tell the user.
    let effects = h
        .handle(Input::FundsArrived {
            request: h.request,
            balance: UsdcAmount::from_usdc(13),
        })
        .unwrap();
    assert_eq!(
        effects.first(),
        Some(&Effect::Notify(CheckoutNotice::FundsArrived))
    );
    assert!(pays(&effects));
}

#[test]
fn funds_on_another_accepted_network_are_used() {
    let (mut h, _) = Harness::start();
    let quote = merchant_quote(
        "12.34",
        &[Network::BaseSepolia, Network::ArbitrumSepolia],
        |_| {},
    );
    h.handle(Input::QuoteReceived {
        request: RequestId(1),
        quote,
        spent_today: UsdcAmount::ZERO,
    })
    .unwrap();
    h.handle(Input::Confirm).unwrap();
    let balances = vec![
        (Network::BaseSepolia, UsdcAmount::from_usdc(1)),
        (Network::ArbitrumSepolia, UsdcAmount::from_usdc(50)),
    ];
    let effects = h
        .handle(Input::BalancesRead {
            request: h.request,
            balances,
        })
        .unwrap();
    assert!(
        matches!(effects.as_slice(), [Effect::Pay { index: 1, .. }]),
        "{effects:?}"
    );
}

#[test]
fn declining_ends_the_checkout_and_a_late_confirmation_pays_nothing() {
    let mut h = Harness::quoted("12.34");
    h.handle(Input::Decline).unwrap();
    assert_eq!(h.checkout.status(), "declined");
    assert!(h.handle(Input::Confirm).is_err());
}

#[test]
fn a_confirmation_after_the_quote_expired_pays_nothing() {
    let mut h = Harness::quoted("12.34");
    h.now = NOW + 600;
    let effects = h.handle(Input::Confirm).unwrap();
    assert_eq!(
        effects,
        vec![Effect::Notify(CheckoutNotice::CannotBuy(
            CannotBuy::QuoteExpired
        ))]
    );
}

#[test]
fn a_refused_payment_is_explained_and_a_refund_is_reported() {
    let mut h = Harness::quoted("12.34");
    h.handle(Input::Confirm).unwrap();
    h.handle(Input::BalancesRead {
        request: h.request,
        balances: vec![(Network::BaseSepolia, UsdcAmount::from_usdc(20))],
    })
    .unwrap();
    let effects = h
        .handle(Input::PaymentResult {
            request: h.request,
            outcome: PaymentOutcome::Refused {
                reason: ReasonCode::InsufficientFunds,
                message: "payer holds 0".into(),
            },
        })
        .unwrap();
    assert!(matches!(
        effects.as_slice(),
        [Effect::Notify(CheckoutNotice::PaymentRefused { .. })]
    ));

    let mut h = Harness::quoted("12.34");
    h.handle(Input::Confirm).unwrap();
    h.handle(Input::BalancesRead {
        request: h.request,
        balances: vec![(Network::BaseSepolia, UsdcAmount::from_usdc(20))],
    })
    .unwrap();
    h.handle(Input::PaymentResult {
        request: h.request,
        outcome: PaymentOutcome::Paid {
            tx_hash: B256::repeat_byte(2),
        },
    })
    .unwrap();
    let refund = OrderUpdate::Refunded {
        amount: UsdcAmount::from_atomic(12_648_500),
        tx_hash: B256::repeat_byte(3),
    };
    let effects = h.handle(Input::OrderUpdate(refund)).unwrap();
    assert!(matches!(
        effects.as_slice(),
        [Effect::Notify(CheckoutNotice::Refunded { .. })]
    ));
    assert_eq!(h.checkout.status(), "refunded");
}

#[test]
fn stale_answers_are_rejected() {
    let mut h = Harness::quoted("12.34");
    h.handle(Input::Confirm).unwrap();
    let stale = RequestId(h.request.0 + 7);
    assert!(matches!(
        h.handle(Input::BalancesRead {
            request: stale,
            balances: vec![]
        }),
        Err(Rejected::StaleAnswer { .. })
    ));
}

#[derive(Debug, Clone)]
enum Step {
    Quote { tamper: bool, price_cents: u32 },
    Confirm,
    Decline,
    Balances { usdc: u64 },
    Funds { usdc: u64 },
    Paid,
    Refused,
    Wait { seconds: u64 },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (any::<bool>(), 1u32..20_000).prop_map(|(tamper, price_cents)| Step::Quote {
            tamper,
            price_cents
        }),
        Just(Step::Confirm),
        Just(Step::Decline),
        (0u64..200).prop_map(|usdc| Step::Balances { usdc }),
        (0u64..200).prop_map(|usdc| Step::Funds { usdc }),
        Just(Step::Paid),
        Just(Step::Refused),
        (0u64..400).prop_map(|seconds| Step::Wait { seconds }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Invariant 4: no payment without the user's confirmation of that exact, checked quote,
    /// within the limits.
    #[test]
    fn nothing_is_paid_without_a_confirmation_of_a_checked_quote_within_limits(steps in proptest::collection::vec(step(), 1..30)) {
        let (mut h, _) = Harness::start();
        let mut confirmed = false;
        for step in steps {
            let input = match step {
                Step::Quote { tamper, price_cents } => {
                    let price = format!("{}.{:02}", price_cents / 100, price_cents % 100);
                    let quote = merchant_quote(&price, &[Network::BaseSepolia], |o| if tamper { o.pay_to = Address::repeat_byte(1) });
                    Input::QuoteReceived { request: RequestId(1), quote, spent_today: UsdcAmount::ZERO }
                }
                Step::Confirm => Input::Confirm,
                Step::Decline => Input::Decline,
                Step::Balances { usdc } => Input::BalancesRead { request: h.request, balances: vec![(Network::BaseSepolia, UsdcAmount::from_usdc(usdc))] },
                Step::Funds { usdc } => Input::FundsArrived { request: h.request, balance: UsdcAmount::from_usdc(usdc) },
                Step::Paid => Input::PaymentResult { request: h.request, outcome: PaymentOutcome::Paid { tx_hash: B256::repeat_byte(9) } },
                Step::Refused => Input::PaymentResult { request: h.request, outcome: PaymentOutcome::Refused { reason: ReasonCode::InsufficientFunds, message: String::new() } },
                Step::Wait { seconds } => { h.now += seconds; continue; }
            };
            let was_confirm = matches!(input, Input::Confirm) && matches!(h.checkout, Checkout::AwaitingConfirmation(_));
            if let Ok(effects) = h.handle(input) {
                if was_confirm && effects.iter().any(|e| matches!(e, Effect::ReadBalances { .. })) {
                    confirmed = true;
                }
                for effect in &effects {
                    if let Effect::Pay { challenge, index, total, .. } = effect {
                        prop_assert!(confirmed, "paid without a confirmation");
                        let quote = h.checkout.quote().expect("a quote is held while paying");
                        prop_assert_eq!(challenge, &quote.challenge);
                        prop_assert!(*total <= policy().per_order_limit);
                        let terms = &challenge.offers()[*index];
                        prop_assert!(policy().pay_to_allowlist.contains(&terms.pay_to));
                        prop_assert_eq!(terms.amount, total.to_u256());
                    }
                }
            }
        }
    }
}
