//! Tools built into frontdesk. Each is a [`Tool`]; [`builtin`] finds one by the name agents
//! list it under (`{"type": "builtin", "name": "current_time"}`).

use std::sync::Arc;

use async_trait::async_trait;
use frontdesk_core::model::ToolSpec;
use frontdesk_core::tool::{Tool, ToolContext, ToolOutput};
use serde_json::{json, Value};

/// The built-in tool called `name`, if there is one.
pub fn builtin(name: &str) -> Option<Arc<dyn Tool>> {
    match name {
        "current_time" => Some(Arc::new(CurrentTime::new())),
        _ => None,
    }
}

/// The current date and time in a time zone.
struct CurrentTime {
    spec: ToolSpec,
}

impl CurrentTime {
    fn new() -> Self {
        Self {
            spec: ToolSpec {
                name: "current_time".into(),
                description: "Get the current date, time and weekday in a time zone.".into(),
                parameters: json!({
                    "type": "object",
                    "properties": {
                        "timezone": {
                            "type": "string",
                            "description": "IANA time zone such as Europe/Berlin or America/New_York; UTC when omitted."
                        }
                    },
                    "additionalProperties": false
                }),
            },
        }
    }
}

#[async_trait]
impl Tool for CurrentTime {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, _context: &ToolContext, arguments: Value) -> ToolOutput {
        let zone = arguments
            .get("timezone")
            .and_then(Value::as_str)
            .filter(|z| !z.trim().is_empty())
            .unwrap_or("UTC");
        let tz = match jiff::tz::TimeZone::get(zone) {
            Ok(tz) => tz,
            Err(_) => {
                return ToolOutput::error(format!(
                    "`{zone}` is not a known IANA time zone (for example Europe/Paris)"
                ))
            }
        };
        let now = jiff::Timestamp::now().to_zoned(tz);
        ToolOutput::ok(
            json!({
                "timezone": zone,
                "datetime": now.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string(),
                "date": now.strftime("%Y-%m-%d").to_string(),
                "time": now.strftime("%H:%M").to_string(),
                "weekday": now.strftime("%A").to_string(),
            })
            .to_string(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use frontdesk_core::id::{ConversationId, RunId, TenantId};

    fn context() -> ToolContext {
        ToolContext {
            tenant: TenantId::new(),
            run: RunId::new(),
            conversation: ConversationId::new(),
            agent: "a".into(),
            end_user: None,
            run_context: Default::default(),
        }
    }

    #[tokio::test]
    async fn current_time_answers_in_the_zone_asked_for() {
        let tool = builtin("current_time").unwrap_or_else(|| unreachable!());
        let out = tool
            .call(&context(), json!({"timezone": "Asia/Kolkata"}))
            .await;
        assert!(!out.is_error, "{}", out.content);
        let value: Value = serde_json::from_str(&out.content).unwrap_or_default();
        assert!(value["datetime"]
            .as_str()
            .unwrap_or_default()
            .ends_with("+05:30"));
        let bad = tool
            .call(&context(), json!({"timezone": "Mars/Base"}))
            .await;
        assert!(bad.is_error);
        assert!(builtin("nope").is_none());
        // Every listed built-in is made here, or (needing the runner's environment) where
        // tool sets are built.
        for name in frontdesk_core::tool::BUILTIN_TOOLS {
            assert!(
                builtin(name).is_some() || *name == super::super::human::TRANSFER_TO_HUMAN,
                "{name} is listed but not built"
            );
        }
    }
}
