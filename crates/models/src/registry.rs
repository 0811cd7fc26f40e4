//! Providers by name, from the configuration: `openai/gpt-4.1-mini` is model `gpt-4.1-mini`
//! of the provider named `openai`. Operators name their own (`myvllm/qwen2.5-7b`); the
//! embedded local model registers itself under `local` when it is available.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use frontdesk_core::config::{ProviderConfig, ProviderKind};
use frontdesk_core::model::{ModelError, ModelProvider};
use secrecy::SecretString;

use crate::anthropic::Anthropic;
use crate::fallback::Candidate;
use crate::openai_chat::OpenAiChat;
use crate::Timeouts;

const OPENAI_BASE_URL: &str = "https://api.openai.com/v1";
const ANTHROPIC_BASE_URL: &str = "https://api.anthropic.com";
/// The name the embedded local model registers under.
pub const LOCAL: &str = "local";

/// The configured providers.
#[derive(Default, Clone)]
pub struct Registry {
    providers: HashMap<String, Arc<dyn ModelProvider>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&String> = self.providers.keys().collect();
        names.sort();
        f.debug_struct("Registry")
            .field("providers", &names)
            .finish()
    }
}

impl Registry {
    /// Builds every configured provider.
    pub fn from_config(
        config: &BTreeMap<String, ProviderConfig>,
        timeouts: Timeouts,
    ) -> Result<Self, ModelError> {
        let mut registry = Self::default();
        for (name, provider) in config {
            let built: Arc<dyn ModelProvider> = match provider.kind {
                ProviderKind::Openai => Arc::new(OpenAiChat::new(
                    provider.base_url.as_deref().unwrap_or(OPENAI_BASE_URL),
                    provider.api_key.clone(),
                    timeouts,
                )?),
                ProviderKind::Anthropic => {
                    let key: SecretString = provider.api_key.clone().ok_or_else(|| {
                        ModelError::Config(format!(
                            "provider `{name}` needs an api_key (ANTHROPIC_API_KEY)"
                        ))
                    })?;
                    Arc::new(Anthropic::new(
                        provider.base_url.as_deref().unwrap_or(ANTHROPIC_BASE_URL),
                        key,
                        timeouts,
                    )?)
                }
            };
            registry.register(name, built);
        }
        Ok(registry)
    }

    /// Adds (or replaces) a provider.
    pub fn register(&mut self, name: &str, provider: Arc<dyn ModelProvider>) {
        self.providers.insert(name.to_owned(), provider);
    }

    /// The candidate for a `provider/model` name.
    pub fn candidate(&self, model: &str) -> Result<Candidate, ModelError> {
        let (provider_name, model_name) = model
            .split_once('/')
            .filter(|(p, m)| !p.is_empty() && !m.is_empty())
            .ok_or_else(|| ModelError::Config(format!("`{model}` is not `provider/model`")))?;
        let provider = self.providers.get(provider_name).ok_or_else(|| {
            ModelError::Config(if provider_name == LOCAL {
                "the embedded local model is not available in this build yet: give the agent another model \
                 (for example openai/gpt-4.1-mini with OPENAI_API_KEY set)"
                    .to_owned()
            } else {
                format!("no model provider `{provider_name}` is configured (set its API key, or declare [providers.{provider_name}])")
            })
        })?;
        Ok(Candidate {
            provider: provider.clone(),
            label: model.to_owned(),
            model: model_name.to_owned(),
        })
    }

    /// The agent's model and then its fallbacks, in order. Fallbacks whose provider is not
    /// configured are left out; the primary must exist.
    pub fn candidates(
        &self,
        primary: &str,
        fallbacks: &[String],
    ) -> Result<Vec<Candidate>, ModelError> {
        let mut candidates = vec![self.candidate(primary)?];
        candidates.extend(
            fallbacks
                .iter()
                .filter_map(|model| self.candidate(model).ok()),
        );
        Ok(candidates)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_provider_slash_model() {
        let mut config = BTreeMap::new();
        config.insert(
            "openai".to_owned(),
            ProviderConfig {
                kind: ProviderKind::Openai,
                base_url: None,
                api_key: None,
            },
        );
        config.insert(
            "myvllm".to_owned(),
            ProviderConfig {
                kind: ProviderKind::Openai,
                base_url: Some("http://10.0.0.5:8000/v1".into()),
                api_key: None,
            },
        );
        let registry = Registry::from_config(&config, Timeouts::default()).unwrap_or_default();
        let candidate = registry
            .candidate("myvllm/meta-llama/Llama-3-8B")
            .map(|c| (c.label, c.model));
        assert_eq!(
            candidate.ok(),
            Some((
                "myvllm/meta-llama/Llama-3-8B".to_owned(),
                "meta-llama/Llama-3-8B".to_owned()
            ))
        );
        assert!(matches!(
            registry.candidate("anthropic/claude"),
            Err(ModelError::Config(_))
        ));
        assert!(matches!(
            registry.candidate("gpt-4"),
            Err(ModelError::Config(_))
        ));
        let all = registry.candidates(
            "openai/gpt-4.1-mini",
            &["anthropic/claude".into(), "myvllm/q".into()],
        );
        assert_eq!(
            all.map(|c| c.into_iter().map(|c| c.label).collect::<Vec<_>>())
                .ok(),
            Some(vec![
                "openai/gpt-4.1-mini".to_owned(),
                "myvllm/q".to_owned()
            ])
        );

        let mut missing_key = BTreeMap::new();
        missing_key.insert(
            "anthropic".to_owned(),
            ProviderConfig {
                kind: ProviderKind::Anthropic,
                base_url: None,
                api_key: None,
            },
        );
        assert!(Registry::from_config(&missing_key, Timeouts::default()).is_err());
    }
}
