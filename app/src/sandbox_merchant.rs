//! A minimal order server for the sandbox and the agent's tests, speaking exactly the
//! merchant's HTTP contract, until the merchant role (`worldstore::merchant`) is wired in.
//! It uses the domain's real offer and verification code and settles on the given chain.
//!
//! | request | answer |
//! |---|---|
//! | `POST /api/orders` without payment | 402, `PAYMENT-REQUIRED` (v2) + v1 body with `orderId`, `orderToken`; the same body while the offer is open gives the same order |
//! | the same with `PAYMENT-SIGNATURE` / `X-PAYMENT` | verify, settle, 200 `{orderId, orderToken, status, transaction, network}`; 402 `{error}` refused; 400 malformed |
//! | `GET /api/orders/{id}` + bearer token | 200 stage (paid → shipped → delivered on the clock); 404 otherwise |
//!
//! Orders live in memory: this is a stand-in, not the merchant.

use crate::outbox::Clock;
use alloy_primitives::{Address, keccak256};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use worldstore_adapters::chain_embedded::EmbeddedChain;
use worldstore_domain::money::{FeeRate, UsdcAmount};
use worldstore_domain::ports::catalog::{Asin, Catalog};
use worldstore_domain::ports::chain::Chain;
use worldstore_domain::x402::header::{decode_payment_signature, decode_x_payment};
use worldstore_domain::x402::{
    PaymentOffer, PaymentPayload, PaymentRequiredAnswer, PaymentRequirements, VerifyPolicy,
    check_chain, check_offline,
};

/// The stand-in's settings.
#[derive(Clone)]
pub struct StandInConfig {
    pub treasury: Address,
    pub fee: FeeRate,
    /// Seconds after payment when the order ships, then is delivered.
    pub ships_after: u64,
    pub delivered_after: u64,
    pub offer_timeout: u64,
    /// Where clients reach us (the offers' `resource`).
    pub base_url: String,
}

struct Order {
    id: String,
    token: String,
    body: String,
    offer: PaymentOffer,
    created_at: u64,
    paid: Option<(String, Address, u64)>,
}

struct StandIn<K> {
    chain: Arc<EmbeddedChain>,
    catalog: K,
    config: StandInConfig,
    clock: Clock,
    orders: Mutex<HashMap<String, Order>>,
}

/// The router of the stand-in order server.
pub fn router<K: Catalog + 'static>(
    chain: Arc<EmbeddedChain>,
    catalog: K,
    config: StandInConfig,
    clock: Clock,
) -> axum::Router {
    let state = Arc::new(StandIn {
        chain,
        catalog,
        config,
        clock,
        orders: Mutex::new(HashMap::new()),
    });
    axum::Router::new()
        .route("/api/orders", post(create::<K>))
        .route("/api/orders/{id}", get(status::<K>))
        .with_state(state)
}

fn error(code: StatusCode, message: &str) -> Response {
    (code, Json(json!({"error": message}))).into_response()
}

impl<K> StandIn<K> {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Order>> {
        self.orders
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

async fn create<K: Catalog + 'static>(
    State(s): State<Arc<StandIn<K>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, "body is not JSON");
    };
    let canonical = request.to_string();
    let payment = headers
        .get("PAYMENT-SIGNATURE")
        .map(|v| (v, true))
        .or_else(|| headers.get("X-PAYMENT").map(|v| (v, false)));
    match payment {
        None => quote(&s, &request, canonical).await,
        Some((value, v2)) => {
            let Ok(text) = value.to_str() else {
                return error(StatusCode::BAD_REQUEST, "payment header is not text");
            };
            let decoded = if v2 {
                decode_payment_signature(text)
            } else {
                decode_x_payment(text)
            };
            match decoded {
                Ok(payload) => pay(&s, canonical, payload).await,
                Err(e) => error(StatusCode::BAD_REQUEST, &e.to_string()),
            }
        }
    }
}

async fn quote<K: Catalog>(s: &StandIn<K>, request: &Value, canonical: String) -> Response {
    let now = (s.clock)();
    let locator = request["productLocator"].as_str().unwrap_or_default();
    let Some(asin) = locator
        .strip_prefix("amazon:")
        .and_then(|a| Asin::parse(a).ok())
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "productLocator must be amazon:<ASIN>",
        );
    };
    let price = match s.catalog.product(&asin).await {
        Ok(Some(p)) => p.price,
        _ => None,
    };
    let Some(total) = price.and_then(|p| s.config.fee.total_with_fee(p)) else {
        return error(StatusCode::NOT_FOUND, "product not found");
    };
    let mut orders = s.lock();
    let open = orders.values().find(|o| {
        o.body == canonical && o.paid.is_none() && now < o.created_at + s.config.offer_timeout
    });
    let (id, token, offer) = match open {
        Some(o) => (o.id.clone(), o.token.clone(), o.offer.clone()),
        None => {
            let n = orders.len() + 1;
            let id = format!("ord_{n}");
            let token = format!(
                "tok_{:x}",
                keccak256(format!("{id}/{now}/{canonical}").as_bytes())
            );
            let mut extra = serde_json::Map::new();
            extra.insert("orderId".into(), json!(id));
            let offer = PaymentOffer {
                resource: format!("{}/api/orders", s.config.base_url),
                description: format!("Amazon order {id}"),
                mime_type: "application/json".into(),
                token: s.chain.network().usdc(),
                amount: total,
                pay_to: s.config.treasury,
                max_timeout_seconds: s.config.offer_timeout,
                extra,
            };
            orders.insert(
                id.clone(),
                Order {
                    id: id.clone(),
                    token: token.clone(),
                    body: canonical,
                    offer: offer.clone(),
                    created_at: now,
                    paid: None,
                },
            );
            (id, token, offer)
        }
    };
    let answer = PaymentRequiredAnswer::new("payment required", &[offer]);
    let mut body = serde_json::to_value(&answer.body).unwrap_or_default();
    body["orderId"] = json!(id);
    body["orderToken"] = json!(token);
    (
        StatusCode::PAYMENT_REQUIRED,
        [("PAYMENT-REQUIRED", answer.header_value())],
        Json(body),
    )
        .into_response()
}

async fn pay<K>(s: &StandIn<K>, canonical: String, payload: PaymentPayload) -> Response {
    let now = (s.clock)();
    let found = s.lock().values().find(|o| o.body == canonical).map(|o| {
        (
            o.id.clone(),
            o.token.clone(),
            o.offer.clone(),
            o.paid.clone(),
        )
    });
    let Some((id, token, offer, paid)) = found else {
        return error(StatusCode::BAD_REQUEST, "no order for this body");
    };
    let network = s.chain.network();
    if let Some((tx, _, _)) = paid {
        return paid_answer(&id, &token, &tx, network.v1_name());
    }
    let requirements = match payload.x402_version() {
        1 => PaymentRequirements::V1(offer.requirements_v1()),
        _ => PaymentRequirements::V2(offer.requirements_v2()),
    };
    let policy = VerifyPolicy::new(vec![offer.token.clone()]);
    let signed = match check_offline(&payload, &requirements, &policy, now) {
        Ok(signed) => signed,
        Err(refusal) => return error(StatusCode::PAYMENT_REQUIRED, refusal.reason.as_str()),
    };
    let facts = match s.chain.chain_facts(&signed).await {
        Ok(facts) => facts,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let verified = match check_chain(signed, &facts) {
        Ok(v) => v,
        Err(refusal) => return error(StatusCode::PAYMENT_REQUIRED, refusal.reason.as_str()),
    };
    match s.chain.settle(&verified).await {
        Ok(settlement) => {
            let tx = format!("{:#x}", settlement.tx_hash());
            if let Some(order) = s.lock().get_mut(&id) {
                order.paid = Some((tx.clone(), verified.payer, now));
            }
            paid_answer(&id, &token, &tx, network.v1_name())
        }
        Err(e) => error(StatusCode::PAYMENT_REQUIRED, &e.to_string()),
    }
}

fn paid_answer(id: &str, token: &str, tx: &str, network: &str) -> Response {
    (
        StatusCode::OK,
        Json(json!({"orderId": id, "orderToken": token, "status": "paid", "transaction": tx, "network": network})),
    )
        .into_response()
}

async fn status<K>(
    State(s): State<Arc<StandIn<K>>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let now = (s.clock)();
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let orders = s.lock();
    let Some(order) = orders
        .get(&id)
        .filter(|o| bearer.as_deref() == Some(&o.token))
    else {
        return error(StatusCode::NOT_FOUND, "no such order");
    };
    let (stage, tracking, payment) = match &order.paid {
        None if now >= order.created_at + s.config.offer_timeout => ("expired", None, None),
        None => ("awaiting_payment", None, None),
        Some((tx, payer, paid_at)) => {
            let age = now.saturating_sub(*paid_at);
            let payment = json!({"txHash": tx, "payer": payer.to_checksum(None), "amount": order.offer.amount.atomic().to_string()});
            let tracking =
                json!({"carrier": "UPS", "number": format!("1Z{}", order.id.to_uppercase())});
            if age >= s.config.delivered_after {
                ("delivered", Some(tracking), Some(payment))
            } else if age >= s.config.ships_after {
                ("shipped", Some(tracking), Some(payment))
            } else {
                ("paid", None, Some(payment))
            }
        }
    };
    Json(json!({
        "orderId": order.id,
        "status": stage,
        "stage": stage,
        "tracking": tracking,
        "refund": null,
        "payment": payment,
    }))
    .into_response()
}

/// The amount a stand-in order charges for `price`.
pub fn total_for(fee: FeeRate, price: UsdcAmount) -> Option<UsdcAmount> {
    fee.total_with_fee(price)
}
