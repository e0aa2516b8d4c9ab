//! Adapters for outside systems. Each module implements a port of `worldstore_domain`.
//!
//! | module | port | outside system |
//! |---|---|---|
//! | [`brain`] | `Brain` | the offline grammar; Claude (Anthropic Messages API); OpenAI-compatible chat completions (OpenAI, Ollama, vLLM, llama.cpp) |
//! | [`store`] | `Store` | SQLite and PostgreSQL (sqlx), with an outbox and personal data encrypted at rest |
//! | [`serpapi`] | `Catalog` | SerpAPI's Amazon engines (live search) |
//! | [`crossmint`] | `Commerce` | Crossmint's headless checkout (live orders) |
//! | [`sandbox_commerce`] | `Catalog`, `Commerce` | our own catalogue and a deterministic fulfilment lifecycle with failure injection |
//! | [`chain_rpc`] | `Chain` | an EVM node over HTTP JSON-RPC (alloy) |
//! | [`chain_embedded`] | `Chain` | an in-process revm chain running the sandbox USDC |
//! | [`webchat`] | messaging | browsers: a self-contained page over a WebSocket (axum) |
//! | [`xmtp`] | messaging | XMTP through a supervised Node bridge (`@xmtp/agent-sdk`) |

#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

pub mod balance_watch;
pub mod brain;
pub mod chain_embedded;
pub mod chain_rpc;
pub mod crossmint;
pub mod retry;
pub mod sandbox_commerce;
pub mod serpapi;
pub mod store;
pub mod usdc;
pub mod webchat;
pub mod xmtp;
