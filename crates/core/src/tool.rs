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
    /// The run's context (the conversation's metadata, the caller's and the end user's).
    pub run_context: crate::context::RunContext,
}

/// What the model sees of a call, and the sources it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolOutput {
    pub content: String,
    pub is_error: bool,
    /// Links the result draws on; the answer cites them.
    pub sources: Vec<Source>,
    /// Ends the run with this as its answer, without asking the model again (the
    /// conversation went to people: the visitor reads the waiting message).
    pub end_turn: Option<String>,
}

/// A source a tool result names: a title and an `http(s)` URL, or a passage of a knowledge
/// document (its link may be empty; then the document, section and page say where it is).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Source {
    pub title: String,
    pub url: String,
    pub document_id: Option<String>,
    pub section: Option<String>,
    pub page: Option<u32>,
}

impl Source {
    /// A source for `url` when it is an `http(s)` URL (others cannot be shown as links).
    pub fn link(title: &str, url: &str) -> Option<Self> {
        let parsed = url::Url::parse(url).ok()?;
        if !matches!(parsed.scheme(), "http" | "https") || url.len() > 2_000 {
            return None;
        }
        // One line of plain text: no control or direction-override characters.
        let title = title
            .split(|c: char| c.is_whitespace() || c.is_control())
            .filter(|word| !word.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
            .replace(
                |c: char| matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'),
                "",
            );
        let title = title.trim();
        Some(Self {
            title: crate::validate::truncate(if title.is_empty() { url } else { title }, 200),
            url: parsed.to_string(),
            ..Self::default()
        })
    }

    /// The source of a knowledge passage: its document's title and link (kept only when it
    /// is an `http(s)` URL), the document, section and page.
    pub fn passage(hit: &crate::knowledge::KnowledgeHit) -> Self {
        let linked = hit
            .url
            .as_deref()
            .and_then(|url| Self::link(&hit.title, url));
        Self {
            title: crate::validate::truncate(hit.title.trim(), 200),
            url: linked.map(|l| l.url).unwrap_or_default(),
            document_id: Some(hit.document_id.to_string()),
            section: hit
                .section
                .as_ref()
                .map(|s| crate::validate::truncate(s, 300)),
            page: hit.page,
        }
    }

    /// The citation part an answer carries for this source.
    pub fn citation(self) -> crate::conversation::ContentPart {
        crate::conversation::ContentPart::Citation {
            title: self.title,
            url: self.url,
            document_id: self.document_id,
            section: self.section,
            page: self.page,
        }
    }
}

impl ToolOutput {
    pub fn ok(content: impl Into<String>) -> Self {
        Self {
            content: content.into(),
            is_error: false,
            sources: Vec::new(),
            end_turn: None,
        }
    }

    pub fn error(content: impl Into<String>) -> Self {
        Self {
            content: content.into(),
            is_error: true,
            sources: Vec::new(),
            end_turn: None,
        }
    }

    pub fn with_sources(mut self, sources: Vec<Source>) -> Self {
        self.sources = sources;
        self
    }

    /// The run ends after this call, answering `text`.
    pub fn ending_turn(mut self, text: impl Into<String>) -> Self {
        self.end_turn = Some(text.into());
        self
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
pub const BUILTIN_TOOLS: &[&str] = &["current_time", "transfer_to_human"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_links_are_web_urls_with_one_line_plain_titles() {
        assert!(Source::link("Local", "file:///etc/passwd").is_none());
        assert!(Source::link("Script", "javascript:alert(1)").is_none());
        let source = Source::link(
            "  Refund\n policy\u{202e}gpj.exe \t(2024)\u{0007} ",
            "https://shop.example/policy",
        )
        .unwrap();
        assert_eq!(source.title, "Refund policygpj.exe (2024)");
        assert_eq!(source.url, "https://shop.example/policy");
        let untitled = Source::link(" ", "https://shop.example/a b").unwrap();
        assert_eq!(untitled.url, "https://shop.example/a%20b");
        assert_eq!(untitled.title, "https://shop.example/a b");
    }
}

/// A header as a trial shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct TrialHeader {
    pub name: String,
    pub value: String,
}

/// A webhook tool's request sent once from the editor, and what came back: the request as
/// signed and sent (header values that name `{{secrets.…}}` shown as written).
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct WebhookTrial {
    pub request: TrialRequest,
    /// `null` when nothing came back (see `error`).
    pub response: Option<TrialResponse>,
    /// Why nothing came back: the URL was refused, the connection failed, the time ran out.
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct TrialRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<TrialHeader>,
    pub body: String,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct TrialResponse {
    pub status: u16,
    pub headers: Vec<TrialHeader>,
    /// The body as text (at most 64 KiB of it; `truncated` says when there was more).
    pub body: String,
    pub truncated: bool,
    pub duration_ms: u64,
}

/// The tools an MCP server offers, or why it could not be asked.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct McpServerTools {
    pub name: String,
    pub url: String,
    pub tools: Vec<OfferedTool>,
    pub error: Option<String>,
}

/// A tool as a server offers it to the model.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct OfferedTool {
    pub name: String,
    pub description: String,
    #[schema(value_type = Object)]
    pub parameters: Value,
}
