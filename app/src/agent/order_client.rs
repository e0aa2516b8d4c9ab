//! The HTTP x402 client of the merchant's order server. The agent always reaches the
//! merchant over real HTTP, even in one process, so the protocol boundary is exercised.
//!
//! | call | request | answers |
//! |---|---|---|
//! | [`OrderClient::request_quote`] | `POST /api/orders` without payment | 402: `PAYMENT-REQUIRED` (v2) and the v1 JSON body with `orderId`, `orderToken` |
//! | [`OrderClient::pay`] | the same body again with `PAYMENT-SIGNATURE` (v2) or `X-PAYMENT` (v1) | 200 `{orderId, orderToken, status, transaction, network}`; 402 refused (`error` = reason code); 400 malformed |
//! | [`OrderClient::order`] | `GET /api/orders/{id}` with `Authorization: Bearer <orderToken>` | 200 the order's stage; 404 |
//!
//! Errors say whether retrying can help: network failures, 5xx and 429 are transient.

use super::records::OrderToken;
use alloy_primitives::B256;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use worldstore_domain::ports::store::Key;
use worldstore_domain::profile::Recipient;
use worldstore_domain::x402::PaymentPayload;
use worldstore_domain::x402::ReasonCode;
use worldstore_domain::x402::client::PaymentChallenge;

/// The order body, posted twice (quote, then payment) byte for byte the same.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderRequest {
    pub product_locator: String,
    pub email: String,
    pub physical_address: PhysicalAddress,
    pub payment: PaymentMethod,
}

impl std::fmt::Debug for OrderRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Email and address are personal data.
        f.debug_struct("OrderRequest")
            .field("product_locator", &self.product_locator)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PhysicalAddress {
    pub name: String,
    pub line1: String,
    pub line2: Option<String>,
    pub city: String,
    pub state: String,
    pub postal_code: String,
    pub country: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentMethod {
    pub method: String,
    pub currency: String,
}

impl OrderRequest {
    /// The order of `asin` shipped to `recipient`, paid in USDC on `network` (v1 name).
    pub fn new(asin: &str, recipient: &Recipient, network: &str) -> Self {
        let a = &recipient.address;
        Self {
            product_locator: format!("amazon:{asin}"),
            email: recipient.email.expose().to_owned(),
            physical_address: PhysicalAddress {
                name: recipient.name.expose().to_owned(),
                line1: a.line1.expose().to_owned(),
                line2: a.line2.as_ref().map(|l| l.expose().to_owned()),
                city: a.city.expose().to_owned(),
                state: a.state.as_str().to_owned(),
                postal_code: a.postal_code.expose().to_owned(),
                country: "US".to_owned(),
            },
            payment: PaymentMethod {
                method: network.to_owned(),
                currency: "usdc".to_owned(),
            },
        }
    }
}

/// A 402 answer to an unpaid order request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    pub order_id: Key,
    pub token: OrderToken,
    pub challenge: PaymentChallenge,
}

/// How the merchant answered a paid request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayAnswer {
    Paid { tx_hash: B256 },
    Refused { reason: ReasonCode, message: String },
}

/// The merchant's view of an order (`GET /api/orders/{id}`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderView {
    pub order_id: String,
    #[serde(default)]
    pub status: Option<String>,
    pub stage: String,
    #[serde(default)]
    pub tracking: Option<Tracking>,
    #[serde(default)]
    pub refund: Option<RefundView>,
    #[serde(default)]
    pub payment: Option<PaymentView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Tracking {
    pub carrier: String,
    pub number: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefundView {
    pub tx_hash: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentView {
    pub tx_hash: Option<String>,
    #[serde(default)]
    pub amount: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderClientError {
    /// Unreachable, timed out, 5xx or 429: try again later.
    #[error("order server unavailable: {0}")]
    Unavailable(String),
    /// The server refused the request (4xx other than 402/404 where those mean something).
    #[error("order server refused the request ({status}): {message}")]
    Refused { status: u16, message: String },
    /// The server answered something that is not the protocol.
    #[error("order server answered unexpectedly: {0}")]
    Malformed(String),
}

impl OrderClientError {
    pub fn is_transient(&self) -> bool {
        matches!(self, OrderClientError::Unavailable(_))
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct QuoteIds {
    order_id: String,
    order_token: String,
}

#[derive(Deserialize)]
struct PaidBody {
    transaction: String,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

#[derive(Debug, Clone)]
pub struct OrderClient {
    http: reqwest::Client,
    base: String,
}

fn unavailable(e: reqwest::Error) -> OrderClientError {
    OrderClientError::Unavailable(e.without_url().to_string())
}

pub fn parse_tx_hash(text: &str) -> Option<B256> {
    text.parse::<B256>().ok()
}

/// The `error` text of a refusal body, bounded (it is the server's text).
fn refusal_text(body: &[u8]) -> (Option<String>, String) {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(e) => {
            let message = e
                .message
                .clone()
                .or_else(|| e.error.clone())
                .unwrap_or_default();
            (e.error, message.chars().take(300).collect())
        }
        Err(_) => (
            None,
            String::from_utf8_lossy(body).chars().take(300).collect(),
        ),
    }
}

impl OrderClient {
    /// A client of the order server at `base` (`http://127.0.0.1:8080`, no trailing `/`).
    pub fn new(base: impl Into<String>) -> Result<Self, OrderClientError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(unavailable)?;
        Ok(Self {
            http,
            base: base.into().trim_end_matches('/').to_owned(),
        })
    }

    /// A client of the order server at `base` sharing this one's connection pool.
    pub fn at(&self, base: &str) -> Self {
        Self {
            http: self.http.clone(),
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    fn orders_url(&self) -> String {
        format!("{}/api/orders", self.base)
    }

    /// `POST /api/orders` without payment: the merchant's 402 quote.
    pub async fn request_quote(&self, body: &OrderRequest) -> Result<Quote, OrderClientError> {
        let response = self
            .http
            .post(self.orders_url())
            .json(body)
            .send()
            .await
            .map_err(unavailable)?;
        let status = response.status().as_u16();
        let header = response
            .headers()
            .get("PAYMENT-REQUIRED")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = response.bytes().await.map_err(unavailable)?;
        match status {
            402 => {
                let ids: QuoteIds = serde_json::from_slice(&bytes).map_err(|e| {
                    OrderClientError::Malformed(format!("402 body without order ids: {e}"))
                })?;
                let order_id = Key::parse(&ids.order_id).map_err(|e| {
                    OrderClientError::Malformed(format!("order id is not an identifier: {e}"))
                })?;
                let challenge = PaymentChallenge::from_response(header.as_deref(), &bytes)
                    .map_err(|e| OrderClientError::Malformed(e.to_string()))?;
                Ok(Quote {
                    order_id,
                    token: OrderToken::new(ids.order_token),
                    challenge,
                })
            }
            429 | 500..=599 => Err(OrderClientError::Unavailable(format!("HTTP {status}"))),
            _ => Err(OrderClientError::Refused {
                status,
                message: refusal_text(&bytes).1,
            }),
        }
    }

    /// The same order body again, with the signed payment.
    pub async fn pay(
        &self,
        body: &OrderRequest,
        payment: &PaymentPayload,
    ) -> Result<PayAnswer, OrderClientError> {
        let response = self
            .http
            .post(self.orders_url())
            .header(payment.header_name(), payment.header_value())
            .json(body)
            .send()
            .await
            .map_err(unavailable)?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(unavailable)?;
        match status {
            200 | 201 => {
                let paid: PaidBody = serde_json::from_slice(&bytes)
                    .map_err(|e| OrderClientError::Malformed(format!("paid answer: {e}")))?;
                let tx_hash = parse_tx_hash(&paid.transaction).ok_or_else(|| {
                    OrderClientError::Malformed("paid answer without a transaction hash".into())
                })?;
                Ok(PayAnswer::Paid { tx_hash })
            }
            400 | 402 | 409 => {
                let (code, message) = refusal_text(&bytes);
                let reason = match (status, code) {
                    (402, Some(code)) => ReasonCode::parse(&code),
                    (_, code) => ReasonCode::parse(code.as_deref().unwrap_or("invalid_payload")),
                };
                Ok(PayAnswer::Refused { reason, message })
            }
            429 | 500..=599 => Err(OrderClientError::Unavailable(format!("HTTP {status}"))),
            _ => Err(OrderClientError::Refused {
                status,
                message: refusal_text(&bytes).1,
            }),
        }
    }

    /// `GET /api/orders/{id}` with the order's bearer token; `None` on 404.
    pub async fn order(
        &self,
        order_id: &Key,
        token: &OrderToken,
    ) -> Result<Option<OrderView>, OrderClientError> {
        let response = self
            .http
            .get(format!("{}/{}", self.orders_url(), order_id))
            .bearer_auth(token.expose())
            .send()
            .await
            .map_err(unavailable)?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(unavailable)?;
        match status {
            200 => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| OrderClientError::Malformed(format!("order view: {e}"))),
            404 => Ok(None),
            429 | 500..=599 => Err(OrderClientError::Unavailable(format!("HTTP {status}"))),
            _ => Err(OrderClientError::Refused {
                status,
                message: refusal_text(&bytes).1,
            }),
        }
    }
}
