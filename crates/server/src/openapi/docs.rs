//! The API reference page (`/api/v1/docs`), rendered from the OpenAPI documents: per
//! operation its parameters, request body, every response with its schema, and an example
//! request; then every schema the operations name. One self-contained page, no scripts.

use serde_json::{json, Map, Value};

/// Escapes text for HTML.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// The page for `docs`, each with the address its JSON is served at.
pub fn render_docs(docs: &[(&Value, &str)]) -> String {
    let mut nav = String::new();
    let mut body = String::new();
    for (doc, url) in docs {
        let page = Page { doc };
        page.render(url, &mut nav, &mut body);
    }
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>frontdesk API reference</title>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><style>{STYLE}</style></head>\
         <body><header><h1>frontdesk API reference <small>{version}</small></h1></header>\
         <nav aria-label=\"Operations\">{nav}</nav><main>{body}</main></body></html>",
        version = escape(env!("CARGO_PKG_VERSION")),
    )
}

const STYLE: &str = "body{font:15px/1.5 system-ui,sans-serif;margin:0;color:#1f2937;display:grid;grid-template-columns:17rem 1fr}\
header{grid-column:1/3;padding:1rem 1.5rem;border-bottom:1px solid #e5e7eb}h1{margin:0;font-size:1.3rem}\
nav{padding:1rem 1.5rem;border-right:1px solid #e5e7eb;font-size:13px;position:sticky;top:0;align-self:start;max-height:100vh;overflow:auto}\
nav ul{list-style:none;padding:0;margin:0 0 .8rem}nav h2{font-size:13px;margin:.8rem 0 .3rem;text-transform:uppercase;color:#4b5563}\
main{padding:1rem 2rem;max-width:62rem;min-width:0}section{border-top:1px solid #e5e7eb;padding:.6rem 0}\
code.m{background:#eef2ff;color:#3730a3;padding:0 .3rem;border-radius:3px}h3{font-size:1.05rem}h4{font-size:.9rem;margin:.8rem 0 .2rem}\
table{border-collapse:collapse;width:100%;font-size:14px}td,th{border:1px solid #e5e7eb;padding:.2rem .5rem;text-align:left;vertical-align:top}\
pre{background:#f3f4f6;padding:.6rem;overflow:auto;font-size:13px}a{color:#1d4ed8}.d{color:#4b5563}\
@media (max-width:50rem){body{display:block}nav{position:static;max-height:none;border:0}}";

struct Page<'a> {
    doc: &'a Value,
}

impl Page<'_> {
    fn render(&self, url: &str, nav: &mut String, body: &mut String) {
        let info = &self.doc["info"];
        let title = info["title"].as_str().unwrap_or_default();
        let prefix = slug(title);
        body.push_str(&format!(
            "<h2 id=\"{prefix}\">{}</h2><p>{}</p><p><a href=\"{}\">OpenAPI 3.1 document</a></p>",
            escape(title),
            escape(info["description"].as_str().unwrap_or_default()),
            escape(url)
        ));
        nav.push_str(&format!(
            "<h2><a href=\"#{prefix}\">{}</a></h2><ul>",
            escape(title)
        ));
        for (path, item) in self.doc["paths"].as_object().into_iter().flatten() {
            for method in METHODS {
                let Some(op) = item.get(method) else {
                    continue;
                };
                let id = format!("{prefix}-{}", op["operationId"].as_str().unwrap_or(method));
                nav.push_str(&format!(
                    "<li><a href=\"#{id}\"><code>{}</code> {}</a></li>",
                    method.to_uppercase(),
                    escape(path)
                ));
                self.operation(&id, method, path, op, body);
            }
        }
        nav.push_str("</ul>");
        body.push_str("<h3>Schemas</h3>");
        for (name, schema) in self.doc["components"]["schemas"]
            .as_object()
            .into_iter()
            .flatten()
        {
            body.push_str(&format!(
                "<section id=\"{prefix}-schema-{name}\"><h4>{}</h4>",
                escape(name)
            ));
            if let Some(description) = schema["description"].as_str() {
                body.push_str(&format!("<p class=\"d\">{}</p>", escape(description)));
            }
            body.push_str(&self.properties(&prefix, schema));
            body.push_str("</section>");
        }
    }

    fn operation(&self, id: &str, method: &str, path: &str, op: &Value, body: &mut String) {
        let prefix = id.split('-').next().unwrap_or_default();
        body.push_str(&format!(
            "<section id=\"{id}\"><h3><code class=\"m\">{}</code> <code>{}</code></h3>",
            method.to_uppercase(),
            escape(path)
        ));
        if let Some(summary) = op["summary"].as_str() {
            body.push_str(&format!("<p>{}</p>", escape(summary)));
        }
        if let Some(description) = op["description"].as_str() {
            body.push_str(&format!("<p class=\"d\">{}</p>", escape(description)));
        }
        let schemes: Vec<String> = op["security"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|requirement| {
                let names: Vec<&str> = requirement
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(name, _)| name.as_str())
                    .collect();
                if names.is_empty() {
                    "none".to_owned()
                } else {
                    names.join(" + ")
                }
            })
            .collect();
        if !schemes.is_empty() {
            body.push_str(&format!(
                "<p><strong>Authentication:</strong> {}</p>",
                escape(&schemes.join(" or "))
            ));
        }
        if let Some(params) = op["parameters"].as_array() {
            body.push_str("<h4>Parameters</h4><table><tr><th>Name</th><th>In</th><th>Type</th><th>Description</th></tr>");
            for param in params {
                body.push_str(&format!(
                    "<tr><td><code>{}</code>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    escape(param["name"].as_str().unwrap_or_default()),
                    if param["required"] == true { " *" } else { "" },
                    escape(param["in"].as_str().unwrap_or_default()),
                    self.type_of(prefix, &param["schema"]),
                    escape(param["description"].as_str().unwrap_or_default())
                ));
            }
            body.push_str("</table>");
        }
        let request = &op["requestBody"];
        if let Some(content) = request["content"].as_object() {
            body.push_str("<h4>Request body</h4>");
            if let Some(description) = request["description"].as_str() {
                body.push_str(&format!("<p class=\"d\">{}</p>", escape(description)));
            }
            for (media, entry) in content {
                body.push_str(&format!(
                    "<p><code>{}</code>: {}</p>",
                    escape(media),
                    self.type_of(prefix, &entry["schema"])
                ));
                body.push_str(&self.properties(prefix, &entry["schema"]));
            }
        }
        body.push_str(
            "<h4>Responses</h4><table><tr><th>Status</th><th>Description</th><th>Body</th></tr>",
        );
        for (status, response) in op["responses"].as_object().into_iter().flatten() {
            let response = self.resolve(response);
            let bodies: Vec<String> = response["content"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(media, entry)| {
                    format!(
                        "<code>{}</code> {}",
                        escape(media),
                        self.type_of(prefix, &entry["schema"])
                    )
                })
                .collect();
            body.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(status),
                escape(response["description"].as_str().unwrap_or_default()),
                bodies.join("<br>")
            ));
        }
        body.push_str("</table><h4>Example request</h4><pre><code>");
        body.push_str(&escape(&self.example_request(method, path, op)));
        body.push_str("</code></pre></section>");
    }

    /// A `curl` command that calls the operation with the documented credentials and a body
    /// made of the schema's examples (or, field by field, values of the right type).
    fn example_request(&self, method: &str, path: &str, op: &Value) -> String {
        let mut lines = vec![format!(
            "curl -X {} \"$FRONTDESK_URL{}\"",
            method.to_uppercase(),
            path
        )];
        let scheme = op["security"][0]
            .as_object()
            .and_then(|s| s.keys().next().cloned());
        match scheme.as_deref() {
            Some("secret_key") => lines.push("-H \"Authorization: Bearer $FRONTDESK_KEY\"".into()),
            Some("admin_token") => {
                lines.push("-H \"Authorization: Bearer $FRONTDESK_ADMIN_TOKEN\"".into())
            }
            Some("visitor_token") => {
                lines.push("-H \"Authorization: Bearer $VISITOR_TOKEN\"".into())
            }
            Some("publishable_key") => {
                lines.push("-H \"X-Frontdesk-Key: $PUBLISHABLE_KEY\"".into())
            }
            _ => {}
        }
        if let Some(schema) = op["requestBody"]["content"]["application/json"].get("schema") {
            let example = self.example(schema, 0);
            lines.push("-H \"Content-Type: application/json\"".into());
            lines.push(format!(
                "-d '{}'",
                serde_json::to_string(&example)
                    .unwrap_or_default()
                    .replace('\'', "'\\''")
            ));
        }
        lines.join(" \\\n  ")
    }

    fn example(&self, schema: &Value, depth: usize) -> Value {
        let schema = self.resolve(schema);
        if let Some(example) = schema.get("example") {
            return example.clone();
        }
        if let Some(example) = schema["examples"].get(0) {
            return example.clone();
        }
        if depth > 4 {
            return Value::Null;
        }
        if let Some(value) = schema["enum"].get(0) {
            return value.clone();
        }
        if let Some(first) = schema["oneOf"].get(0).or(schema["anyOf"].get(0)) {
            return self.example(first, depth + 1);
        }
        match primary_type(schema) {
            "object" => {
                let required = required(schema);
                let mut out = Map::new();
                for (name, property) in schema["properties"].as_object().into_iter().flatten() {
                    if required.contains(&name.as_str()) {
                        out.insert(name.clone(), self.example(property, depth + 1));
                    }
                }
                Value::Object(out)
            }
            "array" => json!([]),
            "integer" => schema["minimum"].as_i64().map_or(json!(1), Value::from),
            "number" => json!(1.0),
            "boolean" => json!(false),
            "null" => Value::Null,
            _ => json!("…"),
        }
    }

    /// A `$ref` to a component, followed; anything else as it is.
    fn resolve<'v>(&'v self, schema: &'v Value) -> &'v Value {
        match schema["$ref"].as_str() {
            Some(reference) => {
                let mut target = self.doc;
                for part in reference.trim_start_matches("#/").split('/') {
                    target = &target[part];
                }
                target
            }
            None => schema,
        }
    }

    /// A short description of a schema's type, with a link to a named schema.
    fn type_of(&self, prefix: &str, schema: &Value) -> String {
        if let Some(reference) = schema["$ref"].as_str() {
            let name = reference.rsplit('/').next().unwrap_or_default();
            return format!("<a href=\"#{prefix}-schema-{name}\">{}</a>", escape(name));
        }
        for key in ["oneOf", "anyOf", "allOf"] {
            if let Some(parts) = schema[key].as_array() {
                let joint = if key == "allOf" { " &amp; " } else { " | " };
                return parts
                    .iter()
                    .map(|part| self.type_of(prefix, part))
                    .collect::<Vec<_>>()
                    .join(joint);
            }
        }
        let mut text = match &schema["type"] {
            Value::String(kind) => escape(kind),
            Value::Array(kinds) => kinds
                .iter()
                .filter_map(Value::as_str)
                .map(escape)
                .collect::<Vec<_>>()
                .join(" | "),
            _ => "any".to_owned(),
        };
        if primary_type(schema) == "array" {
            text = format!("array of {}", self.type_of(prefix, &schema["items"]));
        }
        let mut notes = Vec::new();
        if let Some(values) = schema["enum"].as_array() {
            let values: Vec<String> = values.iter().map(Value::to_string).collect();
            notes.push(format!("one of {}", values.join(", ")));
        }
        for (key, label) in [
            ("format", "format"),
            ("pattern", "pattern"),
            ("minLength", "min length"),
            ("maxLength", "max length"),
            ("minimum", "≥"),
            ("maximum", "≤"),
            ("maxItems", "max items"),
        ] {
            if let Some(value) = schema.get(key) {
                let value = value
                    .as_str()
                    .map_or_else(|| value.to_string(), str::to_owned);
                notes.push(format!("{label} {value}"));
            }
        }
        if notes.is_empty() {
            text
        } else {
            format!(
                "{text} <span class=\"d\">({})</span>",
                escape(&notes.join("; "))
            )
        }
    }

    /// The properties of an object schema as a table (nothing for other schemas).
    fn properties(&self, prefix: &str, schema: &Value) -> String {
        let schema = self.resolve(schema);
        let Some(properties) = schema["properties"].as_object() else {
            return String::new();
        };
        let required = required(schema);
        let mut out =
            String::from("<table><tr><th>Field</th><th>Type</th><th>Description</th></tr>");
        for (name, property) in properties {
            out.push_str(&format!(
                "<tr><td><code>{}</code>{}</td><td>{}</td><td>{}</td></tr>",
                escape(name),
                if required.contains(&name.as_str()) {
                    " *"
                } else {
                    ""
                },
                self.type_of(prefix, property),
                escape(property["description"].as_str().unwrap_or_default())
            ));
        }
        out.push_str("</table>");
        out
    }
}

/// The names of an object schema's required properties.
fn required(schema: &Value) -> Vec<&str> {
    schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

/// The first type a schema names other than `null`.
fn primary_type(schema: &Value) -> &str {
    match &schema["type"] {
        Value::String(kind) => kind,
        Value::Array(kinds) => kinds
            .iter()
            .filter_map(Value::as_str)
            .find(|kind| *kind != "null")
            .unwrap_or("null"),
        _ if schema.get("properties").is_some() => "object",
        _ => "",
    }
}

fn slug(title: &str) -> String {
    title
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}
