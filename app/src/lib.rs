//! The `worldstore` application: wiring of the domain and the adapters into the services
//! the binary runs.
//!
//! - [`facilitator`]: the x402 facilitator (`/verify`, `/settle`, `/supported`).
//! - [`merchant`]: the order server (`/api/orders`), settlement, fulfilment and refunds.

pub mod config;
pub mod facilitator;
pub mod merchant;
pub mod metrics;
