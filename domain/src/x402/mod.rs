//! x402: HTTP 402 payments (v1 and v2, scheme `exact` on EVM with EIP-3009).
//!
//! - [`messages`]: the wire messages of both versions;
//! - [`header`]: base64 JSON header codecs;
//! - [`offer`]: building a 402 answer in both versions from one offer;
//! - [`verify`]: the verification rules, returning the verified payment or a reason code;
//! - [`client`]: the payer's side: choosing an offer and signing it.

pub mod client;
pub mod header;
pub mod messages;
pub mod offer;
mod reason;
pub mod verify;

pub use messages::*;
pub use offer::{PaymentOffer, PaymentRequiredAnswer};
pub use reason::ReasonCode;
pub use verify::{
    ChainFacts, NonceKey, NonceState, Refusal, SignedPayment, Simulation, VerifiedPayment,
    VerifyPolicy, check_chain, check_offline, verify,
};
