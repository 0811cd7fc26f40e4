//! API keys.

use async_trait::async_trait;
use frontdesk_core::id::{KeyId, TenantId};
use frontdesk_core::key::{ApiKey, KeyKind};
use frontdesk_core::store::{KeyStore, StoreResult};
use frontdesk_core::time::Timestamp;
use frontdesk_core::StoreError;

use crate::db::{execute, query_one, Row, Stmt};
use crate::sql::{bad_value, col, id_col, json_col, to_json, ts, ts_opt};
use crate::SqlStore;

const COLUMNS: &str = "id, tenant_id, kind, name, prefix, allowed_origins, allowed_agents, rate_limit_per_minute, created_at, last_used_at, revoked_at";

fn key_row(row: &Row) -> StoreResult<ApiKey> {
    let kind: String = col(row, "kind")?;
    let rate: Option<i64> = col(row, "rate_limit_per_minute")?;
    Ok(ApiKey {
        id: id_col(row, "id", KeyId::parse)?,
        tenant_id: id_col(row, "tenant_id", TenantId::parse)?,
        kind: KeyKind::parse(&kind).map_err(|e| bad_value("kind", e))?,
        name: col(row, "name")?,
        prefix: col(row, "prefix")?,
        allowed_origins: json_col::<Vec<String>>(row, "allowed_origins")?
            .into_iter()
            .map(frontdesk_core::key::Origin::from_stored)
            .collect(),
        allowed_agents: json_col(row, "allowed_agents")?,
        rate_limit_per_minute: rate.and_then(|r| u32::try_from(r).ok()),
        created_at: ts(row, "created_at")?,
        last_used_at: ts_opt(row, "last_used_at")?,
        revoked_at: ts_opt(row, "revoked_at")?,
    })
}

/// The statement that stores a key (also part of creating a tenant).
pub(crate) fn insert_key(key: &ApiKey, key_hash: &str) -> StoreResult<Stmt> {
    Ok(Stmt::new(
            "INSERT INTO api_keys (id, tenant_id, kind, name, prefix, key_hash, allowed_origins, allowed_agents, \
             rate_limit_per_minute, created_at, last_used_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .arg(key.id.as_str())
        .arg(key.tenant_id.as_str())
        .arg(key.kind.as_str())
        .arg(key.name.as_str())
        .arg(key.prefix.as_str())
        .arg(key_hash)
        .arg(to_json(&key.allowed_origins)?)
        .arg(to_json(&key.allowed_agents)?)
        .arg(key.rate_limit_per_minute.map(i64::from))
        .arg(key.created_at.as_millis())
        .arg(key.last_used_at.map(Timestamp::as_millis))
        .arg(key.revoked_at.map(Timestamp::as_millis))
        .unique("key"))
}

#[async_trait]
impl KeyStore for SqlStore {
    async fn insert_api_key(&self, key: &ApiKey, key_hash: &str) -> StoreResult<()> {
        execute(self.db.as_ref(), insert_key(key, key_hash)?)
            .await
            .map(|_| ())
    }

    async fn find_api_key_by_hash(&self, key_hash: &str) -> StoreResult<Option<ApiKey>> {
        let stmt = Stmt::new(format!(
            "SELECT {COLUMNS} FROM api_keys WHERE key_hash = $1"
        ))
        .arg(key_hash);
        query_one(self.db.as_ref(), stmt)
            .await?
            .as_ref()
            .map(key_row)
            .transpose()
    }

    async fn list_api_keys(&self, tenant: &TenantId) -> StoreResult<Vec<ApiKey>> {
        let stmt = Stmt::new(format!(
            "SELECT {COLUMNS} FROM api_keys WHERE tenant_id = $1 ORDER BY created_at DESC, id DESC"
        ))
        .arg(tenant.as_str());
        self.db.query(stmt).await?.iter().map(key_row).collect()
    }

    async fn get_api_key(&self, tenant: &TenantId, key: &KeyId) -> StoreResult<ApiKey> {
        let stmt = Stmt::new(format!(
            "SELECT {COLUMNS} FROM api_keys WHERE tenant_id = $1 AND id = $2"
        ))
        .arg(tenant.as_str())
        .arg(key.as_str());
        key_row(
            &query_one(self.db.as_ref(), stmt)
                .await?
                .ok_or(StoreError::NotFound)?,
        )
    }

    async fn revoke_api_key(
        &self,
        tenant: &TenantId,
        key: &KeyId,
        at: Timestamp,
    ) -> StoreResult<ApiKey> {
        let stmt = Stmt::new(format!(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $3) WHERE tenant_id = $1 AND id = $2 RETURNING {COLUMNS}"
        ))
        .arg(tenant.as_str())
        .arg(key.as_str())
        .arg(at.as_millis());
        let outcome = execute(self.db.as_ref(), stmt).await?;
        key_row(outcome.rows.first().ok_or(StoreError::NotFound)?)
    }

    async fn touch_api_key(&self, key: &KeyId, at: Timestamp) -> StoreResult<()> {
        let stmt = Stmt::new("UPDATE api_keys SET last_used_at = $2 WHERE id = $1")
            .arg(key.as_str())
            .arg(at.as_millis());
        execute(self.db.as_ref(), stmt).await.map(|_| ())
    }
}
