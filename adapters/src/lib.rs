//! Adapters for outside systems. Each module implements a port of `worldstore_domain`.
