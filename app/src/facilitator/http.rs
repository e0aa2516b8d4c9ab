//! The facilitator's HTTP face (axum).

use super::Facilitator;
use crate::metrics::{self, Verdict};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use std::sync::Arc;
use worldstore_domain::ports::chain::Chain;
use worldstore_domain::ports::store::Store;
use worldstore_domain::x402::{FacilitatorRequest, ReasonCode};

/// Largest request body accepted (a v2 payload with its requirements is about 2 KiB).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The routes `/verify`, `/settle` and `/supported`.
pub fn router<C, S>(facilitator: Arc<Facilitator<C, S>>) -> Router
where
    C: Chain + 'static,
    S: Store + 'static,
{
    Router::new()
        .route("/verify", post(verify::<C, S>))
        .route("/settle", post(settle::<C, S>))
        .route("/supported", get(supported::<C, S>))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(facilitator)
}

fn parse(body: &[u8]) -> Result<FacilitatorRequest, String> {
    serde_json::from_slice(body)
        .map_err(|e| format!("body is not an x402 facilitator request: {e}"))
}

fn bad_request(message: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(serde_json::json!({ "error": message })),
    )
        .into_response()
}

async fn verify<C: Chain, S: Store>(
    State(f): State<Arc<Facilitator<C, S>>>,
    body: Bytes,
) -> Response {
    match parse(&body) {
        Ok(request) => {
            let started = std::time::Instant::now();
            let answer = f.verify(&request).await;
            let verdict = match (&answer.is_valid, &answer.invalid_reason) {
                (true, _) => Verdict::Valid,
                (false, Some(ReasonCode::UnexpectedVerifyError)) => Verdict::Error,
                (false, _) => Verdict::Invalid,
            };
            metrics::global().verified(verdict, started.elapsed());
            Json(answer).into_response()
        }
        Err(message) => bad_request(message),
    }
}

async fn settle<C: Chain, S: Store>(
    State(f): State<Arc<Facilitator<C, S>>>,
    body: Bytes,
) -> Response {
    match parse(&body) {
        Ok(request) => {
            let started = std::time::Instant::now();
            let answer = f.settle(&request).await;
            let verdict = match (&answer.success, &answer.error_reason) {
                (true, _) => Verdict::Valid,
                (false, Some(ReasonCode::UnexpectedSettleError)) => Verdict::Error,
                (false, _) => Verdict::Invalid,
            };
            metrics::global().settled(verdict, started.elapsed());
            Json(answer).into_response()
        }
        Err(message) => bad_request(message),
    }
}

async fn supported<C: Chain, S: Store>(State(f): State<Arc<Facilitator<C, S>>>) -> Response {
    Json(f.supported()).into_response()
}
