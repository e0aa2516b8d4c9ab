//! ECDSA signatures over secp256k1 as EOAs produce them for EIP-3009.
//!
//! Accepted encodings (x402.md, "Signatures"):
//! - 65 bytes `r ‖ s ‖ v` with `v` in {27, 28} or {0, 1};
//! - 64 bytes EIP-2098 compact `r ‖ (yParity << 255 | s)`.
//!
//! Refused: any other `v`; `r` or `s` zero or not below the curve order; a high `s`
//! (`s > n/2`), which is the malleable twin of a valid signature and would give the same
//! authorization a second byte-different encoding. Longer signatures are ERC-1271/6492
//! contract-wallet signatures, which need the chain to check and are refused here.

use alloy_primitives::{Address, B256, U256, keccak256};
use secp256k1::ecdsa::{RecoverableSignature, RecoveryId};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// secp256k1 group order `n`.
const CURVE_ORDER: U256 = U256::from_be_bytes([
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
    0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41,
]);
/// `n / 2` (rounded down): the largest `s` a canonical (low-s) signature may have.
const HALF_CURVE_ORDER: U256 = U256::from_be_bytes([
    0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0x5d, 0x57, 0x6e, 0x73, 0x57, 0xa4, 0x50, 0x1d, 0xdf, 0xe9, 0x2f, 0x46, 0x68, 0x1b, 0x20, 0xa0,
]);

/// A parsed, canonical (low-s) recoverable ECDSA signature.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature {
    r: U256,
    s: U256,
    y_parity: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("signature is not 0x-prefixed hex")]
    NotHex,
    #[error(
        "signature is {0} bytes; expected 65 (r, s, v) or 64 (EIP-2098 compact); contract-wallet signatures are not supported"
    )]
    Length(usize),
    #[error("signature v is {0}; expected 27, 28, 0 or 1")]
    InvalidV(u8),
    #[error("signature r is zero or not below the curve order")]
    InvalidR,
    #[error("signature s is zero or not below the curve order")]
    InvalidS,
    #[error("signature s is in the upper half of the curve order (malleable high-s form)")]
    HighS,
    #[error("no public key can be recovered from this signature and message")]
    Unrecoverable,
}

impl Signature {
    /// Parses 65-byte `r ‖ s ‖ v` or 64-byte EIP-2098 compact bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SignatureError> {
        let (r, s, y_parity) = match bytes.len() {
            65 => {
                let y_parity = match bytes[64] {
                    27 | 0 => false,
                    28 | 1 => true,
                    v => return Err(SignatureError::InvalidV(v)),
                };
                (
                    U256::from_be_slice(&bytes[..32]),
                    U256::from_be_slice(&bytes[32..64]),
                    y_parity,
                )
            }
            64 => {
                let y_parity_and_s = U256::from_be_slice(&bytes[32..]);
                let y_parity = y_parity_and_s.bit(255);
                let s = y_parity_and_s & (U256::MAX >> 1);
                (U256::from_be_slice(&bytes[..32]), s, y_parity)
            }
            other => return Err(SignatureError::Length(other)),
        };
        Self::from_parts(r, s, y_parity)
    }

    pub fn from_parts(r: U256, s: U256, y_parity: bool) -> Result<Self, SignatureError> {
        if r.is_zero() || r >= CURVE_ORDER {
            return Err(SignatureError::InvalidR);
        }
        if s.is_zero() || s >= CURVE_ORDER {
            return Err(SignatureError::InvalidS);
        }
        if s > HALF_CURVE_ORDER {
            return Err(SignatureError::HighS);
        }
        Ok(Self { r, s, y_parity })
    }

    /// Parses the `0x`-prefixed hex form used in x402 payloads.
    pub fn parse_hex(text: &str) -> Result<Self, SignatureError> {
        let digits = text.strip_prefix("0x").ok_or(SignatureError::NotHex)?;
        // 2 + 130 hex chars is the longest form we accept; refuse long input before decoding.
        if digits.len() > 130 {
            return Err(SignatureError::Length(digits.len() / 2));
        }
        let mut buffer = [0u8; 65];
        let len = digits.len() / 2;
        if digits.len() % 2 != 0 {
            return Err(SignatureError::NotHex);
        }
        alloy_primitives::hex::decode_to_slice(digits, &mut buffer[..len])
            .map_err(|_| SignatureError::NotHex)?;
        Self::from_bytes(&buffer[..len])
    }

    pub fn r(&self) -> U256 {
        self.r
    }

    pub fn s(&self) -> U256 {
        self.s
    }

    pub fn y_parity(&self) -> bool {
        self.y_parity
    }

    /// `v` as Ethereum transactions and `transferWithAuthorization(..., v, r, s)` take it.
    pub fn v(&self) -> u8 {
        27 + u8::from(self.y_parity)
    }

    /// The canonical 65-byte form `r ‖ s ‖ v` with `v` in {27, 28}.
    pub fn to_bytes(&self) -> [u8; 65] {
        let mut bytes = [0u8; 65];
        bytes[..32].copy_from_slice(&self.r.to_be_bytes::<32>());
        bytes[32..64].copy_from_slice(&self.s.to_be_bytes::<32>());
        bytes[64] = self.v();
        bytes
    }

    /// The 64-byte EIP-2098 compact form.
    pub fn to_compact_bytes(&self) -> [u8; 64] {
        let mut bytes = [0u8; 64];
        bytes[..32].copy_from_slice(&self.r.to_be_bytes::<32>());
        let mut y_parity_and_s = self.s;
        y_parity_and_s.set_bit(255, self.y_parity);
        bytes[32..].copy_from_slice(&y_parity_and_s.to_be_bytes::<32>());
        bytes
    }

    pub fn to_hex(&self) -> String {
        alloy_primitives::hex::encode_prefixed(self.to_bytes())
    }

    /// The address whose key produced this signature over `hash`.
    pub fn recover_address(&self, hash: B256) -> Result<Address, SignatureError> {
        let mut compact = [0u8; 64];
        compact[..32].copy_from_slice(&self.r.to_be_bytes::<32>());
        compact[32..].copy_from_slice(&self.s.to_be_bytes::<32>());
        let recovery_id = if self.y_parity {
            RecoveryId::One
        } else {
            RecoveryId::Zero
        };
        let recoverable = RecoverableSignature::from_compact(&compact, recovery_id)
            .map_err(|_| SignatureError::Unrecoverable)?;
        let public_key = recoverable
            .recover_ecdsa(secp256k1::Message::from_digest(hash.0))
            .map_err(|_| SignatureError::Unrecoverable)?;
        Ok(address_of_public_key(&public_key))
    }
}

/// The Ethereum address of a public key: the last 20 bytes of keccak256 of its 64-byte
/// uncompressed encoding.
pub(crate) fn address_of_public_key(public_key: &secp256k1::PublicKey) -> Address {
    let uncompressed = public_key.serialize_uncompressed();
    Address::from_slice(&keccak256(&uncompressed[1..])[12..])
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Signatures are bearer instruments until settled: keep them out of logs.
        f.write_str("Signature(<redacted>)")
    }
}

impl Serialize for Signature {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Signature {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::parse_hex(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> [u8; 65] {
        let mut bytes = [0u8; 65];
        bytes[31] = 7;
        bytes[63] = 9;
        bytes[64] = 28;
        bytes
    }

    #[test]
    fn v_may_be_27_28_or_0_1_and_nothing_else() {
        let mut bytes = sample();
        for (v, parity) in [(27, false), (28, true), (0, false), (1, true)] {
            bytes[64] = v;
            assert_eq!(Signature::from_bytes(&bytes).unwrap().y_parity(), parity);
        }
        for v in [2u8, 26, 29, 35, 36, 255] {
            bytes[64] = v;
            assert_eq!(
                Signature::from_bytes(&bytes),
                Err(SignatureError::InvalidV(v))
            );
        }
    }

    #[test]
    fn half_order_constant_is_half_the_curve_order() {
        assert_eq!(HALF_CURVE_ORDER, CURVE_ORDER >> 1);
    }

    #[test]
    fn high_s_is_refused() {
        let mut bytes = sample();
        bytes[32..64].copy_from_slice(&(HALF_CURVE_ORDER + U256::from(1)).to_be_bytes::<32>());
        assert_eq!(Signature::from_bytes(&bytes), Err(SignatureError::HighS));
        bytes[32..64].copy_from_slice(&HALF_CURVE_ORDER.to_be_bytes::<32>());
        assert!(Signature::from_bytes(&bytes).is_ok());
    }

    #[test]
    fn zero_or_out_of_range_scalars_are_refused() {
        let mut bytes = sample();
        bytes[..32].fill(0);
        assert_eq!(Signature::from_bytes(&bytes), Err(SignatureError::InvalidR));
        bytes[..32].copy_from_slice(&CURVE_ORDER.to_be_bytes::<32>());
        assert_eq!(Signature::from_bytes(&bytes), Err(SignatureError::InvalidR));
        let mut bytes = sample();
        bytes[32..64].fill(0);
        assert_eq!(Signature::from_bytes(&bytes), Err(SignatureError::InvalidS));
    }

    #[test]
    fn other_lengths_and_bad_hex_are_refused() {
        assert_eq!(
            Signature::from_bytes(&[1u8; 63]),
            Err(SignatureError::Length(63))
        );
        assert_eq!(
            Signature::from_bytes(&[1u8; 66]),
            Err(SignatureError::Length(66))
        );
        assert_eq!(Signature::parse_hex("1234"), Err(SignatureError::NotHex));
        assert_eq!(Signature::parse_hex("0xzz"), Err(SignatureError::NotHex));
        assert_eq!(Signature::parse_hex("0x123"), Err(SignatureError::NotHex));
        assert!(matches!(
            Signature::parse_hex(&format!("0x{}", "11".repeat(200))),
            Err(SignatureError::Length(_))
        ));
    }

    #[test]
    fn compact_and_full_forms_are_the_same_signature() {
        let signature = Signature::from_bytes(&sample()).unwrap();
        let compact = Signature::from_bytes(&signature.to_compact_bytes()).unwrap();
        assert_eq!(signature, compact);
        assert_eq!(
            Signature::parse_hex(&signature.to_hex()).unwrap(),
            signature
        );
    }

    #[test]
    fn debug_output_does_not_contain_the_signature() {
        let signature = Signature::from_bytes(&sample()).unwrap();
        assert_eq!(format!("{signature:?}"), "Signature(<redacted>)");
    }
}
