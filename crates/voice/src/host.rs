//! What calls need from the platform: the domain service, the run engine, where the
//! models are (realtime, speech-to-text, text-to-speech) with whose key, Twilio's REST API,
//! prices, and the task tracker that lets shutdown drain calls.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use frontdesk_agents::Runner;
use frontdesk_core::config::{Config, ProviderConfig};
use frontdesk_core::id::TenantId;
use frontdesk_core::usage::Price;
use frontdesk_core::Service;
use secrecy::{ExposeSecret, SecretString};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::error::{Result, VoiceError};
use crate::realtime::{realtime_url, Endpoint};
use crate::twilio::{Account, Rest, ACCOUNT_SID_SECRET, AUTH_TOKEN_SECRET};

const OPENAI_BASE_URL: &str = "https://api.openai.com/v1";

/// The platform as calls see it. Cheap to clone.
#[derive(Clone)]
pub struct VoiceHost {
    inner: Arc<Inner>,
}

struct Inner {
    service: Service,
    runner: Runner,
    providers: BTreeMap<String, ProviderConfig>,
    prices: BTreeMap<String, Price>,
    http: reqwest::Client,
    twilio: Rest,
    public_url: Option<String>,
    calls: TaskTracker,
    shutdown: CancellationToken,
}

impl std::fmt::Debug for VoiceHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VoiceHost")
            .field(
                "providers",
                &self.inner.providers.keys().collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// A model reached over HTTP (speech-to-text, text-to-speech).
#[derive(Clone)]
pub struct HttpModel {
    pub base_url: String,
    pub model: String,
    pub api_key: Option<SecretString>,
}

impl VoiceHost {
    pub fn new(
        service: Service,
        runner: Runner,
        config: &Config,
        shutdown: CancellationToken,
    ) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap_or_default();
        Self {
            inner: Arc::new(Inner {
                service,
                runner,
                providers: config.providers.clone(),
                prices: config.prices.clone(),
                twilio: Rest {
                    client: http.clone(),
                    base: config.voice.twilio_api_url.clone(),
                },
                http,
                public_url: config.public_url.clone(),
                calls: TaskTracker::new(),
                shutdown,
            }),
        }
    }

    pub fn service(&self) -> &Service {
        &self.inner.service
    }

    pub fn runner(&self) -> &Runner {
        &self.inner.runner
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    pub fn twilio(&self) -> &Rest {
        &self.inner.twilio
    }

    /// The URL callers' telephony reaches this server at (`FRONTDESK_PUBLIC_URL`).
    pub fn public_url(&self) -> Option<&str> {
        self.inner.public_url.as_deref()
    }

    /// Cancelled when the server stops: calls say goodbye and end.
    pub fn shutdown(&self) -> &CancellationToken {
        &self.inner.shutdown
    }

    /// Runs a call as a tracked task (shutdown waits for it).
    pub fn spawn<F>(&self, call: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.inner.calls.spawn(call);
    }

    /// Waits for the calls under way to end (after `shutdown` was cancelled).
    pub async fn drain(&self, within: Duration) {
        self.inner.calls.close();
        if tokio::time::timeout(within, self.inner.calls.wait())
            .await
            .is_err()
        {
            tracing::warn!("calls were still under way when the server stopped");
        }
    }

    /// What `input` and `output` tokens of `model` cost, when it has a price.
    pub fn cost(&self, model: &str, input: i64, output: i64) -> Option<f64> {
        self.inner
            .prices
            .get(model)
            .map(|price| price.cost(input, output))
    }

    /// A provider's base URL and key for `provider/model`: the tenant's own key first, then
    /// the operator's.
    async fn provider(
        &self,
        tenant: &TenantId,
        model: &str,
    ) -> Result<(String, String, Option<SecretString>)> {
        let (provider, name) = model
            .split_once('/')
            .filter(|(p, m)| !p.is_empty() && !m.is_empty())
            .ok_or_else(|| VoiceError::Config(format!("`{model}` is not `provider/model`")))?;
        let configured = self.inner.providers.get(provider);
        let base = match (configured.and_then(|c| c.base_url.clone()), provider) {
            (Some(base), _) => base,
            (None, "openai") => OPENAI_BASE_URL.to_owned(),
            (None, _) => {
                return Err(VoiceError::Config(format!(
                    "no model provider `{provider}` is configured (declare [providers.{provider}] with its base_url)"
                )))
            }
        };
        let tenant_keys = self.inner.service.open_provider_keys(tenant).await?;
        let key = tenant_keys
            .get(provider)
            .cloned()
            .or_else(|| configured.and_then(|c| c.api_key.clone()));
        if key.is_none() && configured.is_none() {
            return Err(VoiceError::Config(format!(
                "provider `{provider}` has no API key (set OPENAI_API_KEY or bring the tenant's own key)"
            )));
        }
        Ok((base, name.to_owned(), key))
    }

    /// Where the realtime model `provider/model` is.
    pub async fn realtime_endpoint(&self, tenant: &TenantId, model: &str) -> Result<Endpoint> {
        let (base, name, api_key) = self.provider(tenant, model).await?;
        Ok(Endpoint {
            url: realtime_url(&base, &name)?,
            api_key,
        })
    }

    /// Where an HTTP model (`/audio/transcriptions`, `/audio/speech`,
    /// `/realtime/client_secrets`) is.
    pub async fn http_model(&self, tenant: &TenantId, model: &str) -> Result<HttpModel> {
        let (base_url, model, api_key) = self.provider(tenant, model).await?;
        Ok(HttpModel {
            base_url: base_url.trim_end_matches('/').to_owned(),
            model,
            api_key,
        })
    }

    /// The tenant's Twilio account (secrets `TWILIO_ACCOUNT_SID`, `TWILIO_AUTH_TOKEN`).
    pub async fn twilio_account(&self, tenant: &TenantId) -> Result<Account> {
        let secrets = self.inner.service.open_secrets(tenant).await?;
        let sid = secrets.get(ACCOUNT_SID_SECRET);
        let token = secrets.get(AUTH_TOKEN_SECRET);
        match (sid, token) {
            (Some(sid), Some(token)) => Ok(Account {
                sid: sid.expose_secret().to_owned(),
                token: token.clone(),
            }),
            _ => Err(VoiceError::Config(format!(
                "set the tenant secrets {ACCOUNT_SID_SECRET} and {AUTH_TOKEN_SECRET} (PUT /api/v1/secrets/{{name}})"
            ))),
        }
    }
}

impl HttpModel {
    pub fn url(&self, path: &str) -> String {
        format!("{}/{}", self.base_url, path.trim_start_matches('/'))
    }

    pub fn authorize(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.api_key {
            Some(key) => request.bearer_auth(key.expose_secret()),
            None => request,
        }
    }
}
