//! The request-size guard shared by the facilitator and the order server.
//!
//! A body over the limit is answered 413 before it is read. The connection is then closed
//! (`Connection: close`): the rest of the oversized body is still on the wire, and a client
//! that put the connection back in its pool would send its next request into a socket the
//! server is about to drop, and see the connection end instead of an answer.

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;

/// Applies the limit of `max_bytes` to every route of `router`.
pub fn limit<S: Clone + Send + Sync + 'static>(router: Router<S>, max_bytes: usize) -> Router<S> {
    router
        .layer(axum::middleware::map_response(close_after_refusal))
        .layer(axum::extract::DefaultBodyLimit::max(max_bytes))
}

async fn close_after_refusal(mut response: Response) -> Response {
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}
