//! The `worldstore` application: wiring of the domain and the adapters into the services
//! the binary runs.
//!
//! - [`facilitator`]: the x402 facilitator (`/verify`, `/settle`, `/supported`).
//! - [`agent`]: the agent role's driver (conversations, checkouts, the x402 order client).
//! - [`outbox`]: a reusable outbox worker (claim, execute, complete or back off).
//! - [`brain`]: the configured brain (offline, Claude, OpenAI-compatible).
//! - [`sandbox`]: the agent's sandbox wiring (SQLite, embedded chain, offline brain).
//! - [`merchant`]: the order server (`/api/orders`), settlement, fulfilment and refunds.
//! - [`replay`]: recorded conversations replayed through the real machines.

pub mod agent;
pub mod brain;
pub mod config;
pub mod facilitator;
pub mod merchant;
pub mod metrics;
pub mod outbox;
pub mod replay;
pub mod sandbox;
