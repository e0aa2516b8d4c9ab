//! The `Commerce` port over Crossmint's headless checkout (external-apis.md, "Crossmint").
//!
//! | port call | requests |
//! |-----------|----------|
//! | `create_order` | `POST /2022-06-09/orders` -> `{clientSecret, order}` |
//! | `order` | `GET /2022-06-09/orders/{id}` -> the order, bare or `{order}` |
//! | `pay_order` | `GET` the order; if payable, `POST /2022-06-09/wallets/{locator}/transactions` with `x-idempotency-key`, then `GET .../transactions/{id}` until `success` or `failed` |
//! | `tracking` | `GET /unstable/orders/{id}/tracking` |
//! | `request_return` | `POST /unstable/orders/{id}/refunds` `{lineItem, reason}` |
//!
//! Every request carries `X-API-KEY` (a `SecretString`, never logged). 429 is retried with
//! backoff (obeying `retry-after` up to the policy's cap) and then reported as
//! `RateLimited`; 5xx is retried the same way for reads and for the idempotent wallet
//! submission, never for order creation (a retry could create a second order).
//! The recipient's personal data goes only into the create-order body.
//!
//! Paying: the order is re-read first, so a quote that expired (by `expiresAt` against
//! `now`, or by status) is reported as `NotPaid(QuoteExpired)` without sending anything,
//! and an order already paid is `AlreadySubmitted`. 409 on submission means the key was
//! used before (`AlreadySubmitted`); 422 means the wallet's simulation failed
//! (`NotPaid(SimulationFailed)`).

mod calldata;
mod time;
mod wire;

pub use calldata::{Call, CallError, decode as decode_call};
pub use time::{format_rfc3339, parse_rfc3339};

use crate::retry::{RetryPolicy, retry_after};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use std::time::Duration;
use worldstore_domain::ports::commerce::{
    Commerce, CommerceError, IdempotencyKey, NotPaid, Order, OrderId, OrderPhase, OrderRequest,
    PaymentOutcome, PaymentStatus, QuoteOutcome, ReturnAccepted, Tracking,
};

/// How the treasury's Crossmint wallet takes a payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalletKind {
    /// `{params: {calls: [{transaction}], chain}}`.
    Smart,
    /// `{params: {call: {to, data}, chain}}`.
    Mpc,
}

/// Where and how to reach Crossmint.
#[derive(Debug, Clone)]
pub struct CrossmintConfig {
    /// Up to and including `/api`: `https://staging.crossmint.com/api` or
    /// `https://www.crossmint.com/api`.
    pub base_url: reqwest::Url,
    pub api_key: SecretString,
    /// The treasury wallet's locator (its address, or e.g. `email:...:evm-smart-wallet`).
    pub treasury_wallet: String,
    pub wallet_kind: WalletKind,
    pub locale: String,
    pub timeout: Duration,
    pub retry: RetryPolicy,
    /// Pause between polls of a submitted wallet transaction, and how many polls.
    pub transaction_poll_interval: Duration,
    pub transaction_poll_attempts: u32,
}

impl CrossmintConfig {
    pub const STAGING_URL: &'static str = "https://staging.crossmint.com/api";
    pub const PRODUCTION_URL: &'static str = "https://www.crossmint.com/api";

    pub fn new(
        base_url: reqwest::Url,
        api_key: SecretString,
        treasury_wallet: String,
        wallet_kind: WalletKind,
    ) -> Self {
        Self {
            base_url,
            api_key,
            treasury_wallet,
            wallet_kind,
            locale: "en-US".to_owned(),
            timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
            transaction_poll_interval: Duration::from_secs(2),
            transaction_poll_attempts: 60,
        }
    }
}

/// Live orders through Crossmint.
#[derive(Debug, Clone)]
pub struct CrossmintCommerce {
    http: reqwest::Client,
    config: CrossmintConfig,
}

/// A finished exchange: status and body.
struct Reply {
    status: StatusCode,
    body: Vec<u8>,
}

fn transport_error(error: reqwest::Error) -> CommerceError {
    CommerceError::Unavailable(if error.is_timeout() {
        "timed out".to_owned()
    } else {
        error.without_url().to_string()
    })
}

/// The error for a non-success reply that the caller has no special meaning for.
fn error_for(reply: &Reply) -> CommerceError {
    let (code, message) = wire::error_body(&reply.body);
    match reply.status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => CommerceError::Unauthorized,
        StatusCode::NOT_FOUND => CommerceError::NotFound,
        StatusCode::TOO_MANY_REQUESTS => CommerceError::RateLimited {
            retry_after_secs: None,
        },
        s if s.is_server_error() => CommerceError::Unavailable(format!("HTTP {s}")),
        _ => CommerceError::Refused { code, message },
    }
}

impl CrossmintCommerce {
    pub fn new(config: CrossmintConfig) -> Result<Self, CommerceError> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(transport_error)?;
        Ok(Self { http, config })
    }

    /// `base_url` + path segments, each percent-encoded.
    fn url(&self, segments: &[&str]) -> Result<reqwest::Url, CommerceError> {
        let mut url = self.config.base_url.clone();
        url.path_segments_mut()
            .map_err(|()| CommerceError::Malformed("base URL cannot take a path".into()))?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    /// Sends a request, retrying 429 (always) and 5xx (when `retry_server_errors`).
    async fn send(
        &self,
        method: Method,
        url: reqwest::Url,
        body: Option<&Value>,
        idempotency_key: Option<&IdempotencyKey>,
        retry_server_errors: bool,
    ) -> Result<Reply, CommerceError> {
        let policy = self.config.retry;
        let mut retry = 0;
        loop {
            let mut request = self
                .http
                .request(method.clone(), url.clone())
                .header("X-API-KEY", self.config.api_key.expose_secret());
            if let Some(key) = idempotency_key {
                request = request.header("x-idempotency-key", key.as_str());
            }
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = request.send().await.map_err(transport_error)?;
            let status = response.status();
            let wait = retry_after(response.headers());
            let body = response.bytes().await.map_err(transport_error)?.to_vec();
            let retryable = status == StatusCode::TOO_MANY_REQUESTS
                || (retry_server_errors && status.is_server_error());
            if !retryable {
                return Ok(Reply { status, body });
            }
            if retry >= policy.max_retries {
                return Err(if status == StatusCode::TOO_MANY_REQUESTS {
                    CommerceError::RateLimited {
                        retry_after_secs: wait.map(|d| d.as_secs()),
                    }
                } else {
                    CommerceError::Unavailable(format!("HTTP {status}"))
                });
            }
            tokio::time::sleep(policy.delay(retry, wait)).await;
            retry += 1;
        }
    }

    async fn get(&self, segments: &[&str]) -> Result<Vec<u8>, CommerceError> {
        let reply = self
            .send(Method::GET, self.url(segments)?, None, None, true)
            .await?;
        if reply.status.is_success() {
            Ok(reply.body)
        } else {
            Err(error_for(&reply))
        }
    }

    async fn fetch_order(&self, id: &OrderId) -> Result<Order, CommerceError> {
        wire::order_from(&self.get(&["2022-06-09", "orders", id.as_str()]).await?)
    }

    /// The wallet transaction body for the prepared payment.
    fn payment_body(&self, serialized: &str, chain: &str) -> Result<Value, NotPaid> {
        Ok(match self.config.wallet_kind {
            WalletKind::Smart => json!({
                "params": {"calls": [{"transaction": serialized}], "chain": chain}
            }),
            WalletKind::Mpc => {
                let call = calldata::decode(serialized).map_err(|e| NotPaid::SimulationFailed {
                    reason: "unreadable-transaction".into(),
                    message: worldstore_domain::ports::catalog::ProductText::clean(&e.to_string()),
                })?;
                let mut call_json = json!({
                    "to": call.to.to_checksum(None),
                    "data": alloy_primitives::hex::encode_prefixed(&call.data),
                });
                if !call.value.is_zero() {
                    call_json["value"] = json!(call.value.to_string());
                }
                json!({"params": {"call": call_json, "chain": chain}})
            }
        })
    }

    /// Polls a submitted wallet transaction until it succeeds or fails.
    async fn await_transaction(&self, id: &str) -> Result<PaymentOutcome, CommerceError> {
        let wallet = self.config.treasury_wallet.as_str();
        for attempt in 0..=self.config.transaction_poll_attempts {
            if attempt > 0 {
                tokio::time::sleep(self.config.transaction_poll_interval).await;
            }
            let body = self
                .get(&["2022-06-09", "wallets", wallet, "transactions", id])
                .await?;
            let transaction: wire::WalletTransaction = serde_json::from_slice(&body)
                .map_err(|e| CommerceError::Malformed(e.to_string()))?;
            if let Some(outcome) = settled(&transaction) {
                return Ok(outcome);
            }
        }
        Err(CommerceError::StillPending {
            transaction_id: id.to_owned(),
        })
    }
}

/// The outcome of a wallet transaction, once it has one.
fn settled(transaction: &wire::WalletTransaction) -> Option<PaymentOutcome> {
    match transaction.status.as_str() {
        "success" => Some(PaymentOutcome::Paid {
            transaction_id: transaction.id.clone(),
            tx_hash: transaction.on_chain.as_ref().and_then(|c| c.tx_id.clone()),
        }),
        "failed" => Some(PaymentOutcome::NotPaid(NotPaid::TransactionFailed {
            transaction_id: transaction.id.clone(),
        })),
        _ => None,
    }
}

impl Commerce for CrossmintCommerce {
    async fn create_order(
        &self,
        _now: u64,
        request: &OrderRequest,
    ) -> Result<Order, CommerceError> {
        let body = wire::create_order_body(request, &self.config.locale);
        let url = self.url(&["2022-06-09", "orders"])?;
        let reply = self
            .send(Method::POST, url, Some(&body), None, false)
            .await?;
        if !reply.status.is_success() {
            return Err(error_for(&reply));
        }
        wire::order_from(&reply.body)
    }

    async fn order(&self, _now: u64, id: &OrderId) -> Result<Order, CommerceError> {
        self.fetch_order(id).await
    }

    async fn pay_order(
        &self,
        now: u64,
        id: &OrderId,
        key: &IdempotencyKey,
    ) -> Result<PaymentOutcome, CommerceError> {
        let order = self.fetch_order(id).await?;
        let already_paid = matches!(
            order.payment.status,
            PaymentStatus::InProgress | PaymentStatus::Completed
        ) || matches!(order.phase, OrderPhase::Delivery | OrderPhase::Completed);
        if already_paid {
            return Ok(PaymentOutcome::AlreadySubmitted);
        }
        match order.quote_outcome(now) {
            QuoteOutcome::Payable { .. } => {}
            QuoteOutcome::Expired => return Ok(PaymentOutcome::NotPaid(NotPaid::QuoteExpired)),
            QuoteOutcome::Problem(problem) => {
                return Ok(PaymentOutcome::NotPaid(NotPaid::Quote(problem)));
            }
        }
        let preparation = order.payment.preparation.as_ref();
        let serialized = order.serialized_transaction().unwrap_or_default();
        let chain = preparation
            .and_then(|p| p.chain.as_deref())
            .unwrap_or_default();
        let body = match self.payment_body(serialized, chain) {
            Ok(body) => body,
            Err(not_paid) => return Ok(PaymentOutcome::NotPaid(not_paid)),
        };
        let url = self.url(&[
            "2022-06-09",
            "wallets",
            &self.config.treasury_wallet,
            "transactions",
        ])?;
        let reply = self
            .send(Method::POST, url, Some(&body), Some(key), true)
            .await?;
        match reply.status {
            s if s.is_success() => {
                let transaction: wire::WalletTransaction = serde_json::from_slice(&reply.body)
                    .map_err(|e| CommerceError::Malformed(e.to_string()))?;
                match settled(&transaction) {
                    Some(outcome) => Ok(outcome),
                    None => self.await_transaction(&transaction.id).await,
                }
            }
            StatusCode::CONFLICT => Ok(PaymentOutcome::AlreadySubmitted),
            StatusCode::UNPROCESSABLE_ENTITY => {
                let (reason, message) = wire::simulation_failure(&reply.body);
                Ok(PaymentOutcome::NotPaid(NotPaid::SimulationFailed {
                    reason,
                    message,
                }))
            }
            _ => Err(error_for(&reply)),
        }
    }

    async fn tracking(&self, _now: u64, id: &OrderId) -> Result<Vec<Tracking>, CommerceError> {
        wire::tracking_from(
            &self
                .get(&["unstable", "orders", id.as_str(), "tracking"])
                .await?,
        )
    }

    async fn request_return(
        &self,
        _now: u64,
        id: &OrderId,
        line_item: u32,
        reason: &str,
    ) -> Result<ReturnAccepted, CommerceError> {
        let body = serde_json::to_value(wire::ReturnBody { line_item, reason })
            .map_err(|e| CommerceError::Malformed(e.to_string()))?;
        let url = self.url(&["unstable", "orders", id.as_str(), "refunds"])?;
        let reply = self
            .send(Method::POST, url, Some(&body), None, false)
            .await?;
        if !reply.status.is_success() {
            return Err(error_for(&reply));
        }
        wire::return_from(&reply.body, line_item)
    }
}
