//! Addresses on the wire: written EIP-55 checksummed, as the reference SDKs write them;
//! read in any case, except that mixed case must carry a valid checksum (a wrong mixed
//! case is a typo, not an address).

use alloy_primitives::Address;
use serde::{Deserialize, Deserializer, Serializer};

pub fn parse_address(text: &str) -> Result<Address, String> {
    let digits = text
        .strip_prefix("0x")
        .ok_or_else(|| format!("address {text:?} must start with 0x"))?;
    if digits.len() != 40 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("address {text:?} must be 0x and 40 hex digits"));
    }
    let has_lower = digits.bytes().any(|b| b.is_ascii_lowercase());
    let has_upper = digits.bytes().any(|b| b.is_ascii_uppercase());
    if has_lower && has_upper {
        Address::parse_checksummed(text, None)
            .map_err(|_| format!("address {text:?} has an invalid EIP-55 checksum"))
    } else {
        text.parse::<Address>()
            .map_err(|e| format!("address {text:?}: {e}"))
    }
}

pub fn serialize<S: Serializer>(address: &Address, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&address.to_checksum(None))
}

pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Address, D::Error> {
    let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
    parse_address(&text).map_err(serde::de::Error::custom)
}

/// The same for `Option<Address>`.
pub mod option {
    use super::*;

    pub fn serialize<S: Serializer>(
        address: &Option<Address>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match address {
            Some(address) => super::serialize(address, serializer),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Address>, D::Error> {
        let text = Option::<std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.map(|t| parse_address(&t).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_read_in_one_case_or_with_a_valid_checksum() {
        let good = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
        let address = parse_address(good).unwrap();
        assert_eq!(parse_address(&good.to_lowercase()), Ok(address));
        assert_eq!(
            parse_address(&format!("0x{}", good[2..].to_uppercase())),
            Ok(address)
        );
        assert!(parse_address("0xF39Fd6e51aad88F6F4ce6aB8827279cffFb92266").is_err());
        assert!(parse_address("f39Fd6e51aad88F6F4ce6aB8827279cffFb92266").is_err());
        assert!(parse_address("0x1234").is_err());
        assert_eq!(address.to_checksum(None), good);
    }
}
