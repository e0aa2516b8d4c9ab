//! Adapters for outside systems. Each module implements a port of `worldstore_domain`.
//!
//! - [`brain`]: the `Brain` port: the offline grammar (models come later).
//! - [`store`]: the `Store` port on SQLite and PostgreSQL (sqlx), with an outbox and
//!   personal data encrypted at rest.

#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

pub mod brain;
pub mod store;
