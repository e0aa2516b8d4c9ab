//! Strict, size-limited codecs for the x402 HTTP headers: standard base64 of UTF-8 JSON.
//!
//! | header | direction | message |
//! |---|---|---|
//! | `X-PAYMENT` | client -> server | [`PaymentPayload`] (v1; a v2 client talking to a v1 server) |
//! | `PAYMENT-SIGNATURE` | client -> server | [`PaymentPayload`] (v2) |
//! | `PAYMENT-REQUIRED` | server -> client, with 402 | [`PaymentRequiredV2`] |
//! | `X-PAYMENT-RESPONSE` / `PAYMENT-RESPONSE` | server -> client | [`SettleResponse`] |
//!
//! A header that fails here is malformed (HTTP 400), which is different from a payment
//! that decodes and is then refused by the rules (402 with a reason code).

use super::messages::{
    PaymentPayload, PaymentRequiredV1, PaymentRequiredV2, SettleResponse, probe_version,
};
use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The longest header value we decode. A v2 payment with a long resource description is
/// about 1.5 KiB; 8 KiB is also the usual per-header limit of HTTP servers.
pub const MAX_HEADER_BYTES: usize = 8 * 1024;

/// Standard alphabet; padding optional on input (some clients strip it), always written.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("header is empty")]
    Empty,
    #[error("header is {len} bytes; the limit is {max}")]
    TooLong { len: usize, max: usize },
    #[error("header is not standard base64: {0}")]
    Base64(String),
    #[error("header's base64 does not hold UTF-8 text")]
    NotUtf8,
    #[error("header's JSON is not a valid {message}: {detail}")]
    Json {
        message: &'static str,
        detail: String,
    },
    #[error("{header} carries x402Version {found}, which it cannot hold")]
    WrongVersion { header: &'static str, found: u8 },
    #[error("header's JSON is not an x402 message (no payload, accepts or success field)")]
    NotX402,
}

/// Base64 of the compact JSON of `message`, as a header value.
pub fn encode<T: Serialize>(message: &T) -> String {
    // Serializing our own message types cannot fail: every map key is a string.
    let json = serde_json::to_vec(message).unwrap_or_default();
    BASE64.encode(json)
}

/// `PAYMENT-RESPONSE` as a v2 resource server writes it (`@x402/core` re-parses the
/// facilitator's answer, which puts `payer` before `transaction`).
pub fn encode_payment_response(response: &SettleResponse) -> String {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct PaymentResponseV2<'a> {
        success: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        error_reason: Option<&'a super::ReasonCode>,
        #[serde(skip_serializing_if = "Option::is_none")]
        error_message: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        payer: Option<String>,
        transaction: &'a str,
        network: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        amount: Option<&'a str>,
    }
    encode(&PaymentResponseV2 {
        success: response.success,
        error_reason: response.error_reason.as_ref(),
        error_message: response.error_message.as_deref(),
        payer: response.payer.map(|p| p.to_checksum(None)),
        transaction: &response.transaction,
        network: &response.network,
        amount: response.amount.as_deref(),
    })
}

/// `X-PAYMENT-RESPONSE` (v1), in the order of the reference v1 server and with v1's
/// spelling of the value reason code.
pub fn encode_x_payment_response(response: &SettleResponse) -> String {
    match &response.error_reason {
        Some(reason @ super::ReasonCode::InvalidValue) => encode(&SettleResponse {
            error_reason: Some(super::ReasonCode::Other(reason.as_str_for(1).to_owned())),
            ..response.clone()
        }),
        _ => encode(response),
    }
}

/// Checks size and base64 and returns the JSON bytes.
pub fn decode_bytes(value: &str) -> Result<Vec<u8>, HeaderError> {
    let value = value.trim_matches(|c| c == ' ' || c == '\t');
    if value.is_empty() {
        return Err(HeaderError::Empty);
    }
    if value.len() > MAX_HEADER_BYTES {
        return Err(HeaderError::TooLong {
            len: value.len(),
            max: MAX_HEADER_BYTES,
        });
    }
    let bytes = BASE64
        .decode(value)
        .map_err(|e| HeaderError::Base64(e.to_string()))?;
    if std::str::from_utf8(&bytes).is_err() {
        return Err(HeaderError::NotUtf8);
    }
    Ok(bytes)
}

fn decode_json<T: DeserializeOwned>(value: &str, message: &'static str) -> Result<T, HeaderError> {
    let bytes = decode_bytes(value)?;
    serde_json::from_slice(&bytes).map_err(|e| HeaderError::Json {
        message,
        detail: e.to_string(),
    })
}

fn decode_payment(value: &str) -> Result<PaymentPayload, HeaderError> {
    let bytes = decode_bytes(value)?;
    PaymentPayload::from_json(&bytes).map_err(|e| HeaderError::Json {
        message: "x402 PaymentPayload",
        detail: e.to_string(),
    })
}

/// `X-PAYMENT`: a v1 payload. (A v2 payload here is accepted too: the header name is the
/// server's choice of version, and the rules then check the version against the offer.)
pub fn decode_x_payment(value: &str) -> Result<PaymentPayload, HeaderError> {
    decode_payment(value)
}

/// `PAYMENT-SIGNATURE`: a v2 payload.
pub fn decode_payment_signature(value: &str) -> Result<PaymentPayload, HeaderError> {
    match decode_payment(value)? {
        PaymentPayload::V1(_) => Err(HeaderError::WrongVersion {
            header: "PAYMENT-SIGNATURE",
            found: 1,
        }),
        v2 => Ok(v2),
    }
}

/// `PAYMENT-REQUIRED`: a v2 402 answer.
pub fn decode_payment_required(value: &str) -> Result<PaymentRequiredV2, HeaderError> {
    decode_json(value, "x402 v2 PaymentRequired")
}

/// `X-PAYMENT-RESPONSE` or `PAYMENT-RESPONSE`: a settlement result.
pub fn decode_payment_response(value: &str) -> Result<SettleResponse, HeaderError> {
    decode_json(value, "x402 SettleResponse")
}

/// Any x402 message, recognised by its shape (for tools such as `worldstore x402 decode`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "message")]
pub enum AnyMessage {
    PaymentPayload(PaymentPayload),
    PaymentRequiredV1(PaymentRequiredV1),
    PaymentRequiredV2(PaymentRequiredV2),
    SettleResponse(SettleResponse),
}

pub fn decode_any(value: &str) -> Result<AnyMessage, HeaderError> {
    let bytes = decode_bytes(value)?;
    let shape: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&bytes)
        .map_err(|e| HeaderError::Json {
            message: "JSON object",
            detail: e.to_string(),
        })?;
    let json_error = |message| {
        move |e: serde_json::Error| HeaderError::Json {
            message,
            detail: e.to_string(),
        }
    };
    if shape.contains_key("payload") {
        PaymentPayload::from_json(&bytes)
            .map(AnyMessage::PaymentPayload)
            .map_err(json_error("x402 PaymentPayload"))
    } else if shape.contains_key("accepts") {
        match probe_version(&bytes).map_err(json_error("x402 PaymentRequired"))? {
            1 => serde_json::from_slice(&bytes)
                .map(AnyMessage::PaymentRequiredV1)
                .map_err(json_error("x402 v1 PaymentRequired")),
            _ => serde_json::from_slice(&bytes)
                .map(AnyMessage::PaymentRequiredV2)
                .map_err(json_error("x402 v2 PaymentRequired")),
        }
    } else if shape.contains_key("success") {
        serde_json::from_slice(&bytes)
            .map(AnyMessage::SettleResponse)
            .map_err(json_error("x402 SettleResponse"))
    } else {
        Err(HeaderError::NotX402)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::x402::messages::{ExactEvmPayload, PaymentPayloadV1, Version};
    use proptest::prelude::*;

    fn b64(text: &str) -> String {
        BASE64.encode(text)
    }

    #[test]
    fn empty_oversized_and_non_base64_headers_are_malformed() {
        assert_eq!(
            decode_x_payment(""),
            Err(HeaderError::Empty).map(|_: ()| unreachable!())
        );
        let long = "A".repeat(MAX_HEADER_BYTES + 4);
        assert!(matches!(
            decode_x_payment(&long),
            Err(HeaderError::TooLong { .. })
        ));
        assert!(matches!(
            decode_x_payment("not base64!"),
            Err(HeaderError::Base64(_))
        ));
        // URL-safe alphabet is not the standard alphabet x402 uses.
        assert!(matches!(
            decode_x_payment("eyJ4-_"),
            Err(HeaderError::Base64(_))
        ));
        assert_eq!(
            decode_x_payment(&BASE64.encode([0xff, 0xfe])),
            Err(HeaderError::NotUtf8)
        );
    }

    #[test]
    fn json_errors_name_the_message_and_the_problem() {
        let err = decode_x_payment(&b64("{\"x402Version\":1")).unwrap_err();
        assert!(
            matches!(
                err,
                HeaderError::Json {
                    message: "x402 PaymentPayload",
                    ..
                }
            ),
            "{err}"
        );
        let err = decode_x_payment(&b64(r#"{"x402Version":3,"payload":{}}"#)).unwrap_err();
        assert!(
            err.to_string().contains("unsupported x402Version 3"),
            "{err}"
        );
        let err = decode_x_payment(&b64(
            r#"{"x402Version":1,"scheme":"exact","network":"base"}"#,
        ))
        .unwrap_err();
        assert!(err.to_string().contains("missing field `payload`"), "{err}");
        let err = decode_payment_required(&b64("[]")).unwrap_err();
        assert!(matches!(err, HeaderError::Json { .. }));
    }

    #[test]
    fn a_v1_payload_in_payment_signature_is_refused() {
        let payload = PaymentPayload::V1(PaymentPayloadV1 {
            x402_version: Version,
            scheme: "exact".into(),
            network: "base-sepolia".into(),
            payload: ExactEvmPayload::new(
                "0x00".into(),
                serde_json::from_str(
                    r#"{"from":"0x0000000000000000000000000000000000000001","to":"0x0000000000000000000000000000000000000002","value":"1","validAfter":"0","validBefore":"10","nonce":"0x0000000000000000000000000000000000000000000000000000000000000000"}"#,
                )
                .unwrap(),
            ),
        });
        let value = encode(&payload);
        assert_eq!(decode_x_payment(&value), Ok(payload));
        assert_eq!(
            decode_payment_signature(&value),
            Err(HeaderError::WrongVersion {
                header: "PAYMENT-SIGNATURE",
                found: 1
            })
        );
    }

    #[test]
    fn duplicate_fields_and_bad_field_values_are_refused() {
        let auth = r#"{"from":"0x0000000000000000000000000000000000000001","to":"0x0000000000000000000000000000000000000002","value":"1","validAfter":"0","validBefore":"10","nonce":"0x0000000000000000000000000000000000000000000000000000000000000000"}"#;
        let dup = format!(
            r#"{{"x402Version":1,"scheme":"exact","network":"base","payload":{{"signature":"0x","signature":"0x","authorization":{auth}}}}}"#
        );
        assert!(
            decode_x_payment(&b64(&dup))
                .unwrap_err()
                .to_string()
                .contains("duplicate field")
        );
        let bad_value = auth.replace(r#""value":"1""#, r#""value":"1.5""#);
        let json = format!(
            r#"{{"x402Version":1,"scheme":"exact","network":"base","payload":{{"signature":"0x","authorization":{bad_value}}}}}"#
        );
        assert!(
            decode_x_payment(&b64(&json))
                .unwrap_err()
                .to_string()
                .contains("decimal uint256")
        );
        let bad_address = auth.replace("0x0000000000000000000000000000000000000001", "0x01");
        let json = format!(
            r#"{{"x402Version":1,"scheme":"exact","network":"base","payload":{{"signature":"0x","authorization":{bad_address}}}}}"#
        );
        assert!(
            decode_x_payment(&b64(&json))
                .unwrap_err()
                .to_string()
                .contains("40 hex digits")
        );
    }

    #[test]
    fn padding_may_be_omitted_but_whitespace_inside_is_refused() {
        let response = SettleResponse {
            success: true,
            error_reason: None,
            error_message: None,
            transaction: "0xabc".into(),
            network: "base-sepolia".into(),
            payer: None,
            amount: None,
        };
        let value = encode(&response);
        assert_eq!(
            decode_payment_response(value.trim_end_matches('=')),
            Ok(response.clone())
        );
        let (a, b) = value.split_at(8);
        assert!(decode_payment_response(&format!("{a} {b}")).is_err());
    }

    #[test]
    fn v1_responses_use_the_v1_spelling_of_the_value_code() {
        let response = SettleResponse {
            success: false,
            error_reason: Some(crate::x402::ReasonCode::InvalidValue),
            error_message: None,
            transaction: String::new(),
            network: "base-sepolia".into(),
            payer: None,
            amount: None,
        };
        let v1 = decode_bytes(&encode_x_payment_response(&response)).unwrap();
        assert!(
            String::from_utf8(v1)
                .unwrap()
                .contains("\"invalid_exact_evm_payload_authorization_value\"")
        );
        let v2 = decode_bytes(&encode_payment_response(&response)).unwrap();
        assert!(String::from_utf8(v2).unwrap().contains("_value_mismatch\""));
        // Both spellings decode to the same code.
        assert_eq!(
            decode_payment_response(&encode_x_payment_response(&response)),
            Ok(response)
        );
    }

    #[test]
    fn decode_any_recognises_each_message_and_refuses_other_json() {
        assert!(matches!(
            decode_any(&b64(
                r#"{"success":true,"transaction":"","network":"base"}"#
            )),
            Ok(AnyMessage::SettleResponse(_))
        ));
        assert!(matches!(
            decode_any(&b64(r#"{"x402Version":1,"error":"","accepts":[]}"#)),
            Ok(AnyMessage::PaymentRequiredV1(_))
        ));
        assert_eq!(
            decode_any(&b64(r#"{"hello":"world"}"#)),
            Err(HeaderError::NotX402)
        );
    }

    proptest! {
        #[test]
        fn settle_responses_round_trip_through_every_header_encoding(
            success in any::<bool>(),
            transaction in "(0x[0-9a-f]{64})?",
            network in "[a-z0-9:-]{1,20}",
            message in proptest::option::of(".{0,40}"),
        ) {
            let response = SettleResponse {
                success,
                error_reason: (!success).then_some(crate::x402::ReasonCode::InsufficientFunds),
                error_message: message,
                transaction,
                network,
                payer: Some(alloy_primitives::Address::repeat_byte(7)),
                amount: None,
            };
            prop_assert_eq!(decode_payment_response(&encode_x_payment_response(&response)), Ok(response.clone()));
            prop_assert_eq!(decode_payment_response(&encode_payment_response(&response)), Ok(response));
        }

        #[test]
        fn arbitrary_header_text_never_panics(text in ".{0,200}") {
            let _ = decode_any(&text);
            let _ = decode_payment_signature(&text);
            let _ = decode_payment_required(&text);
        }
    }
}
