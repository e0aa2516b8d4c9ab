//! The Crossmint commerce adapter against recorded payloads replayed by a local server.

mod support;

use alloy_primitives::address;
use secrecy::SecretString;
use serde_json::json;
use std::time::Duration;
use support::{ReplayServer, Reply};
use worldstore_adapters::crossmint::{CrossmintCommerce, CrossmintConfig, WalletKind};
use worldstore_adapters::retry::RetryPolicy;
use worldstore_domain::ports::ErrorClass;
use worldstore_domain::ports::catalog::Asin;
use worldstore_domain::ports::commerce::*;
use worldstore_domain::profile::{AddressLine, City, Email, PersonName, Profile, UsState, ZipCode};
use worldstore_domain::{Network, UsdcAmount};

const KEY: &str = "sk_staging_test_key";
const ORDER: &str = "b2959ca5-65e4-466a-bd26-1bd05cb4f837";
const WALLET: &str = "0x2222222222222222222222222222222222222222";
const TX: &str = "0x02f86c83014a3480018405f5e100830186a094036cbd53842c5426634e7929541ec2318f3dcf7e80b844a9059cbb000000000000000000000000000000000000000000000000000000000000beef0000000000000000000000000000000000000000000000000000000000bc4b20c0";
/// 2025-09-01T12:01:00Z: a minute after the recorded quote, which expires at 13:00.
const NOW: u64 = 1_756_728_060;
const EXPIRES_AT: u64 = 1_756_731_600;

fn commerce_with(server: &ReplayServer, kind: WalletKind) -> CrossmintCommerce {
    let mut config = CrossmintConfig::new(
        reqwest::Url::parse(&format!("{}/api", server.base_url)).unwrap(),
        SecretString::from(KEY),
        WALLET.to_owned(),
        kind,
    );
    config.retry = RetryPolicy {
        max_retries: 2,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
    };
    config.transaction_poll_interval = Duration::from_millis(1);
    config.transaction_poll_attempts = 3;
    config.timeout = Duration::from_secs(5);
    CrossmintCommerce::new(config).unwrap()
}

fn commerce(server: &ReplayServer) -> CrossmintCommerce {
    commerce_with(server, WalletKind::Smart)
}

fn ok(path: &str) -> Reply {
    Reply::fixture(200, &format!("crossmint/{path}.json"))
}

fn status(code: u16, path: &str) -> Reply {
    Reply::fixture(code, &format!("crossmint/{path}.json"))
}

fn order_id() -> OrderId {
    OrderId::parse(ORDER).unwrap()
}

fn key() -> IdempotencyKey {
    IdempotencyKey::parse(&format!("{ORDER}-fulfil")).unwrap()
}

fn request() -> OrderRequest {
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
        vec![Asin::parse("B0ORGAN001").unwrap()],
        Network::BaseSepolia,
        address!("0x1111111111111111111111111111111111111111"),
    )
    .unwrap()
}

#[tokio::test]
async fn creating_an_order_sends_the_documented_body_and_reads_the_quote() {
    let server = ReplayServer::start(vec![ok("create_order_quoted")]).await;
    let order = commerce(&server)
        .create_order(NOW, &request())
        .await
        .unwrap();
    assert_eq!(order.id, order_id());
    assert_eq!(
        order.quote_outcome(NOW),
        QuoteOutcome::Payable {
            total: UsdcAmount::parse_decimal("12.34").unwrap(),
            expires_at: Some(EXPIRES_AT)
        }
    );
    let sent = &server.requests()[0];
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.path, "/api/2022-06-09/orders");
    assert_eq!(sent.header("x-api-key"), Some(KEY));
    assert_eq!(sent.header("content-type"), Some("application/json"));
    assert_eq!(
        sent.json(),
        json!({
            "recipient": {
                "email": "pat@example.com",
                "physicalAddress": {
                    "name": "Pat Lee", "line1": "1 Main St", "city": "Seattle",
                    "state": "WA", "postalCode": "98101", "country": "US"
                }
            },
            "locale": "en-US",
            "payment": {
                "method": "base-sepolia",
                "currency": "usdc",
                "payerAddress": "0x1111111111111111111111111111111111111111"
            },
            "lineItems": [{"productLocator": "amazon:B0ORGAN001"}]
        })
    );
}

#[tokio::test]
async fn problems_inside_http_200_become_typed_quote_problems() {
    let server = ReplayServer::start(vec![
        ok("create_order_requires_physical_address"),
        ok("create_order_insufficient_funds"),
        ok("create_order_item_unavailable"),
    ])
    .await;
    let commerce = commerce(&server);
    let address = commerce.create_order(NOW, &request()).await.unwrap();
    assert_eq!(
        address.quote_outcome(NOW),
        QuoteOutcome::Problem(QuoteProblem::RequiresPhysicalAddress)
    );
    let funds = commerce.create_order(NOW, &request()).await.unwrap();
    assert_eq!(
        funds.quote_outcome(NOW),
        QuoteOutcome::Problem(QuoteProblem::PayerInsufficientFunds)
    );
    assert_eq!(
        funds.payment.failure_reason.unwrap().as_str(),
        "Payer has insufficient funds"
    );
    let gone = commerce.create_order(NOW, &request()).await.unwrap();
    let QuoteOutcome::Problem(QuoteProblem::ItemsUnavailable(reasons)) = gone.quote_outcome(NOW)
    else {
        panic!("expected unavailable items");
    };
    assert_eq!(reasons[0].code, "not-sold-by-amazon");
    assert_eq!(
        reasons[0].message.as_str(),
        "This item is not available from Amazon right now"
    );
}

#[tokio::test]
async fn an_order_is_read_bare_or_wrapped_in_order() {
    let server = ReplayServer::start(vec![
        ok("order_awaiting_payment_bare"),
        ok("order_awaiting_payment_wrapped"),
    ])
    .await;
    let commerce = commerce(&server);
    let bare = commerce.order(NOW, &order_id()).await.unwrap();
    let wrapped = commerce.order(NOW, &order_id()).await.unwrap();
    assert_eq!(bare, wrapped);
    assert_eq!(bare.serialized_transaction(), Some(TX));
    let sent = &server.requests()[0];
    assert_eq!(sent.method, "GET");
    assert_eq!(sent.path, format!("/api/2022-06-09/orders/{ORDER}"));
    assert_eq!(sent.header("x-api-key"), Some(KEY));
}

#[tokio::test]
async fn unknown_statuses_are_kept_and_inexact_amounts_refused() {
    let server = ReplayServer::start(vec![
        ok("order_unknown_statuses"),
        ok("order_amount_too_precise"),
    ])
    .await;
    let commerce = commerce(&server);
    let odd = commerce.order(NOW, &order_id()).await.unwrap();
    assert_eq!(odd.phase, OrderPhase::Unknown("teleporting".into()));
    assert_eq!(
        odd.quote.status,
        QuoteStatus::Unknown("pending-review".into())
    );
    assert_eq!(
        odd.payment.status,
        PaymentStatus::Unknown("requires-retina-scan".into())
    );
    assert_eq!(
        odd.line_items[0].delivery,
        DeliveryStatus::Unknown("on-a-boat".into())
    );
    let error = commerce.order(NOW, &order_id()).await.unwrap_err();
    assert!(matches!(error, CommerceError::Malformed(_)), "{error:?}");
}

#[tokio::test]
async fn paying_from_a_smart_wallet_submits_the_prepared_transaction_and_polls_to_success() {
    let server = ReplayServer::start(vec![
        ok("order_awaiting_payment_bare"),
        Reply::fixture(201, "crossmint/wallet_tx_pending.json"),
        ok("wallet_tx_awaiting_approval"),
        ok("wallet_tx_pending"),
        ok("wallet_tx_success"),
    ])
    .await;
    let outcome = commerce(&server)
        .pay_order(NOW, &order_id(), &key())
        .await
        .unwrap();
    let PaymentOutcome::Paid {
        transaction_id,
        tx_hash,
    } = outcome
    else {
        panic!("expected paid, got {outcome:?}");
    };
    assert_eq!(transaction_id, "tx-7f3a");
    assert!(tx_hash.unwrap().starts_with("0x9f6c1e0d"));
    let requests = server.requests();
    assert_eq!(requests.len(), 5);
    let submit = &requests[1];
    assert_eq!(submit.method, "POST");
    assert_eq!(
        submit.path,
        format!("/api/2022-06-09/wallets/{WALLET}/transactions")
    );
    assert_eq!(submit.header("x-api-key"), Some(KEY));
    assert_eq!(
        submit.header("x-idempotency-key"),
        Some(format!("{ORDER}-fulfil").as_str())
    );
    assert_eq!(
        submit.json(),
        json!({"params": {"calls": [{"transaction": TX}], "chain": "base-sepolia"}})
    );
    for poll in &requests[2..] {
        assert_eq!(poll.method, "GET");
        assert_eq!(
            poll.path,
            format!("/api/2022-06-09/wallets/{WALLET}/transactions/tx-7f3a")
        );
    }
}

#[tokio::test]
async fn paying_from_an_mpc_wallet_sends_the_call_read_from_the_transaction() {
    let server = ReplayServer::start(vec![
        ok("order_awaiting_payment_bare"),
        ok("wallet_tx_success"),
    ])
    .await;
    let outcome = commerce_with(&server, WalletKind::Mpc)
        .pay_order(NOW, &order_id(), &key())
        .await
        .unwrap();
    assert!(matches!(outcome, PaymentOutcome::Paid { .. }));
    let data = "0xa9059cbb000000000000000000000000000000000000000000000000000000000000beef0000000000000000000000000000000000000000000000000000000000bc4b20";
    assert_eq!(
        server.requests()[1].json(),
        json!({"params": {
            "call": {"to": "0x036CbD53842c5426634e7929541eC2318f3dCF7e", "data": data},
            "chain": "base-sepolia"
        }})
    );
}

#[tokio::test]
async fn a_409_means_the_payment_was_already_submitted() {
    let server = ReplayServer::start(vec![
        ok("order_awaiting_payment_bare"),
        status(409, "wallet_tx_409_idempotency_conflict"),
    ])
    .await;
    let outcome = commerce(&server)
        .pay_order(NOW, &order_id(), &key())
        .await
        .unwrap();
    assert_eq!(outcome, PaymentOutcome::AlreadySubmitted);
    assert!(!outcome.refund_required());
}

#[tokio::test]
async fn a_422_simulation_failure_is_not_paid_and_needs_a_refund() {
    let server = ReplayServer::start(vec![
        ok("order_awaiting_payment_bare"),
        status(422, "wallet_tx_422_simulation_failed"),
    ])
    .await;
    let outcome = commerce(&server)
        .pay_order(NOW, &order_id(), &key())
        .await
        .unwrap();
    let PaymentOutcome::NotPaid(NotPaid::SimulationFailed { reason, message }) = &outcome else {
        panic!("expected a simulation failure, got {outcome:?}");
    };
    assert_eq!(reason, "simulation_failed");
    assert!(message.as_str().contains("exceeds balance"));
    assert!(outcome.refund_required());
}

#[tokio::test]
async fn a_failed_wallet_transaction_is_not_paid() {
    let server = ReplayServer::start(vec![
        ok("order_awaiting_payment_bare"),
        ok("wallet_tx_pending"),
        ok("wallet_tx_failed"),
    ])
    .await;
    let outcome = commerce(&server)
        .pay_order(NOW, &order_id(), &key())
        .await
        .unwrap();
    assert_eq!(
        outcome,
        PaymentOutcome::NotPaid(NotPaid::TransactionFailed {
            transaction_id: "tx-7f3a".into()
        })
    );
}

#[tokio::test]
async fn a_transaction_still_pending_after_polling_is_a_transient_error() {
    let server = ReplayServer::start(vec![
        ok("order_awaiting_payment_bare"),
        ok("wallet_tx_pending"),
        ok("wallet_tx_pending"),
        ok("wallet_tx_pending"),
        ok("wallet_tx_pending"),
        ok("wallet_tx_pending"),
    ])
    .await;
    let error = commerce(&server)
        .pay_order(NOW, &order_id(), &key())
        .await
        .unwrap_err();
    assert_eq!(
        error,
        CommerceError::StillPending {
            transaction_id: "tx-7f3a".into()
        }
    );
    assert_eq!(error.class(), ErrorClass::Transient);
    assert_eq!(
        server.unserved(),
        0,
        "1 submit + 4 polls (first + 3 attempts)"
    );
}

#[tokio::test]
async fn an_expired_quote_is_not_paid_and_nothing_is_submitted() {
    let server = ReplayServer::start(vec![
        ok("order_awaiting_payment_bare"),
        ok("order_quote_expired"),
    ])
    .await;
    let commerce = commerce(&server);
    let by_clock = commerce
        .pay_order(EXPIRES_AT, &order_id(), &key())
        .await
        .unwrap();
    assert_eq!(by_clock, PaymentOutcome::NotPaid(NotPaid::QuoteExpired));
    let by_status = commerce.pay_order(NOW, &order_id(), &key()).await.unwrap();
    assert_eq!(by_status, PaymentOutcome::NotPaid(NotPaid::QuoteExpired));
    assert!(server.requests().iter().all(|r| r.method == "GET"));
}

#[tokio::test]
async fn an_expired_quote_is_replaced_by_a_new_order() {
    let server =
        ReplayServer::start(vec![ok("order_quote_expired"), ok("create_order_quoted")]).await;
    let commerce = commerce(&server);
    let expired = commerce.order(NOW, &order_id()).await.unwrap();
    let fresh = commerce
        .fresh_quote(NOW, &expired, &request())
        .await
        .unwrap();
    assert!(matches!(
        fresh.quote_outcome(NOW),
        QuoteOutcome::Payable { .. }
    ));
    let requests = server.requests();
    assert_eq!(requests[1].method, "POST");
    assert_eq!(requests[1].path, "/api/2022-06-09/orders");
    // A valid quote is kept without asking again.
    let same = commerce.fresh_quote(NOW, &fresh, &request()).await.unwrap();
    assert_eq!(same, fresh);
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn an_order_without_a_serialized_transaction_cannot_be_paid() {
    let server = ReplayServer::start(vec![ok("order_missing_serialized_transaction")]).await;
    let outcome = commerce(&server)
        .pay_order(NOW, &order_id(), &key())
        .await
        .unwrap();
    assert_eq!(
        outcome,
        PaymentOutcome::NotPaid(NotPaid::Quote(QuoteProblem::NotPayable))
    );
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn an_order_already_paid_is_not_paid_again() {
    let server = ReplayServer::start(vec![ok("order_delivery_in_progress")]).await;
    let outcome = commerce(&server)
        .pay_order(NOW, &order_id(), &key())
        .await
        .unwrap();
    assert_eq!(outcome, PaymentOutcome::AlreadySubmitted);
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn delivery_is_followed_per_line_item_and_failures_require_a_refund() {
    let server = ReplayServer::start(vec![
        ok("order_delivery_in_progress"),
        ok("order_completed_one_item_failed"),
        ok("order_completed"),
    ])
    .await;
    let commerce = commerce(&server);
    let moving = commerce.order(NOW, &order_id()).await.unwrap();
    assert_eq!(moving.fulfilment(), Fulfilment::InProgress);
    let partly = commerce.order(NOW, &order_id()).await.unwrap();
    assert_eq!(partly.phase, OrderPhase::Completed);
    let fulfilment = partly.fulfilment();
    assert_eq!(
        fulfilment,
        Fulfilment::Failed {
            failed: vec![0],
            delivered: vec![1]
        }
    );
    assert!(fulfilment.refund_required());
    assert_eq!(
        partly.payment.refunded,
        Some(ProviderRefund {
            amount: UsdcAmount::parse_decimal("12.34").unwrap(),
            tx_id: Some("0x5eed".into())
        })
    );
    assert_eq!(partly.line_items[1].delivery_tx.as_deref(), Some("0xdef2"));
    let done = commerce.order(NOW, &order_id()).await.unwrap();
    assert_eq!(done.fulfilment(), Fulfilment::Delivered);
}

#[tokio::test]
async fn tracking_lists_parcels_with_carrier_number_and_window() {
    let server = ReplayServer::start(vec![ok("tracking")]).await;
    let parcels = commerce(&server).tracking(NOW, &order_id()).await.unwrap();
    assert_eq!(parcels.len(), 2);
    assert_eq!(parcels[0].carrier.as_ref().unwrap().as_str(), "UPS");
    assert_eq!(
        parcels[0].tracking_number.as_ref().unwrap().as_str(),
        "1Z999AA10123456784"
    );
    let (low, high) = parcels[1].delivery_window.unwrap();
    assert_eq!(low, high, "a delivered parcel has one arrival time");
    let sent = &server.requests()[0];
    assert_eq!(sent.path, format!("/api/unstable/orders/{ORDER}/tracking"));
    assert_eq!(sent.header("x-api-key"), Some(KEY));
}

#[tokio::test]
async fn a_return_is_requested_for_one_line_item() {
    let server = ReplayServer::start(vec![ok("refund_requested")]).await;
    let accepted = commerce(&server)
        .request_return(NOW, &order_id(), 0, "It arrived damaged")
        .await
        .unwrap();
    assert_eq!(
        accepted,
        ReturnAccepted {
            line_item: 0,
            status: "refund-request-initiated".into()
        }
    );
    let sent = &server.requests()[0];
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.path, format!("/api/unstable/orders/{ORDER}/refunds"));
    assert_eq!(
        sent.json(),
        json!({"lineItem": 0, "reason": "It arrived damaged"})
    );
}

#[tokio::test]
async fn a_429_is_retried_with_backoff_obeying_retry_after() {
    let server = ReplayServer::start(vec![
        status(429, "error_429").header("retry-after", "0"),
        status(429, "error_429"),
        ok("order_awaiting_payment_bare"),
    ])
    .await;
    let order = commerce(&server).order(NOW, &order_id()).await.unwrap();
    assert_eq!(order.id, order_id());
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test]
async fn a_429_that_persists_is_a_transient_rate_limit() {
    let server = ReplayServer::start(vec![
        status(429, "error_429"),
        status(429, "error_429"),
        status(429, "error_429").header("retry-after", "30"),
    ])
    .await;
    let error = commerce(&server)
        .create_order(NOW, &request())
        .await
        .unwrap_err();
    assert_eq!(
        error,
        CommerceError::RateLimited {
            retry_after_secs: Some(30)
        }
    );
    assert_eq!(error.class(), ErrorClass::Transient);
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test]
async fn http_errors_are_classified() {
    let server = ReplayServer::start(vec![
        status(401, "error_401"),
        status(404, "error_404"),
        status(400, "error_400_invalid_address"),
        status(500, "error_500"),
        ok("order_awaiting_payment_bare"),
        status(500, "error_500"),
    ])
    .await;
    let commerce = commerce(&server);
    let unauthorized = commerce.order(NOW, &order_id()).await.unwrap_err();
    assert_eq!(unauthorized, CommerceError::Unauthorized);
    assert_eq!(unauthorized.class(), ErrorClass::Fatal);
    let missing = commerce.order(NOW, &order_id()).await.unwrap_err();
    assert_eq!(missing, CommerceError::NotFound);
    let refused = commerce.create_order(NOW, &request()).await.unwrap_err();
    let CommerceError::Refused { code, message } = &refused else {
        panic!("expected refused, got {refused:?}");
    };
    assert_eq!(code.as_deref(), Some("invalid-physical-address"));
    assert_eq!(message.as_str(), "Only US addresses are supported");
    assert_eq!(refused.class(), ErrorClass::Rejected);
    // A read is retried after a 5xx ...
    assert!(commerce.order(NOW, &order_id()).await.is_ok());
    // ... an order creation is not (a retry could create a second order).
    let unavailable = commerce.create_order(NOW, &request()).await.unwrap_err();
    assert!(matches!(unavailable, CommerceError::Unavailable(_)));
    assert_eq!(server.requests().len(), 6);
}

#[tokio::test]
async fn the_key_and_the_recipient_never_appear_in_errors_or_debug_output() {
    let server = ReplayServer::start(vec![status(400, "error_400_invalid_address")]).await;
    let commerce = commerce(&server);
    let error = commerce.create_order(NOW, &request()).await.unwrap_err();
    let text = format!("{error:?} {error} {commerce:?} {:?}", request());
    for secret in [KEY, "pat@example.com", "Pat Lee", "1 Main St", "98101"] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
}
