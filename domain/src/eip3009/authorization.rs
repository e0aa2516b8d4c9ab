//! The EIP-3009 authorization as it travels in an x402 payload: every field a string.

use super::eip712::{
    Eip712Domain, TRANSFER_WITH_AUTHORIZATION_TYPEHASH, signing_hash_with_separator,
};
use alloy_primitives::{Address, B256, U256, keccak256};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A 32-byte EIP-3009 nonce: unique per `(token, from)`, chosen by the payer at random.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Nonce(B256);

impl Nonce {
    pub const fn new(bytes: [u8; 32]) -> Self {
        Self(B256::new(bytes))
    }

    pub fn as_b256(&self) -> B256 {
        self.0
    }
}

impl From<B256> for Nonce {
    fn from(value: B256) -> Self {
        Self(value)
    }
}

impl fmt::Debug for Nonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Nonce({})", self.0)
    }
}

impl fmt::Display for Nonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// `TransferWithAuthorization(from, to, value, validAfter, validBefore, nonce)`.
///
/// Times are unix seconds. They are kept as `uint256` like the wire and the contract, so an
/// absurd window decodes and is then refused by the rules with its own reason code.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Authorization {
    #[serde(with = "crate::eip3009::checksum")]
    pub from: Address,
    #[serde(with = "crate::eip3009::checksum")]
    pub to: Address,
    #[serde(with = "super::uint")]
    pub value: U256,
    #[serde(with = "super::uint")]
    pub valid_after: U256,
    #[serde(with = "super::uint")]
    pub valid_before: U256,
    pub nonce: Nonce,
}

impl Authorization {
    /// EIP-712 `hashStruct(TransferWithAuthorization)`.
    pub fn struct_hash(&self) -> B256 {
        let mut words = [0u8; 32 * 7];
        words[..32].copy_from_slice(TRANSFER_WITH_AUTHORIZATION_TYPEHASH.as_slice());
        words[44..64].copy_from_slice(self.from.as_slice());
        words[76..96].copy_from_slice(self.to.as_slice());
        words[96..128].copy_from_slice(&self.value.to_be_bytes::<32>());
        words[128..160].copy_from_slice(&self.valid_after.to_be_bytes::<32>());
        words[160..192].copy_from_slice(&self.valid_before.to_be_bytes::<32>());
        words[192..224].copy_from_slice(self.nonce.0.as_slice());
        keccak256(words)
    }

    /// The EIP-712 digest the payer signs for this authorization under `domain`.
    pub fn signing_hash(&self, domain: &Eip712Domain) -> B256 {
        domain.signing_hash(self.struct_hash())
    }

    /// The same, with the domain separator already computed (verifiers cache it per token).
    pub fn signing_hash_with_separator(&self, separator: B256) -> B256 {
        signing_hash_with_separator(separator, self.struct_hash())
    }
}
