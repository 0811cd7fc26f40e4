//! Agents and their versions.

use async_trait::async_trait;
use frontdesk_core::agent::{Agent, AgentKind, AgentRef, AgentSpec, AgentVersion};
use frontdesk_core::id::{AgentId, TenantId};
use frontdesk_core::store::{AgentStore, StoreResult};
use frontdesk_core::time::Timestamp;
use frontdesk_core::StoreError;
use sqlx::any::AnyRow;
use sqlx::{Any, Transaction};

use crate::sql::{backend, bad_value, col, db_error, id_col, json_col, json_col_opt, to_json, ts};
use crate::SqlStore;

const COLUMNS: &str = "id, tenant_id, slug, name, description, instructions, model, fallback_models, temperature, top_p, \
    max_tokens, tools, mcp_servers, handoffs, output_schema, guardrails, knowledge, approvals, widget, kind, voice, version, \
    created_at, updated_at";

fn agent_row(row: &AnyRow) -> StoreResult<Agent> {
    let kind: String = col(row, "kind")?;
    let max_tokens: Option<i64> = col(row, "max_tokens")?;
    let spec = AgentSpec {
        slug: col(row, "slug")?,
        name: col(row, "name")?,
        description: col(row, "description")?,
        instructions: col(row, "instructions")?,
        model: col(row, "model")?,
        fallback_models: json_col(row, "fallback_models")?,
        temperature: col(row, "temperature")?,
        top_p: col(row, "top_p")?,
        max_tokens: max_tokens.and_then(|n| u32::try_from(n).ok()),
        tools: json_col(row, "tools")?,
        mcp_servers: json_col(row, "mcp_servers")?,
        handoffs: json_col(row, "handoffs")?,
        output_schema: json_col_opt(row, "output_schema")?,
        guardrails: json_col(row, "guardrails")?,
        knowledge: json_col_opt(row, "knowledge")?,
        approvals: json_col(row, "approvals")?,
        widget: json_col(row, "widget")?,
        kind: AgentKind::parse(&kind).map_err(|e| bad_value("kind", e))?,
        voice: json_col(row, "voice")?,
    };
    Ok(Agent {
        id: id_col(row, "id", AgentId::parse)?,
        tenant_id: id_col(row, "tenant_id", TenantId::parse)?,
        version: col(row, "version")?,
        spec,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
    })
}

/// Binds the spec columns (`$3` … `$21`) after `id` and `tenant_id`.
fn bind_spec<'q>(
    query: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>,
    spec: &'q AgentSpec,
) -> StoreResult<sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>> {
    Ok(query
        .bind(spec.slug.as_str())
        .bind(spec.name.as_str())
        .bind(spec.description.as_str())
        .bind(spec.instructions.as_str())
        .bind(spec.model.as_str())
        .bind(to_json(&spec.fallback_models)?)
        .bind(spec.temperature)
        .bind(spec.top_p)
        .bind(spec.max_tokens.map(i64::from))
        .bind(to_json(&spec.tools)?)
        .bind(to_json(&spec.mcp_servers)?)
        .bind(to_json(&spec.handoffs)?)
        .bind(spec.output_schema.as_ref().map(to_json).transpose()?)
        .bind(to_json(&spec.guardrails)?)
        .bind(spec.knowledge.as_ref().map(to_json).transpose()?)
        .bind(to_json(&spec.approvals)?)
        .bind(to_json(&spec.widget)?)
        .bind(spec.kind.as_str())
        .bind(to_json(&spec.voice)?))
}

async fn insert_version(tx: &mut Transaction<'_, Any>, agent: &Agent) -> StoreResult<()> {
    sqlx::query("INSERT INTO agent_versions (agent_id, tenant_id, version, spec, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(agent.id.as_str())
        .bind(agent.tenant_id.as_str())
        .bind(agent.version)
        .bind(to_json(&agent.spec)?)
        .bind(agent.updated_at.as_millis())
        .execute(&mut **tx)
        .await
        .map_err(|e| db_error(e, "version"))?;
    Ok(())
}

#[async_trait]
impl AgentStore for SqlStore {
    async fn insert_agent(&self, agent: &Agent) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let sql = format!(
            "INSERT INTO agents ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
             $17, $18, $19, $20, $21, $22, $23, $24)"
        );
        let query = sqlx::query(&sql).bind(agent.id.as_str()).bind(agent.tenant_id.as_str());
        bind_spec(query, &agent.spec)?
            .bind(agent.version)
            .bind(agent.created_at.as_millis())
            .bind(agent.updated_at.as_millis())
            .execute(&mut *tx)
            .await
            .map_err(|e| db_error(e, "slug"))?;
        insert_version(&mut tx, agent).await?;
        tx.commit().await.map_err(backend)
    }

    async fn update_agent(&self, agent: &Agent) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let sql = "UPDATE agents SET slug = $3, name = $4, description = $5, instructions = $6, model = $7, \
             fallback_models = $8, temperature = $9, top_p = $10, max_tokens = $11, tools = $12, mcp_servers = $13, \
             handoffs = $14, output_schema = $15, guardrails = $16, knowledge = $17, approvals = $18, widget = $19, \
             kind = $20, voice = $21, version = $22, updated_at = $23 \
             WHERE id = $1 AND tenant_id = $2 AND deleted_at IS NULL AND version = $24";
        let query = sqlx::query(sql).bind(agent.id.as_str()).bind(agent.tenant_id.as_str());
        let done = bind_spec(query, &agent.spec)?
            .bind(agent.version)
            .bind(agent.updated_at.as_millis())
            .bind(agent.version - 1)
            .execute(&mut *tx)
            .await
            .map_err(|e| db_error(e, "slug"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict("version"));
        }
        insert_version(&mut tx, agent).await?;
        tx.commit().await.map_err(backend)
    }

    async fn get_agent(&self, tenant: &TenantId, agent: &AgentRef) -> StoreResult<Agent> {
        let (column, value) = match agent {
            AgentRef::Id(id) => ("id", id.as_str()),
            AgentRef::Slug(slug) => ("slug", slug.as_str()),
        };
        let sql = format!("SELECT {COLUMNS} FROM agents WHERE tenant_id = $1 AND {column} = $2 AND deleted_at IS NULL");
        let row = sqlx::query(&sql)
            .bind(tenant.as_str())
            .bind(value)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?
            .ok_or(StoreError::NotFound)?;
        agent_row(&row)
    }

    async fn get_agent_any(&self, tenant: &TenantId, agent: &AgentId) -> StoreResult<Agent> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM agents WHERE tenant_id = $1 AND id = $2"))
            .bind(tenant.as_str())
            .bind(agent.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?
            .ok_or(StoreError::NotFound)?;
        agent_row(&row)
    }

    async fn list_agents(&self, tenant: &TenantId) -> StoreResult<Vec<Agent>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM agents WHERE tenant_id = $1 AND deleted_at IS NULL ORDER BY slug"
        ))
        .bind(tenant.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter().map(agent_row).collect()
    }

    async fn delete_agent(&self, tenant: &TenantId, agent: &AgentId, at: Timestamp) -> StoreResult<()> {
        let done = sqlx::query("UPDATE agents SET deleted_at = $3, updated_at = $3 WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL")
            .bind(tenant.as_str())
            .bind(agent.as_str())
            .bind(at.as_millis())
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn list_agent_versions(&self, tenant: &TenantId, agent: &AgentId) -> StoreResult<Vec<AgentVersion>> {
        let rows = sqlx::query(
            "SELECT agent_id, version, spec, created_at FROM agent_versions WHERE tenant_id = $1 AND agent_id = $2 ORDER BY version DESC",
        )
        .bind(tenant.as_str())
        .bind(agent.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter()
            .map(|row| {
                Ok(AgentVersion {
                    agent_id: id_col(row, "agent_id", AgentId::parse)?,
                    version: col(row, "version")?,
                    spec: json_col(row, "spec")?,
                    created_at: ts(row, "created_at")?,
                })
            })
            .collect()
    }
}
