//! The order server's HTTP face (axum): `POST /api/orders`, `GET /api/orders/{id}`,
//! `GET /health`, `GET /ready`.
//!
//! | request | answer |
//! |---|---|
//! | `POST /api/orders`, no payment | 402: v1 JSON body (+ `orderId`, `orderToken`) and v2 `PAYMENT-REQUIRED` |
//! | same, with `PAYMENT-SIGNATURE` (v2) or `X-PAYMENT` (v1) | 200 + `PAYMENT-RESPONSE` / `X-PAYMENT-RESPONSE`; 202 while the receipt is pending; 402 with the reason code when refused |
//! | malformed body or header | 400 `{"error": ...}` |
//! | an order that cannot be sold | 422 `{"error": reason, "message": ...}` |
//! | `GET /api/orders/{id}` + `Authorization: Bearer <orderToken>` | 200 the order's view; 404 for anyone else |

use super::{Merchant, Offered, OrderBody, OrderError, PayAnswer};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::sync::Arc;
use worldstore_domain::ports::chain::Chain;
use worldstore_domain::ports::commerce::Commerce;
use worldstore_domain::ports::store::Store;
use worldstore_domain::settlement::PaymentAnswer;
use worldstore_domain::x402::{PaymentPayload, PaymentRequiredAnswer, SettleResponse, header};

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The order server's routes.
pub fn router<C, M, S>(merchant: Arc<Merchant<C, M, S>>) -> Router
where
    C: Chain + 'static,
    M: Commerce + 'static,
    S: Store + 'static,
{
    let routes = Router::new()
        .route("/api/orders", post(create::<C, M, S>))
        .route("/api/orders/{id}", get(status::<C, M, S>))
        .route("/health", get(health::<C, M, S>))
        .route("/ready", get(ready::<C, M, S>));
    crate::body_limit::limit(routes, MAX_BODY_BYTES).with_state(merchant)
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

fn order_error(e: OrderError) -> Response {
    match e {
        OrderError::BadRequest(message) => error(StatusCode::BAD_REQUEST, message),
        OrderError::NotFound => error(StatusCode::NOT_FOUND, "no such order"),
        OrderError::CannotSell { reason, message } => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({ "error": reason, "message": message })),
        )
            .into_response(),
        OrderError::Unavailable(message) => error(StatusCode::SERVICE_UNAVAILABLE, message),
    }
}

/// The payment header, decoded: `Ok(None)` when there is none.
fn payment_of(headers: &HeaderMap) -> Result<Option<PaymentPayload>, String> {
    let v2 = headers.get("payment-signature");
    let v1 = headers.get("x-payment");
    let text = |v: &HeaderValue, name: &str| {
        v.to_str()
            .map(str::to_owned)
            .map_err(|_| format!("{name} is not ASCII"))
    };
    match (v2, v1) {
        (Some(_), Some(_)) => Err("send PAYMENT-SIGNATURE or X-PAYMENT, not both".into()),
        (Some(v), None) => header::decode_payment_signature(&text(v, "PAYMENT-SIGNATURE")?)
            .map(Some)
            .map_err(|e| format!("PAYMENT-SIGNATURE: {e}")),
        (None, Some(v)) => header::decode_x_payment(&text(v, "X-PAYMENT")?)
            .map(Some)
            .map_err(|e| format!("X-PAYMENT: {e}")),
        (None, None) => Ok(None),
    }
}

async fn create<C: Chain, M: Commerce, S: Store>(
    State(merchant): State<Arc<Merchant<C, M, S>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body: OrderBody = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("order body: {e}")),
    };
    let payment = match payment_of(&headers) {
        Ok(payment) => payment,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    match payment {
        None => match merchant.offer(&body).await {
            Ok(offered) => payment_required(&offered),
            Err(e) => order_error(e),
        },
        Some(payload) => {
            let version = payload.x402_version();
            match merchant.pay(&body, &payload).await {
                Ok(PayAnswer::Refused(offered)) => payment_required(&offered),
                Ok(PayAnswer::Accepted {
                    order_id,
                    token,
                    answer,
                    network,
                    amount,
                    status,
                }) => {
                    let network_name = match version {
                        1 => network.v1_name(),
                        _ => network.caip2(),
                    };
                    let (code, settle) = match answer {
                        PaymentAnswer::Paid { tx_hash, payer } => (
                            StatusCode::OK,
                            SettleResponse {
                                success: true,
                                error_reason: None,
                                error_message: None,
                                transaction: format!("{tx_hash:#x}"),
                                network: network_name.into(),
                                payer: Some(payer),
                                amount: Some(amount.to_u256().to_string()),
                            },
                        ),
                        PaymentAnswer::Pending { tx_hash, payer } => (
                            StatusCode::ACCEPTED,
                            SettleResponse {
                                success: false,
                                error_reason: Some(
                                    worldstore_domain::x402::ReasonCode::SettlementPending,
                                ),
                                error_message: Some(
                                    "transaction sent; its receipt has not arrived yet".into(),
                                ),
                                transaction: format!("{tx_hash:#x}"),
                                network: network_name.into(),
                                payer: Some(payer),
                                amount: None,
                            },
                        ),
                        PaymentAnswer::Refused(_) => {
                            unreachable!("refusals are PayAnswer::Refused")
                        }
                    };
                    let body = json!({
                        "orderId": order_id.as_str(),
                        "orderToken": token,
                        "status": status,
                        "transaction": settle.transaction,
                        "network": network_name,
                        "amount": amount.to_string(),
                    });
                    let (name, value) = match version {
                        1 => (
                            "x-payment-response",
                            header::encode_x_payment_response(&settle),
                        ),
                        _ => ("payment-response", header::encode_payment_response(&settle)),
                    };
                    let mut response = (code, Json(body)).into_response();
                    if let Ok(value) = HeaderValue::from_str(&value) {
                        response.headers_mut().insert(name, value);
                    }
                    response
                }
                Err(e) => order_error(e),
            }
        }
    }
}

/// 402 with the offer in both versions, the order id and token, and the refusal if any.
fn payment_required(offered: &Offered) -> Response {
    let reason = offered
        .refusal
        .as_ref()
        .map_or("payment required".to_owned(), |r| r.reason.to_string());
    let answer = PaymentRequiredAnswer::new(&reason, std::slice::from_ref(&offered.offer));
    let mut body = serde_json::to_value(&answer.body).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut body {
        map.insert("orderId".into(), offered.order_id.as_str().into());
        map.insert("orderToken".into(), offered.token.clone().into());
        if let Some(refusal) = &offered.refusal {
            map.insert("message".into(), refusal.message.clone().into());
        }
    }
    let mut response = (StatusCode::PAYMENT_REQUIRED, Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(&answer.header_value()) {
        response.headers_mut().insert("payment-required", value);
    }
    response
}

async fn status<C: Chain, M: Commerce, S: Store>(
    State(merchant): State<Arc<Merchant<C, M, S>>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    match merchant.order_view(&id, token).await {
        Ok(view) => Json(view).into_response(),
        Err(e) => order_error(e),
    }
}

async fn health<C: Chain, M: Commerce, S: Store>(
    State(merchant): State<Arc<Merchant<C, M, S>>>,
) -> Response {
    let now = (merchant.clock)();
    Json(json!({
        "status": "ok",
        "timestamp": worldstore_adapters::xmtp::content::iso_8601(now),
        "version": env!("CARGO_PKG_VERSION"),
        "environment": merchant.config().environment,
    }))
    .into_response()
}

async fn ready<C: Chain, M: Commerce, S: Store>(
    State(merchant): State<Arc<Merchant<C, M, S>>>,
) -> Response {
    match merchant.ready().await {
        Ok(()) => Json(json!({ "status": "ready" })).into_response(),
        Err(problem) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "unavailable", "problem": problem })),
        )
            .into_response(),
    }
}
