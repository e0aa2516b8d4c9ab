//! The facilitator's HTTP face (axum).

use super::Facilitator;
use crate::metrics::{self, Metrics, Verdict};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use serde::Serialize;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
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
    let routes = Router::new()
        .route("/verify", post(verify::<C, S>))
        .route("/settle", post(settle::<C, S>))
        .route("/supported", get(supported::<C, S>));
    crate::body_limit::limit(routes, MAX_BODY_BYTES).with_state(facilitator)
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
    let request = match parse(&body) {
        Ok(request) => request,
        Err(message) => return bad_request(message),
    };
    timed(
        f.verify(&request),
        |a| {
            verdict(
                a.is_valid,
                a.invalid_reason.as_ref(),
                ReasonCode::UnexpectedVerifyError,
            )
        },
        Metrics::verified,
    )
    .await
}

async fn settle<C: Chain, S: Store>(
    State(f): State<Arc<Facilitator<C, S>>>,
    body: Bytes,
) -> Response {
    let request = match parse(&body) {
        Ok(request) => request,
        Err(message) => return bad_request(message),
    };
    timed(
        f.settle(&request),
        |a| {
            verdict(
                a.success,
                a.error_reason.as_ref(),
                ReasonCode::UnexpectedSettleError,
            )
        },
        Metrics::settled,
    )
    .await
}

/// Awaits a facilitator answer, records how long it took under its verdict, and sends it.
async fn timed<A: Serialize>(
    answer: impl Future<Output = A>,
    verdict: impl FnOnce(&A) -> Verdict,
    record: fn(&Metrics, Verdict, Duration),
) -> Response {
    let started = Instant::now();
    let answer = answer.await;
    record(metrics::global(), verdict(&answer), started.elapsed());
    Json(answer).into_response()
}

/// A refusal is the payer's (`Invalid`) unless its reason is our own `unexpected` error.
fn verdict(ok: bool, reason: Option<&ReasonCode>, unexpected: ReasonCode) -> Verdict {
    match reason {
        _ if ok => Verdict::Valid,
        Some(reason) if *reason == unexpected => Verdict::Error,
        _ => Verdict::Invalid,
    }
}

async fn supported<C: Chain, S: Store>(State(f): State<Arc<Facilitator<C, S>>>) -> Response {
    Json(f.supported()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_own_unexpected_error_counts_as_an_error_verdict() {
        let ours = || ReasonCode::UnexpectedVerifyError;
        assert_eq!(verdict(true, None, ours()), Verdict::Valid);
        assert_eq!(verdict(false, Some(&ours()), ours()), Verdict::Error);
        let settle_error = ReasonCode::UnexpectedSettleError;
        assert_eq!(
            verdict(false, Some(&settle_error), ours()),
            Verdict::Invalid
        );
        let payer_fault = ReasonCode::InsufficientFunds;
        assert_eq!(verdict(false, Some(&payer_fault), ours()), Verdict::Invalid);
        assert_eq!(verdict(false, None, ours()), Verdict::Invalid);
    }
}
