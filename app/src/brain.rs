//! [`BrainChoice`]: the brain picked by configuration, behind the one `Brain` port.
//!
//! | choice | adapter | needs |
//! |---|---|---|
//! | `offline` (sandbox default) | the deterministic command grammar | nothing |
//! | `claude` | Anthropic's Messages API | `ANTHROPIC_API_KEY`, a model |
//! | `openai-compatible` | chat completions (OpenAI, Ollama, vLLM, llama.cpp) | a base URL, a model, maybe a key |

use secrecy::SecretString;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use worldstore_adapters::brain::claude::parse_reply;
use worldstore_adapters::brain::{
    ClaudeBrain, ClaudeConfig, OfflineBrain, OpenAiCompatBrain, OpenAiCompatConfig,
};
use worldstore_domain::ports::brain::{
    Brain, BrainError, BrainReply, BrainRequest, HistoryItem, Usage,
};

/// What configuration asks for.
#[derive(Debug, Clone)]
pub enum BrainSettings {
    Offline,
    Claude {
        api_key: SecretString,
        model: String,
        base_url: Option<String>,
    },
    OpenAiCompatible {
        base_url: String,
        model: String,
        api_key: Option<SecretString>,
    },
    /// Answers from a recording (replay).
    Recorded(RecordedBrain),
}

/// Claude's model when configuration names none.
pub const DEFAULT_CLAUDE_MODEL: &str = "claude-sonnet-4-5";
/// OpenAI's API, when `agent.brain = "openai"` names no base URL.
pub const OPENAI_BASE_URL: &str = "https://api.openai.com";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrainSettingsError {
    #[error("agent.brain {0:?} is not claude, openai or offline")]
    Unknown(String),
    #[error("the Claude brain needs ANTHROPIC_API_KEY")]
    NoAnthropicKey,
    #[error("the OpenAI-compatible brain needs a model (WORLDSTORE_MODEL / agent.model)")]
    NoModel,
}

impl BrainSettings {
    /// The brain configuration names (`agent.brain`, `WORLDSTORE_BRAIN`): `offline`,
    /// `claude`, or `openai` (any OpenAI-compatible server at `base_url`).
    pub fn from_parts(
        brain: &str,
        model: Option<String>,
        base_url: Option<String>,
        anthropic_key: Option<SecretString>,
        openai_key: Option<SecretString>,
    ) -> Result<Self, BrainSettingsError> {
        Ok(match brain.trim().to_ascii_lowercase().as_str() {
            "offline" => BrainSettings::Offline,
            "claude" => BrainSettings::Claude {
                api_key: anthropic_key.ok_or(BrainSettingsError::NoAnthropicKey)?,
                model: model.unwrap_or_else(|| DEFAULT_CLAUDE_MODEL.to_owned()),
                base_url,
            },
            "openai" | "openai-compatible" => BrainSettings::OpenAiCompatible {
                base_url: base_url.unwrap_or_else(|| OPENAI_BASE_URL.to_owned()),
                model: model.ok_or(BrainSettingsError::NoModel)?,
                api_key: openai_key,
            },
            other => return Err(BrainSettingsError::Unknown(other.to_owned())),
        })
    }

    /// The brain of the agent role in the loaded [`crate::config::Settings`].
    pub fn from_settings(settings: &crate::config::Settings) -> Result<Self, BrainSettingsError> {
        Self::from_parts(
            &settings.brain,
            settings.model.clone(),
            settings.brain_base_url.clone(),
            settings.anthropic_key.clone(),
            settings.openai_key.clone(),
        )
    }
}

/// The brain in use.
#[derive(Debug, Clone)]
pub enum BrainChoice {
    Offline(OfflineBrain),
    Claude(ClaudeBrain),
    OpenAiCompatible(OpenAiCompatBrain),
    Recorded(RecordedBrain),
}

/// Model answers from a recording ([`crate::replay`]), each an Anthropic Messages API body
/// read by the Claude adapter's own reader. Without a queued answer it falls back to the
/// offline grammar, or, when strict, fails the call (the replay reports it). Counts the
/// calls and the tokens the answers report.
#[derive(Debug, Clone)]
pub struct RecordedBrain {
    inner: Arc<Mutex<Recorded>>,
}

#[derive(Debug, Default)]
struct Recorded {
    offline_fallback: bool,
    queued: VecDeque<String>,
    calls: u64,
    missing: u64,
    usage: Usage,
    /// Tool results the model was shown, as `name -> content`.
    shown: Vec<String>,
}

/// The tool results at the end of `history` (what the model is asked about), named.
fn latest_tool_results(history: &[HistoryItem]) -> Vec<String> {
    let Some(HistoryItem::ToolResults(results)) = history.last() else {
        return Vec::new();
    };
    let calls = history.iter().rev().find_map(|item| match item {
        HistoryItem::ToolCalls(calls) => Some(calls.as_slice()),
        _ => None,
    });
    results
        .iter()
        .map(|result| {
            let name = calls
                .and_then(|calls| calls.iter().find(|c| c.id == result.call_id))
                .map_or("?", |c| c.name.as_str());
            let error = if result.is_error { "error: " } else { "" };
            format!("{name} -> {error}{}", result.content)
        })
        .collect()
}

impl RecordedBrain {
    pub fn new(offline_fallback: bool) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Recorded {
                offline_fallback,
                ..Recorded::default()
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Recorded> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues the answers to the next calls.
    pub fn answer_with(&self, answers: &[String]) {
        self.lock().queued.extend(answers.iter().cloned());
    }

    /// How many queued answers were never asked for; forgets them.
    pub fn unused(&self) -> usize {
        let mut recorded = self.lock();
        let left = recorded.queued.len();
        recorded.queued.clear();
        left
    }

    /// Calls that found no answer (strict mode only).
    pub fn missing(&self) -> u64 {
        self.lock().missing
    }

    pub fn calls(&self) -> u64 {
        self.lock().calls
    }

    pub fn usage(&self) -> Usage {
        self.lock().usage
    }

    /// The tool results the model was shown since the last call.
    pub fn take_shown(&self) -> Vec<String> {
        std::mem::take(&mut self.lock().shown)
    }
}

impl Brain for RecordedBrain {
    async fn respond(&self, request: BrainRequest) -> Result<BrainReply, BrainError> {
        let answer = {
            let mut recorded = self.lock();
            recorded.calls += 1;
            recorded.shown.extend(latest_tool_results(&request.history));
            match recorded.queued.pop_front() {
                Some(answer) => Some(answer),
                None if recorded.offline_fallback => None,
                None => {
                    recorded.missing += 1;
                    return Err(BrainError::Fatal(
                        "the recording has no model answer for this call".into(),
                    ));
                }
            }
        };
        let reply = match answer {
            Some(body) => parse_reply(body.as_bytes())?,
            None => OfflineBrain.respond(request).await?,
        };
        let mut recorded = self.lock();
        let usage = &mut recorded.usage;
        usage.input_tokens += reply.usage.input_tokens;
        usage.output_tokens += reply.usage.output_tokens;
        usage.cache_read_tokens += reply.usage.cache_read_tokens;
        usage.cache_write_tokens += reply.usage.cache_write_tokens;
        Ok(reply)
    }
}

impl BrainChoice {
    /// Builds the brain `settings` name. Makes no network call.
    pub fn from_settings(settings: BrainSettings) -> Result<Self, BrainError> {
        Ok(match settings {
            BrainSettings::Offline => BrainChoice::Offline(OfflineBrain),
            BrainSettings::Claude {
                api_key,
                model,
                base_url,
            } => {
                let mut config = ClaudeConfig::new(api_key, model);
                if let Some(url) = base_url {
                    config.base_url = url;
                }
                BrainChoice::Claude(ClaudeBrain::new(config)?)
            }
            BrainSettings::OpenAiCompatible {
                base_url,
                model,
                api_key,
            } => {
                let mut config = OpenAiCompatConfig::new(base_url, model);
                config.api_key = api_key;
                BrainChoice::OpenAiCompatible(OpenAiCompatBrain::new(config)?)
            }
            BrainSettings::Recorded(brain) => BrainChoice::Recorded(brain),
        })
    }

    pub fn name(&self) -> &'static str {
        match self {
            BrainChoice::Offline(_) => "offline",
            BrainChoice::Claude(_) => "claude",
            BrainChoice::OpenAiCompatible(_) => "openai-compatible",
            BrainChoice::Recorded(_) => "recorded",
        }
    }
}

impl Brain for BrainChoice {
    async fn respond(&self, request: BrainRequest) -> Result<BrainReply, BrainError> {
        match self {
            BrainChoice::Offline(b) => b.respond(request).await,
            BrainChoice::Claude(b) => b.respond(request).await,
            BrainChoice::OpenAiCompatible(b) => b.respond(request).await,
            BrainChoice::Recorded(b) => b.respond(request).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_setting_builds_its_brain_without_the_network() {
        let offline = BrainChoice::from_settings(BrainSettings::Offline).unwrap();
        assert_eq!(offline.name(), "offline");
        let claude = BrainChoice::from_settings(BrainSettings::Claude {
            api_key: SecretString::from("sk-test"),
            model: "claude-sonnet-4-5".into(),
            base_url: Some("http://127.0.0.1:9".into()),
        })
        .unwrap();
        assert_eq!(claude.name(), "claude");
        let local = BrainChoice::from_settings(BrainSettings::OpenAiCompatible {
            base_url: "http://127.0.0.1:11434".into(),
            model: "llama3".into(),
            api_key: None,
        })
        .unwrap();
        assert_eq!(local.name(), "openai-compatible");
    }

    #[test]
    fn configuration_names_select_the_brain() {
        let key = || Some(SecretString::from("sk-test"));
        assert!(matches!(
            BrainSettings::from_parts("offline", None, None, None, None),
            Ok(BrainSettings::Offline)
        ));
        let Ok(BrainSettings::Claude { model, .. }) =
            BrainSettings::from_parts("Claude", None, None, key(), None)
        else {
            panic!("claude with a key")
        };
        assert_eq!(model, DEFAULT_CLAUDE_MODEL);
        assert_eq!(
            BrainSettings::from_parts("claude", None, None, None, None).unwrap_err(),
            BrainSettingsError::NoAnthropicKey
        );
        let Ok(BrainSettings::OpenAiCompatible { base_url, .. }) = BrainSettings::from_parts(
            "openai",
            Some("llama3".into()),
            Some("http://127.0.0.1:11434".into()),
            None,
            None,
        ) else {
            panic!("a local OpenAI-compatible server")
        };
        assert_eq!(base_url, "http://127.0.0.1:11434");
        assert_eq!(
            BrainSettings::from_parts("gpt", None, None, None, None).unwrap_err(),
            BrainSettingsError::Unknown("gpt".into())
        );
    }

    #[tokio::test]
    async fn the_offline_choice_answers_like_the_offline_brain() {
        use worldstore_domain::conversation::Context;
        use worldstore_domain::ports::brain::HistoryItem;
        let brain = BrainChoice::from_settings(BrainSettings::Offline).unwrap();
        let reply = brain
            .respond(BrainRequest {
                context: Context::Shopping,
                history: vec![HistoryItem::User("search earbuds".into())],
                tools: &[],
            })
            .await
            .unwrap();
        assert_eq!(reply.proposals[0].name, "search_products");
    }
}
