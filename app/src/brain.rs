//! [`BrainChoice`]: the brain picked by configuration, behind the one `Brain` port.
//!
//! | choice | adapter | needs |
//! |---|---|---|
//! | `offline` (sandbox default) | the deterministic command grammar | nothing |
//! | `claude` | Anthropic's Messages API | `ANTHROPIC_API_KEY`, a model |
//! | `openai-compatible` | chat completions (OpenAI, Ollama, vLLM, llama.cpp) | a base URL, a model, maybe a key |

use secrecy::SecretString;
use worldstore_adapters::brain::{
    ClaudeBrain, ClaudeConfig, OfflineBrain, OpenAiCompatBrain, OpenAiCompatConfig,
};
use worldstore_domain::ports::brain::{Brain, BrainError, BrainReply, BrainRequest};

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
        })
    }

    pub fn name(&self) -> &'static str {
        match self {
            BrainChoice::Offline(_) => "offline",
            BrainChoice::Claude(_) => "claude",
            BrainChoice::OpenAiCompatible(_) => "openai-compatible",
        }
    }
}

impl Brain for BrainChoice {
    async fn respond(&self, request: BrainRequest) -> Result<BrainReply, BrainError> {
        match self {
            BrainChoice::Offline(b) => b.respond(request).await,
            BrainChoice::Claude(b) => b.respond(request).await,
            BrainChoice::OpenAiCompatible(b) => b.respond(request).await,
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
                tools: vec![],
            })
            .await
            .unwrap();
        assert_eq!(reply.proposals[0].name, "search_products");
    }
}
