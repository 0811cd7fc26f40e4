//! Creating, listing, revoking and checking API keys.

use serde::Deserialize;

use super::Service;
use crate::agent::AgentRef;
use crate::error::{Error, Result};
use crate::id::{KeyId, TenantId};
use crate::key::{ApiKey, KeyKind, KeySecret, Origin};
use crate::time::Timestamp;
use crate::validate;

/// How often `last_used_at` is written for a busy key, in milliseconds.
const TOUCH_INTERVAL_MS: i64 = 60_000;

/// A key to create.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    pub kind: KeyKind,
    #[serde(default)]
    pub name: String,
    /// Origins a publishable key may be used from (`https://shop.example.com`).
    #[serde(default)]
    pub allowed_origins: Vec<Origin>,
    /// Agent slugs a publishable key may reach; empty means all.
    #[serde(default)]
    pub allowed_agents: Vec<String>,
    /// Requests per minute for this key; the server default when absent.
    #[serde(default)]
    pub rate_limit_per_minute: Option<u32>,
}

impl NewKey {
    pub fn named(kind: KeyKind, name: &str) -> Self {
        Self {
            kind,
            name: name.to_owned(),
            allowed_origins: Vec::new(),
            allowed_agents: Vec::new(),
            rate_limit_per_minute: None,
        }
    }
}

/// Mints a key and the record to store for it.
pub(super) fn build_key(tenant: &TenantId, input: NewKey) -> (ApiKey, KeySecret) {
    let secret = KeySecret::generate(input.kind);
    let name = if input.name.trim().is_empty() {
        format!("{} key", input.kind.as_str())
    } else {
        input.name.trim().to_owned()
    };
    let key = ApiKey {
        id: KeyId::new(),
        tenant_id: tenant.clone(),
        kind: input.kind,
        name,
        prefix: secret.display_prefix(),
        allowed_origins: input.allowed_origins,
        allowed_agents: input.allowed_agents,
        rate_limit_per_minute: input.rate_limit_per_minute,
        created_at: Timestamp::now(),
        last_used_at: None,
        revoked_at: None,
    };
    (key, secret)
}

impl Service {
    /// Creates a key; the returned secret is the only time it is visible.
    pub async fn create_key(
        &self,
        tenant: &TenantId,
        input: NewKey,
    ) -> Result<(ApiKey, KeySecret)> {
        validate::max_chars("name", &input.name, 200)?;
        validate::max_items("allowed_origins", &input.allowed_origins, 32)?;
        validate::max_items("allowed_agents", &input.allowed_agents, 64)?;
        if input.kind == KeyKind::Secret
            && !(input.allowed_origins.is_empty() && input.allowed_agents.is_empty())
        {
            return Err(Error::invalid(
                "allowed_origins",
                "allowed origins and agents apply to publishable keys only; secret keys must never reach a browser",
            ));
        }
        if input.kind == KeyKind::Publishable && input.allowed_origins.is_empty() {
            return Err(Error::invalid(
                "allowed_origins",
                "a publishable key needs at least one allowed origin",
            ));
        }
        for (idx, slug) in input.allowed_agents.iter().enumerate() {
            let field = format!("allowed_agents[{idx}]");
            validate::slug(&field, slug)?;
            match self
                .store
                .get_agent(tenant, &AgentRef::Slug(slug.clone()))
                .await
            {
                Ok(_) => {}
                Err(crate::StoreError::NotFound) => {
                    return Err(Error::invalid(
                        field,
                        format!("no agent with slug `{slug}`"),
                    ));
                }
                Err(e) => return Err(Error::from_store("agent", e)),
            }
        }
        if input
            .rate_limit_per_minute
            .is_some_and(|n| n == 0 || n > 1_000_000)
        {
            return Err(Error::invalid(
                "rate_limit_per_minute",
                "must be between 1 and 1000000",
            ));
        }
        let (key, secret) = build_key(tenant, input);
        self.store
            .insert_api_key(&key, &secret.hash())
            .await
            .map_err(|e| Error::from_store("API key", e))?;
        Ok((key, secret))
    }

    pub async fn list_keys(&self, tenant: &TenantId) -> Result<Vec<ApiKey>> {
        self.store
            .list_api_keys(tenant)
            .await
            .map_err(|e| Error::from_store("API key", e))
    }

    /// Revokes a key. Revoking twice is harmless and keeps the first time.
    pub async fn revoke_key(&self, tenant: &TenantId, key: &KeyId) -> Result<ApiKey> {
        self.store
            .revoke_api_key(tenant, key, Timestamp::now())
            .await
            .map_err(|e| Error::from_store("API key", e))
    }

    /// Finds the live key a client presented and marks it used. Unknown and revoked keys
    /// are both 401.
    pub async fn authenticate(&self, presented: &str) -> Result<ApiKey> {
        let key = self.live_key(presented).await?;
        let now = Timestamp::now();
        if key
            .last_used_at
            .is_none_or(|at| now.as_millis() - at.as_millis() > TOUCH_INTERVAL_MS)
        {
            self.store
                .touch_api_key(&key.id, now)
                .await
                .map_err(|e| Error::from_store("API key", e))?;
        }
        Ok(key)
    }

    /// The live key `presented` names, without marking it used (the dashboard checking a
    /// key someone pasted is not a use of it). Unknown and revoked keys are both 401.
    pub async fn live_key(&self, presented: &str) -> Result<ApiKey> {
        let secret = KeySecret::from_presented(presented);
        if secret.kind().is_none() || presented.len() > 128 {
            return Err(Error::Unauthenticated {
                code: "invalid_api_key",
                message: "the API key is malformed: frontdesk keys start with fd_sk_ or fd_pk_"
                    .to_owned(),
            });
        }
        let found = self
            .store
            .find_api_key_by_hash(&secret.hash())
            .await
            .map_err(|e| Error::from_store("API key", e))?;
        let Some(key) = found else {
            return Err(Error::Unauthenticated {
                code: "invalid_api_key",
                message: "the API key is not valid".to_owned(),
            });
        };
        if key.revoked_at.is_some() {
            return Err(Error::Unauthenticated {
                code: "revoked_api_key",
                message: "the API key has been revoked".to_owned(),
            });
        }
        Ok(key)
    }
}
