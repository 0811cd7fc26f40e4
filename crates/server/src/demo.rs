//! The demo tenant's knowledge: a knowledge base made from the demo shop's own page, which
//! the demo agent answers from (citing the page). Made at start when the server has an
//! embedder; adding the same page again finds the document already there.

use frontdesk_core::agent::AgentRef;
use frontdesk_core::id::TenantId;
use frontdesk_core::knowledge::NewKnowledgeBase;
use frontdesk_core::{Error, Result};
use frontdesk_knowledge::NewDocument;
use serde_json::json;

use crate::AppState;

/// The demo shop's page (its placeholders are only in the widget's script tag, which
/// ingestion drops).
pub const DEMO_PAGE: &str = include_str!("../assets/demo.html");
/// The name of the demo's knowledge base.
pub const DEMO_KNOWLEDGE_BASE: &str = "Demo shop";

/// Makes sure the demo tenant has its knowledge base with the shop's page and that the demo
/// agent `agent` uses it (an agent whose `knowledge` was set otherwise is left alone).
pub async fn ensure_demo_knowledge(state: &AppState, tenant: &TenantId, agent: &str) -> Result<()> {
    let Some(library) = &state.knowledge else {
        return Ok(());
    };
    let kb = match state
        .service
        .get_knowledge_base(tenant, DEMO_KNOWLEDGE_BASE)
        .await
    {
        Ok(kb) => kb,
        Err(Error::NotFound { .. }) => {
            state
                .service
                .create_knowledge_base(
                    tenant,
                    NewKnowledgeBase {
                        name: DEMO_KNOWLEDGE_BASE.into(),
                        description: "The demo shop's page: products, shipping and returns.".into(),
                    },
                )
                .await?
        }
        Err(other) => return Err(other),
    };
    library
        .add(
            tenant,
            kb.id.as_str(),
            NewDocument::File {
                filename: Some("demo.html".into()),
                bytes: DEMO_PAGE.as_bytes().to_vec(),
                url: Some(format!("{}/demo", state.config.public_url())),
            },
        )
        .await?;
    let agent_ref = AgentRef::Slug(agent.to_owned());
    let current = state.service.get_agent(tenant, &agent_ref).await?;
    if current.spec.knowledge.is_none() {
        state
            .service
            .update_agent(
                tenant,
                &agent_ref,
                json!({"knowledge": {"knowledge_base_ids": [kb.id], "top_k": 3, "mode": "context"}}),
            )
            .await?;
    }
    Ok(())
}
