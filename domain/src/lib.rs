//! # worldstore-domain
//!
//! The pure core of Worldstore: money, networks, EIP-3009 authorizations, the x402 wire
//! messages and verification rules, wallet derivation and profile values.
//!
//! Nothing here performs I/O, reads a clock, draws randomness or reads the environment:
//! time (`now`, unix seconds) and facts about the outside world arrive as inputs, so every
//! rule is deterministic and can be property-tested, fuzzed and replayed. `clippy.toml`
//! enforces this, and the test command checks that no I/O crate is in this crate's tree.

#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

pub mod eip3009;
pub mod money;
pub mod network;
pub mod pii;
pub mod ports;
pub mod profile;
pub mod wallet;
pub mod x402;

pub use money::{FeeRate, UsdcAmount};
pub use network::{Network, UsdcDeployment};
pub use pii::Pii;
