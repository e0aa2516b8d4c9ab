//! Claude: the `Brain` port over the Anthropic Messages API (`POST {base}/v1/messages`).
//!
//! | history item | sent as |
//! |---|---|
//! | `User(text)` | a `user` message with a `text` block |
//! | `Assistant(text)` then `ToolCalls` | one `assistant` message: `text`, then one `tool_use` per call |
//! | `ToolResults` | the next `user` message, starting with one `tool_result` per `tool_use` (`is_error` when it failed) |
//!
//! | response | reply |
//! |---|---|
//! | `text` blocks | `text` (joined) |
//! | `tool_use{id, name, input}` blocks | `proposals`, for the domain to validate |
//! | other block types, any `stop_reason` | tolerated (unknown stop reasons are terminal) |
//! | `usage` | [`Usage`], cache reads and writes included |
//!
//! The system prompt and the last tool carry `cache_control: ephemeral`, so the stable prefix
//! (tools, then system) is cached. History is trimmed from the front at whole turns
//! ([`super::history`]). Retries and error classes: [`super::http`]. The key is a
//! [`SecretString`], sent only in `x-api-key`, never logged or put in an error.

use super::history;
use super::http;
use crate::retry::RetryPolicy;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Duration;
use worldstore_domain::conversation::ToolProposal;
use worldstore_domain::ports::brain::{
    Brain, BrainError, BrainReply, BrainRequest, HistoryItem, Usage,
};

pub const ANTHROPIC_VERSION: &str = "2023-06-01";

#[derive(Debug, Clone)]
pub struct ClaudeConfig {
    /// `https://api.anthropic.com`, or a local replay server in tests.
    pub base_url: String,
    pub api_key: SecretString,
    pub model: String,
    pub max_tokens: u32,
    pub timeout: Duration,
    pub retry: RetryPolicy,
    /// History beyond this many characters is trimmed, oldest turns first.
    pub history_budget_chars: usize,
}

impl ClaudeConfig {
    pub fn new(api_key: SecretString, model: impl Into<String>) -> Self {
        Self {
            base_url: "https://api.anthropic.com".to_owned(),
            api_key,
            model: model.into(),
            max_tokens: 1024,
            timeout: Duration::from_secs(60),
            retry: RetryPolicy::default(),
            history_budget_chars: 60_000,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ClaudeBrain {
    http: reqwest::Client,
    config: ClaudeConfig,
}

impl ClaudeBrain {
    pub fn new(config: ClaudeConfig) -> Result<Self, BrainError> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(|e| BrainError::Fatal(format!("HTTP client: {}", e.without_url())))?;
        Ok(Self { http, config })
    }

    /// The request body for `request`: pure, so tests and snapshots can read it.
    pub fn body(&self, request: &BrainRequest) -> Value {
        let history = history::prepare(&request.history, self.config.history_budget_chars);
        let mut tools: Vec<Value> = request
            .tools
            .iter()
            .map(|t| json!({"name": t.name, "description": t.description, "input_schema": t.input_schema}))
            .collect();
        if let Some(Value::Object(last)) = tools.last_mut() {
            last.insert("cache_control".into(), json!({"type": "ephemeral"}));
        }
        let mut body = json!({
            "model": self.config.model,
            "max_tokens": self.config.max_tokens,
            "system": [
                {"type": "text", "text": super::SYSTEM_PROMPT, "cache_control": {"type": "ephemeral"}},
                {"type": "text", "text": super::context_note(request.context)},
            ],
            "messages": messages(&history),
        });
        if !tools.is_empty() {
            body["tools"] = Value::Array(tools);
        }
        body
    }
}

/// Builds the alternating messages, merging neighbours of the same role.
fn messages(history: &[HistoryItem]) -> Vec<Value> {
    let mut out: Vec<(&str, Vec<Value>)> = Vec::new();
    for item in history {
        let (role, blocks) = match item {
            // The API refuses empty text blocks (400).
            HistoryItem::User(text) => {
                let text = if text.trim().is_empty() { "(empty message)" } else { text };
                ("user", vec![json!({"type": "text", "text": text})])
            }
            HistoryItem::Assistant(text) if text.trim().is_empty() => continue,
            HistoryItem::Assistant(text) => {
                ("assistant", vec![json!({"type": "text", "text": text})])
            }
            HistoryItem::ToolCalls(calls) => (
                "assistant",
                calls
                    .iter()
                    .map(|c| {
                        let input = if c.input.is_object() {
                            c.input.clone()
                        } else {
                            json!({})
                        };
                        json!({"type": "tool_use", "id": c.id, "name": c.name, "input": input})
                    })
                    .collect(),
            ),
            HistoryItem::ToolResults(results) => (
                "user",
                results
                    .iter()
                    .map(|r| {
                        let mut block = json!({"type": "tool_result", "tool_use_id": r.call_id, "content": r.content});
                        if r.is_error {
                            block["is_error"] = json!(true);
                        }
                        block
                    })
                    .collect(),
            ),
        };
        match out.last_mut() {
            Some((last_role, last_blocks)) if *last_role == role => {
                // Tool results must come first in their user message.
                if matches!(item, HistoryItem::ToolResults(_)) {
                    let mut merged = blocks;
                    merged.append(last_blocks);
                    *last_blocks = merged;
                } else {
                    last_blocks.extend(blocks);
                }
            }
            _ => out.push((role, blocks)),
        }
    }
    out.into_iter()
        .map(|(role, content)| json!({"role": role, "content": content}))
        .collect()
}

/// The response, read leniently: unknown fields, blocks and stop reasons are tolerated.
#[derive(Debug, Deserialize)]
struct MessageResponse {
    #[serde(default)]
    content: Vec<Block>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: WireUsage,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block {
    Text {
        #[serde(default)]
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        #[serde(default)]
        input: Value,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Default, Deserialize)]
struct WireUsage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
}

/// The reply in a 2xx body.
pub fn parse_reply(body: &[u8]) -> Result<BrainReply, BrainError> {
    let response: MessageResponse = serde_json::from_slice(body)
        .map_err(|e| BrainError::Fatal(format!("unreadable model response: {e}")))?;
    let mut texts = Vec::new();
    let mut proposals = Vec::new();
    for block in response.content {
        match block {
            Block::Text { text } if !text.trim().is_empty() => texts.push(text),
            Block::ToolUse { id, name, input } => proposals.push(ToolProposal { id, name, input }),
            Block::Text { .. } | Block::Other => {}
        }
    }
    let mut text = (!texts.is_empty()).then(|| texts.join("\n"));
    if text.is_none() && proposals.is_empty() && response.stop_reason.as_deref() == Some("refusal")
    {
        text = Some("Sorry, I can't help with that.".to_owned());
    }
    tracing::debug!(stop_reason = ?response.stop_reason, "claude replied");
    let usage = response.usage;
    Ok(BrainReply {
        text,
        proposals,
        usage: Usage {
            input_tokens: usage.input_tokens.unwrap_or(0),
            output_tokens: usage.output_tokens.unwrap_or(0),
            cache_read_tokens: usage.cache_read_input_tokens.unwrap_or(0),
            cache_write_tokens: usage.cache_creation_input_tokens.unwrap_or(0),
        },
    })
}

impl Brain for ClaudeBrain {
    async fn respond(&self, request: BrainRequest) -> Result<BrainReply, BrainError> {
        let body = self.body(&request);
        let url = format!("{}/v1/messages", self.config.base_url.trim_end_matches('/'));
        let key = self.config.api_key.expose_secret();
        let reply = http::post(&self.config.retry, Some(key), || {
            self.http
                .post(&url)
                .header("x-api-key", key)
                .header("anthropic-version", ANTHROPIC_VERSION)
                .header("content-type", "application/json")
                .json(&body)
        })
        .await?;
        parse_reply(&reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_without_text_still_answers_the_user() {
        let reply = parse_reply(br#"{"content":[],"stop_reason":"refusal","usage":{}}"#).unwrap();
        assert!(reply.text.is_some());
    }

    #[test]
    fn empty_texts_are_never_sent_as_empty_blocks() {
        let sent = messages(&[
            HistoryItem::User(" ".into()),
            HistoryItem::Assistant(String::new()),
        ]);
        assert_eq!(
            sent,
            vec![json!({"role": "user", "content": [{"type": "text", "text": "(empty message)"}]})]
        );
    }

    #[test]
    fn an_assistant_text_and_its_tool_calls_are_one_message() {
        let history = vec![
            HistoryItem::User("hi".into()),
            HistoryItem::Assistant("Let me look.".into()),
            HistoryItem::ToolCalls(vec![ToolProposal {
                id: "t1".into(),
                name: "check_balance".into(),
                input: Value::Null,
            }]),
        ];
        let sent = messages(&history);
        assert_eq!(sent.len(), 2);
        assert_eq!(sent[1]["content"][0]["type"], "text");
        assert_eq!(sent[1]["content"][1]["type"], "tool_use");
        assert_eq!(sent[1]["content"][1]["input"], json!({}));
    }
}
