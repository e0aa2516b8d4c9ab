//! EIP-712 hashing for `TransferWithAuthorization`, written out rather than generated: the
//! struct has only static fields, so its encoding is seven 32-byte words.

use alloy_primitives::{Address, B256, U256, b256, keccak256};
use serde::{Deserialize, Serialize};

pub const DOMAIN_TYPE: &str =
    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)";
/// `keccak256(DOMAIN_TYPE)`, checked by a test.
const DOMAIN_TYPEHASH: B256 =
    b256!("0x8b73c3c69bb8fe3d512ecc4cf759cc79239f7b179b0ffacaa9a75d522b39400f");

pub const TRANSFER_WITH_AUTHORIZATION_TYPE: &str = "TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)";
/// `keccak256(TRANSFER_WITH_AUTHORIZATION_TYPE)` (EIP-3009 `TRANSFER_WITH_AUTHORIZATION_TYPEHASH`),
/// checked by a test.
pub(crate) const TRANSFER_WITH_AUTHORIZATION_TYPEHASH: B256 =
    b256!("0x7c7c6cdb67a18743f49ec6fa9b35f50d52ed05cbed4cc592e13b44501c1a2267");

/// The EIP-712 domain of a token: `{name, version, chainId, verifyingContract}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Eip712Domain {
    pub name: String,
    pub version: String,
    pub chain_id: u64,
    #[serde(with = "crate::eip3009::checksum")]
    pub verifying_contract: Address,
}

impl Eip712Domain {
    /// The domain separator (EIP-712 `hashStruct(eip712Domain)`).
    pub fn separator(&self) -> B256 {
        let mut words = [0u8; 32 * 5];
        words[..32].copy_from_slice(DOMAIN_TYPEHASH.as_slice());
        words[32..64].copy_from_slice(keccak256(self.name.as_bytes()).as_slice());
        words[64..96].copy_from_slice(keccak256(self.version.as_bytes()).as_slice());
        words[96..128].copy_from_slice(&U256::from(self.chain_id).to_be_bytes::<32>());
        words[140..160].copy_from_slice(self.verifying_contract.as_slice());
        keccak256(words)
    }

    /// The digest to sign for a struct hash: `keccak256(0x1901 ‖ separator ‖ structHash)`.
    pub fn signing_hash(&self, struct_hash: B256) -> B256 {
        signing_hash_with_separator(self.separator(), struct_hash)
    }
}

/// `keccak256(0x1901 ‖ separator ‖ structHash)`, for callers that cache the separator.
pub fn signing_hash_with_separator(separator: B256, struct_hash: B256) -> B256 {
    let mut preimage = [0u8; 66];
    preimage[..2].copy_from_slice(&[0x19, 0x01]);
    preimage[2..34].copy_from_slice(separator.as_slice());
    preimage[34..].copy_from_slice(struct_hash.as_slice());
    keccak256(preimage)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typehash_constants_are_the_hashes_of_their_types() {
        assert_eq!(DOMAIN_TYPEHASH, keccak256(DOMAIN_TYPE));
        assert_eq!(
            TRANSFER_WITH_AUTHORIZATION_TYPEHASH,
            keccak256(TRANSFER_WITH_AUTHORIZATION_TYPE)
        );
    }
}
