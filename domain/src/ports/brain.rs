//! The `Brain` port: a language model (or the offline grammar) that reads the conversation
//! and proposes a reply and tool calls. It proposes only: the conversation machine validates
//! every proposal ([`crate::conversation::ToolCall::from_proposal`]).
//!
//! Tool results and product text are untrusted input; adapters pass them to the model as
//! data, never as instructions.

use crate::conversation::tools::{ToolProposal, ToolSpec};
use crate::conversation::{Context, ToolResult};
use serde::{Deserialize, Serialize};
use std::future::Future;

/// One line of the history the brain sees.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HistoryItem {
    User(String),
    Assistant(String),
    /// Tool calls the assistant made in one turn.
    ToolCalls(Vec<ToolProposal>),
    /// Their results, in the next turn.
    ToolResults(Vec<ToolResult>),
}

/// What the brain is asked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BrainRequest {
    pub context: Context,
    /// Oldest first; ends with the newest user text or tool results.
    pub history: Vec<HistoryItem>,
    pub tools: &'static [ToolSpec],
}

/// Tokens a model call used, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
}

/// The brain's answer.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BrainReply {
    pub text: Option<String>,
    pub proposals: Vec<ToolProposal>,
    pub usage: Usage,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrainError {
    /// Rate limited, overloaded, timed out: retry with backoff.
    #[error("model temporarily unavailable: {0}")]
    Transient(String),
    /// The request itself was refused (bad key, too long): tell the user, do not retry.
    #[error("model refused the request: {0}")]
    Fatal(String),
}

pub trait Brain: Send + Sync {
    fn respond(
        &self,
        request: BrainRequest,
    ) -> impl Future<Output = Result<BrainReply, BrainError>> + Send;
}
