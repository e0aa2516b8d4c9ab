//! The sandbox lifecycle, each injected failure, and determinism.

use super::*;
use alloy_primitives::Address;
use worldstore_domain::Network;
use worldstore_domain::ports::commerce::{Fulfilment, QuoteProblem};
use worldstore_domain::profile::{AddressLine, City, Email, PersonName, Profile, UsState, ZipCode};

const T0: u64 = 1_760_000_000;

fn request(asins: &[&Asin]) -> OrderRequest {
    let recipient = Profile {
        name: Some(PersonName::parse("Pat Lee").unwrap()),
        email: Some(Email::parse("pat@example.com").unwrap()),
        line1: Some(AddressLine::parse("1 Main St").unwrap()),
        line2: None,
        city: Some(City::parse("Seattle").unwrap()),
        state: Some(UsState::parse("WA").unwrap()),
        postal_code: Some(ZipCode::parse("98101").unwrap()),
    }
    .recipient()
    .unwrap();
    OrderRequest::new(
        recipient,
        asins.iter().map(|a| (*a).clone()).collect(),
        Network::BaseSepolia,
        Address::ZERO,
    )
    .unwrap()
}

fn catalog() -> SandboxCatalog {
    SandboxCatalog::builtin().unwrap()
}

fn asin(index: usize) -> Asin {
    catalog().products()[index].asin.clone()
}

fn key(text: &str) -> IdempotencyKey {
    IdempotencyKey::parse(text).unwrap()
}

fn sandbox(failures: &[(Asin, InjectedFailure)]) -> SandboxFulfilment {
    let mut config = FulfilmentConfig::default();
    for (asin, failure) in failures {
        config = config.with_failure(asin.clone(), *failure);
    }
    SandboxFulfilment::new(catalog(), config)
}

#[tokio::test]
async fn an_order_goes_from_quote_to_payment_to_delivery_to_completed() {
    let sandbox = sandbox(&[]);
    let (a, b) = (asin(0), asin(1));
    let order = sandbox.create_order(T0, &request(&[&a, &b])).await.unwrap();
    let prices = catalog().products()[0]
        .price
        .unwrap()
        .checked_add(catalog().products()[1].price.unwrap())
        .unwrap();
    assert_eq!(
        order.quote_outcome(T0),
        QuoteOutcome::Payable {
            total: prices,
            expires_at: Some(T0 + 600)
        }
    );
    assert_eq!(order.phase, OrderPhase::Payment);
    assert_eq!(order.fulfilment(), Fulfilment::AwaitingPayment);
    assert!(sandbox.tracking(T0, &order.id).await.unwrap().is_empty());

    let paid = sandbox
        .pay_order(T0 + 100, &order.id, &key("k1"))
        .await
        .unwrap();
    assert!(matches!(
        paid,
        PaymentOutcome::Paid {
            tx_hash: Some(_),
            ..
        }
    ));
    assert_eq!(sandbox.payment_key(&order.id), Some(key("k1")));

    let shipping = sandbox.order(T0 + 200, &order.id).await.unwrap();
    assert_eq!(shipping.phase, OrderPhase::Delivery);
    assert_eq!(shipping.fulfilment(), Fulfilment::InProgress);
    let parcels = sandbox.tracking(T0 + 200, &order.id).await.unwrap();
    assert_eq!(parcels.len(), 2);
    assert_eq!(parcels[0].status.as_str(), "shipped");
    assert_eq!(
        parcels[0].tracking_number.as_ref().unwrap().as_str(),
        "SBX00000100"
    );

    let done = sandbox.order(T0 + 400, &order.id).await.unwrap();
    assert_eq!(done.phase, OrderPhase::Completed);
    assert_eq!(done.fulfilment(), Fulfilment::Delivered);
    assert_eq!(done.payment.refunded, None);
    let parcels = sandbox.tracking(T0 + 400, &order.id).await.unwrap();
    assert_eq!(parcels[1].status.as_str(), "delivered");
    assert_eq!(parcels[1].delivery_window, Some((T0 + 400, T0 + 400)));

    let returned = sandbox
        .request_return(T0 + 500, &order.id, 1, "too small")
        .await
        .unwrap();
    assert_eq!(returned.status, "refund-request-initiated");
}

#[tokio::test]
async fn paying_twice_pays_once() {
    let sandbox = sandbox(&[]);
    let order = sandbox
        .create_order(T0, &request(&[&asin(2)]))
        .await
        .unwrap();
    let first = sandbox
        .pay_order(T0 + 1, &order.id, &key("k"))
        .await
        .unwrap();
    assert!(matches!(first, PaymentOutcome::Paid { .. }));
    let again = sandbox
        .pay_order(T0 + 2, &order.id, &key("k"))
        .await
        .unwrap();
    assert_eq!(again, PaymentOutcome::AlreadySubmitted);
}

#[tokio::test]
async fn an_unavailable_item_is_reported_in_the_quote_and_cannot_be_paid() {
    let gone = asin(3);
    let sandbox = sandbox(&[(gone.clone(), InjectedFailure::Unavailable)]);
    let order = sandbox.create_order(T0, &request(&[&gone])).await.unwrap();
    assert_eq!(order.quote.status, QuoteStatus::AllLineItemsUnavailable);
    assert!(matches!(
        order.quote_outcome(T0),
        QuoteOutcome::Problem(QuoteProblem::ItemsUnavailable(v)) if v.len() == 1
    ));
    let outcome = sandbox
        .pay_order(T0 + 1, &order.id, &key("k"))
        .await
        .unwrap();
    assert!(outcome.refund_required());
    assert!(matches!(
        outcome,
        PaymentOutcome::NotPaid(NotPaid::Quote(QuoteProblem::ItemsUnavailable(_)))
    ));
}

#[tokio::test]
async fn a_product_outside_the_catalogue_is_unavailable() {
    let sandbox = sandbox(&[]);
    let unknown = Asin::parse("ZZZZZZZZZZ").unwrap();
    let order = sandbox
        .create_order(T0, &request(&[&asin(0), &unknown]))
        .await
        .unwrap();
    assert_eq!(order.quote.total, None);
    assert!(matches!(
        order.quote_outcome(T0),
        QuoteOutcome::Problem(QuoteProblem::ItemsUnavailable(_))
    ));
}

#[tokio::test]
async fn a_quote_that_expires_before_payment_needs_a_new_order() {
    let sandbox = sandbox(&[]);
    let req = request(&[&asin(4)]);
    let order = sandbox.create_order(T0, &req).await.unwrap();
    let late = T0 + 600;
    assert_eq!(
        sandbox.pay_order(late, &order.id, &key("k")).await.unwrap(),
        PaymentOutcome::NotPaid(NotPaid::QuoteExpired)
    );
    let fresh = sandbox.fresh_quote(late, &order, &req).await.unwrap();
    assert_ne!(fresh.id, order.id);
    assert!(matches!(
        fresh.quote_outcome(late),
        QuoteOutcome::Payable { .. }
    ));
    // A quote still valid is kept as it is.
    let same = sandbox.fresh_quote(late, &fresh, &req).await.unwrap();
    assert_eq!(same.id, fresh.id);
}

#[tokio::test]
async fn an_injected_quote_expiry_makes_payment_after_settlement_fail() {
    let item = asin(5);
    let sandbox = sandbox(&[(item.clone(), InjectedFailure::QuoteExpiresBeforePayment)]);
    let order = sandbox.create_order(T0, &request(&[&item])).await.unwrap();
    assert!(matches!(
        order.quote_outcome(T0),
        QuoteOutcome::Payable { .. }
    ));
    let outcome = sandbox
        .pay_order(T0 + 30, &order.id, &key("k"))
        .await
        .unwrap();
    assert_eq!(outcome, PaymentOutcome::NotPaid(NotPaid::QuoteExpired));
    assert!(outcome.refund_required());
}

#[tokio::test]
async fn an_injected_payment_failure_is_reported_as_not_paid() {
    let item = asin(6);
    let sandbox = sandbox(&[(item.clone(), InjectedFailure::PaymentFails)]);
    let order = sandbox.create_order(T0, &request(&[&item])).await.unwrap();
    let outcome = sandbox
        .pay_order(T0 + 1, &order.id, &key("k"))
        .await
        .unwrap();
    assert!(matches!(
        outcome,
        PaymentOutcome::NotPaid(NotPaid::TransactionFailed { .. })
    ));
    assert_eq!(
        sandbox.order(T0 + 2, &order.id).await.unwrap().fulfilment(),
        Fulfilment::AwaitingPayment
    );
}

#[tokio::test]
async fn a_failed_delivery_after_payment_requires_a_refund_of_that_item() {
    let (good, bad) = (asin(7), asin(8));
    let sandbox = sandbox(&[(bad.clone(), InjectedFailure::DeliveryFails)]);
    let order = sandbox
        .create_order(T0, &request(&[&good, &bad]))
        .await
        .unwrap();
    let paid = sandbox
        .pay_order(T0 + 1, &order.id, &key("k"))
        .await
        .unwrap();
    assert!(!paid.refund_required());
    assert_eq!(
        sandbox
            .order(T0 + 100, &order.id)
            .await
            .unwrap()
            .fulfilment(),
        Fulfilment::InProgress
    );
    let done = sandbox.order(T0 + 301, &order.id).await.unwrap();
    assert_eq!(done.phase, OrderPhase::Completed);
    let fulfilment = done.fulfilment();
    assert_eq!(
        fulfilment,
        Fulfilment::Failed {
            failed: vec![1],
            delivered: vec![0]
        }
    );
    assert!(fulfilment.refund_required());
    let refunded = done.payment.refunded.unwrap();
    assert_eq!(Some(refunded.amount), done.line_items[1].total);
    let parcels = sandbox.tracking(T0 + 301, &order.id).await.unwrap();
    assert_eq!(parcels[1].status.as_str(), "failed");
    assert!(
        sandbox
            .request_return(T0 + 400, &order.id, 1, "never arrived")
            .await
            .is_err()
    );
}

#[tokio::test]
async fn unknown_orders_are_not_found() {
    let sandbox = sandbox(&[]);
    let id = OrderId::parse("sbx-order-999999").unwrap();
    assert_eq!(
        sandbox.order(T0, &id).await.unwrap_err(),
        CommerceError::NotFound
    );
}

#[tokio::test]
async fn the_same_inputs_give_the_same_orders() {
    let run = || async {
        let sandbox = sandbox(&[]);
        let order = sandbox
            .create_order(T0, &request(&[&asin(9)]))
            .await
            .unwrap();
        let paid = sandbox
            .pay_order(T0 + 5, &order.id, &key("k"))
            .await
            .unwrap();
        let later = sandbox.order(T0 + 999, &order.id).await.unwrap();
        (order, paid, later)
    };
    assert_eq!(run().await, run().await);
}
