//! The x402 wire messages, v1 and v2, field for field (x402.md "Versions on the wire").
//!
//! Field order follows the reference SDKs so that our encodings are byte-identical to
//! theirs (checked against `fixtures/vectors/x402_headers.json`). Unknown fields are
//! ignored, so newer peers interoperate; duplicate fields are refused.
//!
//! Fields that the verification rules judge (scheme, network, signature) stay as the
//! strings the peer sent, so a wrong value is answered with its reason code instead of
//! failing to decode.

use crate::eip3009::{Authorization, uint};
use alloy_primitives::{Address, U256};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use super::ReasonCode;

/// The only scheme we implement: a fixed amount paid with EIP-3009.
pub const SCHEME_EXACT: &str = "exact";

/// The EIP-3009 payload of the `exact` scheme on EVM: `{signature, authorization}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExactEvmPayload {
    /// `0x` hex; parsed by the rules (a bad signature is `invalid_exact_evm_payload_signature`).
    pub signature: String,
    pub authorization: Authorization,
    /// The reference SDKs disagree on key order (`x402` 1.x writes the signature first,
    /// `@x402/evm` the authorization first). We keep the order a payload arrived in, so a
    /// payload re-encodes byte for byte, and write new ones in the `@x402/evm` order.
    pub signature_first: bool,
}

impl ExactEvmPayload {
    pub fn new(signature: String, authorization: Authorization) -> Self {
        Self {
            signature,
            authorization,
            signature_first: false,
        }
    }
}

impl Serialize for ExactEvmPayload {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut out = serializer.serialize_struct("ExactEvmPayload", 2)?;
        if self.signature_first {
            out.serialize_field("signature", &self.signature)?;
            out.serialize_field("authorization", &self.authorization)?;
        } else {
            out.serialize_field("authorization", &self.authorization)?;
            out.serialize_field("signature", &self.signature)?;
        }
        out.end()
    }
}

impl<'de> Deserialize<'de> for ExactEvmPayload {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Fields;
        impl<'de> serde::de::Visitor<'de> for Fields {
            type Value = ExactEvmPayload;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an EIP-3009 payload {signature, authorization}")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut signature: Option<String> = None;
                let mut authorization: Option<Authorization> = None;
                let mut signature_first = None;
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    match key.as_ref() {
                        "signature" if signature.is_some() => {
                            return Err(A::Error::duplicate_field("signature"));
                        }
                        "signature" => {
                            signature_first.get_or_insert(true);
                            signature = Some(map.next_value()?);
                        }
                        "authorization" if authorization.is_some() => {
                            return Err(A::Error::duplicate_field("authorization"));
                        }
                        "authorization" => {
                            signature_first.get_or_insert(false);
                            authorization = Some(map.next_value()?);
                        }
                        _ => {
                            map.next_value::<serde::de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(ExactEvmPayload {
                    signature: signature.ok_or_else(|| A::Error::missing_field("signature"))?,
                    authorization: authorization
                        .ok_or_else(|| A::Error::missing_field("authorization"))?,
                    signature_first: signature_first.unwrap_or(false),
                })
            }
        }
        deserializer.deserialize_map(Fields)
    }
}

/// `extra` of EVM `exact` requirements: the token's EIP-712 domain name and version, plus
/// anything else a server adds.
pub type Extra = Map<String, Value>;

/// v1 `PaymentRequirements`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRequirementsV1 {
    pub scheme: String,
    pub network: String,
    #[serde(with = "uint")]
    pub max_amount_required: U256,
    pub resource: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub mime_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<Value>,
    #[serde(with = "crate::eip3009::checksum")]
    pub pay_to: Address,
    pub max_timeout_seconds: u64,
    #[serde(with = "crate::eip3009::checksum")]
    pub asset: Address,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<Extra>,
}

/// v1 402 answer body: `{x402Version: 1, error, accepts}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRequiredV1 {
    pub x402_version: Version<1>,
    #[serde(default)]
    pub error: String,
    pub accepts: Vec<PaymentRequirementsV1>,
}

/// v1 `PaymentPayload`, carried in `X-PAYMENT`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentPayloadV1 {
    pub x402_version: Version<1>,
    pub scheme: String,
    pub network: String,
    pub payload: ExactEvmPayload,
}

/// v2 resource description, top level in v2 messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceInfo {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
}

/// v2 `PaymentRequirements`.
///
/// Servers find the requirements a payment was made for by comparing the payload's
/// `accepted` with their own, field for field, as strings (the reference `@x402/core`
/// server deep-compares them). So requirements read from the wire remember how `asset` and
/// `payTo` were written ([`WireCase`]) and are written back the same way; requirements we
/// build ourselves are written EIP-55 checksummed. The spelling never takes part in
/// equality: the addresses do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RequirementsV2Wire", into = "RequirementsV2Wire")]
pub struct PaymentRequirementsV2 {
    pub scheme: String,
    pub network: String,
    pub amount: U256,
    pub asset: Address,
    pub pay_to: Address,
    pub max_timeout_seconds: u64,
    pub extra: Extra,
    pub wire_case: WireCase,
}

/// How a message's `asset` and `payTo` were spelled on the wire (see
/// [`PaymentRequirementsV2`]). Equal to every other spelling.
#[derive(Debug, Clone, Default, Eq)]
pub struct WireCase {
    pub asset: Option<String>,
    pub pay_to: Option<String>,
}

impl PartialEq for WireCase {
    fn eq(&self, _other: &Self) -> bool {
        true
    }
}

/// The wire form of [`PaymentRequirementsV2`], in the SDK's key order.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RequirementsV2Wire {
    scheme: String,
    network: String,
    #[serde(with = "uint")]
    amount: U256,
    asset: String,
    pay_to: String,
    max_timeout_seconds: u64,
    #[serde(default)]
    extra: Extra,
}

impl TryFrom<RequirementsV2Wire> for PaymentRequirementsV2 {
    type Error = String;
    fn try_from(wire: RequirementsV2Wire) -> Result<Self, String> {
        Ok(Self {
            asset: crate::eip3009::checksum::parse_address(&wire.asset)?,
            pay_to: crate::eip3009::checksum::parse_address(&wire.pay_to)?,
            scheme: wire.scheme,
            network: wire.network,
            amount: wire.amount,
            max_timeout_seconds: wire.max_timeout_seconds,
            extra: wire.extra,
            wire_case: WireCase {
                asset: Some(wire.asset),
                pay_to: Some(wire.pay_to),
            },
        })
    }
}

impl From<PaymentRequirementsV2> for RequirementsV2Wire {
    fn from(r: PaymentRequirementsV2) -> Self {
        // A remembered spelling is used only while it still names the same address.
        let spelled = |address: Address, remembered: Option<String>| {
            remembered
                .filter(|text| crate::eip3009::checksum::parse_address(text) == Ok(address))
                .unwrap_or_else(|| address.to_checksum(None))
        };
        Self {
            asset: spelled(r.asset, r.wire_case.asset),
            pay_to: spelled(r.pay_to, r.wire_case.pay_to),
            scheme: r.scheme,
            network: r.network,
            amount: r.amount,
            max_timeout_seconds: r.max_timeout_seconds,
            extra: r.extra,
        }
    }
}

/// v2 402 answer, base64 in the `PAYMENT-REQUIRED` header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRequiredV2 {
    pub x402_version: Version<2>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub resource: ResourceInfo,
    pub accepts: Vec<PaymentRequirementsV2>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<Map<String, Value>>,
}

/// v2 `PaymentPayload`, carried in `PAYMENT-SIGNATURE`. (Key order as `@x402/core` writes it.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentPayloadV2 {
    pub x402_version: Version<2>,
    pub payload: ExactEvmPayload,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<ResourceInfo>,
    pub accepted: PaymentRequirementsV2,
}

impl PaymentPayloadV2 {
    /// The `payment-identifier` extension's id (16 to 128 chars), an idempotency key.
    pub fn payment_identifier(&self) -> Option<&str> {
        let id = self
            .extensions
            .as_ref()?
            .get("payment-identifier")?
            .get("info")?
            .get("id")?
            .as_str()?;
        (16..=128).contains(&id.chars().count()).then_some(id)
    }
}

/// A payment payload of either version, told apart by `x402Version`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum PaymentPayload {
    V1(PaymentPayloadV1),
    V2(PaymentPayloadV2),
}

impl PaymentPayload {
    pub fn x402_version(&self) -> u8 {
        match self {
            PaymentPayload::V1(_) => 1,
            PaymentPayload::V2(_) => 2,
        }
    }

    pub fn exact(&self) -> &ExactEvmPayload {
        match self {
            PaymentPayload::V1(p) => &p.payload,
            PaymentPayload::V2(p) => &p.payload,
        }
    }

    /// Parses JSON bytes, dispatching on `x402Version` so that errors name the real field.
    pub fn from_json(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        match probe_version(bytes)? {
            1 => serde_json::from_slice(bytes).map(PaymentPayload::V1),
            2 => serde_json::from_slice(bytes).map(PaymentPayload::V2),
            other => Err(serde_json::Error::custom(format!(
                "unsupported x402Version {other}; expected 1 or 2"
            ))),
        }
    }
}

impl<'de> Deserialize<'de> for PaymentPayload {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<serde_json::value::RawValue>::deserialize(deserializer)?;
        Self::from_json(raw.get().as_bytes()).map_err(D::Error::custom)
    }
}

/// Payment requirements of either version (a facilitator request carries one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum PaymentRequirements {
    V1(PaymentRequirementsV1),
    V2(PaymentRequirementsV2),
}

impl PaymentRequirements {
    pub fn x402_version(&self) -> u8 {
        match self {
            PaymentRequirements::V1(_) => 1,
            PaymentRequirements::V2(_) => 2,
        }
    }
}

/// Reads only `x402Version` (the rest is skipped, not built).
pub(crate) fn probe_version(bytes: &[u8]) -> Result<u64, serde_json::Error> {
    #[derive(Deserialize)]
    struct Probe {
        #[serde(rename = "x402Version")]
        x402_version: u64,
    }
    serde_json::from_slice::<Probe>(bytes).map(|p| p.x402_version)
}

/// The settlement result: a facilitator's `/settle` answer and the `X-PAYMENT-RESPONSE`
/// header, in the key order the reference facilitators write. A v2 resource server writes
/// `PAYMENT-RESPONSE` in another order: see [`crate::x402::header::encode_payment_response`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SettleResponse {
    pub success: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_reason: Option<ReasonCode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    /// The transaction hash, `""` when nothing was submitted.
    #[serde(default)]
    pub transaction: String,
    pub network: String,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::eip3009::checksum::option"
    )]
    pub payer: Option<Address>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<String>,
}

/// A facilitator's `/verify` answer. Always HTTP 200, even when invalid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyResponse {
    pub is_valid: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid_reason: Option<ReasonCode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid_message: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::eip3009::checksum::option"
    )]
    pub payer: Option<Address>,
}

/// The body of `POST /verify` and `POST /settle`. The requirements are read as the version
/// `x402Version` names, so a field error names the real field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FacilitatorRequest {
    pub x402_version: u64,
    pub payment_payload: PaymentPayload,
    pub payment_requirements: PaymentRequirements,
}

impl<'de> Deserialize<'de> for FacilitatorRequest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Raw {
            x402_version: u64,
            payment_payload: PaymentPayload,
            payment_requirements: Box<serde_json::value::RawValue>,
        }
        let raw = Raw::deserialize(deserializer)?;
        let requirements = raw.payment_requirements.get().as_bytes();
        let payment_requirements = match raw.x402_version {
            1 => serde_json::from_slice(requirements).map(PaymentRequirements::V1),
            2 => serde_json::from_slice(requirements).map(PaymentRequirements::V2),
            other => {
                return Err(D::Error::custom(format!(
                    "unsupported x402Version {other}; expected 1 or 2"
                )));
            }
        }
        .map_err(|e| D::Error::custom(format!("paymentRequirements: {e}")))?;
        Ok(Self {
            x402_version: raw.x402_version,
            payment_payload: raw.payment_payload,
            payment_requirements,
        })
    }
}

/// One `(version, scheme, network)` a facilitator settles, in `GET /supported`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SupportedKind {
    pub x402_version: u64,
    pub scheme: String,
    pub network: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<Extra>,
}

/// `GET /supported`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SupportedResponse {
    pub kinds: Vec<SupportedKind>,
    #[serde(default)]
    pub extensions: Vec<String>,
    #[serde(default)]
    pub signers: Map<String, Value>,
}

/// A literal `x402Version` number: deserializing any other value fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Version<const N: u8>;

impl<const N: u8> Serialize for Version<N> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u8(N)
    }
}

impl<'de, const N: u8> Deserialize<'de> for Version<N> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let found = u64::deserialize(deserializer)?;
        if found == u64::from(N) {
            Ok(Version)
        } else {
            Err(D::Error::custom(format!(
                "x402Version is {found}, expected {N}"
            )))
        }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn requirements_are_echoed_as_the_server_spelled_them() {
        // @x402/express copies the configured asset verbatim (here lower case) and finds
        // the paid requirements by deep string equality with the payload's `accepted`.
        let wire = r#"{"scheme":"exact","network":"eip155:84532","amount":"1250000","asset":"0xe7f1725e7734ce288f8367e1bb143e90bb3f0512","payTo":"0x90F79bf6EB2c4f870365E785982E1f101E93b906","maxTimeoutSeconds":300,"extra":{"name":"USDC","version":"2"}}"#;
        let parsed: PaymentRequirementsV2 = serde_json::from_str(wire).unwrap();
        assert_eq!(serde_json::to_string(&parsed).unwrap(), wire);
        // Spelling is not identity: the same requirements built by us are equal, and are
        // written checksummed.
        let mut ours = parsed.clone();
        ours.wire_case = WireCase::default();
        assert_eq!(ours, parsed);
        assert!(
            serde_json::to_string(&ours)
                .unwrap()
                .contains("0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512")
        );
        // A remembered spelling that no longer names the address is not used.
        let mut moved = parsed.clone();
        moved.asset = Address::repeat_byte(0x11);
        assert!(
            serde_json::to_string(&moved)
                .unwrap()
                .contains("0x1111111111111111111111111111111111111111")
        );
        // A wrong mixed-case checksum is still refused.
        let typo = wire.replace(
            "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
            "0x90f79bf6EB2c4f870365E785982E1f101E93b906",
        );
        assert!(serde_json::from_str::<PaymentRequirementsV2>(&typo).is_err());
    }

    use super::*;

    const AUTH: &str = r#"{"from":"0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266","to":"0x70997970C51812dc3A010C7d01b50e0d17dc79C8","value":"1250000","validAfter":"0","validBefore":"1795607587","nonce":"0x01796b59f40ae187d72b9fc343d4d669b0cd3ae4e2ed2a517223577a3fe513f6"}"#;

    fn v2_request() -> String {
        format!(
            r#"{{"x402Version":2,"paymentPayload":{{"x402Version":2,"payload":{{"authorization":{AUTH},"signature":"0x00"}},"accepted":{req}}},"paymentRequirements":{req}}}"#,
            req = r#"{"scheme":"exact","network":"eip155:84532","amount":"1250000","asset":"0x036CbD53842c5426634e7929541eC2318f3dCF7e","payTo":"0x70997970C51812dc3A010C7d01b50e0d17dc79C8","maxTimeoutSeconds":600,"extra":{"name":"USDC","version":"2"}}"#
        )
    }

    #[test]
    fn a_facilitator_request_reads_requirements_of_its_version() {
        let request: FacilitatorRequest = serde_json::from_str(&v2_request()).unwrap();
        assert!(matches!(
            request.payment_requirements,
            PaymentRequirements::V2(_)
        ));
        assert_eq!(request.payment_payload.x402_version(), 2);
        // The same requirements under x402Version 1 lack v1's fields: the error says which.
        let as_v1 = v2_request().replacen(
            r#"{"x402Version":2,"paymentPayload""#,
            r#"{"x402Version":1,"paymentPayload""#,
            1,
        );
        let err = serde_json::from_str::<FacilitatorRequest>(&as_v1)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("paymentRequirements: missing field `maxAmountRequired`"),
            "{err}"
        );
        let as_v9 = v2_request().replacen(
            r#"{"x402Version":2,"paymentPayload""#,
            r#"{"x402Version":9,"paymentPayload""#,
            1,
        );
        let err = serde_json::from_str::<FacilitatorRequest>(&as_v9)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unsupported x402Version 9"), "{err}");
    }

    #[test]
    fn payloads_keep_the_key_order_they_arrived_in() {
        let signature_first = format!(r#"{{"signature":"0x00","authorization":{AUTH}}}"#);
        let payload: ExactEvmPayload = serde_json::from_str(&signature_first).unwrap();
        assert!(payload.signature_first);
        assert_eq!(serde_json::to_string(&payload).unwrap(), signature_first);
        let authorization_first = format!(r#"{{"authorization":{AUTH},"signature":"0x00"}}"#);
        let payload: ExactEvmPayload = serde_json::from_str(&authorization_first).unwrap();
        assert_eq!(
            serde_json::to_string(&payload).unwrap(),
            authorization_first
        );
    }

    #[test]
    fn verify_and_supported_answers_have_the_spec_shape() {
        let invalid = VerifyResponse {
            is_valid: false,
            invalid_reason: Some(ReasonCode::InvalidSignature),
            invalid_message: Some("signature is not from the payer".into()),
            payer: None,
        };
        assert_eq!(
            serde_json::to_string(&invalid).unwrap(),
            r#"{"isValid":false,"invalidReason":"invalid_exact_evm_payload_signature","invalidMessage":"signature is not from the payer"}"#
        );
        let supported = SupportedResponse {
            kinds: vec![SupportedKind {
                x402_version: 1,
                scheme: "exact".into(),
                network: "base-sepolia".into(),
                extra: None,
            }],
            extensions: vec![],
            signers: [(
                "eip155:*".to_owned(),
                serde_json::json!(["0x70997970C51812dc3A010C7d01b50e0d17dc79C8"]),
            )]
            .into_iter()
            .collect(),
        };
        assert_eq!(
            serde_json::to_string(&supported).unwrap(),
            r#"{"kinds":[{"x402Version":1,"scheme":"exact","network":"base-sepolia"}],"extensions":[],"signers":{"eip155:*":["0x70997970C51812dc3A010C7d01b50e0d17dc79C8"]}}"#
        );
    }

    #[test]
    fn the_payment_identifier_extension_is_read_within_its_length_limits() {
        let mut payload: PaymentPayloadV2 =
            match serde_json::from_str::<FacilitatorRequest>(&v2_request())
                .unwrap()
                .payment_payload
            {
                PaymentPayload::V2(p) => p,
                PaymentPayload::V1(_) => unreachable!(),
            };
        assert_eq!(payload.payment_identifier(), None);
        payload.extensions = Some(
            serde_json::from_str(
                r#"{"payment-identifier":{"info":{"id":"pay_0123456789abcdef"}}}"#,
            )
            .unwrap(),
        );
        assert_eq!(payload.payment_identifier(), Some("pay_0123456789abcdef"));
        payload.extensions = Some(
            serde_json::from_str(r#"{"payment-identifier":{"info":{"id":"short"}}}"#).unwrap(),
        );
        assert_eq!(payload.payment_identifier(), None);
    }
}
