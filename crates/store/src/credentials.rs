//! Provider credentials tenants bring, stored sealed (the domain encrypts; the store never
//! sees a key in the clear).

use async_trait::async_trait;
use frontdesk_core::credentials::{CredentialInfo, SealedCredential};
use frontdesk_core::id::TenantId;
use frontdesk_core::store::{CredentialStore, StoreResult};

use crate::db::{execute, IfNone, Row, Stmt};
use crate::sql::{col, ts};
use crate::SqlStore;

fn info(row: &Row) -> StoreResult<CredentialInfo> {
    Ok(CredentialInfo {
        provider: col(row, "provider")?,
        hint: col(row, "hint")?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
    })
}

/// `(provider, sealed)` of every key `tenant` stored: the statement and its rows.
pub(crate) fn sealed_stmt(tenant: &TenantId) -> Stmt {
    Stmt::new("SELECT provider, sealed FROM provider_credentials WHERE tenant_id = $1")
        .arg(tenant.as_str())
}

pub(crate) fn sealed_rows(rows: &[Row]) -> StoreResult<Vec<(String, String)>> {
    rows.iter()
        .map(|row| Ok((col(row, "provider")?, col(row, "sealed")?)))
        .collect()
}

#[async_trait]
impl CredentialStore for SqlStore {
    async fn put_credential(
        &self,
        tenant: &TenantId,
        credential: &SealedCredential,
    ) -> StoreResult<CredentialInfo> {
        let stmt = Stmt::new(
            "INSERT INTO provider_credentials (tenant_id, provider, sealed, hint, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (tenant_id, provider) \
             DO UPDATE SET sealed = excluded.sealed, hint = excluded.hint, updated_at = excluded.updated_at \
             RETURNING provider, hint, created_at, updated_at",
        )
        .arg(tenant.as_str())
        .arg(credential.provider.as_str())
        .arg(credential.sealed.as_str())
        .arg(credential.hint.as_str())
        .arg(credential.at.as_millis());
        let outcome = execute(self.db.as_ref(), stmt).await?;
        match outcome.rows.first() {
            Some(row) => info(row),
            None => Err(frontdesk_core::StoreError::NotFound),
        }
    }

    async fn add_credential(
        &self,
        tenant: &TenantId,
        credential: &SealedCredential,
    ) -> StoreResult<bool> {
        let stmt = Stmt::new(
            "INSERT INTO provider_credentials (tenant_id, provider, sealed, hint, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (tenant_id, provider) DO NOTHING",
        )
        .arg(tenant.as_str())
        .arg(credential.provider.as_str())
        .arg(credential.sealed.as_str())
        .arg(credential.hint.as_str())
        .arg(credential.at.as_millis());
        Ok(execute(self.db.as_ref(), stmt).await?.affected == 1)
    }

    async fn list_credentials(&self, tenant: &TenantId) -> StoreResult<Vec<CredentialInfo>> {
        let stmt = Stmt::new(
            "SELECT provider, hint, created_at, updated_at FROM provider_credentials \
             WHERE tenant_id = $1 ORDER BY provider",
        )
        .arg(tenant.as_str());
        self.db.query(stmt).await?.iter().map(info).collect()
    }

    async fn sealed_credentials(&self, tenant: &TenantId) -> StoreResult<Vec<(String, String)>> {
        sealed_rows(&self.db.query(sealed_stmt(tenant)).await?)
    }

    async fn delete_credential(&self, tenant: &TenantId, provider: &str) -> StoreResult<()> {
        let stmt =
            Stmt::new("DELETE FROM provider_credentials WHERE tenant_id = $1 AND provider = $2")
                .arg(tenant.as_str())
                .arg(provider)
                .if_none(IfNone::NotFound);
        execute(self.db.as_ref(), stmt).await.map(|_| ())
    }
}
