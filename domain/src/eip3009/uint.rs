//! `uint256` values written as decimal strings, as x402 carries them (`"1250000"`).
//!
//! Strict: ASCII digits only (no sign, no `0x`, no spaces, no exponent), at most 78 digits,
//! and the value must fit in 256 bits.

use alloy_primitives::U256;
use serde::{Deserialize, Deserializer, Serializer};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a decimal uint256 (digits only, at most 2^256-1)")]
pub struct DecimalError(pub String);

pub fn parse_decimal_u256(text: &str) -> Result<U256, DecimalError> {
    if text.is_empty() || text.len() > 78 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DecimalError(text.to_owned()));
    }
    U256::from_str_radix(text, 10).map_err(|_| DecimalError(text.to_owned()))
}

pub fn serialize<S: Serializer>(value: &U256, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<U256, D::Error> {
    let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
    parse_decimal_u256(&text).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_uint256_is_strict() {
        assert_eq!(parse_decimal_u256("0"), Ok(U256::ZERO));
        assert_eq!(parse_decimal_u256(&U256::MAX.to_string()), Ok(U256::MAX));
        for bad in ["", "-1", "+1", "0x10", "1e3", " 1", "1.0"] {
            assert!(parse_decimal_u256(bad).is_err(), "{bad:?}");
        }
        // 2^256 does not fit.
        let too_big =
            "115792089237316195423570985008687907853269984665640564039457584007913129639936";
        assert!(parse_decimal_u256(too_big).is_err());
    }
}
