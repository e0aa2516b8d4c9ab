//! The sandbox's commerce: the `Catalog` and `Commerce` ports with no network and no keys.
//!
//! - [`SandboxCatalog`]: our own catalogue of invented everyday products, searched offline.
//! - [`SandboxFulfilment`]: orders priced from that catalogue, paid, shipped and delivered
//!   on the driver's clock, with failures injected per product ([`InjectedFailure`]).

mod catalog;
mod fulfilment;

pub use catalog::{PAGE_SIZE, SandboxCatalog};
pub use fulfilment::{FulfilmentConfig, InjectedFailure, SandboxFulfilment};
