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
