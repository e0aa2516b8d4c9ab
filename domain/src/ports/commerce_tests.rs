//! Unit tests of the commerce port's rules: quote outcomes and per-item fulfilment.

use super::*;

fn item(quote_status: &str, delivery: &str) -> LineItem {
    LineItem {
        name: Some(ProductText::clean("Headphones")),
        quantity: 1,
        quote_status: LineItemQuoteStatus::from_wire(quote_status),
        unavailability: None,
        total: Some(UsdcAmount::from_usdc(5)),
        delivery: DeliveryStatus::from_wire(delivery),
        delivery_tx: None,
    }
}

fn quoted(expires_at: u64) -> Order {
    Order {
        id: OrderId::parse("order-1").unwrap(),
        phase: OrderPhase::Payment,
        quote: Quote {
            status: QuoteStatus::Valid,
            quoted_at: Some(expires_at - 600),
            expires_at: Some(expires_at),
            total: Some(UsdcAmount::parse_decimal("12.34").unwrap()),
        },
        line_items: vec![item("valid", "awaiting-payment")],
        payment: Payment {
            status: PaymentStatus::AwaitingPayment,
            failure_reason: None,
            preparation: Some(PaymentPreparation {
                chain: Some("base-sepolia".into()),
                payer_address: None,
                serialized_transaction: Some("0x02f8".into()),
            }),
            refunded: None,
        },
    }
}

#[test]
fn a_valid_quote_is_payable_until_it_expires() {
    let order = quoted(1_000);
    assert_eq!(
        order.quote_outcome(999),
        QuoteOutcome::Payable {
            total: UsdcAmount::parse_decimal("12.34").unwrap(),
            expires_at: Some(1_000)
        }
    );
    assert_eq!(order.quote_outcome(1_000), QuoteOutcome::Expired);
    let mut expired = quoted(1_000);
    expired.quote.status = QuoteStatus::Expired;
    assert_eq!(expired.quote_outcome(0), QuoteOutcome::Expired);
}

#[test]
fn problems_reported_inside_the_order_are_typed() {
    let mut order = quoted(1_000);
    order.quote.status = QuoteStatus::RequiresPhysicalAddress;
    assert_eq!(
        order.quote_outcome(0),
        QuoteOutcome::Problem(QuoteProblem::RequiresPhysicalAddress)
    );

    let mut order = quoted(1_000);
    order.payment.status = PaymentStatus::CryptoPayerInsufficientFunds;
    assert_eq!(
        order.quote_outcome(0),
        QuoteOutcome::Problem(QuoteProblem::PayerInsufficientFunds)
    );

    let mut order = quoted(1_000);
    order.payment.preparation = None;
    assert_eq!(
        order.quote_outcome(0),
        QuoteOutcome::Problem(QuoteProblem::NotPayable)
    );

    let mut order = quoted(1_000);
    order
        .line_items
        .push(item("item-unavailable", "awaiting-payment"));
    assert!(matches!(
        order.quote_outcome(0),
        QuoteOutcome::Problem(QuoteProblem::ItemsUnavailable(v)) if v.len() == 1
    ));

    let mut order = quoted(1_000);
    order.quote.status = QuoteStatus::from_wire("something-new");
    assert_eq!(
        order.quote_outcome(0),
        QuoteOutcome::Problem(QuoteProblem::Other("something-new".into()))
    );
}

#[test]
fn unknown_statuses_are_kept_not_refused() {
    let status: PaymentStatus = serde_json::from_str("\"requires-magic\"").unwrap();
    assert_eq!(status, PaymentStatus::Unknown("requires-magic".into()));
    assert_eq!(
        serde_json::to_string(&status).unwrap(),
        "\"requires-magic\""
    );
    assert_eq!(
        DeliveryStatus::from_wire("in-progress"),
        DeliveryStatus::InProgress
    );
}

#[test]
fn fulfilment_is_judged_per_line_item_not_by_phase() {
    let mut order = quoted(1_000);
    assert_eq!(order.fulfilment(), Fulfilment::AwaitingPayment);

    order.phase = OrderPhase::Delivery;
    order.payment.status = PaymentStatus::Completed;
    order.line_items = vec![item("valid", "completed"), item("valid", "in-progress")];
    assert_eq!(order.fulfilment(), Fulfilment::InProgress);

    order.phase = OrderPhase::Completed;
    order.line_items[1].delivery = DeliveryStatus::Failed;
    let fulfilment = order.fulfilment();
    assert_eq!(
        fulfilment,
        Fulfilment::Failed {
            failed: vec![1],
            delivered: vec![0]
        }
    );
    assert!(fulfilment.refund_required());

    order.line_items[1].delivery = DeliveryStatus::Completed;
    assert_eq!(order.fulfilment(), Fulfilment::Delivered);
    assert!(!order.fulfilment().refund_required());
}

#[test]
fn a_failed_order_counts_its_pending_items_as_failed() {
    let mut order = quoted(1_000);
    order.phase = OrderPhase::Failed;
    assert_eq!(
        order.fulfilment(),
        Fulfilment::Failed {
            failed: vec![0],
            delivered: vec![]
        }
    );
}

#[test]
fn only_a_definitive_non_payment_requires_a_refund() {
    assert!(PaymentOutcome::NotPaid(NotPaid::QuoteExpired).refund_required());
    assert!(!PaymentOutcome::AlreadySubmitted.refund_required());
    assert!(
        !PaymentOutcome::Paid {
            transaction_id: "t".into(),
            tx_hash: None
        }
        .refund_required()
    );
    assert_eq!(
        CommerceError::RateLimited {
            retry_after_secs: None
        }
        .class(),
        ErrorClass::Transient
    );
    assert_eq!(CommerceError::Unauthorized.class(), ErrorClass::Fatal);
}

#[test]
fn order_ids_and_idempotency_keys_are_url_safe_tokens() {
    assert!(OrderId::parse("b3f1c9e2-0d4a-4c1b-9a77-1f2e3d4c5b6a").is_ok());
    for bad in ["", "../admin", "a b", "a/b", "a?x=1"] {
        assert!(OrderId::parse(bad).is_err(), "{bad}");
    }
    assert!(IdempotencyKey::parse("order-1:fulfil").is_ok());
    assert!(IdempotencyKey::parse(&"k".repeat(129)).is_err());
}

#[test]
fn an_order_request_has_one_to_ten_items() {
    let recipient = crate::profile::Profile {
        name: Some(crate::profile::PersonName::parse("Pat Lee").unwrap()),
        email: Some(crate::profile::Email::parse("pat@example.com").unwrap()),
        line1: Some(crate::profile::AddressLine::parse("1 Main St").unwrap()),
        line2: None,
        city: Some(crate::profile::City::parse("Seattle").unwrap()),
        state: Some(crate::profile::UsState::parse("WA").unwrap()),
        postal_code: Some(crate::profile::ZipCode::parse("98101").unwrap()),
    }
    .recipient()
    .unwrap();
    let asin = Asin::parse("B0CHX3QBCH").unwrap();
    let new = |n: usize| {
        OrderRequest::new(
            recipient.clone(),
            vec![asin.clone(); n],
            Network::BaseSepolia,
            Address::ZERO,
        )
    };
    assert!(new(0).is_err());
    assert!(new(1).is_ok());
    assert!(new(11).is_err());
}
