//! Ports: the traits through which the core reaches outside systems, with their data and
//! error types. Adapters (crate `worldstore-adapters`) implement them; the core only sees
//! these types.
//!
//! Port errors are classified ([`ErrorClass`]) so the driver knows what to do with them:
//! retry with backoff, feed back into the machine as a business outcome, or stop.

pub mod catalog;
pub mod commerce;

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
