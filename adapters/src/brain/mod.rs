//! Brains: implementations of the `Brain` port.
//!
//! - [`offline`]: a deterministic command grammar for the sandbox and tests (no model).

pub mod offline;

pub use offline::OfflineBrain;
