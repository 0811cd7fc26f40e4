//! Providers by name, from the configuration: `openai/gpt-4.1-mini` is model `gpt-4.1-mini`
//! of the provider named `openai`. Operators name their own (`myvllm/qwen2.5-7b`); the
//! embedded local model registers itself under `local` when it is available.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use frontdesk_core::config::{ProviderConfig, ProviderKind};
use frontdesk_core::model::{ModelError, ModelProvider, ProviderSecret};

use crate::anthropic::Anthropic;
use crate::fallback::Candidate;
use crate::http::HttpSettings;
use crate::openai_chat::OpenAiChat;
use crate::openai_responses::OpenAiResponses;
use crate::Timeouts;

const OPENAI_BASE_URL: &str = "https://api.openai.com/v1";
const ANTHROPIC_BASE_URL: &str = "https://api.anthropic.com";
/// The name the embedded local model registers under.
pub const LOCAL: &str = "local";
/// The public providers always known, with the protocol each speaks when the operator
/// configured none (the official OpenAI API speaks the Responses API).
const PUBLIC_PROVIDERS: [(&str, ProviderKind); 2] = [
    ("openai", ProviderKind::OpenaiResponses),
    ("anthropic", ProviderKind::Anthropic),
];

/// The configured providers.
#[derive(Default, Clone)]
pub struct Registry {
    providers: HashMap<String, Entry>,
}

#[derive(Clone)]
struct Entry {
    provider: Arc<dyn ModelProvider>,
    /// A public provider the operator gave no key for: usable only with a tenant's own key.
    tenant_key_only: bool,
}

/// The provider keys a tenant brought, by provider name (decrypted for one turn).
pub type TenantKeys = HashMap<String, ProviderSecret>;

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
    /// Builds every configured provider. `openai` and `anthropic` are always known: when the
    /// operator configured no key for them, tenants who bring their own can still use them.
    pub fn from_config(
        config: &BTreeMap<String, ProviderConfig>,
        timeouts: Timeouts,
    ) -> Result<Self, ModelError> {
        let mut registry = Self::default();
        for (name, provider) in config {
            if provider.kind == ProviderKind::Anthropic && provider.api_key.is_none() {
                return Err(ModelError::Config(format!(
                    "provider `{name}` needs an api_key (ANTHROPIC_API_KEY)"
                )));
            }
            let built = build(provider.kind, provider, timeouts)?;
            registry.register(name, built);
        }
        for (name, kind) in PUBLIC_PROVIDERS {
            if !registry.providers.contains_key(name) {
                let keyless = ProviderConfig::new(kind);
                registry.providers.insert(
                    name.to_owned(),
                    Entry {
                        provider: build(kind, &keyless, timeouts)?,
                        tenant_key_only: true,
                    },
                );
            }
        }
        Ok(registry)
    }

    /// Adds (or replaces) a provider.
    pub fn register(&mut self, name: &str, provider: Arc<dyn ModelProvider>) {
        self.providers.insert(
            name.to_owned(),
            Entry {
                provider,
                tenant_key_only: false,
            },
        );
    }

    /// Whether tenants may bring a key for this provider (it speaks a public provider's API).
    pub fn accepts_tenant_key(&self, provider: &str) -> bool {
        self.providers.contains_key(provider) && provider != LOCAL
    }

    /// The candidate for a `provider/model` name, with no tenant key.
    pub fn candidate(&self, model: &str) -> Result<Candidate, ModelError> {
        self.candidate_for(model, &TenantKeys::new())
    }

    /// The candidate for a `provider/model` name, using the tenant's key for its provider
    /// when it brought one.
    pub fn candidate_for(&self, model: &str, keys: &TenantKeys) -> Result<Candidate, ModelError> {
        let (provider_name, model_name) = model
            .split_once('/')
            .filter(|(p, m)| !p.is_empty() && !m.is_empty())
            .ok_or_else(|| ModelError::Config(format!("`{model}` is not `provider/model`")))?;
        let api_key = keys.get(provider_name).cloned();
        let entry = self
            .providers
            .get(provider_name)
            .filter(|entry| !entry.tenant_key_only || api_key.is_some())
            .ok_or_else(|| {
                ModelError::Config(if provider_name == LOCAL {
                    "the embedded local model is not available in this build yet: give the agent another model \
                     (for example openai/gpt-4.1-mini with OPENAI_API_KEY set)"
                        .to_owned()
                } else {
                    format!("no model provider `{provider_name}` is configured (set its API key, add the tenant's own key, or declare [providers.{provider_name}])")
                })
            })?;
        Ok(Candidate {
            provider: entry.provider.clone(),
            label: model.to_owned(),
            model: model_name.to_owned(),
            api_key,
        })
    }

    /// The agent's model and then its fallbacks, in order. Fallbacks whose provider is not
    /// configured are left out; the primary must exist.
    pub fn candidates(
        &self,
        primary: &str,
        fallbacks: &[String],
        keys: &TenantKeys,
    ) -> Result<Vec<Candidate>, ModelError> {
        let mut candidates = vec![self.candidate_for(primary, keys)?];
        candidates.extend(
            fallbacks
                .iter()
                .filter_map(|model| self.candidate_for(model, keys).ok()),
        );
        Ok(candidates)
    }
}

/// One provider from its configuration.
fn build(
    kind: ProviderKind,
    config: &ProviderConfig,
    timeouts: Timeouts,
) -> Result<Arc<dyn ModelProvider>, ModelError> {
    let http = HttpSettings {
        version: config.http,
        max_streams_per_connection: config.max_streams_per_connection as usize,
        timeouts,
    };
    let key = config.api_key.clone();
    Ok(match kind {
        ProviderKind::Openai => Arc::new(OpenAiChat::new(
            config.base_url.as_deref().unwrap_or(OPENAI_BASE_URL),
            key,
            http,
        )?),
        ProviderKind::OpenaiResponses => Arc::new(OpenAiResponses::new(
            config.base_url.as_deref().unwrap_or(OPENAI_BASE_URL),
            key,
            http,
        )?),
        ProviderKind::Anthropic => Arc::new(Anthropic::new(
            config.base_url.as_deref().unwrap_or(ANTHROPIC_BASE_URL),
            key,
            http,
        )?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_provider_slash_model() {
        let mut config = BTreeMap::new();
        config.insert(
            "openai".to_owned(),
            ProviderConfig::new(ProviderKind::Openai),
        );
        config.insert(
            "myvllm".to_owned(),
            ProviderConfig {
                base_url: Some("http://10.0.0.5:8000/v1".into()),
                ..ProviderConfig::new(ProviderKind::Openai)
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
            &TenantKeys::new(),
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
            ProviderConfig::new(ProviderKind::Anthropic),
        );
        assert!(Registry::from_config(&missing_key, Timeouts::default()).is_err());

        // A tenant's own key makes the unconfigured public provider usable, for that tenant.
        let mut keys = TenantKeys::new();
        keys.insert(
            "anthropic".to_owned(),
            ProviderSecret(secrecy::SecretString::from("sk-ant-tenant")),
        );
        let with_key = registry.candidate_for("anthropic/claude", &keys);
        assert_eq!(
            with_key
                .ok()
                .and_then(|c| c.api_key)
                .map(|k| k.expose().to_owned()),
            Some("sk-ant-tenant".to_owned())
        );
        assert!(registry.accepts_tenant_key("anthropic"));
        assert!(!registry.accepts_tenant_key("nope"));
    }

    #[test]
    fn the_keyless_openai_default_speaks_the_responses_api() {
        assert!(PUBLIC_PROVIDERS.contains(&("openai", ProviderKind::OpenaiResponses)));
        let mut config = BTreeMap::new();
        config.insert(
            "official".to_owned(),
            ProviderConfig {
                api_key: Some(secrecy::SecretString::from("sk-op")),
                ..ProviderConfig::new(ProviderKind::OpenaiResponses)
            },
        );
        let registry = Registry::from_config(&config, Timeouts::default()).unwrap_or_default();
        assert_eq!(
            registry.candidate("official/gpt-4.1").ok().map(|c| c.model),
            Some("gpt-4.1".to_owned())
        );
        // Without the tenant's key, the keyless default is not usable; with it, it is.
        assert!(registry.candidate("openai/gpt-4.1").is_err());
        let mut keys = TenantKeys::new();
        keys.insert(
            "openai".to_owned(),
            ProviderSecret(secrecy::SecretString::from("sk-tenant")),
        );
        assert!(registry.candidate_for("openai/gpt-4.1", &keys).is_ok());
    }
}
