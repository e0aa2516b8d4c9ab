//! EIP-3009 `transferWithAuthorization` for USDC: the authorization a payer signs, its
//! EIP-712 signing hash, signature parsing and recovery, and signing with a local key.
//!
//! The payer signs, off chain, an [`Authorization`] to move `value` from `from` to `to`
//! during `(validAfter, validBefore)` under a unique 32-byte [`Nonce`]; anyone (the
//! facilitator) can submit it and pay the gas. FiatToken v2.2 checks on chain that
//! `validAfter < block.timestamp < validBefore`, that the nonce is unused for `from`, and
//! that the signature recovers to `from`.

mod authorization;
pub mod checksum;
mod eip712;
mod signature;
mod signer;
pub mod uint;

pub use authorization::{Authorization, Nonce};
pub use eip712::{DOMAIN_TYPE, Eip712Domain, TRANSFER_WITH_AUTHORIZATION_TYPE};
pub use signature::{Signature, SignatureError};
pub use signer::{KeyError, LocalSigner};
