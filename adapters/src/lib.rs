//! Adapters for outside systems. Each module implements a port of `worldstore_domain`.
//!
//! | module | port | outside system |
//! |---|---|---|
//! | [`chain_rpc`] | `Chain` | an EVM node over HTTP JSON-RPC (alloy) |
//! | [`chain_embedded`] | `Chain` | an in-process revm chain running the sandbox USDC |

#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

pub mod balance_watch;
pub mod chain_embedded;
pub mod chain_rpc;
pub mod usdc;
