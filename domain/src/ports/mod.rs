//! Ports: the narrow traits through which the pure core reaches the outside world.
//!
//! Each port is a trait plus the plain data it exchanges and a classified error type
//! (transient: retry with backoff; rejected/conflict: fed back into a machine; fatal).
//! Adapters in `worldstore-adapters` implement them; nothing here performs I/O.

pub mod brain;
pub mod store;
