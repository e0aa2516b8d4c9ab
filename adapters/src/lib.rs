//! Adapters for outside systems. Each module implements a port of `worldstore_domain`.
//!
//! - [`brain`]: the `Brain` port: the offline grammar (models come later).
//! - [`store`]: the `Store` port on SQLite and PostgreSQL (sqlx), with an outbox and
//!   personal data encrypted at rest.
//! - [`serpapi`]: the `Catalog` port over SerpAPI's Amazon engines (live search).
//! - [`crossmint`]: the `Commerce` port over Crossmint's headless checkout (live orders).
//! - [`sandbox_commerce`]: both ports with no network and no keys: our own catalogue and a
//!   deterministic fulfilment lifecycle with failure injection.

#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

pub mod brain;
pub mod crossmint;
pub mod retry;
pub mod sandbox_commerce;
pub mod serpapi;
pub mod store;
