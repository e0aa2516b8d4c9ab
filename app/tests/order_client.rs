//! The agent's x402 order client against the order server's HTTP contract, answer by answer.

use axum::Json;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use std::sync::{Arc, Mutex};
use worldstore::agent::{OrderClient, OrderClientError, OrderRequest, OrderToken, PayAnswer};
use worldstore_domain::eip3009::{LocalSigner, Nonce};
use worldstore_domain::money::UsdcAmount;
use worldstore_domain::network::Network;
use worldstore_domain::ports::store::Key;
use worldstore_domain::profile::Profile;
use worldstore_domain::x402::client::{PaymentChallenge, sign_payment};
use worldstore_domain::x402::{PaymentOffer, PaymentRequiredAnswer};

fn offer() -> PaymentOffer {
    let mut extra = serde_json::Map::new();
    extra.insert("orderId".into(), json!("ord_1"));
    PaymentOffer {
        resource: "http://merchant/api/orders".into(),
        description: "order ord_1".into(),
        mime_type: "application/json".into(),
        token: Network::BaseSepolia.usdc(),
        amount: UsdcAmount::from_usdc(10),
        pay_to: alloy_primitives::Address::repeat_byte(0x77),
        max_timeout_seconds: 300,
        extra,
    }
}

fn quote_answer(with_header: bool) -> Response {
    let answer = PaymentRequiredAnswer::new("payment required", &[offer()]);
    let mut body = serde_json::to_value(&answer.body).unwrap();
    body["orderId"] = json!("ord_1");
    body["orderToken"] = json!("tok-secret");
    let mut response = (StatusCode::PAYMENT_REQUIRED, Json(body)).into_response();
    if with_header {
        response
            .headers_mut()
            .insert("payment-required", answer.header_value().parse().unwrap());
    }
    response
}

/// What the fake server answers to the next paid POST.
#[derive(Clone)]
struct Script {
    pay: Arc<Mutex<(u16, serde_json::Value)>>,
    v1_only: bool,
    seen_payment_header: Arc<Mutex<Option<String>>>,
}

async fn serve(script: Script) -> String {
    let post_script = script.clone();
    let router = axum::Router::new()
        .route(
            "/api/orders",
            post(move |headers: HeaderMap, Json(_body): Json<serde_json::Value>| {
                let script = post_script.clone();
                async move {
                    let header = ["payment-signature", "x-payment"]
                        .iter()
                        .find(|h| headers.contains_key(**h))
                        .map(|h| (*h).to_owned());
                    match header {
                        None => quote_answer(!script.v1_only),
                        Some(name) => {
                            *script.seen_payment_header.lock().unwrap() = Some(name);
                            let (status, body) = script.pay.lock().unwrap().clone();
                            (StatusCode::from_u16(status).unwrap(), Json(body)).into_response()
                        }
                    }
                }
            }),
        )
        .route(
            "/api/orders/{id}",
            get(|headers: HeaderMap, axum::extract::Path(id): axum::extract::Path<String>| async move {
                let bearer = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                if id == "ord_1" && bearer == "Bearer tok-secret" {
                    Json(json!({"orderId": "ord_1", "status": "shipped", "stage": "shipped",
                        "tracking": {"carrier": "UPS", "number": "1Z1"}, "refund": null,
                        "payment": {"txHash": format!("0x{}", "ab".repeat(32)), "payer": "0x", "amount": "10000000"}}))
                    .into_response()
                } else {
                    (StatusCode::NOT_FOUND, Json(json!({"error": "no such order"}))).into_response()
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

fn request() -> OrderRequest {
    let profile: Profile = serde_json::from_value(json!({
        "name": "Pat Lee", "email": "pat@example.com", "line1": "1 Main St",
        "city": "Seattle", "state": "WA", "postalCode": "98101"
    }))
    .unwrap();
    OrderRequest::new("B0THY26GXD", &profile.recipient().unwrap(), "base-sepolia")
}

fn script(pay: (u16, serde_json::Value), v1_only: bool) -> Script {
    Script {
        pay: Arc::new(Mutex::new(pay)),
        v1_only,
        seen_payment_header: Arc::default(),
    }
}

#[test]
fn the_order_body_is_the_contracts_shape() {
    let body = serde_json::to_value(request()).unwrap();
    assert_eq!(
        body,
        json!({"productLocator": "amazon:B0THY26GXD", "email": "pat@example.com",
            "physicalAddress": {"name": "Pat Lee", "line1": "1 Main St", "line2": null,
                "city": "Seattle", "state": "WA", "postalCode": "98101", "country": "US"},
            "payment": {"method": "base-sepolia", "currency": "usdc"}})
    );
    assert!(
        !format!("{:?}", request()).contains("pat@"),
        "no personal data in Debug"
    );
}

#[tokio::test]
async fn a_402_gives_the_v2_challenge_the_order_id_and_its_token_and_a_signed_payment_is_paid() {
    let tx = format!("0x{}", "cd".repeat(32));
    let script = script(
        (
            200,
            json!({"orderId": "ord_1", "orderToken": "tok-secret", "status": "paid", "transaction": tx, "network": "base-sepolia"}),
        ),
        false,
    );
    let client = OrderClient::new(serve(script.clone()).await).unwrap();
    let quote = client.request_quote(&request()).await.unwrap();
    assert_eq!(quote.order_id.as_str(), "ord_1");
    assert_eq!(quote.token.expose(), "tok-secret");
    assert!(matches!(quote.challenge, PaymentChallenge::V2(_)));
    let signer = LocalSigner::from_bytes([3; 32]).unwrap();
    let payment = sign_payment(
        &signer,
        &quote.challenge,
        0,
        &Network::BaseSepolia.usdc(),
        Nonce::new([1; 32]),
        1_700_000_000,
    )
    .unwrap();
    let answer = client.pay(&request(), &payment).await.unwrap();
    assert_eq!(
        answer,
        PayAnswer::Paid {
            tx_hash: tx.parse().unwrap()
        }
    );
    assert_eq!(
        script.seen_payment_header.lock().unwrap().as_deref(),
        Some("payment-signature")
    );
}

#[tokio::test]
async fn without_the_header_the_v1_body_is_the_challenge_and_pays_with_x_payment() {
    let script = script(
        (
            402,
            json!({"x402Version": 1, "error": "invalid_exact_evm_payload_signature", "accepts": []}),
        ),
        true,
    );
    let client = OrderClient::new(serve(script.clone()).await).unwrap();
    let quote = client.request_quote(&request()).await.unwrap();
    assert!(matches!(quote.challenge, PaymentChallenge::V1(_)));
    let signer = LocalSigner::from_bytes([3; 32]).unwrap();
    let payment = sign_payment(
        &signer,
        &quote.challenge,
        0,
        &Network::BaseSepolia.usdc(),
        Nonce::new([2; 32]),
        1_700_000_000,
    )
    .unwrap();
    let PayAnswer::Refused { reason, .. } = client.pay(&request(), &payment).await.unwrap() else {
        panic!("a 402 is a refusal")
    };
    assert_eq!(reason.as_str(), "invalid_exact_evm_payload_signature");
    assert_eq!(
        script.seen_payment_header.lock().unwrap().as_deref(),
        Some("x-payment")
    );
}

#[tokio::test]
async fn server_errors_are_transient_and_order_status_needs_the_bearer_token() {
    let script = script((503, json!({"error": "chain down"})), false);
    let client = OrderClient::new(serve(script).await).unwrap();
    let quote = client.request_quote(&request()).await.unwrap();
    let signer = LocalSigner::from_bytes([3; 32]).unwrap();
    let payment = sign_payment(
        &signer,
        &quote.challenge,
        0,
        &Network::BaseSepolia.usdc(),
        Nonce::new([3; 32]),
        1_700_000_000,
    )
    .unwrap();
    let error = client.pay(&request(), &payment).await.unwrap_err();
    assert!(error.is_transient(), "{error}");
    let id = Key::parse("ord_1").unwrap();
    let view = client.order(&id, &quote.token).await.unwrap().unwrap();
    assert_eq!(view.stage, "shipped");
    assert_eq!(view.tracking.unwrap().carrier, "UPS");
    let wrong = OrderToken::new("tok-guess".into());
    assert_eq!(client.order(&id, &wrong).await.unwrap(), None);
    let unreachable = OrderClient::new("http://127.0.0.1:9").unwrap();
    assert!(matches!(
        unreachable.request_quote(&request()).await,
        Err(OrderClientError::Unavailable(_))
    ));
}
