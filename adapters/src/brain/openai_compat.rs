//! OpenAI-compatible models (OpenAI, Ollama, vLLM, llama.cpp): the `Brain` port over
//! `POST {base}/v1/chat/completions`.
//!
//! | history item | sent as |
//! |---|---|
//! | `User(text)` | `{role: "user", content}` |
//! | `Assistant(text)` then `ToolCalls` | one `{role: "assistant", content, tool_calls: [{id, type: "function", function{name, arguments: JSON text}}]}` |
//! | `ToolResults` | one `{role: "tool", tool_call_id, content}` per result (an error is prefixed `error:`) |
//!
//! | response (`choices[0].message`) | reply |
//! |---|---|
//! | `content` (text, or null) | `text` |
//! | `tool_calls`, `arguments` as JSON text or as an object (Ollama) | `proposals` |
//! | a missing, empty, odd or repeated call id | our own id `call-<n>` (its position) |
//! | no `tool_calls` but `content` is a tool call as JSON (`{"name", "arguments" or "parameters"}`, possibly fenced or in `<tool_call>` tags) naming an offered tool | a proposal, no text |
//! | any `finish_reason` | tolerated |
//!
//! `tool_choice` is never sent (several servers refuse it). The key is optional (local servers
//! need none); when set it is a [`SecretString`] sent only as `Authorization: Bearer`.
//! Retries and error classes: [`super::http`].

use super::history;
use super::http;
use crate::retry::RetryPolicy;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::Duration;
use worldstore_domain::conversation::ToolProposal;
use worldstore_domain::ports::brain::{
    Brain, BrainError, BrainReply, BrainRequest, HistoryItem, Usage,
};

#[derive(Debug, Clone)]
pub struct OpenAiCompatConfig {
    /// `https://api.openai.com`, `http://127.0.0.1:11434` (Ollama), ...: without `/v1`.
    pub base_url: String,
    pub api_key: Option<SecretString>,
    pub model: String,
    /// Sent as `max_tokens` when set.
    pub max_tokens: Option<u32>,
    pub timeout: Duration,
    pub retry: RetryPolicy,
    /// History beyond this many characters is trimmed, oldest turns first.
    pub history_budget_chars: usize,
}

impl OpenAiCompatConfig {
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            api_key: None,
            model: model.into(),
            max_tokens: None,
            timeout: Duration::from_secs(120),
            retry: RetryPolicy::default(),
            history_budget_chars: 60_000,
        }
    }
}

#[derive(Debug, Clone)]
pub struct OpenAiCompatBrain {
    http: reqwest::Client,
    config: OpenAiCompatConfig,
}

impl OpenAiCompatBrain {
    pub fn new(config: OpenAiCompatConfig) -> Result<Self, BrainError> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(|e| BrainError::Fatal(format!("HTTP client: {}", e.without_url())))?;
        Ok(Self { http, config })
    }

    /// The request body for `request`: pure, so tests can read it.
    pub fn body(&self, request: &BrainRequest) -> Value {
        let history = history::prepare(&request.history, self.config.history_budget_chars);
        let system = format!(
            "{}\n\n{}",
            super::SYSTEM_PROMPT,
            super::context_note(request.context)
        );
        let mut messages = vec![json!({"role": "system", "content": system})];
        messages.extend(chat_messages(&history));
        let mut body = json!({"model": self.config.model, "messages": messages, "stream": false});
        if let Some(max) = self.config.max_tokens {
            body["max_tokens"] = json!(max);
        }
        if !request.tools.is_empty() {
            body["tools"] = request
                .tools
                .iter()
                .map(|t| json!({"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.input_schema}}))
                .collect();
        }
        body
    }
}

fn chat_messages(history: &[HistoryItem]) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    for item in history {
        match item {
            HistoryItem::User(text) => out.push(json!({"role": "user", "content": text})),
            HistoryItem::Assistant(text) => {
                out.push(json!({"role": "assistant", "content": text}));
            }
            HistoryItem::ToolCalls(calls) => {
                let tool_calls: Vec<Value> = calls
                    .iter()
                    .map(|c| {
                        let input = if c.input.is_null() { json!({}) } else { c.input.clone() };
                        json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": input.to_string()}})
                    })
                    .collect();
                match out.last_mut() {
                    Some(last)
                        if last["role"] == "assistant" && last.get("tool_calls").is_none() =>
                    {
                        last["tool_calls"] = Value::Array(tool_calls);
                    }
                    _ => out.push(
                        json!({"role": "assistant", "content": null, "tool_calls": tool_calls}),
                    ),
                }
            }
            HistoryItem::ToolResults(results) => {
                out.extend(results.iter().map(|r| {
                    let content = if r.is_error {
                        format!("error: {}", r.content)
                    } else {
                        r.content.clone()
                    };
                    json!({"role": "tool", "tool_call_id": r.call_id, "content": content})
                }));
            }
        }
    }
    out
}

#[derive(Debug, Deserialize)]
struct Completion {
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Debug, Deserialize)]
struct Choice {
    #[serde(default)]
    message: Option<Message>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Message {
    /// Text, null, or (some servers) a list of `{type: "text", text}` parts.
    #[serde(default)]
    content: Value,
    #[serde(default)]
    tool_calls: Option<Vec<Value>>,
}

#[derive(Debug, Default, Deserialize)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetails>,
}

#[derive(Debug, Default, Deserialize)]
struct PromptDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

/// The reply in a 2xx body; `offered` are the tool names sent, which content that leaks a
/// tool call must name.
pub fn parse_reply(body: &[u8], offered: &[&str]) -> Result<BrainReply, BrainError> {
    let completion: Completion = serde_json::from_slice(body)
        .map_err(|e| BrainError::Fatal(format!("unreadable model response: {e}")))?;
    let usage = completion.usage.unwrap_or_default();
    let usage = Usage {
        input_tokens: usage.prompt_tokens.unwrap_or(0),
        output_tokens: usage.completion_tokens.unwrap_or(0),
        cache_read_tokens: usage
            .prompt_tokens_details
            .and_then(|d| d.cached_tokens)
            .unwrap_or(0),
        cache_write_tokens: 0,
    };
    let Some(choice) = completion.choices.into_iter().next() else {
        return Err(BrainError::Transient(
            "the model returned no choice".to_owned(),
        ));
    };
    tracing::debug!(finish_reason = ?choice.finish_reason, "openai-compatible model replied");
    let Some(message) = choice.message else {
        return Ok(BrainReply {
            usage,
            ..BrainReply::default()
        });
    };
    let text = content_text(&message.content);
    let mut proposals = tool_calls(message.tool_calls.unwrap_or_default());
    let text = if proposals.is_empty()
        && let Some(leaked) = text.as_deref().and_then(|t| leaked_calls(t, offered))
    {
        proposals = leaked;
        None
    } else {
        text
    };
    Ok(BrainReply {
        text,
        proposals,
        usage,
    })
}

fn content_text(content: &Value) -> Option<String> {
    let text = match content {
        Value::String(text) => text.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    };
    (!text.trim().is_empty()).then_some(text)
}

/// A model's own id when it is usable: present, unique, short, `[A-Za-z0-9_-]`.
fn usable_id(id: Option<&str>, seen: &HashSet<String>) -> Option<String> {
    let id = id?.trim();
    let plain = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    (plain && !seen.contains(id)).then(|| id.to_owned())
}

fn arguments(raw: Option<&Value>) -> Value {
    match raw {
        None | Some(Value::Null) => json!({}),
        Some(Value::String(text)) if text.trim().is_empty() => json!({}),
        // Invalid JSON text is passed on as text: the domain rejects it and the model is told.
        Some(Value::String(text)) => {
            serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.clone()))
        }
        Some(other) => other.clone(),
    }
}

fn tool_calls(calls: Vec<Value>) -> Vec<ToolProposal> {
    let mut seen = HashSet::new();
    calls
        .iter()
        .enumerate()
        .filter_map(|(n, call)| {
            let function = call.get("function").unwrap_or(call);
            let name = function.get("name")?.as_str()?.trim();
            if name.is_empty() {
                return None;
            }
            let id = usable_id(call.get("id").and_then(Value::as_str), &seen)
                .unwrap_or_else(|| format!("call-{}", n + 1));
            seen.insert(id.clone());
            Some(ToolProposal {
                id,
                name: name.to_owned(),
                input: arguments(function.get("arguments")),
            })
        })
        .collect()
}

/// Tool calls a model wrote as text: one object or a list, bare, fenced or in tags.
fn leaked_calls(text: &str, offered: &[&str]) -> Option<Vec<ToolProposal>> {
    let mut inner = text.trim();
    for (open, close) in [
        ("<tool_call>", "</tool_call>"),
        ("```json", "```"),
        ("```", "```"),
    ] {
        if let Some(rest) = inner.strip_prefix(open) {
            inner = rest.strip_suffix(close).unwrap_or(rest).trim();
        }
    }
    let value: Value = serde_json::from_str(inner).ok()?;
    let items = match value {
        Value::Array(items) => items,
        one @ Value::Object(_) => vec![one],
        _ => return None,
    };
    let calls: Vec<Value> = items
        .into_iter()
        .map(|item| {
            let name = item.get("name")?.as_str()?;
            if !offered.contains(&name) {
                return None;
            }
            let args = item
                .get("arguments")
                .or_else(|| item.get("parameters"))
                .cloned()
                .unwrap_or(Value::Null);
            Some(json!({"function": {"name": name, "arguments": args}}))
        })
        .collect::<Option<_>>()?;
    (!calls.is_empty()).then(|| tool_calls(calls))
}

impl Brain for OpenAiCompatBrain {
    async fn respond(&self, request: BrainRequest) -> Result<BrainReply, BrainError> {
        let body = self.body(&request);
        let url = format!(
            "{}/v1/chat/completions",
            self.config.base_url.trim_end_matches('/')
        );
        let key = self.config.api_key.as_ref().map(|k| k.expose_secret());
        let reply = http::post(&self.config.retry, key, || {
            let builder = self.http.post(&url).json(&body);
            match key {
                Some(key) => builder.bearer_auth(key),
                None => builder,
            }
        })
        .await?;
        let offered: Vec<&str> = request.tools.iter().map(|t| t.name).collect();
        parse_reply(&reply, &offered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leaked_call_in_tags_or_fences_is_read_and_an_unoffered_name_is_text() {
        let offered = ["search_products"];
        for text in [
            r#"<tool_call>{"name":"search_products","arguments":{"query":"mugs"}}</tool_call>"#,
            "```json\n{\"name\":\"search_products\",\"parameters\":{\"query\":\"mugs\"}}\n```",
        ] {
            let calls = leaked_calls(text, &offered).unwrap();
            assert_eq!(calls[0].input, json!({"query": "mugs"}), "{text}");
            assert_eq!(calls[0].id, "call-1");
        }
        assert!(leaked_calls(r#"{"name":"Bob","arguments":{}}"#, &offered).is_none());
        assert!(leaked_calls("hello", &offered).is_none());
    }

    #[test]
    fn invalid_argument_text_is_passed_on_for_the_domain_to_refuse() {
        assert_eq!(arguments(Some(&json!("{not json"))), json!("{not json"));
        assert_eq!(arguments(Some(&json!(""))), json!({}));
    }

    #[test]
    fn repeated_and_odd_ids_are_replaced_by_positions() {
        let calls = tool_calls(vec![
            json!({"id": "same", "function": {"name": "a"}}),
            json!({"id": "same", "function": {"name": "b"}}),
            json!({"id": "has space", "function": {"name": "c"}}),
        ]);
        let ids: Vec<&str> = calls.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["same", "call-2", "call-3"]);
    }
}
