//! Signing with a local secp256k1 key (a user's derived wallet, or a test key).

use super::signature::{Signature, address_of_public_key};
use alloy_primitives::{Address, B256, U256};
use secp256k1::SecretKey;
use secp256k1::ecdsa::RecoverableSignature;
use std::fmt;

/// A private key held in memory, with its address. `Debug` never shows the key.
#[derive(Clone)]
pub struct LocalSigner {
    key: SecretKey,
    address: Address,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("private key is not 32 bytes of hex (0x-prefixed or not)")]
    Malformed,
    #[error("private key is zero or not below the secp256k1 curve order")]
    OutOfRange,
}

impl LocalSigner {
    /// A signer from 32 raw bytes; refuses zero and scalars `>= n`.
    pub fn from_bytes(bytes: [u8; 32]) -> Result<Self, KeyError> {
        let key = SecretKey::from_secret_bytes(bytes).map_err(|_| KeyError::OutOfRange)?;
        let address = address_of_public_key(&key.public_key());
        Ok(Self { key, address })
    }

    /// A signer from hex, with or without `0x`. Surrounding whitespace is ignored (keys are
    /// often pasted into environment files with a trailing newline).
    pub fn from_hex(text: &str) -> Result<Self, KeyError> {
        let text = text.trim();
        let digits = text.strip_prefix("0x").unwrap_or(text);
        let mut bytes = [0u8; 32];
        if digits.len() != 64 {
            return Err(KeyError::Malformed);
        }
        alloy_primitives::hex::decode_to_slice(digits, &mut bytes)
            .map_err(|_| KeyError::Malformed)?;
        let signer = Self::from_bytes(bytes);
        zeroize::Zeroize::zeroize(&mut bytes);
        signer
    }

    pub fn address(&self) -> Address {
        self.address
    }

    /// Signs a 32-byte digest (RFC 6979 deterministic nonce; libsecp256k1 yields low-s).
    pub fn sign_hash(&self, hash: B256) -> Signature {
        let recoverable = RecoverableSignature::sign_ecdsa_recoverable(
            secp256k1::Message::from_digest(hash.0),
            &self.key,
        );
        let (recovery_id, compact) = recoverable.serialize_compact();
        let y_parity = recovery_id.to_u8() == 1;
        Signature::from_parts(
            U256::from_be_slice(&compact[..32]),
            U256::from_be_slice(&compact[32..]),
            y_parity,
        )
        .unwrap_or_else(|e| unreachable!("libsecp256k1 produced a non-canonical signature: {e}"))
    }

    /// The raw key bytes, for handing to another signing library (e.g. a chain adapter's
    /// transaction signer). Keep the result out of logs and drop it promptly.
    pub fn secret_bytes(&self) -> [u8; 32] {
        self.key.to_secret_bytes()
    }
}

impl fmt::Debug for LocalSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalSigner")
            .field("address", &format_args!("{}", self.address))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::address;

    const ANVIL_KEY_0: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

    #[test]
    fn a_known_key_has_its_known_address() {
        let signer = LocalSigner::from_hex(ANVIL_KEY_0).unwrap();
        assert_eq!(
            signer.address(),
            address!("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266")
        );
    }

    #[test]
    fn signing_then_recovering_gives_the_signer() {
        let signer = LocalSigner::from_hex(ANVIL_KEY_0).unwrap();
        let hash = B256::repeat_byte(0x42);
        let signature = signer.sign_hash(hash);
        assert_eq!(signature.recover_address(hash), Ok(signer.address()));
        assert_ne!(
            signature.recover_address(B256::repeat_byte(0x43)),
            Ok(signer.address())
        );
    }

    #[test]
    fn malformed_and_out_of_range_keys_are_refused() {
        assert_eq!(
            LocalSigner::from_hex("0x1234").unwrap_err(),
            KeyError::Malformed
        );
        assert_eq!(
            LocalSigner::from_hex(&"zz".repeat(32)).unwrap_err(),
            KeyError::Malformed
        );
        assert_eq!(
            LocalSigner::from_bytes([0u8; 32]).unwrap_err(),
            KeyError::OutOfRange
        );
        assert_eq!(
            LocalSigner::from_bytes([0xffu8; 32]).unwrap_err(),
            KeyError::OutOfRange
        );
    }

    #[test]
    fn debug_shows_the_address_but_never_the_key() {
        let signer = LocalSigner::from_hex(ANVIL_KEY_0).unwrap();
        let debug = format!("{signer:?}");
        assert!(debug.contains("0xf39F"), "{debug}");
        assert!(!debug.to_lowercase().contains("ac0974"), "{debug}");
    }
}
