//! Per-user wallets derived from one master secret and the user's inbox id.
//!
//! | scheme | private key |
//! |---|---|
//! | `default` | HKDF-SHA256(ikm = master secret bytes, salt = `worldstore/wallet/salt/v1`, info = `worldstore/wallet/v1` ‖ 0x00 ‖ inbox id), 32 bytes |
//! | `legacy` | SHA-256(UTF-8(master secret string as written ‖ inbox id)) — the original system's |
//!
//! The default scheme separates domains (a key derived here is useless for any other
//! purpose of the same secret) and refuses a derived scalar outside `[1, n)` instead of
//! silently reducing it. The legacy scheme exists only so that the original system's users
//! keep their wallets; it has no domain separation and no range check of its own (the
//! signer still refuses an invalid scalar).

use crate::eip3009::{KeyError, LocalSigner};
use hkdf::Hkdf;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;
use zeroize::{Zeroize, Zeroizing};

const SALT: &[u8] = b"worldstore/wallet/salt/v1";
const INFO_PREFIX: &[u8] = b"worldstore/wallet/v1\x00";

/// The master secret (`WALLET_PRIVATE_KEY`), kept as written: the legacy scheme hashes the
/// text itself. Never formatted; zeroized on drop.
#[derive(Clone)]
pub struct MasterSecret(Zeroizing<String>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DerivationError {
    #[error("master secret must be 32 bytes of hex (64 hex digits, optionally 0x-prefixed)")]
    MasterSecretNotHex,
    #[error("derived key is outside the secp256k1 scalar range")]
    ScalarOutOfRange,
    #[error("inbox id is empty or longer than 256 bytes")]
    InvalidInboxId,
}

impl MasterSecret {
    pub fn new(text: String) -> Self {
        Self(Zeroizing::new(text))
    }

    /// The secret's bytes for the default scheme: 32 bytes decoded from hex.
    fn key_bytes(&self) -> Result<Zeroizing<[u8; 32]>, DerivationError> {
        let text = self.0.trim();
        let digits = text.strip_prefix("0x").unwrap_or(text);
        let mut bytes = Zeroizing::new([0u8; 32]);
        if digits.len() != 64 {
            return Err(DerivationError::MasterSecretNotHex);
        }
        alloy_primitives::hex::decode_to_slice(digits, bytes.as_mut())
            .map_err(|_| DerivationError::MasterSecretNotHex)?;
        Ok(bytes)
    }
}

impl fmt::Debug for MasterSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterSecret(<redacted>)")
    }
}

/// Which derivation a deployment uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DerivationScheme {
    #[default]
    Default,
    Legacy,
}

impl FromStr for DerivationScheme {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "default" => Ok(Self::Default),
            "legacy" => Ok(Self::Legacy),
            other => Err(format!(
                "unknown derivation scheme {other:?}; expected default or legacy"
            )),
        }
    }
}

/// Derives the wallet of the user with `inbox_id`.
pub fn derive_wallet(
    master: &MasterSecret,
    inbox_id: &str,
    scheme: DerivationScheme,
) -> Result<LocalSigner, DerivationError> {
    if inbox_id.is_empty() || inbox_id.len() > 256 {
        return Err(DerivationError::InvalidInboxId);
    }
    let mut key = Zeroizing::new([0u8; 32]);
    match scheme {
        DerivationScheme::Default => {
            let ikm = master.key_bytes()?;
            let mut info = Zeroizing::new(Vec::with_capacity(INFO_PREFIX.len() + inbox_id.len()));
            info.extend_from_slice(INFO_PREFIX);
            info.extend_from_slice(inbox_id.as_bytes());
            Hkdf::<Sha256>::new(Some(SALT), ikm.as_ref())
                .expand(&info, key.as_mut())
                .map_err(|_| DerivationError::ScalarOutOfRange)?;
        }
        DerivationScheme::Legacy => {
            let mut hasher = Sha256::new();
            hasher.update(master.0.as_bytes());
            hasher.update(inbox_id.as_bytes());
            let mut digest: [u8; 32] = hasher.finalize().into();
            key.copy_from_slice(&digest);
            digest.zeroize();
        }
    }
    signer_from_scalar(*key)
}

/// Refuses zero and scalars `>= n` rather than reducing them (probability ~2^-128).
fn signer_from_scalar(bytes: [u8; 32]) -> Result<LocalSigner, DerivationError> {
    LocalSigner::from_bytes(bytes).map_err(|e| match e {
        KeyError::OutOfRange | KeyError::Malformed => DerivationError::ScalarOutOfRange,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

    #[test]
    fn each_inbox_gets_its_own_wallet_and_the_same_one_every_time() {
        let master = MasterSecret::new(SECRET.into());
        for scheme in [DerivationScheme::Default, DerivationScheme::Legacy] {
            let a = derive_wallet(&master, "inbox-a", scheme).unwrap().address();
            let b = derive_wallet(&master, "inbox-b", scheme).unwrap().address();
            assert_ne!(a, b);
            assert_eq!(
                a,
                derive_wallet(&master, "inbox-a", scheme).unwrap().address()
            );
        }
    }

    #[test]
    fn the_two_schemes_give_different_wallets() {
        let master = MasterSecret::new(SECRET.into());
        assert_ne!(
            derive_wallet(&master, "inbox-a", DerivationScheme::Default)
                .unwrap()
                .address(),
            derive_wallet(&master, "inbox-a", DerivationScheme::Legacy)
                .unwrap()
                .address()
        );
    }

    #[test]
    fn out_of_range_scalars_are_refused_not_reduced() {
        assert_eq!(
            signer_from_scalar([0u8; 32]).unwrap_err(),
            DerivationError::ScalarOutOfRange
        );
        assert_eq!(
            signer_from_scalar([0xff; 32]).unwrap_err(),
            DerivationError::ScalarOutOfRange
        );
    }

    #[test]
    fn a_missing_inbox_id_never_yields_a_shared_wallet() {
        // The original derived one wallet for every user without an inbox id.
        let master = MasterSecret::new(SECRET.into());
        assert_eq!(
            derive_wallet(&master, "", DerivationScheme::Legacy).unwrap_err(),
            DerivationError::InvalidInboxId
        );
    }

    #[test]
    fn the_default_scheme_needs_a_hex_master_secret() {
        let master = MasterSecret::new("correct horse battery staple".into());
        assert_eq!(
            derive_wallet(&master, "inbox-a", DerivationScheme::Default).unwrap_err(),
            DerivationError::MasterSecretNotHex
        );
        assert_eq!(format!("{master:?}"), "MasterSecret(<redacted>)");
    }
}
