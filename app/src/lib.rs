//! The `worldstore` application: wiring of the domain and the adapters into the services
//! the binary runs.
//!
//! - [`facilitator`]: the x402 facilitator (`/verify`, `/settle`, `/supported`).
//! - [`agent`]: the agent role's driver (conversations, checkouts, the x402 order client).
//! - [`outbox`]: a reusable outbox worker (claim, execute, complete or back off).
//! - [`brain`]: the configured brain (offline, Claude, OpenAI-compatible).
//! - [`sandbox`]: the agent's sandbox wiring (SQLite, embedded chain, offline brain).
//! - [`merchant`]: the order server (`/api/orders`), settlement, fulfilment and refunds.
//! - [`messengers`]: the web chat and XMTP as the agent's channel, and their inbound loops.
//! - [`live`]: the agent over live adapters (SerpAPI, an RPC chain, the configured brain).
//! - [`replay`]: recorded conversations replayed through the real machines.

pub mod agent;
pub mod body_limit;
pub mod brain;
pub mod config;
pub mod facilitator;
pub mod live;
pub mod merchant;
pub mod messengers;
pub mod metrics;
pub mod outbox;
pub mod replay;
pub mod sandbox;
