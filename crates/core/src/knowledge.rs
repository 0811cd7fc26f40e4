//! Knowledge bases: the documents of a tenant that agents answer from, named per tenant.

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::id::{KnowledgeBaseId, TenantId};
use crate::time::Timestamp;
use crate::validate;

/// A knowledge base as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct KnowledgeBase {
    pub id: KnowledgeBaseId,
    #[serde(skip)]
    pub tenant_id: TenantId,
    /// Unique within the tenant (`frontdesk ingest --kb NAME` finds it by name).
    pub name: String,
    pub description: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// What a new knowledge base is given.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKnowledgeBase {
    pub name: String,
    #[serde(default)]
    pub description: String,
}

impl NewKnowledgeBase {
    /// The name trimmed and checked, the description checked.
    pub fn checked(self) -> Result<Self> {
        let name = self.name.trim().to_owned();
        validate::non_empty("name", &name, 200)?;
        if KnowledgeBaseId::parse(&name).is_ok() {
            return Err(crate::Error::invalid(
                "name",
                "must not look like a knowledge base id (`kb_…`)",
            ));
        }
        validate::max_chars("description", &self.description, 2_000)?;
        Ok(Self {
            name,
            description: self.description,
        })
    }
}
