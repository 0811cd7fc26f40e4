//! The OpenAPI 3.1 document of the native API, generated from the handlers' annotations,
//! and the docs page rendered from it.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi as Document, PathItem};
use utoipa::{Modify, OpenApi};

use crate::routes;

#[derive(OpenApi)]
#[openapi(
    info(title = "frontdesk API", description = "The native REST API of frontdesk. Authenticate with a secret key: `Authorization: Bearer fd_sk_…`. Errors are `{\"error\": {\"type\", \"code\", \"message\"}}`."),
    paths(
        routes::agents::list_agents, routes::agents::create_agent, routes::agents::get_agent,
        routes::agents::update_agent, routes::agents::delete_agent, routes::agents::list_versions,
        routes::keys::create_key, routes::keys::list_keys, routes::keys::revoke_key,
        routes::conversations::list_conversations, routes::conversations::create_conversation,
        routes::conversations::get_conversation, routes::conversations::list_messages,
        routes::conversations::update_conversation, routes::conversations::delete_conversation,
        routes::conversations::export_conversation,
        routes::tenants::create_tenant,
        routes::turns::send_message, routes::turns::run_events, routes::turns::cancel_run,
        routes::turns::start_conversation, routes::turns::regenerate, routes::turns::edit_message,
        routes::provider_keys::put_provider_key, routes::provider_keys::list_provider_keys,
        routes::provider_keys::delete_provider_key,
        routes::runs::list_runs, routes::runs::get_run, routes::runs::decide,
        routes::secrets::put_secret, routes::secrets::list_secrets, routes::secrets::delete_secret,
        routes::secrets::get_signing_secret, routes::secrets::rotate_signing_secret,
        routes::secrets::refresh_mcp, routes::secrets::get_identity_secret,
        routes::secrets::rotate_identity_secret,
        routes::usage::usage,
        routes::system::healthz, routes::system::readyz, routes::system::metrics,
    ),
    modifiers(&Security, &ErrorResponses),
    tags(
        (name = "agents", description = "Agents: instructions, model, tools, knowledge, widget."),
        (name = "api-keys", description = "Secret and publishable keys."),
        (name = "conversations", description = "Conversations and their messages."),
        (name = "provider-keys", description = "Model provider keys the tenant brings (sealed at rest, never returned)."),
        (name = "runs", description = "Runs as traces, and human approvals of tool calls."),
        (name = "tools", description = "Secrets for tool headers, the webhook signing secret, MCP tool lists."),
        (name = "usage", description = "Tokens and cost."),
        (name = "tenants", description = "The platform operator's API."),
        (name = "system", description = "Health, readiness and metrics."),
    )
)]
struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut Document) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "secret_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("fd_sk_…")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("FRONTDESK_ADMIN_TOKEN"))
                    .build(),
            ),
        );
    }
}

/// The errors every operation can answer, with the error schema: 401 and 429 where it takes
/// credentials, and for a request body 400 (malformed), 408 (too slow), 413 (too large) and
/// 422 (a field that is not valid). Operations keep what they say themselves.
struct ErrorResponses;

impl Modify for ErrorResponses {
    fn modify(&self, openapi: &mut Document) {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let text = |description: &str| {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some(description.to_owned()))
                .build()
        };
        let detail = ObjectBuilder::new()
            .property(
                "type",
                text("the class of error (`invalid_request_error`, …)"),
            )
            .property("code", text("a stable code to branch on"))
            .property("message", text("for people"))
            .property("field", text("the field a validation error is about"))
            .property("request_id", text("with a 5xx: the id to report"))
            .required("type")
            .required("code")
            .required("message")
            .build();
        let error = ObjectBuilder::new()
            .property("error", detail)
            .required("error")
            .build();
        openapi
            .components
            .get_or_insert_with(Default::default)
            .schemas
            .insert("Error".to_owned(), error.into());
        let response = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("Error")))
                        .build(),
                )
                .build()
        };
        for item in openapi.paths.paths.values_mut() {
            for op in [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ]
            .into_iter()
            .flatten()
            {
                let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
                let mut add = |status: &str, description: &str| {
                    op.responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| response(description).into());
                };
                if secured {
                    add("401", "missing or invalid credentials");
                    add(
                        "429",
                        "too many requests (or failed authentications); see `Retry-After`",
                    );
                }
                if op.request_body.is_some() {
                    add("400", "the body is not JSON, or not sent as JSON");
                    add("408", "the body arrived too slowly");
                    add("413", "the body is larger than the server accepts");
                    add("422", "a field is not valid (`field` names it)");
                }
            }
        }
    }
}

/// The document, with the crate's version.
pub fn document() -> Document {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc
}

/// Escapes text for HTML.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn operations(item: &PathItem) -> Vec<(&'static str, &utoipa::openapi::path::Operation)> {
    [
        ("GET", &item.get),
        ("POST", &item.post),
        ("PUT", &item.put),
        ("PATCH", &item.patch),
        ("DELETE", &item.delete),
    ]
    .into_iter()
    .filter_map(|(method, op)| op.as_ref().map(|op| (method, op)))
    .collect()
}

/// A self-contained HTML page listing every operation with its parameters and responses.
pub fn render_docs(doc: &Document) -> String {
    let mut body = String::new();
    for (path, item) in &doc.paths.paths {
        for (method, op) in operations(item) {
            let summary = op.summary.clone().unwrap_or_default();
            body.push_str(&format!(
                "<section><h3><code class=\"m\">{method}</code> <code>{}</code></h3><p>{}</p>",
                escape(path),
                escape(&summary)
            ));
            if let Some(description) = &op.description {
                body.push_str(&format!("<p>{}</p>", escape(description)));
            }
            if let Some(params) = &op.parameters {
                body.push_str("<table><tr><th>Parameter</th><th>In</th><th>Description</th></tr>");
                for param in params {
                    let location = serde_json::to_value(&param.parameter_in)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default();
                    body.push_str(&format!(
                        "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                        escape(&param.name),
                        escape(&location),
                        escape(param.description.as_deref().unwrap_or(""))
                    ));
                }
                body.push_str("</table>");
            }
            let statuses: Vec<String> = op.responses.responses.keys().map(|s| escape(s)).collect();
            body.push_str(&format!(
                "<p class=\"r\">Responses: {}</p></section>",
                statuses.join(", ")
            ));
        }
    }
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><style>\
         body{{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1f2937}}\
         section{{border-top:1px solid #e5e7eb;padding:.5rem 0}}code.m{{background:#eef2ff;color:#3730a3;padding:0 .3rem;border-radius:3px}}\
         table{{border-collapse:collapse}}td,th{{border:1px solid #e5e7eb;padding:.2rem .5rem;text-align:left}}.r{{color:#6b7280}}\
         </style></head><body><h1>{title} <small>{version}</small></h1><p>{description}</p>\
         <p><a href=\"/api/v1/openapi.json\">OpenAPI 3.1 document</a></p>{body}</body></html>",
        title = escape(&doc.info.title),
        version = escape(&doc.info.version),
        description = escape(doc.info.description.as_deref().unwrap_or("")),
    )
}
