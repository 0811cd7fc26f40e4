//! Tenant secrets: values webhook headers use as `{{secrets.NAME}}`, and the tenant's webhook
//! signing secret. They are sealed like provider keys and kept beside them under their own
//! names (`secret:NAME`, `frontdesk:webhook_signing`), which provider names cannot take.

use std::collections::HashMap;

use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use super::Service;
use crate::credentials::{self, SealedCredential};
use crate::error::{Error, Result};
use crate::id::TenantId;
use crate::time::Timestamp;

const SECRET_PREFIX: &str = "secret:";
const SIGNING: &str = "frontdesk:webhook_signing";
const IDENTITY: &str = "frontdesk:widget_identity";
/// Where the secret a rotation replaced is kept while its overlap lasts (`<name>:previous`),
/// sealed with the time it stops counting.
const PREVIOUS: &str = ":previous";
/// How long a replaced secret still counts, at most (a week).
pub const MAX_OVERLAP_SECS: u64 = 7 * 24 * 3_600;
/// How long it counts when the caller does not say (a day).
pub const DEFAULT_OVERLAP_SECS: u64 = 24 * 3_600;
/// Longest secret value.
const MAX_SECRET_CHARS: usize = 4_096;

/// One of frontdesk's own secrets of a tenant, and the one a rotation replaced while its
/// overlap lasts.
#[derive(Debug, Clone)]
pub struct OwnSecrets {
    pub current: SecretString,
    pub previous: Option<SecretString>,
}

/// A stored secret as lists show it: its name and a hint, never the value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SecretInfo {
    pub name: String,
    pub hint: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Service {
    /// Seals `value` for `tenant` under `name` and stores it (provider keys and secrets alike).
    pub(super) async fn seal_and_store(
        &self,
        tenant: &TenantId,
        name: &str,
        value: &str,
    ) -> Result<crate::credentials::CredentialInfo> {
        let sealed = SealedCredential {
            provider: name.to_owned(),
            sealed: self.sealer()?.seal(tenant, name, value)?,
            hint: credentials::hint(value),
            at: Timestamp::now(),
        };
        self.store
            .put_credential(tenant, &sealed)
            .await
            .map_err(|e| Error::from_store("secret", e))
    }

    /// Stores (or replaces) the secret `name`.
    pub async fn put_secret(
        &self,
        tenant: &TenantId,
        name: &str,
        value: &str,
    ) -> Result<SecretInfo> {
        crate::validate::tool_name("name", name)?;
        crate::validate::non_empty("value", value, MAX_SECRET_CHARS)?;
        if value.contains(['\r', '\n']) {
            return Err(Error::invalid("value", "must not contain line breaks"));
        }
        let stored = self
            .seal_and_store(tenant, &format!("{SECRET_PREFIX}{name}"), value)
            .await?;
        Ok(SecretInfo {
            name: name.to_owned(),
            hint: stored.hint,
            created_at: stored.created_at,
            updated_at: stored.updated_at,
        })
    }

    pub async fn list_secrets(&self, tenant: &TenantId) -> Result<Vec<SecretInfo>> {
        let all = self
            .store
            .list_credentials(tenant)
            .await
            .map_err(|e| Error::from_store("secret", e))?;
        Ok(all
            .into_iter()
            .filter_map(|c| {
                c.provider
                    .strip_prefix(SECRET_PREFIX)
                    .map(|name| SecretInfo {
                        name: name.to_owned(),
                        hint: c.hint,
                        created_at: c.created_at,
                        updated_at: c.updated_at,
                    })
            })
            .collect())
    }

    pub async fn delete_secret(&self, tenant: &TenantId, name: &str) -> Result<()> {
        // A name no secret can have names none: not found, as for any other absent one.
        crate::validate::tool_name("name", name)
            .map_err(|_| Error::NotFound { resource: "secret" })?;
        self.store
            .delete_credential(tenant, &format!("{SECRET_PREFIX}{name}"))
            .await
            .map_err(|e| Error::from_store("secret", e))
    }

    /// The tenant's secrets in the clear, by name, for one run's webhook calls.
    pub async fn open_secrets(&self, tenant: &TenantId) -> Result<HashMap<String, SecretString>> {
        let sealed = self
            .store
            .sealed_credentials(tenant)
            .await
            .map_err(|e| Error::from_store("secret", e))?;
        let mut out = HashMap::new();
        for (name, sealed) in sealed {
            if let Some(short) = name.strip_prefix(SECRET_PREFIX) {
                out.insert(
                    short.to_owned(),
                    self.sealer()?.open(tenant, &name, &sealed)?,
                );
            }
        }
        Ok(out)
    }

    /// The secret the tenant's webhooks are signed with, made on first use.
    pub async fn webhook_signing_secret(&self, tenant: &TenantId) -> Result<SecretString> {
        self.own_secret(tenant, SIGNING, "whsec").await
    }

    /// The signing secret and, while a rotation's overlap lasts, the one it replaced (requests
    /// are signed with both, so receivers can move over).
    pub async fn webhook_signing_secrets(&self, tenant: &TenantId) -> Result<OwnSecrets> {
        Ok(OwnSecrets {
            current: self.own_secret(tenant, SIGNING, "whsec").await?,
            previous: self.previous_own_secret(tenant, SIGNING).await?,
        })
    }

    /// Replaces the signing secret with a new random one and returns it; the old one still
    /// signs for `overlap_secs` (0: not at all).
    pub async fn rotate_webhook_signing_secret(
        &self,
        tenant: &TenantId,
        overlap_secs: u64,
    ) -> Result<SecretString> {
        self.rotate_own_secret(tenant, SIGNING, "whsec", overlap_secs)
            .await
    }

    /// The secret the tenant signs its users' widget tokens with, made on first use.
    pub async fn widget_identity_secret(&self, tenant: &TenantId) -> Result<SecretString> {
        self.own_secret(tenant, IDENTITY, "wisec").await
    }

    /// The identity secret and, while a rotation's overlap lasts, the one it replaced (user
    /// tokens signed with either are accepted).
    pub async fn widget_identity_secrets(&self, tenant: &TenantId) -> Result<OwnSecrets> {
        Ok(OwnSecrets {
            current: self.own_secret(tenant, IDENTITY, "wisec").await?,
            previous: self.previous_own_secret(tenant, IDENTITY).await?,
        })
    }

    /// Replaces the widget identity secret; user tokens signed with the old one keep working
    /// for `overlap_secs` (0: they stop at once).
    pub async fn rotate_widget_identity_secret(
        &self,
        tenant: &TenantId,
        overlap_secs: u64,
    ) -> Result<SecretString> {
        self.rotate_own_secret(tenant, IDENTITY, "wisec", overlap_secs)
            .await
    }

    async fn rotate_own_secret(
        &self,
        tenant: &TenantId,
        name: &str,
        prefix: &str,
        overlap_secs: u64,
    ) -> Result<SecretString> {
        if overlap_secs > MAX_OVERLAP_SECS {
            return Err(Error::invalid(
                "overlap_seconds",
                format!("at most {MAX_OVERLAP_SECS} (a week)"),
            ));
        }
        let previous_name = format!("{name}{PREVIOUS}");
        match self.stored_own_secret(tenant, name).await? {
            Some(old) if overlap_secs > 0 => {
                let kept = serde_json::json!({
                    "secret": old.expose_secret(),
                    "until": Timestamp::now().plus_secs(overlap_secs).as_millis(),
                });
                self.seal_and_store(tenant, &previous_name, &kept.to_string())
                    .await?;
            }
            _ => {
                self.store
                    .delete_credential(tenant, &previous_name)
                    .await
                    .or_else(|e| match e {
                        crate::StoreError::NotFound => Ok(()),
                        other => Err(other),
                    })
                    .map_err(|e| Error::from_store("secret", e))?;
            }
        }
        self.new_own_secret(tenant, name, prefix).await
    }

    /// The secret a rotation of `name` replaced, while its overlap lasts.
    async fn previous_own_secret(
        &self,
        tenant: &TenantId,
        name: &str,
    ) -> Result<Option<SecretString>> {
        let Some(kept) = self
            .stored_own_secret(tenant, &format!("{name}{PREVIOUS}"))
            .await?
        else {
            return Ok(None);
        };
        let kept: serde_json::Value =
            serde_json::from_str(kept.expose_secret()).map_err(Error::internal)?;
        let until = kept["until"].as_i64().unwrap_or(0);
        match kept["secret"].as_str() {
            Some(secret) if until > Timestamp::now().as_millis() => {
                Ok(Some(SecretString::from(secret.to_owned())))
            }
            _ => Ok(None),
        }
    }

    /// One of frontdesk's own secrets of a tenant, made on first use. Two first uses at once
    /// agree: the value is inserted only if absent, and whoever did not insert reads the one
    /// that was.
    async fn own_secret(
        &self,
        tenant: &TenantId,
        name: &str,
        prefix: &str,
    ) -> Result<SecretString> {
        if let Some(stored) = self.stored_own_secret(tenant, name).await? {
            return Ok(stored);
        }
        let secret = new_secret_value(prefix);
        let sealed = SealedCredential {
            provider: name.to_owned(),
            sealed: self.sealer()?.seal(tenant, name, &secret)?,
            hint: credentials::hint(&secret),
            at: Timestamp::now(),
        };
        let added = self
            .store
            .add_credential(tenant, &sealed)
            .await
            .map_err(|e| Error::from_store("secret", e))?;
        if added {
            return Ok(SecretString::from(secret));
        }
        self.stored_own_secret(tenant, name)
            .await?
            .ok_or_else(|| Error::internal(std::io::Error::other("a new secret vanished")))
    }

    async fn stored_own_secret(
        &self,
        tenant: &TenantId,
        name: &str,
    ) -> Result<Option<SecretString>> {
        let sealed = self
            .store
            .sealed_credentials(tenant)
            .await
            .map_err(|e| Error::from_store("secret", e))?;
        match sealed.into_iter().find(|(n, _)| n == name) {
            Some((name, sealed)) => Ok(Some(self.sealer()?.open(tenant, &name, &sealed)?)),
            None => Ok(None),
        }
    }

    async fn new_own_secret(
        &self,
        tenant: &TenantId,
        name: &str,
        prefix: &str,
    ) -> Result<SecretString> {
        let secret = new_secret_value(prefix);
        self.seal_and_store(tenant, name, &secret).await?;
        Ok(SecretString::from(secret))
    }
}

/// A new random secret, `<prefix>_<48 hex digits>`.
fn new_secret_value(prefix: &str) -> String {
    let mut bytes = [0u8; 24];
    crate::id::random_bytes(&mut bytes);
    format!("{prefix}_{}", hex::encode(bytes))
}

/// Whether a stored credential name is a provider key (not a secret of another kind).
pub(crate) fn is_provider_name(name: &str) -> bool {
    !name.contains(':')
}
