//! The one configuration, validated at start: defaults, then `frontdesk.toml`, then
//! `FRONTDESK_*` environment variables (env wins), then command-line flags.
//!
//! Unknown keys in the file and unknown `FRONTDESK_*` variables are errors, so a typo never
//! silently falls back to a default. Secrets are `SecretString`s and `show` redacts them.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::error::{Error, Result};

mod sections;
pub use sections::{Knowledge, Limits, Local, Voice};

/// The effective configuration of a frontdesk process.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address the HTTP listener binds.
    pub bind: SocketAddr,
    /// Directory for the SQLite database and uploaded files.
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; defaults to `sqlite://<data_dir>/frontdesk.db`.
    pub database_url: Option<SecretString>,
    /// The URL users reach this server at, for printed links; defaults to `http://<bind>`.
    pub public_url: Option<String>,
    /// Bearer token of the platform operator (`POST /api/v1/tenants`); unset disables that API.
    pub admin_token: Option<SecretString>,
    /// When set, `/metrics` requires `Authorization: Bearer <metrics_token>`.
    pub metrics_token: Option<SecretString>,
    /// The key that seals the provider keys tenants bring: 32 bytes, base64 or hex. Unset on
    /// SQLite: a random key kept in `<data_dir>/master.key`. Unset on PostgreSQL: tenants
    /// cannot store provider keys (every instance must share the same master key).
    pub master_key: Option<SecretString>,
    /// Log filter (`info`, `frontdesk=debug,tower_http=info`, …).
    pub log: String,
    /// Create the demo tenant, agent and keys on first start.
    pub bootstrap_demo: bool,
    /// Let webhooks and MCP servers reach private, loopback and link-local addresses (local
    /// development and tests only: in production it opens the internal network to tenants).
    pub allow_private_urls: bool,
    /// Let anyone create an organisation from the dashboard's sign-up page (off: the
    /// operator creates tenants, and owners invite members).
    pub allow_signup: bool,
    pub limits: Limits,
    pub local: Local,
    pub knowledge: Knowledge,
    pub voice: Voice,
    /// Model providers by name (the `provider` of `provider/model`). `openai` and
    /// `anthropic` are filled from `OPENAI_API_KEY`/`OPENAI_BASE_URL` and
    /// `ANTHROPIC_API_KEY`/`ANTHROPIC_BASE_URL` when set. The `openai` these variables create
    /// speaks the Responses API to the official API, and Chat Completions when
    /// `OPENAI_BASE_URL` is set (compatible servers such as Ollama and vLLM mostly speak only
    /// that); a `[providers.openai]` in the file keeps the kind it declares.
    pub providers: BTreeMap<String, ProviderConfig>,
    /// Prices by `provider/model`, for usage reports.
    pub prices: BTreeMap<String, crate::usage::Price>,
}

/// The protocol a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProviderKind {
    /// OpenAI Chat Completions (and every OpenAI-compatible server).
    Openai,
    /// The OpenAI Responses API (`POST /responses`).
    #[serde(rename = "openai_responses")]
    OpenaiResponses,
    /// Anthropic Messages.
    Anthropic,
}

impl ProviderKind {
    /// The name the configuration file uses.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Openai => "openai",
            ProviderKind::OpenaiResponses => "openai_responses",
            ProviderKind::Anthropic => "anthropic",
        }
    }
}

/// A named model provider.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    pub kind: ProviderKind,
    /// The API root; the provider's public default when unset.
    #[serde(default)]
    pub base_url: Option<String>,
    #[serde(default)]
    pub api_key: Option<SecretString>,
    /// The HTTP version spoken to it.
    #[serde(default)]
    pub http: HttpVersion,
    /// Streams one HTTP/2 connection carries before another is opened (servers limit
    /// them: 100 is the smallest limit RFC 9113 recommends, and what many servers set).
    #[serde(default = "default_streams_per_connection")]
    pub max_streams_per_connection: u32,
}

impl ProviderConfig {
    /// A provider of `kind` with every other setting at its default.
    pub fn new(kind: ProviderKind) -> Self {
        Self {
            kind,
            base_url: None,
            api_key: None,
            http: HttpVersion::default(),
            max_streams_per_connection: default_streams_per_connection(),
        }
    }
}

/// Streams one HTTP/2 connection to a provider carries by default.
pub const DEFAULT_STREAMS_PER_CONNECTION: u32 = 100;

fn default_streams_per_connection() -> u32 {
    DEFAULT_STREAMS_PER_CONNECTION
}

/// The HTTP version spoken to a provider.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HttpVersion {
    /// HTTP/2 when the server offers it over TLS (ALPN), else HTTP/1.1: one connection
    /// carries many streams.
    #[default]
    Auto,
    /// HTTP/1.1 only: one connection per stream.
    Http1,
    /// HTTP/2 only, also over plain `http://` (h2c with prior knowledge, for servers and
    /// proxies that speak it).
    Http2,
}

impl HttpVersion {
    /// The name the configuration file uses.
    pub fn as_str(self) -> &'static str {
        match self {
            HttpVersion::Auto => "auto",
            HttpVersion::Http1 => "http1",
            HttpVersion::Http2 => "http2",
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./data"),
            database_url: None,
            public_url: None,
            admin_token: None,
            metrics_token: None,
            master_key: None,
            log: "info".to_owned(),
            bootstrap_demo: true,
            allow_private_urls: false,
            allow_signup: false,
            limits: Limits::default(),
            local: Local::default(),
            knowledge: Knowledge::default(),
            voice: Voice::default(),
            providers: BTreeMap::new(),
            prices: BTreeMap::new(),
        }
    }
}

/// Environment variables `Config` reads, with the setting each fills.
const ENV_VARS: &[(&str, &str)] = &[
    (
        "FRONTDESK_CONFIG",
        "path of the TOML file (default ./frontdesk.toml when present)",
    ),
    ("FRONTDESK_BIND", "bind"),
    ("FRONTDESK_DATA_DIR", "data_dir"),
    ("FRONTDESK_DATABASE_URL", "database_url"),
    ("DATABASE_URL", "database_url"),
    ("FRONTDESK_PUBLIC_URL", "public_url"),
    ("FRONTDESK_ADMIN_TOKEN", "admin_token"),
    ("FRONTDESK_METRICS_TOKEN", "metrics_token"),
    ("FRONTDESK_MASTER_KEY", "master_key"),
    ("FRONTDESK_LOG", "log"),
    ("FRONTDESK_BOOTSTRAP_DEMO", "bootstrap_demo"),
    ("FRONTDESK_ALLOW_PRIVATE_URLS", "allow_private_urls"),
    ("FRONTDESK_ALLOW_SIGNUP", "allow_signup"),
    ("FRONTDESK_MAX_BODY_BYTES", "limits.max_body_bytes"),
    (
        "FRONTDESK_RATE_LIMIT_PER_MINUTE",
        "limits.rate_limit_per_minute",
    ),
    ("FRONTDESK_MAX_PAGE_SIZE", "limits.max_page_size"),
    (
        "FRONTDESK_WIDGET_PER_IP_PER_MINUTE",
        "limits.widget_per_ip_per_minute",
    ),
    (
        "FRONTDESK_AUTH_FAILURES_PER_MINUTE",
        "limits.auth_failures_per_minute",
    ),
    (
        "FRONTDESK_MAX_CONNECTIONS_PER_ADDRESS",
        "limits.max_connections_per_address",
    ),
    (
        "FRONTDESK_TRUST_FORWARDED_FOR",
        "limits.trust_forwarded_for",
    ),
    (
        "FRONTDESK_MAX_CALLS_PER_TENANT",
        "limits.max_calls_per_tenant",
    ),
    ("FRONTDESK_TWILIO_API_URL", "voice.twilio_api_url"),
    ("FRONTDESK_MODELS_DIR", "local.models_dir"),
    ("FRONTDESK_LOCAL_PARALLEL", "local.parallel"),
    ("FRONTDESK_LOCAL_THREADS", "local.threads"),
    ("FRONTDESK_LOCAL_CONTEXT", "local.context"),
    ("FRONTDESK_LOCAL_PRELOAD", "local.preload"),
    ("FRONTDESK_EMBEDDER", "knowledge.embedder"),
    ("FRONTDESK_EMBEDDER_DIMENSIONS", "knowledge.dimensions"),
    ("FRONTDESK_INGEST_WORKERS", "knowledge.workers"),
    ("FRONTDESK_MAX_DOCUMENT_MB", "knowledge.max_document_mb"),
];

/// Names of `FRONTDESK_*` variables owned by other parts (read where they are used).
const OTHER_ENV_VARS: &[&str] = &["FRONTDESK_TEST_DATABASE_URL"];

impl Config {
    /// Loads the configuration from `file` (or `./frontdesk.toml` when present) and `env`.
    pub fn load(file: Option<&Path>, env: &BTreeMap<String, String>) -> Result<Self> {
        let explicit = file
            .map(Path::to_path_buf)
            .or_else(|| env.get("FRONTDESK_CONFIG").map(PathBuf::from));
        let mut config = match &explicit {
            Some(path) => Self::from_file(path)?,
            None if Path::new("frontdesk.toml").exists() => {
                Self::from_file(Path::new("frontdesk.toml"))?
            }
            None => Self::default(),
        };
        config.apply_env(env)?;
        config.validate()?;
        Ok(config)
    }

    fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::invalid("config", format!("cannot read {}: {e}", path.display()))
        })?;
        toml::from_str(&text)
            .map_err(|e| Error::invalid("config", format!("{}: {}", path.display(), e.message())))
    }

    fn apply_env(&mut self, env: &BTreeMap<String, String>) -> Result<()> {
        let get = |name: &str| env.get(name).filter(|value| !value.is_empty());
        for (name, kind, key_var, url_var) in [
            (
                "openai",
                ProviderKind::Openai,
                "OPENAI_API_KEY",
                "OPENAI_BASE_URL",
            ),
            (
                "anthropic",
                ProviderKind::Anthropic,
                "ANTHROPIC_API_KEY",
                "ANTHROPIC_BASE_URL",
            ),
        ] {
            if get(key_var).is_none() && get(url_var).is_none() {
                continue;
            }
            // The official API gets the Responses API; a custom URL is most likely a
            // compatible server that speaks only Chat Completions.
            let kind = match kind {
                ProviderKind::Openai if get(url_var).is_none() => ProviderKind::OpenaiResponses,
                other => other,
            };
            let provider = self
                .providers
                .entry(name.to_owned())
                .or_insert(ProviderConfig::new(kind));
            if let Some(key) = get(key_var) {
                provider.api_key = Some(SecretString::from(key.clone()));
            }
            if let Some(url) = get(url_var) {
                provider.base_url = Some(url.clone());
            }
        }
        for name in env.keys().filter(|name| name.starts_with("FRONTDESK_")) {
            if !ENV_VARS.iter().any(|(known, _)| known == name)
                && !OTHER_ENV_VARS.contains(&name.as_str())
            {
                let known: Vec<&str> = ENV_VARS.iter().map(|(known, _)| *known).collect();
                return Err(Error::invalid(
                    name.clone(),
                    format!("unknown setting; known ones are {}", known.join(", ")),
                ));
            }
        }
        let get = |name: &str| env.get(name).filter(|value| !value.is_empty());
        if let Some(value) = get("FRONTDESK_BIND") {
            self.bind = parse_env("FRONTDESK_BIND", value)?;
        }
        if let Some(value) = get("FRONTDESK_DATA_DIR") {
            self.data_dir = PathBuf::from(value);
        }
        if let Some(value) = get("DATABASE_URL") {
            self.database_url = Some(SecretString::from(value.clone()));
        }
        if let Some(value) = get("FRONTDESK_DATABASE_URL") {
            self.database_url = Some(SecretString::from(value.clone()));
        }
        if let Some(value) = get("FRONTDESK_PUBLIC_URL") {
            self.public_url = Some(value.clone());
        }
        if let Some(value) = get("FRONTDESK_ADMIN_TOKEN") {
            self.admin_token = Some(SecretString::from(value.clone()));
        }
        if let Some(value) = get("FRONTDESK_METRICS_TOKEN") {
            self.metrics_token = Some(SecretString::from(value.clone()));
        }
        if let Some(value) = get("FRONTDESK_MASTER_KEY") {
            self.master_key = Some(SecretString::from(value.clone()));
        }
        if let Some(value) = get("FRONTDESK_LOG") {
            self.log = value.clone();
        }
        if let Some(value) = get("FRONTDESK_BOOTSTRAP_DEMO") {
            self.bootstrap_demo = parse_env("FRONTDESK_BOOTSTRAP_DEMO", value)?;
        }
        if let Some(value) = get("FRONTDESK_ALLOW_PRIVATE_URLS") {
            self.allow_private_urls = parse_env("FRONTDESK_ALLOW_PRIVATE_URLS", value)?;
        }
        if let Some(value) = get("FRONTDESK_ALLOW_SIGNUP") {
            self.allow_signup = parse_env("FRONTDESK_ALLOW_SIGNUP", value)?;
        }
        if let Some(value) = get("FRONTDESK_MAX_BODY_BYTES") {
            self.limits.max_body_bytes = parse_env("FRONTDESK_MAX_BODY_BYTES", value)?;
        }
        if let Some(value) = get("FRONTDESK_RATE_LIMIT_PER_MINUTE") {
            self.limits.rate_limit_per_minute =
                parse_env("FRONTDESK_RATE_LIMIT_PER_MINUTE", value)?;
        }
        if let Some(value) = get("FRONTDESK_MAX_PAGE_SIZE") {
            self.limits.max_page_size = parse_env("FRONTDESK_MAX_PAGE_SIZE", value)?;
        }
        if let Some(value) = get("FRONTDESK_WIDGET_PER_IP_PER_MINUTE") {
            self.limits.widget_per_ip_per_minute =
                parse_env("FRONTDESK_WIDGET_PER_IP_PER_MINUTE", value)?;
        }
        if let Some(value) = get("FRONTDESK_MAX_CONNECTIONS_PER_ADDRESS") {
            self.limits.max_connections_per_address =
                parse_env("FRONTDESK_MAX_CONNECTIONS_PER_ADDRESS", value)?;
        }
        if let Some(value) = get("FRONTDESK_AUTH_FAILURES_PER_MINUTE") {
            self.limits.auth_failures_per_minute =
                parse_env("FRONTDESK_AUTH_FAILURES_PER_MINUTE", value)?;
        }
        if let Some(value) = get("FRONTDESK_TRUST_FORWARDED_FOR") {
            self.limits.trust_forwarded_for = parse_env("FRONTDESK_TRUST_FORWARDED_FOR", value)?;
        }
        if let Some(value) = get("FRONTDESK_EMBEDDER") {
            self.knowledge.embedder = value.to_owned();
        }
        if let Some(value) = get("FRONTDESK_EMBEDDER_DIMENSIONS") {
            self.knowledge.dimensions = Some(parse_env("FRONTDESK_EMBEDDER_DIMENSIONS", value)?);
        }
        if let Some(value) = get("FRONTDESK_INGEST_WORKERS") {
            self.knowledge.workers = parse_env("FRONTDESK_INGEST_WORKERS", value)?;
        }
        if let Some(value) = get("FRONTDESK_MAX_DOCUMENT_MB") {
            self.knowledge.max_document_mb = parse_env("FRONTDESK_MAX_DOCUMENT_MB", value)?;
        }
        if let Some(value) = get("FRONTDESK_MAX_CALLS_PER_TENANT") {
            self.limits.max_calls_per_tenant = parse_env("FRONTDESK_MAX_CALLS_PER_TENANT", value)?;
        }
        if let Some(value) = get("FRONTDESK_TWILIO_API_URL") {
            self.voice.twilio_api_url = value.to_owned();
        }
        if let Some(value) = get("FRONTDESK_MODELS_DIR") {
            self.local.models_dir = PathBuf::from(value);
        }
        if let Some(value) = get("FRONTDESK_LOCAL_PARALLEL") {
            self.local.parallel = parse_env("FRONTDESK_LOCAL_PARALLEL", value)?;
        }
        if let Some(value) = get("FRONTDESK_LOCAL_THREADS") {
            self.local.threads = parse_env("FRONTDESK_LOCAL_THREADS", value)?;
        }
        if let Some(value) = get("FRONTDESK_LOCAL_CONTEXT") {
            self.local.context = parse_env("FRONTDESK_LOCAL_CONTEXT", value)?;
        }
        if let Some(value) = get("FRONTDESK_LOCAL_PRELOAD") {
            self.local.preload = parse_env("FRONTDESK_LOCAL_PRELOAD", value)?;
        }
        Ok(())
    }

    /// Checks values that parse but make no sense.
    pub fn validate(&self) -> Result<()> {
        if self.limits.max_body_bytes < 1024 {
            return Err(Error::invalid(
                "limits.max_body_bytes",
                "must be at least 1024",
            ));
        }
        if self.limits.rate_limit_per_minute == 0 {
            return Err(Error::invalid(
                "limits.rate_limit_per_minute",
                "must be at least 1",
            ));
        }
        if !(1..=1000).contains(&self.limits.max_page_size) {
            return Err(Error::invalid(
                "limits.max_page_size",
                "must be between 1 and 1000",
            ));
        }
        if let Some(token) = &self.admin_token {
            if token.expose_secret().len() < 16 {
                return Err(Error::invalid(
                    "admin_token",
                    "must be at least 16 characters",
                ));
            }
        }
        if !self.knowledge.embedder.contains('/') {
            return Err(Error::invalid(
                "knowledge.embedder",
                "must be `provider/model`, e.g. local/all-minilm-l6-v2",
            ));
        }
        if !(1..=16).contains(&self.knowledge.workers) {
            return Err(Error::invalid(
                "knowledge.workers",
                "must be between 1 and 16",
            ));
        }
        if !(1..=512).contains(&self.knowledge.max_document_mb) {
            return Err(Error::invalid(
                "knowledge.max_document_mb",
                "must be between 1 and 512",
            ));
        }
        if self.knowledge.dimensions == Some(0) {
            return Err(Error::invalid("knowledge.dimensions", "must be above 0"));
        }
        if !(1..=64).contains(&self.local.parallel) {
            return Err(Error::invalid("local.parallel", "must be between 1 and 64"));
        }
        if self.local.threads > 256 {
            return Err(Error::invalid("local.threads", "must be at most 256"));
        }
        if !(256..=1_048_576).contains(&self.local.context) {
            return Err(Error::invalid(
                "local.context",
                "must be between 256 and 1048576 tokens",
            ));
        }
        if let Some(key) = &self.master_key {
            crate::credentials::parse_master_key(key.expose_secret())?;
        }
        for (name, provider) in &self.providers {
            crate::validate::tool_name(&format!("providers.{name}"), name)?;
            if let Some(url) = &provider.base_url {
                crate::validate::http_url(&format!("providers.{name}.base_url"), url)?;
            }
            if !(1..=10_000).contains(&provider.max_streams_per_connection) {
                return Err(Error::invalid(
                    format!("providers.{name}.max_streams_per_connection"),
                    "must be between 1 and 10000",
                ));
            }
        }
        let url = self.database_url();
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return Err(Error::invalid(
                "database_url",
                "must start with sqlite:// or postgres://",
            ));
        }
        Ok(())
    }

    /// The database URL in effect.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.expose_secret().to_owned(),
            None => format!("sqlite://{}", self.data_dir.join("frontdesk.db").display()),
        }
    }

    /// The base URL printed links use.
    pub fn public_url(&self) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("http://{}", self.bind),
        }
    }

    /// The effective configuration as JSON, secrets redacted.
    pub fn show_json(&self) -> serde_json::Value {
        let redacted = |secret: &Option<SecretString>| secret.as_ref().map(|_| "[redacted]");
        serde_json::json!({
            "bind": self.bind.to_string(),
            "data_dir": self.data_dir.display().to_string(),
            "database_url": redact_url(&self.database_url()),
            "public_url": self.public_url(),
            "admin_token": redacted(&self.admin_token),
            "metrics_token": redacted(&self.metrics_token),
            "master_key": redacted(&self.master_key),
            "log": self.log,
            "bootstrap_demo": self.bootstrap_demo,
            "allow_private_urls": self.allow_private_urls,
            "allow_signup": self.allow_signup,
            "providers": self.providers.iter().map(|(name, p)| (name.clone(), serde_json::json!({
                "kind": p.kind.as_str(),
                "base_url": p.base_url.as_deref().map(redact_url),
                "api_key": redacted(&p.api_key),
                "http": p.http.as_str(),
                "max_streams_per_connection": p.max_streams_per_connection,
            }))).collect::<serde_json::Map<String, serde_json::Value>>(),
            "limits": {
                "max_body_bytes": self.limits.max_body_bytes,
                "rate_limit_per_minute": self.limits.rate_limit_per_minute,
                "max_page_size": self.limits.max_page_size,
                "widget_per_ip_per_minute": self.limits.widget_per_ip_per_minute,
                "auth_failures_per_minute": self.limits.auth_failures_per_minute,
                "max_connections_per_address": self.limits.max_connections_per_address,
                "trust_forwarded_for": self.limits.trust_forwarded_for,
            },
            "local": {
                "models_dir": self.local.models_dir.display().to_string(),
                "parallel": self.local.parallel,
                "threads": self.local.threads,
                "context": self.local.context,
                "preload": self.local.preload,
            },
            "knowledge": {
                "embedder": self.knowledge.embedder,
                "dimensions": self.knowledge.dimensions,
                "workers": self.knowledge.workers,
                "max_document_mb": self.knowledge.max_document_mb,
            },
        })
    }

    /// The providers section as TOML lines, keys redacted.
    fn show_providers(&self) -> String {
        let mut out = String::new();
        for (name, provider) in &self.providers {
            let kind = provider.kind.as_str();
            out.push_str(&format!("\n[providers.{name}]\nkind = \"{kind}\"\n"));
            if let Some(url) = &provider.base_url {
                out.push_str(&format!("base_url = \"{}\"\n", redact_url(url)));
            }
            if provider.api_key.is_some() {
                out.push_str("api_key = \"[redacted]\"\n");
            }
            if provider.http != HttpVersion::Auto {
                out.push_str(&format!("http = \"{}\"\n", provider.http.as_str()));
            }
            if provider.max_streams_per_connection != default_streams_per_connection() {
                out.push_str(&format!(
                    "max_streams_per_connection = {}\n",
                    provider.max_streams_per_connection
                ));
            }
        }
        out
    }

    /// The effective configuration as TOML, secrets redacted.
    pub fn show(&self) -> String {
        let redacted = |secret: &Option<SecretString>| match secret {
            Some(_) => "\"[redacted]\"".to_owned(),
            None => "\"\" # unset".to_owned(),
        };
        format!(
            "bind = \"{}\"\ndata_dir = \"{}\"\ndatabase_url = \"{}\"\npublic_url = \"{}\"\nadmin_token = {}\nmetrics_token = {}\nmaster_key = {}\nlog = \"{}\"\nbootstrap_demo = {}\nallow_private_urls = {}\nallow_signup = {}\n\n[limits]\nmax_body_bytes = {}\nrate_limit_per_minute = {}\nmax_page_size = {}\nwidget_per_ip_per_minute = {}\nauth_failures_per_minute = {}\nmax_connections_per_address = {}\ntrust_forwarded_for = {}\n\n[local]\nmodels_dir = \"{}\"\nparallel = {}\nthreads = {}\ncontext = {}\npreload = {}\n\n[knowledge]\nembedder = \"{}\"\n{}workers = {}\nmax_document_mb = {}\n",
            self.bind,
            self.data_dir.display(),
            redact_url(&self.database_url()),
            self.public_url(),
            redacted(&self.admin_token),
            redacted(&self.metrics_token),
            redacted(&self.master_key),
            self.log,
            self.bootstrap_demo,
            self.allow_private_urls,
            self.allow_signup,
            self.limits.max_body_bytes,
            self.limits.rate_limit_per_minute,
            self.limits.max_page_size,
            self.limits.widget_per_ip_per_minute,
            self.limits.auth_failures_per_minute,
            self.limits.max_connections_per_address,
            self.limits.trust_forwarded_for,
            self.local.models_dir.display(),
            self.local.parallel,
            self.local.threads,
            self.local.context,
            self.local.preload,
            self.knowledge.embedder,
            self.knowledge
                .dimensions
                .map(|d| format!("dimensions = {d}\n"))
                .unwrap_or_default(),
            self.knowledge.workers,
            self.knowledge.max_document_mb,
        ) + &self.show_providers()
    }
}

fn parse_env<T: std::str::FromStr>(name: &str, value: &str) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    value
        .parse()
        .map_err(|e: T::Err| Error::invalid(name, format!("`{value}`: {e}")))
}

/// Replaces the password in `scheme://user:password@host/…` and in a `password=` query
/// parameter with `[redacted]`.
pub fn redact_url(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let base = match base.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find('/').unwrap_or(rest.len());
            let (authority, path) = rest.split_at(authority_end);
            match authority.rsplit_once('@') {
                Some((user_info, host)) => {
                    let user = user_info.split(':').next().unwrap_or_default();
                    let shown = if user_info.contains(':') {
                        format!("{user}:[redacted]")
                    } else {
                        user.to_owned()
                    };
                    format!("{scheme}://{shown}@{host}{path}")
                }
                None => base.to_owned(),
            }
        }
        None => base.to_owned(),
    };
    match query {
        Some(query) => {
            let params: Vec<String> = query
                .split('&')
                .map(|param| match param.split_once('=') {
                    Some((name, _))
                        if name.eq_ignore_ascii_case("password")
                            || name.eq_ignore_ascii_case("sslpassword") =>
                    {
                        format!("{name}=[redacted]")
                    }
                    _ => param.to_owned(),
                })
                .collect();
            format!("{base}?{}", params.join("&"))
        }
        None => base,
    }
}

#[cfg(test)]
mod tests;
