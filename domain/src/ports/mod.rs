//! Ports: the narrow traits through which the pure core reaches the outside world, with
//! the plain data they exchange. Adapters (crate `worldstore-adapters`) implement them;
//! nothing here performs I/O.
//!
//! Port errors are classified ([`ErrorClass`]) so the driver knows what to do with them:
//! retry with backoff, feed back into the machine as a business outcome, or stop.

pub mod brain;
pub mod catalog;
pub mod chain;
pub mod commerce;
pub mod store;

/// What the driver does with a port error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// Try again later with backoff (throttling, outage, timeout).
    Transient,
    /// A business outcome: feed it back into the machine as an input.
    Rejected,
    /// Retrying cannot help (bad credentials, misbehaving peer): alert an operator.
    Fatal,
}
