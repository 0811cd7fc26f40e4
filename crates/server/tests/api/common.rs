//! `TestApp`: the real server on a random port over a fresh SQLite file or PostgreSQL
//! schema, with typed helpers so tests stay short.

use std::sync::Arc;

use frontdesk_core::config::Config;
use frontdesk_core::conversation::{MessageDraft, MessageRole};
use frontdesk_core::id::{ConversationId, TenantId};
use frontdesk_core::service::NewTenant;
use frontdesk_core::store::BaseStore;
use frontdesk_core::Service;
use frontdesk_server::AppState;
use frontdesk_store::SqlStore;
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::Value;

/// Which database a test app runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Options for a test app.
pub struct TestAppBuilder {
    backend: Backend,
    config: Config,
    registry: frontdesk_models::registry::Registry,
    embedder: Option<Arc<dyn frontdesk_core::embed::Embedder>>,
}

impl TestAppBuilder {
    pub fn postgres(mut self) -> Self {
        self.backend = Backend::Postgres;
        self
    }

    /// No master key: tenants cannot store provider keys.
    pub fn no_master_key(mut self) -> Self {
        self.config.master_key = None;
        self
    }

    /// Changes the server's limits.
    pub fn limits(mut self, change: impl FnOnce(&mut frontdesk_core::config::Limits)) -> Self {
        change(&mut self.config.limits);
        self
    }

    /// Lets anyone create an organisation from the sign-up page.
    pub fn allow_signup(mut self) -> Self {
        self.config.allow_signup = true;
        self
    }

    pub fn admin_token(mut self, token: &str) -> Self {
        self.config.admin_token = Some(token.to_owned().into());
        self
    }

    /// Serves `provider/…` models with `provider`.
    pub fn provider(
        mut self,
        name: &str,
        provider: std::sync::Arc<dyn frontdesk_core::model::ModelProvider>,
    ) -> Self {
        self.registry.register(name, provider);
        self
    }

    pub fn price(
        mut self,
        model: &str,
        input_per_million_usd: f64,
        output_per_million_usd: f64,
    ) -> Self {
        self.config.prices.insert(
            model.to_owned(),
            frontdesk_core::usage::Price {
                input_per_million_usd,
                output_per_million_usd,
            },
        );
        self
    }

    /// Changes the server's configuration (voice providers, Twilio's API URL, …).
    pub fn configure(mut self, change: impl FnOnce(&mut Config)) -> Self {
        change(&mut self.config);
        self
    }

    /// Lets tools reach loopback addresses (the test's webhook receivers and MCP servers).
    pub fn allow_private_urls(mut self) -> Self {
        self.config.allow_private_urls = true;
        self
    }

    pub fn metrics_token(mut self, token: &str) -> Self {
        self.config.metrics_token = Some(token.to_owned().into());
        self
    }

    /// Widget requests per minute per client address, and whether `X-Forwarded-For` names it.
    pub fn widget_per_address(mut self, per_minute: u32, trust_forwarded_for: bool) -> Self {
        self.config.limits.widget_per_ip_per_minute = per_minute;
        self.config.limits.trust_forwarded_for = trust_forwarded_for;
        self
    }

    /// Knowledge on, with this embedder.
    pub fn embedder(mut self, embedder: Arc<dyn frontdesk_core::embed::Embedder>) -> Self {
        self.embedder = Some(embedder);
        self
    }

    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.config.limits.max_body_bytes = bytes;
        self
    }

    pub async fn spawn(self) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let (store, schema) = match self.backend {
            Backend::Sqlite => {
                let url = format!("sqlite://{}", dir.path().join("frontdesk.db").display());
                (SqlStore::connect(&url).await.unwrap(), None)
            }
            Backend::Postgres => {
                let url = std::env::var("FRONTDESK_TEST_DATABASE_URL")
                    .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
                let schema = format!("fdapi_{}", frontdesk_core::id::new_body());
                let store = SqlStore::connect_postgres_schema(&url, &schema)
                    .await
                    .unwrap_or_else(|e| {
                        panic!("PostgreSQL at {url} is required (make test starts it): {e:#}")
                    });
                (store, Some(schema))
            }
        };
        store.migrate().await.unwrap();
        let sealer = self.config.master_key.as_ref().map(|key| {
            use secrecy::ExposeSecret;
            let key = frontdesk_core::credentials::parse_master_key(key.expose_secret()).unwrap();
            frontdesk_core::credentials::Sealer::new(key)
        });
        TestApp::start(
            store,
            schema,
            sealer,
            self.config,
            self.registry,
            self.embedder,
            dir,
        )
        .await
    }
}

/// A running server and what it runs on.
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub service: Service,
    store: SqlStore,
    schema: Option<String>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    config: Config,
    registry: frontdesk_models::registry::Registry,
    embedder: Option<Arc<dyn frontdesk_core::embed::Embedder>>,
    sealer: Option<frontdesk_core::credentials::Sealer>,
    state: AppState,
    _dir: tempfile::TempDir,
}

/// A tenant and its secret key.
#[derive(Debug, Clone)]
pub struct TestTenant {
    pub id: TenantId,
    pub key: String,
}

impl TestApp {
    async fn start(
        store: SqlStore,
        schema: Option<String>,
        sealer: Option<frontdesk_core::credentials::Sealer>,
        mut config: Config,
        registry: frontdesk_models::registry::Registry,
        embedder: Option<Arc<dyn frontdesk_core::embed::Embedder>>,
        dir: tempfile::TempDir,
    ) -> TestApp {
        let service = Service::new(Arc::new(store.clone()), config.limits.clone())
            .with_sealer(sealer.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        config.public_url = Some(base.clone());
        let state = AppState::with_embedder(
            service.clone(),
            config.clone(),
            registry.clone(),
            embedder.clone(),
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(frontdesk_server::serve(listener, state.clone(), async {
            let _ = stopped.await;
        }));
        TestApp {
            base,
            client: reqwest::Client::new(),
            service,
            store,
            schema,
            stop: Some(stop),
            server: Some(server),
            config,
            registry,
            embedder,
            sealer,
            state,
            _dir: dir,
        }
    }

    /// Another server on the same database, running beside this one (scale-out): it shares
    /// nothing in memory with it.
    pub async fn another_instance(&self) -> TestApp {
        TestApp::start(
            self.store.clone(),
            None,
            self.sealer.clone(),
            self.config.clone(),
            self.registry.clone(),
            self.embedder.clone(),
            tempfile::tempdir().unwrap(),
        )
        .await
    }

    /// Makes the demo tenant's knowledge base as `frontdesk serve` does.
    pub async fn demo_knowledge(&self, tenant: &TenantId, agent: &str) {
        frontdesk_server::demo::ensure_demo_knowledge(&self.state, tenant, agent)
            .await
            .unwrap();
    }

    /// Runs the approval expiry sweep now (the server runs it every 30 s).
    pub async fn expire_approvals(&self) {
        self.state.runner.expire_approvals().await.unwrap();
    }

    /// Stops the server (letting its runs finish) and starts a new one on the same database:
    /// nothing in memory survives, as after a restart.
    pub async fn restart(mut self) -> TestApp {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
        let store = self.store.clone();
        let schema = self.schema.take();
        let config = self.config.clone();
        let registry = self.registry.clone();
        let sealer = self.sealer.clone();
        let embedder = self.embedder.clone();
        let dir = std::mem::replace(&mut self._dir, tempfile::tempdir().unwrap());
        TestApp::start(store, schema, sealer, config, registry, embedder, dir).await
    }

    pub fn builder() -> TestAppBuilder {
        let config = Config {
            bootstrap_demo: false,
            master_key: Some(frontdesk_core::credentials::generate_master_key().into()),
            ..Config::default()
        };
        TestAppBuilder {
            backend: Backend::Sqlite,
            config,
            registry: Default::default(),
            embedder: None,
        }
    }

    pub async fn spawn() -> Self {
        Self::builder().spawn().await
    }

    /// A new tenant with a secret key.
    pub async fn tenant(&self, name: &str) -> TestTenant {
        let created = self
            .service
            .create_tenant(NewTenant {
                name: name.into(),
                owner_email: None,
                monthly_token_quota: None,
            })
            .await
            .unwrap();
        TestTenant {
            id: created.tenant.id,
            key: created.secret.expose().to_owned(),
        }
    }

    pub fn request(&self, method: Method, path: &str, key: &str) -> RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(key)
    }

    pub fn get(&self, path: &str, key: &str) -> RequestBuilder {
        self.request(Method::GET, path, key)
    }

    pub fn post(&self, path: &str, key: &str, body: &Value) -> RequestBuilder {
        self.request(Method::POST, path, key).json(body)
    }

    pub fn patch(&self, path: &str, key: &str, body: &Value) -> RequestBuilder {
        self.request(Method::PATCH, path, key).json(body)
    }

    pub fn delete(&self, path: &str, key: &str) -> RequestBuilder {
        self.request(Method::DELETE, path, key)
    }

    /// Creates an agent through the API and returns its JSON.
    pub async fn agent(&self, tenant: &TestTenant, slug: &str) -> Value {
        let body = serde_json::json!({"slug": slug, "name": slug.to_uppercase(), "instructions": "Be helpful."});
        expect(
            self.post("/api/v1/agents", &tenant.key, &body)
                .send()
                .await
                .unwrap(),
            StatusCode::CREATED,
        )
        .await
    }

    /// Creates a conversation through the API and appends `texts` (user, assistant, …).
    pub async fn conversation(&self, tenant: &TestTenant, agent: &str, texts: &[&str]) -> Value {
        let body = serde_json::json!({"agent": agent});
        let conversation = expect(
            self.post("/api/v1/conversations", &tenant.key, &body)
                .send()
                .await
                .unwrap(),
            StatusCode::CREATED,
        )
        .await;
        let id = ConversationId::parse(conversation["id"].as_str().unwrap()).unwrap();
        for (idx, text) in texts.iter().enumerate() {
            let role = if idx % 2 == 0 {
                MessageRole::User
            } else {
                MessageRole::Assistant
            };
            self.service
                .append_message(&tenant.id, &id, MessageDraft::text(role, *text))
                .await
                .unwrap();
        }
        conversation
    }

    /// The sealed provider keys the store holds for a tenant.
    pub async fn store_sealed(&self, tenant: &TenantId) -> Vec<(String, String)> {
        use frontdesk_core::store::CredentialStore;
        self.store.sealed_credentials(tenant).await.unwrap()
    }

    /// Closes the store's pool under the running server (readiness tests).
    pub async fn stop_store(&self) {
        self.store.close().await;
    }

    /// A tenant with an agent `support` on `model`, and an empty conversation with it.
    pub async fn chat(&self, model: &str) -> (TestTenant, String) {
        let t = self.tenant("Acme").await;
        let agent = serde_json::json!({"slug": "support", "name": "Support", "model": model});
        expect(
            self.post("/api/v1/agents", &t.key, &agent)
                .send()
                .await
                .unwrap(),
            StatusCode::CREATED,
        )
        .await;
        let body = serde_json::json!({"agent": "support"});
        let conversation = expect(
            self.post("/api/v1/conversations", &t.key, &body)
                .send()
                .await
                .unwrap(),
            StatusCode::CREATED,
        )
        .await;
        (t, conversation["id"].as_str().unwrap().to_owned())
    }

    /// Stops the server and drops a PostgreSQL schema.
    /// Stops the server and leaves the database as it is (an instance of several).
    pub async fn stop_server(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
        if let Some(schema) = &self.schema {
            let _ = self.store.drop_postgres_schema(schema).await;
        }
        self.store.close().await;
    }
}

/// Asserts the status (showing the body when it differs) and returns the JSON body.
pub async fn expect(response: Response, status: StatusCode) -> Value {
    let got = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(got, status, "unexpected status; body: {text}");
    if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    }
}

/// Asserts an error response: status and `error.code`; returns the error object.
pub async fn expect_error(response: Response, status: StatusCode, code: &str) -> Value {
    let body = expect(response, status).await;
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["type"].is_string() && body["error"]["message"].is_string(),
        "{body}"
    );
    body["error"].clone()
}

/// A model that says `words` one by one, `pause_ms` apart, then stops, or fails with `fail`.
pub struct ScriptedModel {
    pub words: Vec<&'static str>,
    pub pause_ms: u64,
    pub fail: Option<frontdesk_core::model::ModelError>,
}

impl ScriptedModel {
    pub fn saying(words: &[&'static str]) -> Arc<dyn frontdesk_core::model::ModelProvider> {
        Arc::new(Self {
            words: words.to_vec(),
            pause_ms: 0,
            fail: None,
        })
    }
}

#[async_trait::async_trait]
impl frontdesk_core::model::ModelProvider for ScriptedModel {
    async fn stream(
        &self,
        _request: frontdesk_core::model::ModelRequest,
    ) -> Result<frontdesk_core::model::ModelStream, frontdesk_core::model::ModelError> {
        use frontdesk_core::model::ModelEvent;
        let mut items: Vec<Result<ModelEvent, frontdesk_core::model::ModelError>> = self
            .words
            .iter()
            .map(|w| Ok(ModelEvent::TextDelta((*w).to_owned())))
            .collect();
        match &self.fail {
            Some(error) => items.push(Err(error.clone())),
            None => {
                let usage = frontdesk_core::conversation::Usage {
                    prompt_tokens: 7,
                    completion_tokens: 3,
                    total_tokens: 10,
                };
                items.push(Ok(ModelEvent::Usage(usage)));
                items.push(Ok(ModelEvent::Finish(
                    frontdesk_core::run::FinishReason::Stop,
                )));
            }
        }
        let pause = std::time::Duration::from_millis(self.pause_ms);
        Ok(Box::pin(futures_util::StreamExt::then(
            futures_util::stream::iter(items),
            move |item| async move {
                tokio::time::sleep(pause).await;
                item
            },
        )))
    }
}

/// A model that records every request it gets and answers `reply` (numbered by call), with
/// the context window it reports.
pub struct RecordingModel {
    pub requests: std::sync::Mutex<Vec<frontdesk_core::model::ModelRequest>>,
    pub reply: &'static str,
    pub window: Option<u32>,
}

impl RecordingModel {
    pub fn new(reply: &'static str, window: Option<u32>) -> Arc<Self> {
        Arc::new(Self {
            requests: Default::default(),
            reply,
            window,
        })
    }

    pub fn requests(&self) -> Vec<frontdesk_core::model::ModelRequest> {
        self.requests.lock().unwrap().clone()
    }
}

#[async_trait::async_trait]
impl frontdesk_core::model::ModelProvider for RecordingModel {
    async fn stream(
        &self,
        request: frontdesk_core::model::ModelRequest,
    ) -> Result<frontdesk_core::model::ModelStream, frontdesk_core::model::ModelError> {
        use frontdesk_core::model::ModelEvent;
        let n = {
            let mut requests = self.requests.lock().unwrap();
            requests.push(request);
            requests.len()
        };
        let items: Vec<Result<ModelEvent, frontdesk_core::model::ModelError>> = vec![
            Ok(ModelEvent::TextDelta(format!("{} #{n}", self.reply))),
            Ok(ModelEvent::Finish(frontdesk_core::run::FinishReason::Stop)),
        ];
        Ok(Box::pin(futures_util::stream::iter(items)))
    }

    fn context_window(&self, _model: &str) -> Option<u32> {
        self.window
    }
}

/// Waits for a peer process of an interop test (Python, Node) at most three minutes, so a
/// hung peer fails its test instead of hanging the suite.
pub async fn within(
    output: impl std::future::Future<Output = std::io::Result<std::process::Output>>,
) -> std::process::Output {
    match tokio::time::timeout(std::time::Duration::from_secs(180), output).await {
        Ok(result) => result.unwrap(),
        Err(_) => panic!("the interop peer did not finish within 180 s"),
    }
}
