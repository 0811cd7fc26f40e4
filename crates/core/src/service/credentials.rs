//! Provider keys tenants bring: stored sealed, listed by hint, opened only for a turn.

use std::collections::HashMap;

use secrecy::SecretString;

use super::Service;
use crate::credentials::{self, CredentialInfo, MAX_KEY_CHARS};
use crate::error::{Error, Result};
use crate::id::TenantId;

impl Service {
    pub(super) fn sealer(&self) -> Result<&credentials::Sealer> {
        self.sealer.as_ref().ok_or_else(|| Error::Conflict {
            code: "master_key_required",
            message: "this server has no master key to seal provider keys and secrets with: the operator must set FRONTDESK_MASTER_KEY"
                .to_owned(),
        })
    }

    /// Stores (or replaces) the tenant's key for `provider`. Whether the provider takes
    /// tenant keys is the caller's question (it knows the model registry).
    pub async fn put_provider_key(
        &self,
        tenant: &TenantId,
        provider: &str,
        api_key: &str,
    ) -> Result<CredentialInfo> {
        crate::validate::tool_name("provider", provider)?;
        let api_key = api_key.trim();
        crate::validate::non_empty("api_key", api_key, MAX_KEY_CHARS)?;
        if api_key.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(Error::invalid(
                "api_key",
                "must not contain spaces or control characters",
            ));
        }
        self.seal_and_store(tenant, provider, api_key).await
    }

    pub async fn list_provider_keys(&self, tenant: &TenantId) -> Result<Vec<CredentialInfo>> {
        let all = self
            .store
            .list_credentials(tenant)
            .await
            .map_err(|e| Error::from_store("provider key", e))?;
        Ok(all
            .into_iter()
            .filter(|c| super::secrets::is_provider_name(&c.provider))
            .collect())
    }

    pub async fn delete_provider_key(&self, tenant: &TenantId, provider: &str) -> Result<()> {
        self.store
            .delete_credential(tenant, provider)
            .await
            .map_err(|e| Error::from_store("provider key", e))
    }

    /// The tenant's keys in the clear, by provider, for one turn's model calls.
    pub async fn open_provider_keys(
        &self,
        tenant: &TenantId,
    ) -> Result<HashMap<String, SecretString>> {
        let sealed = self
            .store
            .sealed_credentials(tenant)
            .await
            .map_err(|e| Error::from_store("provider key", e))?;
        self.open_sealed(tenant, sealed)
    }

    /// Opens the provider keys among `(name, sealed)` credentials.
    pub(super) fn open_sealed(
        &self,
        tenant: &TenantId,
        sealed: Vec<(String, String)>,
    ) -> Result<HashMap<String, SecretString>> {
        let sealed: Vec<(String, String)> = sealed
            .into_iter()
            .filter(|(name, _)| super::secrets::is_provider_name(name))
            .collect();
        if sealed.is_empty() {
            return Ok(HashMap::new());
        }
        let sealer = self.sealer()?;
        sealed
            .into_iter()
            .map(|(provider, sealed)| {
                let key = sealer.open(tenant, &provider, &sealed)?;
                Ok((provider, key))
            })
            .collect()
    }
}
