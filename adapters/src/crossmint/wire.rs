//! Crossmint's JSON shapes (external-apis.md, "Crossmint orders"), field by field, and
//! their translation to and from the domain's order types.
//!
//! Reading is lenient: unknown fields are ignored, statuses unknown to us are kept as
//! `Unknown`, an order comes bare or wrapped in `{order}` (or `{clientSecret, order}`).
//! Amounts are decimal strings in whole USDC parsed exactly; a total in another currency
//! is not a USDC price and is dropped (the quote then has no price), never converted.

use super::time::parse_rfc3339;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use worldstore_domain::UsdcAmount;
use worldstore_domain::ports::catalog::ProductText;
use worldstore_domain::ports::commerce::{
    CommerceError, DeliveryStatus, LineItem, LineItemQuoteStatus, Order, OrderId, OrderPhase,
    OrderRequest, Payment, PaymentPreparation, PaymentStatus, ProviderRefund, Quote, QuoteStatus,
    ReturnAccepted, Tracking, Unavailability,
};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireOrder {
    order_id: String,
    #[serde(default)]
    phase: Option<String>,
    #[serde(default)]
    quote: Option<WireQuote>,
    #[serde(default)]
    line_items: Vec<WireLineItem>,
    #[serde(default)]
    payment: Option<WirePayment>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireQuote {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    quoted_at: Option<String>,
    #[serde(default)]
    expires_at: Option<String>,
    #[serde(default)]
    total_price: Option<WirePrice>,
}

#[derive(Debug, Deserialize)]
struct WirePrice {
    amount: Value,
    #[serde(default)]
    currency: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireLineItem {
    #[serde(default)]
    quantity: Option<u32>,
    #[serde(default)]
    metadata: Option<WireMetadata>,
    #[serde(default)]
    quote: Option<WireLineQuote>,
    #[serde(default)]
    delivery: Option<WireDelivery>,
}

#[derive(Debug, Deserialize)]
struct WireMetadata {
    #[serde(default)]
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireLineQuote {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    unavailability_reason: Option<WireReason>,
    #[serde(default)]
    total_price: Option<WirePrice>,
}

#[derive(Debug, Deserialize)]
struct WireReason {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireDelivery {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    tx_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WirePayment {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    failure_reason: Option<Value>,
    #[serde(default)]
    preparation: Option<WirePreparation>,
    #[serde(default)]
    refunded: Option<WireRefunded>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WirePreparation {
    #[serde(default)]
    chain: Option<String>,
    #[serde(default)]
    payer_address: Option<String>,
    #[serde(default)]
    serialized_transaction: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireRefunded {
    amount: Value,
    #[serde(default)]
    currency: Option<String>,
    #[serde(default)]
    tx_id: Option<String>,
}

fn malformed(what: impl std::fmt::Display) -> CommerceError {
    CommerceError::Malformed(what.to_string())
}

/// A decimal amount in whole USDC, exactly; `None` for another currency.
fn usdc(amount: &Value, currency: Option<&str>) -> Result<Option<UsdcAmount>, CommerceError> {
    if !currency.is_none_or(|c| c.eq_ignore_ascii_case("usdc")) {
        return Ok(None);
    }
    let text = match amount {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => return Err(malformed(format!("amount {other} is not a number"))),
    };
    UsdcAmount::parse_decimal(text.trim())
        .map(Some)
        .map_err(malformed)
}

fn price(price: Option<&WirePrice>) -> Result<Option<UsdcAmount>, CommerceError> {
    match price {
        Some(p) => usdc(&p.amount, p.currency.as_deref()),
        None => Ok(None),
    }
}

fn time(text: Option<&str>) -> Result<Option<u64>, CommerceError> {
    text.map(|t| parse_rfc3339(t).ok_or_else(|| malformed(format!("time {t:?}"))))
        .transpose()
}

/// Reads an order body: bare, `{order}` or `{clientSecret, order}`.
pub fn order_from(body: &[u8]) -> Result<Order, CommerceError> {
    let value: Value = serde_json::from_slice(body).map_err(malformed)?;
    let order = match value.get("order") {
        Some(inner) if inner.is_object() => inner.clone(),
        _ => value,
    };
    let wire: WireOrder = serde_json::from_value(order).map_err(malformed)?;
    to_order(wire)
}

fn to_order(wire: WireOrder) -> Result<Order, CommerceError> {
    let id = OrderId::parse(&wire.order_id).map_err(malformed)?;
    let quote = wire.quote.unwrap_or_default();
    let line_items = wire
        .line_items
        .into_iter()
        .map(to_line_item)
        .collect::<Result<_, _>>()?;
    let payment = match wire.payment {
        Some(p) => to_payment(p)?,
        None => Payment {
            status: PaymentStatus::Unknown(String::new()),
            failure_reason: None,
            preparation: None,
            refunded: None,
        },
    };
    Ok(Order {
        id,
        phase: OrderPhase::from_wire(wire.phase.as_deref().unwrap_or("")),
        quote: Quote {
            status: QuoteStatus::from_wire(quote.status.as_deref().unwrap_or("")),
            quoted_at: time(quote.quoted_at.as_deref())?,
            expires_at: time(quote.expires_at.as_deref())?,
            total: price(quote.total_price.as_ref())?,
        },
        line_items,
        payment,
    })
}

fn to_line_item(wire: WireLineItem) -> Result<LineItem, CommerceError> {
    let quote = wire.quote;
    let status = quote
        .as_ref()
        .and_then(|q| q.status.as_deref())
        .unwrap_or("");
    let unavailability = quote
        .as_ref()
        .and_then(|q| q.unavailability_reason.as_ref())
        .map(|r| Unavailability {
            code: ProductText::clean(r.code.as_deref().unwrap_or("unavailable")).into(),
            message: ProductText::clean(r.message.as_deref().unwrap_or("")),
        });
    let delivery = wire.delivery;
    Ok(LineItem {
        name: wire
            .metadata
            .and_then(|m| m.name)
            .map(|n| ProductText::clean(&n)),
        quantity: wire.quantity.unwrap_or(1),
        quote_status: LineItemQuoteStatus::from_wire(status),
        unavailability,
        total: price(quote.as_ref().and_then(|q| q.total_price.as_ref()))?,
        delivery: DeliveryStatus::from_wire(
            delivery
                .as_ref()
                .and_then(|d| d.status.as_deref())
                .unwrap_or(""),
        ),
        delivery_tx: delivery.and_then(|d| d.tx_id),
    })
}

fn to_payment(wire: WirePayment) -> Result<Payment, CommerceError> {
    let failure_reason = wire.failure_reason.map(|reason| {
        let text = match &reason {
            Value::String(s) => s.clone(),
            other => other
                .get("message")
                .and_then(Value::as_str)
                .map_or_else(|| other.to_string(), str::to_owned),
        };
        ProductText::clean(&text)
    });
    let refunded = match wire.refunded {
        Some(r) => usdc(&r.amount, r.currency.as_deref())?.map(|amount| ProviderRefund {
            amount,
            tx_id: r.tx_id,
        }),
        None => None,
    };
    Ok(Payment {
        status: PaymentStatus::from_wire(wire.status.as_deref().unwrap_or("")),
        failure_reason,
        preparation: wire.preparation.map(|p| PaymentPreparation {
            chain: p.chain,
            payer_address: p.payer_address,
            serialized_transaction: p.serialized_transaction,
        }),
        refunded,
    })
}

/// The body of `POST /2022-06-09/orders`. Contains the recipient's personal data: it is
/// built here, sent, and never logged.
pub fn create_order_body(request: &OrderRequest, locale: &str) -> Value {
    let recipient = &request.recipient;
    let address = &recipient.address;
    let mut physical = json!({
        "name": recipient.name.expose(),
        "line1": address.line1.expose(),
        "city": address.city.expose(),
        "state": address.state.as_str(),
        "postalCode": address.postal_code.expose(),
        "country": "US",
    });
    if let Some(line2) = &address.line2 {
        physical["line2"] = json!(line2.expose());
    }
    json!({
        "recipient": {
            "email": recipient.email.expose(),
            "physicalAddress": physical,
        },
        "locale": locale,
        "payment": {
            "method": request.network.v1_name(),
            "currency": "usdc",
            "payerAddress": request.payer.to_checksum(None),
        },
        "lineItems": request
            .items()
            .iter()
            .map(|asin| json!({"productLocator": format!("amazon:{asin}")}))
            .collect::<Vec<_>>(),
    })
}

/// A wallet transaction as Crossmint reports it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WalletTransaction {
    pub id: String,
    pub status: String,
    #[serde(default)]
    pub on_chain: Option<OnChain>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OnChain {
    #[serde(default)]
    pub tx_id: Option<String>,
}

/// `{error: {reason, message}}` of a 422 (simulation failed).
pub fn simulation_failure(body: &[u8]) -> (String, ProductText) {
    let value: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let error = value.get("error").unwrap_or(&Value::Null);
    let reason = error
        .get("reason")
        .and_then(Value::as_str)
        .unwrap_or("simulation-failed");
    let message = error
        .get("message")
        .and_then(Value::as_str)
        .or_else(|| value.get("message").and_then(Value::as_str))
        .unwrap_or("");
    (
        ProductText::clean(reason).into(),
        ProductText::clean(message),
    )
}

/// `{error: true, message, code?}` of other errors.
pub fn error_body(body: &[u8]) -> (Option<String>, ProductText) {
    let value: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let code = value
        .get("code")
        .and_then(Value::as_str)
        .map(|c| ProductText::clean(c).into());
    let message = value
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("no message");
    (code, ProductText::clean(message))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireTracking {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    package_tracking: Option<WirePackage>,
    #[serde(default)]
    delivery_time_range: Option<WireRange>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WirePackage {
    #[serde(default)]
    carrier_name: Option<String>,
    #[serde(default)]
    carrier_tracking_number: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireRange {
    #[serde(default)]
    lower_bound: Option<String>,
    #[serde(default)]
    upper_bound: Option<String>,
}

/// `[{status, packageTracking{carrierName, carrierTrackingNumber}, deliveryTimeRange}]`.
pub fn tracking_from(body: &[u8]) -> Result<Vec<Tracking>, CommerceError> {
    let parcels: Vec<WireTracking> = serde_json::from_slice(body).map_err(malformed)?;
    Ok(parcels
        .into_iter()
        .map(|p| {
            let package = p.package_tracking;
            let window = p.delivery_time_range.and_then(|r| {
                let low = parse_rfc3339(r.lower_bound.as_deref()?)?;
                let high = parse_rfc3339(r.upper_bound.as_deref()?)?;
                Some((low, high))
            });
            Tracking {
                status: ProductText::clean(p.status.as_deref().unwrap_or("unknown")),
                carrier: package
                    .as_ref()
                    .and_then(|k| k.carrier_name.as_deref())
                    .map(ProductText::clean),
                tracking_number: package
                    .as_ref()
                    .and_then(|k| k.carrier_tracking_number.as_deref())
                    .map(ProductText::clean),
                delivery_window: window,
            }
        })
        .collect())
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReturnBody<'a> {
    pub line_item: u32,
    pub reason: &'a str,
}

/// `{orderId, lineItem, reason, status}`.
pub fn return_from(body: &[u8], line_item: u32) -> Result<ReturnAccepted, CommerceError> {
    let value: Value = serde_json::from_slice(body).map_err(malformed)?;
    Ok(ReturnAccepted {
        line_item: value
            .get("lineItem")
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(line_item),
        status: value
            .get("status")
            .and_then(Value::as_str)
            .map_or_else(|| "requested".to_owned(), |s| ProductText::clean(s).into()),
    })
}
