//! The OpenAPI 3.1 documents, generated from the handlers' annotations: the native API's
//! (`/api/v1/openapi.json`) and the protocol endpoints' (`/api/v1/openapi/protocols.json`:
//! the OpenAI-compatible, AI SDK, ChatKit and widget routes), and the docs page rendered
//! from both (`docs`).

mod call_rules;
mod constraints;
mod docs;

pub use docs::{escape, render_docs};

use serde_json::{json, Value};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::OpenApi as Document;
use utoipa::{Modify, OpenApi};

use crate::routes;

#[derive(OpenApi)]
#[openapi(
    info(title = "frontdesk API", description = "The native REST API of frontdesk. Authenticate with a secret key: `Authorization: Bearer fd_sk_…` (the dashboard's own pages use their session cookie with an `X-CSRF-Token` header instead). Errors are `{\"error\": {\"type\", \"code\", \"message\"}}`."),
    paths(
        routes::agents::list_agents, routes::agents::create_agent, routes::agents::get_agent,
        routes::agents::update_agent, routes::agents::delete_agent, routes::agents::list_versions,
        routes::agents::test_tool, routes::agents::mcp_tools,
        routes::keys::create_key, routes::keys::list_keys, routes::keys::revoke_key,
        routes::knowledge::create_knowledge_base, routes::knowledge::list_knowledge_bases,
        routes::knowledge::get_knowledge_base, routes::knowledge::delete_knowledge_base,
        routes::knowledge::add_document, routes::knowledge::list_documents,
        routes::knowledge::get_document, routes::knowledge::delete_document,
        routes::knowledge::retry_document, routes::knowledge::query,
        routes::conversations::list_conversations, routes::conversations::create_conversation,
        routes::conversations::get_conversation, routes::conversations::list_messages,
        routes::conversations::update_conversation, routes::conversations::delete_conversation,
        routes::conversations::export_conversation,
        routes::handoff::take_over, routes::handoff::staff_message, routes::handoff::hand_back,
        routes::handoff::typing, routes::handoff::events,
        routes::calls::list_calls, routes::calls::get_call, routes::calls::place_call,
        routes::calls::client_secret,
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
    components(schemas(ErrorBody)),
    modifiers(&Security, &ErrorResponses),
    tags(
        (name = "agents", description = "Agents: instructions, model, tools, knowledge, widget."),
        (name = "api-keys", description = "Secret and publishable keys."),
        (name = "conversations", description = "Conversations and their messages."),
        (name = "calls", description = "Voice calls: records with transcripts, outbound calls, Realtime client secrets."),
        (name = "knowledge", description = "Knowledge bases: the tenant's documents agents answer from."),
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
        components.add_security_scheme(
            "visitor_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("fdv1.…")
                    .description(Some("a visitor token from `POST /widget/v1/session`"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "publishable_key",
            SecurityScheme::ApiKey(utoipa::openapi::security::ApiKey::Header(
                utoipa::openapi::security::ApiKeyValue::with_description(
                    "X-Frontdesk-Key",
                    "a publishable key (`fd_pk_…`), used from a page on one of its origins",
                ),
            )),
        );
    }
}

/// Every error's body: `{"error": {"type", "code", "message", …}}`.
#[derive(utoipa::ToSchema)]
#[schema(as = Error)]
#[allow(dead_code)] // Only its schema is used; errors are written by `crate::error`.
pub struct ErrorBody {
    error: ErrorDetail,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct ErrorDetail {
    /// The class of error (`invalid_request_error`, `authentication_error`, …).
    r#type: String,
    /// A stable code to branch on.
    code: String,
    /// For people.
    message: String,
    /// The field a validation error is about.
    field: Option<String>,
    /// With a 5xx: the id to report.
    request_id: Option<String>,
}

/// The errors every operation can answer, with the error schema: 401 and 429 where it takes
/// credentials, and for a request body 400 (malformed), 408 (too slow), 413 (too large) and
/// 422 (a field that is not valid). Operations keep what they say themselves.
struct ErrorResponses;

impl Modify for ErrorResponses {
    fn modify(&self, openapi: &mut Document) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
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
                // Every error answers with the error schema, also where a handler's
                // annotation named only the status.
                for (status, answer) in op.responses.responses.iter_mut() {
                    let is_error = status.starts_with('4') || status.starts_with('5');
                    if let utoipa::openapi::RefOr::T(answer) = answer {
                        if is_error && answer.content.is_empty() {
                            let description = answer.description.clone();
                            *answer = response(if description.is_empty() {
                                "an error"
                            } else {
                                &description
                            });
                        }
                    }
                }
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
                let takes_query = op.parameters.iter().flatten().any(|parameter| {
                    parameter.parameter_in == utoipa::openapi::path::ParameterIn::Query
                });
                let takes_header = op.parameters.iter().flatten().any(|parameter| {
                    parameter.parameter_in == utoipa::openapi::path::ParameterIn::Header
                });
                if takes_header {
                    add("400", "a header is not valid");
                }
                if takes_query {
                    add(
                        "400",
                        "the query string is not valid (an unknown parameter, a wrong type)",
                    );
                    add("422", "a parameter is not valid (`field` names it)");
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

/// The protocol endpoints: other people's protocols, spoken by frontdesk. Their wire
/// formats are the protocols' own (see each operation); this document says where they are,
/// how they authenticate and what they answer.
#[derive(OpenApi)]
#[openapi(
    info(title = "frontdesk protocol endpoints", description = "The OpenAI-compatible API (`model` names an agent), the AI SDK UI message stream, the ChatKit custom backend and the widget's API. Errors keep frontdesk's shape, whose `message`, `type` and `code` are what OpenAI's clients read."),
    paths(
        routes::openai::list_models, routes::openai::get_model,
        routes::openai::chat::completions, routes::openai::responses::create,
        routes::openai::responses::retrieve,
        routes::ai_sdk::chat,
        routes::chatkit::chatkit,
        routes::widget::open_session, routes::widget::list, routes::widget::create,
        routes::widget::read, routes::widget::send, routes::widget::regenerate,
        routes::widget::events, routes::widget::cancel, routes::widget::decide,
        routes::widget_handoff::conversation_events, routes::widget_handoff::ask_for_human,
    ),
    components(schemas(ErrorBody)),
    modifiers(&Security, &ErrorResponses),
    tags(
        (name = "openai", description = "OpenAI-compatible: Chat Completions, Responses, models (the tenant's agents). Secret key."),
        (name = "ai-sdk", description = "The Vercel AI SDK's UI message stream protocol (`useChat`). Secret key."),
        (name = "chatkit", description = "OpenAI ChatKit's custom-backend protocol. Secret key, or a visitor token."),
        (name = "widget", description = "The embeddable widget's API: a session from a publishable key (or a hosted page), then a visitor token."),
    )
)]
struct ProtocolsDoc;

/// A generated document as JSON, with the crate's version and what the derive cannot say
/// about shapes (tagged variants as schemas, rules between fields).
fn generated(doc: Document) -> Value {
    let mut doc = serde_json::to_value(doc).unwrap_or_default();
    doc["info"]["version"] = json!(env!("CARGO_PKG_VERSION"));
    flatten(&mut doc);
    unsigned(&mut doc);
    hoist_variants(&mut doc);
    webhook_trials(&mut doc);
    strip_object_defaults(&mut doc);
    conditions(&mut doc);
    doc
}

/// `PATCH /api/v1/agents/{agent}` takes a JSON merge patch of the agent (RFC 7396): any of
/// its fields, at any depth of its objects, where `null` removes a field (back to its
/// default; the slug and name cannot go). Lists are replaced whole.
fn merge_patches(doc: &mut Value) {
    let Some(spec) = doc.pointer("/components/schemas/AgentSpec").cloned() else {
        return;
    };
    let schemas = doc["components"]["schemas"].clone();
    let mut patch = patch_of(&spec, &schemas, 0);
    // The patched agent keeps a slug and a name.
    for required in ["slug", "name"] {
        if let Some(property) = patch["properties"].get_mut(required) {
            *property = spec["properties"][required].clone();
        }
    }
    patch["description"] = json!("A JSON merge patch (RFC 7396) of an agent: the fields to change, at any depth of its objects; `null` removes a field (back to its default). Lists are replaced whole.");
    doc["components"]["schemas"]["AgentPatch"] = patch;
    if let Some(operation) =
        doc.pointer_mut("/paths/~1api~1v1~1agents~1{agent}/patch/requestBody/content")
    {
        let schema = json!({"$ref": "#/components/schemas/AgentPatch"});
        for media in ["application/json", "application/merge-patch+json"] {
            operation[media] = json!({"schema": schema});
        }
    }
}

/// The merge patch of what `schema` describes: its objects' fields optional and nullable all
/// the way down (referenced schemas inlined); anything else as it is.
fn patch_of(schema: &Value, schemas: &Value, depth: usize) -> Value {
    let schema = match schema["$ref"].as_str() {
        Some(reference) if depth < 8 => {
            &schemas[reference.trim_start_matches("#/components/schemas/")]
        }
        _ => schema,
    };
    let nullable = |value: Value| json!({"anyOf": [value, {"type": "null"}]});
    let mut patch = schema.clone();
    for key in ["oneOf", "anyOf"] {
        // `Option<Struct>` and defaulted structs come wrapped in a `oneOf`.
        if let Some(parts) = schema[key].as_array() {
            patch[key] = parts
                .iter()
                .map(|part| patch_of(part, schemas, depth + 1))
                .collect();
        }
    }
    if let Some(properties) = schema["properties"].as_object() {
        let fields: serde_json::Map<String, Value> = properties
            .iter()
            .map(|(name, property)| {
                (
                    name.clone(),
                    nullable(patch_of(property, schemas, depth + 1)),
                )
            })
            .collect();
        patch["properties"] = Value::Object(fields);
        if let Some(patch) = patch.as_object_mut() {
            patch.remove("required");
        }
    }
    match schema.get("additionalProperties") {
        Some(values) if values.is_object() => {
            patch["additionalProperties"] = nullable(patch_of(values, schemas, depth + 1));
        }
        // Removing a field that is not there changes nothing, and is no error.
        Some(Value::Bool(false)) => patch["additionalProperties"] = json!({"type": "null"}),
        _ => {}
    }
    patch
}

#[cfg(test)]
fn generated_native() -> Value {
    generated(ApiDoc::openapi())
}

/// Rules between fields, as JSON Schema conditionals: a secret key takes no origins and no
/// agents (those bound publishable keys, which live in web pages); a publishable key needs
/// an origin.
fn conditions(doc: &mut Value) {
    if let Some(new_key) = doc.pointer_mut("/components/schemas/NewKey") {
        new_key["if"] = json!({"properties": {"kind": {"const": "secret"}}, "required": ["kind"]});
        new_key["then"] = json!({"properties": {
            "allowed_origins": {"maxItems": 0},
            "allowed_agents": {"maxItems": 0},
        }});
        new_key["else"] = json!({
            "properties": {"allowed_origins": {"minItems": 1}},
            "required": ["allowed_origins"],
        });
    }
}

/// Types with a `#[serde(flatten)]` field come out of the derive as `allOf` of the flattened
/// type and the rest; where the flattened type forbids other properties (`AgentSpec` inside
/// `Agent`) no value can match both. Such a schema becomes the one object it describes, and
/// where the derive wrote the same `allOf` inline (`ListPage<Agent>`), a reference to it.
fn flatten(doc: &mut Value) {
    let Some(schemas) = doc
        .pointer("/components/schemas")
        .and_then(Value::as_object)
    else {
        return;
    };
    let object_of = |part: &Value| -> Option<Value> {
        let part = match part["$ref"].as_str() {
            Some(reference) => {
                schemas.get(reference.trim_start_matches("#/components/schemas/"))?
            }
            None => part,
        };
        part["properties"].is_object().then(|| part.clone())
    };
    let mut merged = Vec::new();
    for (name, schema) in schemas {
        let Some(parts) = schema["allOf"].as_array() else {
            continue;
        };
        let Some(parts) = parts.iter().map(object_of).collect::<Option<Vec<_>>>() else {
            continue;
        };
        let mut properties = serde_json::Map::new();
        let mut required: Vec<Value> = Vec::new();
        let mut description = schema.get("description").cloned();
        for part in parts {
            if let Some(fields) = part["properties"].as_object() {
                properties.extend(fields.clone());
            }
            for field in part["required"].as_array().into_iter().flatten() {
                if !required.contains(field) {
                    required.push(field.clone());
                }
            }
            description = description.or_else(|| part.get("description").cloned());
        }
        let mut object = json!({"type": "object", "properties": properties, "required": required});
        if let Some(description) = description {
            object["description"] = description;
        }
        merged.push((name.clone(), schema["allOf"].clone(), object));
    }
    for (name, inline, object) in merged {
        let reference = json!({"$ref": format!("#/components/schemas/{name}")});
        replace_inline(&mut doc["paths"], &inline, &reference);
        replace_inline(&mut doc["components"], &inline, &reference);
        doc["components"]["schemas"][&name] = object;
    }
}

/// Replaces every schema in `value` whose `allOf` is `inline` with `reference`.
fn replace_inline(value: &mut Value, inline: &Value, reference: &Value) {
    if value.get("allOf") == Some(inline) {
        *value = reference.clone();
        return;
    }
    match value {
        Value::Object(map) => map
            .values_mut()
            .for_each(|v| replace_inline(v, inline, reference)),
        Value::Array(items) => items
            .iter_mut()
            .for_each(|v| replace_inline(v, inline, reference)),
        _ => {}
    }
}

/// Unsigned integers come out of the derive as `int32`/`int64` from 0, which bounds them at
/// the signed maximum; the server reads up to the unsigned one, so that is the maximum said.
fn unsigned(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let from_zero = map.get("minimum").and_then(Value::as_u64) == Some(0);
            let maximum = match map.get("format").and_then(Value::as_str) {
                Some("int32") if from_zero => Some(json!(u32::MAX)),
                Some("int64") if from_zero => Some(json!(u64::MAX)),
                _ => None,
            };
            if let Some(maximum) = maximum {
                map.remove("format");
                map.entry("maximum").or_insert(maximum);
            }
            map.values_mut().for_each(unsigned);
        }
        Value::Array(items) => items.iter_mut().for_each(unsigned),
        _ => {}
    }
}

/// A tool to try is a webhook entry (the one kind that sends a request), not any entry.
fn webhook_trials(doc: &mut Value) {
    if doc
        .pointer("/components/schemas/ToolEntryWebhook")
        .is_none()
    {
        return;
    }
    if let Some(tool) = doc.pointer_mut("/components/schemas/ToolTest/properties/tool") {
        *tool = json!({"$ref": "#/components/schemas/ToolEntryWebhook"});
    }
}

/// The variants of a tagged enum (`oneOf` of objects told apart by `type`) become schemas of
/// their own, named after the enum and the tag (`ContentPart` → `ContentPartToolCall`), with a
/// discriminator: client generators then make one typed class per variant.
fn hoist_variants(doc: &mut Value) {
    let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    let mut hoisted = Vec::new();
    for (name, schema) in schemas.iter_mut() {
        let Some(variants) = schema.get_mut("oneOf").and_then(Value::as_array_mut) else {
            continue;
        };
        let tags: Option<Vec<String>> = variants
            .iter()
            .map(|variant| match variant.pointer("/properties/type/enum") {
                Some(Value::Array(values)) if values.len() == 1 && variant["$ref"].is_null() => {
                    values[0].as_str().map(str::to_owned)
                }
                _ => None,
            })
            .collect();
        let Some(tags) = tags else {
            continue;
        };
        let mut mapping = serde_json::Map::new();
        for (variant, tag) in variants.iter_mut().zip(tags) {
            let variant_name = format!("{name}{}", pascal_case(&tag));
            let reference = format!("#/components/schemas/{variant_name}");
            hoisted.push((variant_name, variant.take()));
            *variant = json!({"$ref": reference});
            mapping.insert(tag, json!(reference));
        }
        schema["discriminator"] = json!({"propertyName": "type", "mapping": mapping});
    }
    for (name, schema) in hoisted {
        schemas.insert(name, schema);
    }
}

fn pascal_case(tag: &str) -> String {
    tag.split(['_', '-', '.'])
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_uppercase().chain(chars).collect()
            })
        })
        .collect()
}

/// Defaults that are whole objects (a struct's `Default` written out) say nothing a reader
/// needs and stop client generators (a model-typed property with a default); scalar defaults
/// stay.
fn strip_object_defaults(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if map.get("default").is_some_and(Value::is_object) {
                map.remove("default");
            }
            map.iter_mut()
                .filter(|(key, _)| !matches!(key.as_str(), "example" | "examples"))
                .for_each(|(_, value)| strip_object_defaults(value));
        }
        Value::Array(items) => items.iter_mut().for_each(strip_object_defaults),
        _ => {}
    }
}

/// The native API's document; `limit` parameters are bounded by `max_page_size`.
pub fn document(limits: &frontdesk_core::config::Limits) -> Value {
    let mut doc = generated(ApiDoc::openapi());
    let missing = constraints::apply(&mut doc, limits.max_page_size);
    debug_assert!(
        missing.is_empty(),
        "constraints without a field: {missing:?}"
    );
    merge_patches(&mut doc);
    doc
}

/// The protocol endpoints' document; `limit` parameters are bounded by `max_page_size`.
pub fn protocols(limits: &frontdesk_core::config::Limits) -> Value {
    let mut doc = generated(ProtocolsDoc::openapi());
    constraints::bound_limits(&mut doc, limits.max_page_size);
    if let Some(kind) = doc.pointer_mut("/components/schemas/ChatKitRequest/properties/type") {
        kind["enum"] = json!(crate::routes::chatkit::REQUEST_TYPES);
    }
    doc
}
