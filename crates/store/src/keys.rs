//! API keys.

use async_trait::async_trait;
use frontdesk_core::id::{KeyId, TenantId};
use frontdesk_core::key::{ApiKey, KeyKind};
use frontdesk_core::store::{KeyRecord, KeyStore, StoreResult};
use frontdesk_core::time::Timestamp;
use frontdesk_core::StoreError;
use sqlx::any::AnyRow;

use crate::sql::{backend, bad_value, col, db_error, id_col, json_col, to_json, ts, ts_opt};
use crate::SqlStore;

const COLUMNS: &str = "id, tenant_id, kind, name, prefix, allowed_origins, allowed_agents, rate_limit_per_minute, created_at, last_used_at, revoked_at";

fn key_row(row: &AnyRow) -> StoreResult<ApiKey> {
    let kind: String = col(row, "kind")?;
    let rate: Option<i64> = col(row, "rate_limit_per_minute")?;
    Ok(ApiKey {
        id: id_col(row, "id", KeyId::parse)?,
        tenant_id: id_col(row, "tenant_id", TenantId::parse)?,
        kind: KeyKind::parse(&kind).map_err(|e| bad_value("kind", e))?,
        name: col(row, "name")?,
        prefix: col(row, "prefix")?,
        allowed_origins: json_col(row, "allowed_origins")?,
        allowed_agents: json_col(row, "allowed_agents")?,
        rate_limit_per_minute: rate.and_then(|r| u32::try_from(r).ok()),
        created_at: ts(row, "created_at")?,
        last_used_at: ts_opt(row, "last_used_at")?,
        revoked_at: ts_opt(row, "revoked_at")?,
    })
}

#[async_trait]
impl KeyStore for SqlStore {
    async fn insert_api_key(&self, key: &ApiKey, key_hash: &str) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO api_keys (id, tenant_id, kind, name, prefix, key_hash, allowed_origins, allowed_agents, \
             rate_limit_per_minute, created_at, last_used_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(key.id.as_str())
        .bind(key.tenant_id.as_str())
        .bind(key.kind.as_str())
        .bind(key.name.as_str())
        .bind(key.prefix.as_str())
        .bind(key_hash)
        .bind(to_json(&key.allowed_origins)?)
        .bind(to_json(&key.allowed_agents)?)
        .bind(key.rate_limit_per_minute.map(i64::from))
        .bind(key.created_at.as_millis())
        .bind(key.last_used_at.map(Timestamp::as_millis))
        .bind(key.revoked_at.map(Timestamp::as_millis))
        .execute(&self.pool)
        .await
        .map_err(|e| db_error(e, "key"))?;
        Ok(())
    }

    async fn find_api_key_by_hash(&self, key_hash: &str) -> StoreResult<Option<KeyRecord>> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM api_keys WHERE key_hash = $1"))
            .bind(key_hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.as_ref().map(|row| key_row(row).map(|key| KeyRecord { key })).transpose()
    }

    async fn list_api_keys(&self, tenant: &TenantId) -> StoreResult<Vec<ApiKey>> {
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM api_keys WHERE tenant_id = $1 ORDER BY created_at DESC, id DESC"))
            .bind(tenant.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter().map(key_row).collect()
    }

    async fn get_api_key(&self, tenant: &TenantId, key: &KeyId) -> StoreResult<ApiKey> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM api_keys WHERE tenant_id = $1 AND id = $2"))
            .bind(tenant.as_str())
            .bind(key.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?
            .ok_or(StoreError::NotFound)?;
        key_row(&row)
    }

    async fn revoke_api_key(&self, tenant: &TenantId, key: &KeyId, at: Timestamp) -> StoreResult<ApiKey> {
        sqlx::query("UPDATE api_keys SET revoked_at = $3 WHERE tenant_id = $1 AND id = $2 AND revoked_at IS NULL")
            .bind(tenant.as_str())
            .bind(key.as_str())
            .bind(at.as_millis())
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        self.get_api_key(tenant, key).await
    }

    async fn touch_api_key(&self, key: &KeyId, at: Timestamp) -> StoreResult<()> {
        sqlx::query("UPDATE api_keys SET last_used_at = $2 WHERE id = $1")
            .bind(key.as_str())
            .bind(at.as_millis())
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }
}
