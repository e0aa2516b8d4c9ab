//! The HTTP exchange both model adapters share: POST a JSON body, retry what the provider
//! says is temporary, and sort the final failure into [`BrainError`].
//!
//! | answer | what happens |
//! |---|---|
//! | 2xx | the body is returned |
//! | 408, 409, 429, 5xx (529 overloaded included), a transport error | retried with backoff (doubling, capped, jittered), `retry-after` obeyed; once retries run out, [`BrainError::Transient`] |
//! | `x-should-retry: false` / `true` | overrides the status: no retry / retry |
//! | any other status (400, 401, 403, 404, 413, ...) | [`BrainError::Fatal`] with the error body's message |
//!
//! Invariant: no error text carries the API key. Messages come from the provider (untrusted),
//! so they are cut short and any echo of the key is replaced.

use crate::retry::{RetryPolicy, jittered, retry_after};
use reqwest::StatusCode;
use serde::Deserialize;
use worldstore_domain::ports::brain::BrainError;

/// Longest provider error message passed on.
const MESSAGE_LIMIT: usize = 300;

/// POSTs what `request` builds (called once per attempt) and returns a 2xx body.
pub(crate) async fn post(
    policy: &RetryPolicy,
    secret: Option<&str>,
    request: impl Fn() -> reqwest::RequestBuilder,
) -> Result<Vec<u8>, BrainError> {
    let mut retry = 0;
    loop {
        let (error, should_retry, wait) = match exchange(request()).await {
            Ok((status, headers, body)) => {
                if status.is_success() {
                    return Ok(body);
                }
                let message = scrub(&error_message(status, &body), secret);
                let temporary = is_temporary(status);
                let forced = headers
                    .get("x-should-retry")
                    .and_then(|v| v.to_str().ok())
                    .map(|v| v.trim().eq_ignore_ascii_case("true"));
                let error = if temporary {
                    BrainError::Transient(message)
                } else {
                    BrainError::Fatal(message)
                };
                (error, forced.unwrap_or(temporary), retry_after(&headers))
            }
            Err(e) => (BrainError::Transient(transport(&e)), true, None),
        };
        if !should_retry || retry >= policy.max_retries {
            return Err(error);
        }
        let delay = match wait {
            Some(asked) => policy.delay(retry, Some(asked)),
            None => jittered(policy.delay(retry, None)),
        };
        tracing::debug!(retry, ?delay, %error, "model call failed, retrying");
        tokio::time::sleep(delay).await;
        retry += 1;
    }
}

async fn exchange(
    request: reqwest::RequestBuilder,
) -> Result<(StatusCode, reqwest::header::HeaderMap, Vec<u8>), reqwest::Error> {
    let response = request.send().await?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.bytes().await?.to_vec();
    Ok((status, headers, body))
}

/// Statuses a provider uses for "try again later".
fn is_temporary(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 409 | 429) || status.is_server_error()
}

fn transport(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "the model did not answer in time".to_owned()
    } else {
        // Without the URL: a self-hosted base URL may carry credentials.
        format!("transport error: {}", reqwest_text(error))
    }
}

fn reqwest_text(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    if let Some(url) = error.url() {
        text = text.replace(url.as_str(), "[url]");
    }
    text
}

/// `{error: {type, message}}` (Anthropic, OpenAI) or `{error: "text"}` (Ollama).
#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ErrorDetail {
    Object {
        #[serde(default, rename = "type")]
        kind: Option<String>,
        #[serde(default)]
        message: Option<String>,
    },
    Text(String),
}

fn error_message(status: StatusCode, body: &[u8]) -> String {
    let detail = serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .map(|b| b.error);
    let text = match detail {
        Some(ErrorDetail::Object { kind, message }) => match (kind, message) {
            (Some(kind), Some(message)) => format!("{kind}: {message}"),
            (None, Some(message)) => message,
            (Some(kind), None) => kind,
            (None, None) => String::new(),
        },
        Some(ErrorDetail::Text(text)) => text,
        None => String::new(),
    };
    let text: String = text.chars().take(MESSAGE_LIMIT).collect();
    if text.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {text}")
    }
}

/// Replaces any echo of the key in provider text.
fn scrub(text: &str, secret: Option<&str>) -> String {
    match secret {
        Some(secret) if !secret.is_empty() => text.replace(secret, "[redacted]"),
        _ => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_anthropic_error_body_gives_its_type_and_message() {
        let body = br#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#;
        assert_eq!(
            error_message(StatusCode::UNAUTHORIZED, body),
            "HTTP 401 Unauthorized: authentication_error: invalid x-api-key"
        );
    }

    #[test]
    fn an_ollama_error_string_and_an_empty_body_are_understood() {
        assert_eq!(
            error_message(StatusCode::NOT_FOUND, br#"{"error":"model not found"}"#),
            "HTTP 404 Not Found: model not found"
        );
        assert_eq!(
            error_message(StatusCode::BAD_GATEWAY, b"<html>"),
            "HTTP 502 Bad Gateway"
        );
    }

    #[test]
    fn an_echoed_key_is_redacted() {
        assert_eq!(
            scrub("bad key sk-123 given", Some("sk-123")),
            "bad key [redacted] given"
        );
    }

    #[test]
    fn overloaded_and_throttled_statuses_are_temporary_and_bad_requests_are_not() {
        for code in [408, 409, 429, 500, 503, 529] {
            assert!(is_temporary(StatusCode::from_u16(code).unwrap()), "{code}");
        }
        for code in [400, 401, 403, 404, 413] {
            assert!(!is_temporary(StatusCode::from_u16(code).unwrap()), "{code}");
        }
    }
}
