//! Ports: the traits through which the core reaches outside systems (ARCHITECTURE.md,
//! "Ports"). Adapters implement them; errors are classified transient, rejected or fatal.

pub mod chain;
