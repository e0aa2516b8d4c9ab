//! The x402 reason codes for refused payments and failed settlements.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Why a payment was refused or a settlement failed, as the x402 spec names it.
///
/// We emit the spec's codes. The value rule has two spellings: v1
/// `invalid_exact_evm_payload_authorization_value` and v2 `..._value_mismatch`; use
/// [`ReasonCode::as_str_for`] with the message's version. Codes from other
/// implementations decode into `Other` so a foreign response never fails to parse.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ReasonCode {
    InsufficientFunds,
    InvalidValidAfter,
    InvalidValidBefore,
    InvalidValue,
    InvalidSignature,
    RecipientMismatch,
    InvalidNetwork,
    InvalidPayload,
    InvalidPaymentRequirements,
    InvalidScheme,
    UnsupportedScheme,
    InvalidX402Version,
    InvalidTransactionState,
    UnexpectedVerifyError,
    UnexpectedSettleError,
    /// Not a spec code, but the reference SDKs' and our answer when a submitted
    /// transaction's receipt did not arrive in time; a retry reconciles it.
    SettlementPending,
    Other(String),
}

const CODES: [(ReasonCode, &str); 16] = [
    (ReasonCode::InsufficientFunds, "insufficient_funds"),
    (
        ReasonCode::InvalidValidAfter,
        "invalid_exact_evm_payload_authorization_valid_after",
    ),
    (
        ReasonCode::InvalidValidBefore,
        "invalid_exact_evm_payload_authorization_valid_before",
    ),
    (
        ReasonCode::InvalidValue,
        "invalid_exact_evm_payload_authorization_value_mismatch",
    ),
    (
        ReasonCode::InvalidSignature,
        "invalid_exact_evm_payload_signature",
    ),
    (
        ReasonCode::RecipientMismatch,
        "invalid_exact_evm_payload_recipient_mismatch",
    ),
    (ReasonCode::InvalidNetwork, "invalid_network"),
    (ReasonCode::InvalidPayload, "invalid_payload"),
    (
        ReasonCode::InvalidPaymentRequirements,
        "invalid_payment_requirements",
    ),
    (ReasonCode::InvalidScheme, "invalid_scheme"),
    (ReasonCode::UnsupportedScheme, "unsupported_scheme"),
    (ReasonCode::InvalidX402Version, "invalid_x402_version"),
    (
        ReasonCode::InvalidTransactionState,
        "invalid_transaction_state",
    ),
    (ReasonCode::UnexpectedVerifyError, "unexpected_verify_error"),
    (ReasonCode::UnexpectedSettleError, "unexpected_settle_error"),
    (ReasonCode::SettlementPending, "settlement_pending"),
];

const V1_VALUE_CODE: &str = "invalid_exact_evm_payload_authorization_value";

impl ReasonCode {
    /// The wire spelling in x402 v2 (and v1 for every code but the value rule).
    pub fn as_str(&self) -> &str {
        match self {
            ReasonCode::Other(code) => code,
            known => CODES
                .iter()
                .find(|(code, _)| code == known)
                .map_or("unexpected_verify_error", |(_, text)| text),
        }
    }

    /// The wire spelling for a message of `x402_version`.
    pub fn as_str_for(&self, x402_version: u8) -> &str {
        match (self, x402_version) {
            (ReasonCode::InvalidValue, 1) => V1_VALUE_CODE,
            _ => self.as_str(),
        }
    }

    /// Reads either version's spelling.
    pub fn parse(text: &str) -> Self {
        if text == V1_VALUE_CODE {
            return ReasonCode::InvalidValue;
        }
        CODES.iter().find(|(_, code)| *code == text).map_or_else(
            || ReasonCode::Other(text.to_owned()),
            |(code, _)| code.clone(),
        )
    }
}

impl fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ReasonCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ReasonCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Ok(Self::parse(&text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_and_the_value_rule_has_a_v1_spelling() {
        for (code, text) in CODES {
            assert_eq!(code.as_str(), text);
            assert_eq!(ReasonCode::parse(text), code);
        }
        assert_eq!(ReasonCode::InvalidValue.as_str_for(1), V1_VALUE_CODE);
        assert_eq!(ReasonCode::parse(V1_VALUE_CODE), ReasonCode::InvalidValue);
        assert_eq!(
            ReasonCode::parse("invalid_exact_evm_nonce_already_used"),
            ReasonCode::Other("invalid_exact_evm_nonce_already_used".into())
        );
    }
}
