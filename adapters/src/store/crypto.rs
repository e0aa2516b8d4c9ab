//! Encryption of personal data at rest: XChaCha20-Poly1305 with a 32-byte key from
//! configuration and a random 24-byte nonce per write. The associated data binds each
//! ciphertext to its table and owner (`profiles/<user id>`), so a sealed profile copied onto
//! another user's row does not open. A wrong key or a tampered row gives
//! [`StoreError::Undecryptable`], which names the row and nothing else.
//!
//! Sealed format: `0x01 || nonce (24) || ciphertext+tag`.

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use std::fmt;
use worldstore_domain::ports::store::StoreError;

const FORMAT_V1: u8 = 1;
const NONCE_LEN: usize = 24;

/// The 32-byte data key. Never printed.
#[derive(Clone)]
pub struct DataKey([u8; 32]);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the data encryption key must be 32 bytes written as 64 hex digits (optionally 0x-prefixed)"
)]
pub struct DataKeyError;

impl DataKey {
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Parses 64 hex digits, with or without `0x`.
    pub fn from_hex(text: &str) -> Result<Self, DataKeyError> {
        let hex = text.trim();
        let hex = hex.strip_prefix("0x").unwrap_or(hex);
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(DataKeyError);
        }
        let mut key = [0u8; 32];
        for (i, byte) in key.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| DataKeyError)?;
        }
        Ok(Self(key))
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

/// Seals and opens personal data for one store.
#[derive(Clone)]
pub struct Sealer {
    cipher: XChaCha20Poly1305,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sealer(<key redacted>)")
    }
}

fn associated_data(table: &str, owner: &str) -> Vec<u8> {
    format!("worldstore/v1/{table}/{owner}").into_bytes()
}

impl Sealer {
    pub fn new(key: &DataKey) -> Self {
        Self {
            cipher: XChaCha20Poly1305::new((&key.0).into()),
        }
    }

    pub fn seal(
        &self,
        table: &'static str,
        owner: &str,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, StoreError> {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let aad = associated_data(table, owner);
        let ciphertext = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| StoreError::Fatal(format!("cannot encrypt a row of {table}")))?;
        let mut sealed = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        sealed.push(FORMAT_V1);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        Ok(sealed)
    }

    pub fn open(
        &self,
        table: &'static str,
        owner: &str,
        sealed: &[u8],
    ) -> Result<Vec<u8>, StoreError> {
        let (format, rest) = sealed
            .split_first()
            .ok_or_else(|| StoreError::corrupt(table, owner, "empty sealed value"))?;
        if *format != FORMAT_V1 {
            return Err(StoreError::corrupt(
                table,
                owner,
                format!("unknown sealed format {format}"),
            ));
        }
        if rest.len() < NONCE_LEN + 16 {
            return Err(StoreError::corrupt(
                table,
                owner,
                "sealed value is truncated",
            ));
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce
            .try_into()
            .map_err(|_| StoreError::corrupt(table, owner, "sealed value is truncated"))?;
        let aad = associated_data(table, owner);
        self.cipher
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| StoreError::Undecryptable {
                table,
                id: owner.to_owned(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer(byte: u8) -> Sealer {
        Sealer::new(&DataKey::from_bytes([byte; 32]))
    }

    #[test]
    fn a_sealed_value_opens_with_the_same_key_and_owner_only() {
        let sealed = sealer(1).seal("profiles", "alice", b"Pat Lee").unwrap();
        assert!(!sealed.windows(7).any(|w| w == b"Pat Lee"));
        assert_eq!(
            sealer(1).open("profiles", "alice", &sealed).unwrap(),
            b"Pat Lee"
        );
        let wrong_key = sealer(2).open("profiles", "alice", &sealed).unwrap_err();
        assert!(matches!(wrong_key, StoreError::Undecryptable { .. }));
        assert!(wrong_key.to_string().contains("wrong encryption key"));
        let wrong_owner = sealer(1).open("profiles", "mallory", &sealed).unwrap_err();
        assert!(matches!(wrong_owner, StoreError::Undecryptable { .. }));
    }

    #[test]
    fn each_seal_uses_a_fresh_nonce() {
        let s = sealer(1);
        assert_ne!(
            s.seal("profiles", "a", b"x").unwrap(),
            s.seal("profiles", "a", b"x").unwrap()
        );
    }

    #[test]
    fn truncated_or_unknown_sealed_values_are_corrupt_rows() {
        let s = sealer(1);
        assert!(matches!(
            s.open("profiles", "a", b""),
            Err(StoreError::Corrupt { .. })
        ));
        assert!(matches!(
            s.open("profiles", "a", &[9; 60]),
            Err(StoreError::Corrupt { .. })
        ));
        assert!(matches!(
            s.open("profiles", "a", &[1; 10]),
            Err(StoreError::Corrupt { .. })
        ));
    }

    #[test]
    fn data_keys_parse_from_64_hex_digits_and_never_print() {
        let key = DataKey::from_hex(&format!("0x{}", "ab".repeat(32))).unwrap();
        assert_eq!(format!("{key:?}"), "DataKey(<redacted>)");
        assert_eq!(DataKey::from_hex("abcd").unwrap_err(), DataKeyError);
        assert!(DataKey::from_hex(&"zz".repeat(32)).is_err());
    }
}
