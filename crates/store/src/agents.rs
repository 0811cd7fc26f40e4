//! Agents and their versions.

use async_trait::async_trait;
use frontdesk_core::agent::{Agent, AgentKind, AgentRef, AgentSpec, AgentVersion};
use frontdesk_core::id::{AgentId, TenantId};
use frontdesk_core::store::{AgentStore, StoreResult};
use frontdesk_core::time::Timestamp;
use frontdesk_core::StoreError;

use crate::db::{execute, query_one, IfNone, Row, Stmt};
use crate::sql::{bad_value, col, id_col, json_col, json_col_opt, to_json, ts};
use crate::SqlStore;

pub(crate) const COLUMNS: &str = "id, tenant_id, slug, name, description, instructions, model, fallback_models, temperature, top_p, \
    max_tokens, tools, mcp_servers, handoffs, output_schema, guardrails, knowledge, approvals, widget, kind, voice, max_turns, \
    budgets, after_handoff, version, created_at, updated_at, human";

pub(crate) fn agent_row(row: &Row) -> StoreResult<Agent> {
    let kind: String = col(row, "kind")?;
    let max_tokens: Option<i64> = col(row, "max_tokens")?;
    let max_turns: i64 = col(row, "max_turns")?;
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
        widget: frontdesk_core::agent::WidgetSettings::from_stored(json_col(row, "widget")?)
            .map_err(|e| {
                bad_value(
                    "widget",
                    frontdesk_core::Error::invalid("widget", e.to_string()),
                )
            })?,
        kind: AgentKind::parse(&kind).map_err(|e| bad_value("kind", e))?,
        voice: json_col(row, "voice")?,
        max_turns: u32::try_from(max_turns).map_err(|e| {
            bad_value(
                "max_turns",
                frontdesk_core::Error::invalid("max_turns", e.to_string()),
            )
        })?,
        budgets: json_col(row, "budgets")?,
        after_handoff: json_col(row, "after_handoff")?,
        human: json_col(row, "human")?,
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

/// Adds the spec's columns as arguments `$3` … `$24` (after `id` and `tenant_id`).
fn with_spec(stmt: Stmt, spec: &AgentSpec) -> StoreResult<Stmt> {
    Ok(stmt
        .arg(spec.slug.as_str())
        .arg(spec.name.as_str())
        .arg(spec.description.as_str())
        .arg(spec.instructions.as_str())
        .arg(spec.model.as_str())
        .arg(to_json(&spec.fallback_models)?)
        .arg(spec.temperature)
        .arg(spec.top_p)
        .arg(spec.max_tokens.map(i64::from))
        .arg(to_json(&spec.tools)?)
        .arg(to_json(&spec.mcp_servers)?)
        .arg(to_json(&spec.handoffs)?)
        .arg(spec.output_schema.as_ref().map(to_json).transpose()?)
        .arg(to_json(&spec.guardrails)?)
        .arg(spec.knowledge.as_ref().map(to_json).transpose()?)
        .arg(to_json(&spec.approvals)?)
        .arg(to_json(&spec.widget)?)
        .arg(spec.kind.as_str())
        .arg(to_json(&spec.voice)?)
        .arg(i64::from(spec.max_turns))
        .arg(to_json(&spec.budgets)?)
        .arg(to_json(&spec.after_handoff)?))
}

fn version_row(agent: &Agent) -> StoreResult<Stmt> {
    Ok(Stmt::new("INSERT INTO agent_versions (agent_id, tenant_id, version, spec, created_at) VALUES ($1, $2, $3, $4, $5)")
        .arg(agent.id.as_str())
        .arg(agent.tenant_id.as_str())
        .arg(agent.version)
        .arg(to_json(&agent.spec)?)
        .arg(agent.updated_at.as_millis())
        .unique("version"))
}

#[async_trait]
impl AgentStore for SqlStore {
    async fn insert_agent(&self, agent: &Agent) -> StoreResult<()> {
        let insert = Stmt::new(format!(
            "INSERT INTO agents ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
             $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28)"
        ))
        .arg(agent.id.as_str())
        .arg(agent.tenant_id.as_str());
        let insert = with_spec(insert, &agent.spec)?
            .arg(agent.version)
            .arg(agent.created_at.as_millis())
            .arg(agent.updated_at.as_millis())
            .arg(to_json(&agent.spec.human)?)
            .unique("slug");
        self.db
            .transaction(vec![insert, version_row(agent)?])
            .await
            .map(|_| ())
    }

    async fn update_agent(&self, agent: &Agent) -> StoreResult<()> {
        let update = Stmt::new(
            "UPDATE agents SET slug = $3, name = $4, description = $5, instructions = $6, model = $7, \
             fallback_models = $8, temperature = $9, top_p = $10, max_tokens = $11, tools = $12, mcp_servers = $13, \
             handoffs = $14, output_schema = $15, guardrails = $16, knowledge = $17, approvals = $18, widget = $19, \
             kind = $20, voice = $21, max_turns = $22, budgets = $23, after_handoff = $24, version = $25, \
             updated_at = $26, human = $28 WHERE id = $1 AND tenant_id = $2 AND deleted_at IS NULL AND version = $27",
        )
        .arg(agent.id.as_str())
        .arg(agent.tenant_id.as_str());
        let update = with_spec(update, &agent.spec)?
            .arg(agent.version)
            .arg(agent.updated_at.as_millis())
            .arg(agent.version - 1)
            .arg(to_json(&agent.spec.human)?)
            .unique("slug")
            .if_none(IfNone::Conflict("version"));
        self.db
            .transaction(vec![update, version_row(agent)?])
            .await
            .map(|_| ())
    }

    async fn get_agent(&self, tenant: &TenantId, agent: &AgentRef) -> StoreResult<Agent> {
        let (column, value) = match agent {
            AgentRef::Id(id) => ("id", id.as_str()),
            AgentRef::Slug(slug) => ("slug", slug.as_str()),
        };
        let stmt = Stmt::new(format!("SELECT {COLUMNS} FROM agents WHERE tenant_id = $1 AND {column} = $2 AND deleted_at IS NULL"))
            .arg(tenant.as_str())
            .arg(value);
        agent_row(
            &query_one(self.db.as_ref(), stmt)
                .await?
                .ok_or(StoreError::NotFound)?,
        )
    }

    async fn get_agent_any(&self, tenant: &TenantId, agent: &AgentId) -> StoreResult<Agent> {
        let stmt = Stmt::new(format!(
            "SELECT {COLUMNS} FROM agents WHERE tenant_id = $1 AND id = $2"
        ))
        .arg(tenant.as_str())
        .arg(agent.as_str());
        agent_row(
            &query_one(self.db.as_ref(), stmt)
                .await?
                .ok_or(StoreError::NotFound)?,
        )
    }

    async fn list_agents(&self, tenant: &TenantId) -> StoreResult<Vec<Agent>> {
        let stmt = Stmt::new(format!("SELECT {COLUMNS} FROM agents WHERE tenant_id = $1 AND deleted_at IS NULL ORDER BY slug"))
            .arg(tenant.as_str());
        self.db.query(stmt).await?.iter().map(agent_row).collect()
    }

    async fn delete_agent(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
        at: Timestamp,
    ) -> StoreResult<()> {
        let stmt = Stmt::new("UPDATE agents SET deleted_at = $3, updated_at = $3 WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL")
            .arg(tenant.as_str())
            .arg(agent.as_str())
            .arg(at.as_millis())
            .if_none(IfNone::NotFound);
        execute(self.db.as_ref(), stmt).await.map(|_| ())
    }

    async fn list_agent_versions(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
    ) -> StoreResult<Vec<AgentVersion>> {
        let stmt = Stmt::new(
            "SELECT agent_id, version, spec, created_at FROM agent_versions WHERE tenant_id = $1 AND agent_id = $2 ORDER BY version DESC",
        )
        .arg(tenant.as_str())
        .arg(agent.as_str());
        self.db
            .query(stmt)
            .await?
            .iter()
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
