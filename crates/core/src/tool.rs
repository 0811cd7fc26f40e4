//! Tools: what an agent can do besides talking. The Runner offers each tool's [`ToolSpec`]
//! to the model, validates the arguments the model writes against its schema, and calls
//! [`Tool::call`]. A tool never fails the run: whatever goes wrong becomes a [`ToolOutput`]
//! with `is_error`, which the model sees and can recover from.

use async_trait::async_trait;
use serde_json::Value;

use crate::id::{ConversationId, RunId, TenantId};
use crate::model::ToolSpec;

/// Who is calling, for tools that act on the tenant's behalf.
#[derive(Debug, Clone)]
pub struct ToolContext {
    pub tenant: TenantId,
    pub run: RunId,
    pub conversation: ConversationId,
    /// The slug of the agent in charge.
    pub agent: String,
    pub end_user: Option<String>,
}

/// What the model sees of a call.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolOutput {
    pub content: String,
    pub is_error: bool,
}

impl ToolOutput {
    pub fn ok(content: impl Into<String>) -> Self {
        Self {
            content: content.into(),
            is_error: false,
        }
    }

    pub fn error(content: impl Into<String>) -> Self {
        Self {
            content: content.into(),
            is_error: true,
        }
    }
}

/// A tool an agent may call.
#[async_trait]
pub trait Tool: Send + Sync + 'static {
    fn spec(&self) -> &ToolSpec;

    /// Runs the call; `arguments` already match the spec's schema.
    async fn call(&self, context: &ToolContext, arguments: Value) -> ToolOutput;
}

/// The built-in tools, by name (agents list them as `{"type": "builtin", "name": …}`).
pub const BUILTIN_TOOLS: &[&str] = &["current_time"];
