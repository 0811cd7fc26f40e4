//! Webhook tools: the tenant's HTTP endpoint, called with the model's arguments.
//!
//! `POST`/`PUT`/`PATCH` send the arguments as a JSON body; `GET`/`DELETE` send them as query
//! parameters. Every request is signed so the receiver can check it came from us and is fresh:
//!
//! ```text
//! X-Frontdesk-Signature: t=1732262400,v1=5f2b…
//! ```
//!
//! where `v1` is the hex HMAC-SHA256, keyed with the tenant's webhook signing secret, of the
//! timestamp, a `.`, and the exact body bytes — for `GET`/`DELETE`, which have no body, the
//! exact query string (without `?`), so the arguments are signed either way. `v2` also binds
//! the request to where it goes and why: the HMAC of these lines joined by `\n`,
//!
//! ```text
//! <t>
//! <METHOD>
//! <path and query, as sent: /hooks/refund?x=1>
//! <tool name>
//! <run id>
//! <X-Frontdesk-Context, as sent, or nothing>
//! <body>
//! ```
//!
//! so a signed request does not verify at another endpoint, for another tool or run, or with
//! another context. After a rotation, while its overlap lasts, the header carries a `v1` and
//! a `v2` for each secret (`t=…,v1=<new>,v2=<new>,v1=<old>,v2=<old>`): a receiver accepts a
//! request when any signature of the version it checks matches. Receivers recompute it, compare in constant time, and reject timestamps
//! older than a few minutes. Header values may name the tenant's stored secrets as
//! `{{secrets.NAME}}`.
//!
//! The run's context (see `frontdesk_core::context`), when it has any, comes in
//! `X-Frontdesk-Context`: its JSON, base64url-encoded without padding.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use frontdesk_core::agent::HttpMethod;
use frontdesk_core::model::ToolSpec;
use frontdesk_core::tool::{
    Tool, ToolContext, ToolOutput, TrialHeader, TrialRequest, TrialResponse, WebhookTrial,
};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use sha2::Sha256;

use crate::outbound;

/// Largest response body read.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;
/// How much of a response body a trial shows.
const TRIAL_SHOWN_BYTES: usize = 64 * 1024;

/// The signature header's value for `body` sent at `timestamp` (unix seconds).
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        // HMAC takes keys of any length; this arm cannot be reached.
        Err(_) => return String::new(),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

/// What `v2` signs beside the timestamp.
pub struct Signed<'a> {
    pub method: &'a str,
    /// The path and query as sent (`/hooks/refund?x=1`).
    pub target: &'a str,
    pub tool: &'a str,
    pub run: &'a str,
    /// The `X-Frontdesk-Context` value as sent (empty without one).
    pub context: &'a str,
    pub body: &'a [u8],
}

/// The hex `v2` signature of a request sent at `timestamp` (unix seconds).
pub fn signature_v2(secret: &str, timestamp: i64, signed: &Signed<'_>) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        // HMAC takes keys of any length; this arm cannot be reached.
        Err(_) => return String::new(),
    };
    for line in [
        timestamp.to_string().as_str(),
        signed.method,
        signed.target,
        signed.tool,
        signed.run,
        signed.context,
    ] {
        mac.update(line.as_bytes());
        mac.update(b"\n");
    }
    mac.update(signed.body);
    hex::encode(mac.finalize().into_bytes())
}

/// The value of `X-Frontdesk-Context` for a run's context (`None` when it is empty).
pub fn context_header(context: &frontdesk_core::context::RunContext) -> Option<String> {
    use base64::Engine;
    (!context.is_empty())
        .then(|| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(context.to_json()))
}

fn http_method(method: HttpMethod) -> reqwest::Method {
    match method {
        HttpMethod::Get => reqwest::Method::GET,
        HttpMethod::Post => reqwest::Method::POST,
        HttpMethod::Put => reqwest::Method::PUT,
        HttpMethod::Patch => reqwest::Method::PATCH,
        HttpMethod::Delete => reqwest::Method::DELETE,
    }
}

/// A webhook tool, ready to call.
pub struct Webhook {
    pub spec: ToolSpec,
    pub url: String,
    pub method: HttpMethod,
    /// Header values as written, `{{secrets.NAME}}` not yet filled in.
    pub headers: BTreeMap<String, String>,
    pub timeout: Duration,
    pub client: reqwest::Client,
    pub allow_private: bool,
    pub signing_secret: SecretString,
    /// The secret a rotation replaced, while its overlap lasts: requests carry its signatures
    /// too, so receivers can move over.
    pub previous_signing_secret: Option<SecretString>,
    pub secrets: HashMap<String, SecretString>,
}

impl Webhook {
    /// The signed request for a call: the arguments in the body or the query.
    fn build(&self, context: &ToolContext, arguments: &Value) -> Result<reqwest::Request, String> {
        let mut url = reqwest::Url::parse(&self.url).map_err(|e| format!("bad URL: {e}"))?;
        outbound::check_url(&url, self.allow_private).map_err(|e| e.to_string())?;
        let body = match self.method {
            HttpMethod::Get | HttpMethod::Delete => {
                if let Value::Object(fields) = arguments {
                    if fields.values().any(|v| !v.is_null()) {
                        let mut query = url.query_pairs_mut();
                        for (key, value) in fields {
                            match value {
                                Value::String(s) => query.append_pair(key, s),
                                Value::Null => continue,
                                other => query.append_pair(key, &other.to_string()),
                            };
                        }
                    }
                }
                // No arguments: no `?` (what is sent and signed is the URL as configured).
                if url.query() == Some("") {
                    url.set_query(None);
                }
                Vec::new()
            }
            HttpMethod::Post | HttpMethod::Put | HttpMethod::Patch => {
                serde_json::to_vec(arguments).map_err(|e| e.to_string())?
            }
        };
        let method = http_method(self.method);
        let now = frontdesk_core::time::Timestamp::now().as_millis() / 1000;
        let signed: Vec<u8> = match self.method {
            HttpMethod::Get | HttpMethod::Delete => url.query().unwrap_or("").as_bytes().to_vec(),
            HttpMethod::Post | HttpMethod::Put | HttpMethod::Patch => body.clone(),
        };
        let run_context = context_header(&context.run_context);
        let target = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        };
        let signed_v2 = Signed {
            method: method.as_str(),
            target: &target,
            tool: &self.spec.name,
            run: context.run.as_str(),
            context: run_context.as_deref().unwrap_or(""),
            body: &body,
        };
        let mut header = String::new();
        for secret in std::iter::once(&self.signing_secret).chain(&self.previous_signing_secret) {
            let secret = secret.expose_secret();
            let v1 = signature(secret, now, &signed);
            let v1 = v1.split_once(',').map_or(v1.as_str(), |(_, v1)| v1);
            if header.is_empty() {
                header = format!("t={now}");
            }
            header.push(',');
            header.push_str(v1);
            header.push_str(",v2=");
            header.push_str(&signature_v2(secret, now, &signed_v2));
        }
        let mut request = self
            .client
            .request(method, url)
            .timeout(self.timeout)
            .header("X-Frontdesk-Signature", header)
            .header("X-Frontdesk-Run", context.run.as_str())
            .header("X-Frontdesk-Tool", self.spec.name.as_str());
        if let Some(value) = &run_context {
            request = request.header("X-Frontdesk-Context", value.as_str());
        }
        for (name, value) in &self.headers {
            request = request.header(name.as_str(), super::fill_secrets(value, &self.secrets)?);
        }
        if !body.is_empty() {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        request.build().map_err(|e| outbound::describe(&e))
    }

    async fn send(&self, context: &ToolContext, arguments: &Value) -> Result<ToolOutput, String> {
        let request = self.build(context, arguments)?;
        let response = self
            .client
            .execute(request)
            .await
            .map_err(|e| outbound::describe(&e))?;
        let status = response.status();
        let bytes = outbound::read_limited(response, MAX_RESPONSE_BYTES).await?;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if status.is_success() {
            Ok(ToolOutput::ok(if text.is_empty() {
                format!("OK ({})", status.as_u16())
            } else {
                text
            }))
        } else {
            Ok(ToolOutput::error(format!(
                "the webhook answered {}: {}",
                status.as_u16(),
                frontdesk_core::validate::truncate(&text, 2_000)
            )))
        }
    }

    /// Sends one call the way a run would, and keeps the request as it went and what came
    /// back (the editor's "send test request"). Header values that name secrets are shown
    /// as written; the signature headers as sent.
    pub async fn trial(&self, context: &ToolContext, arguments: &Value) -> WebhookTrial {
        let request = match self.build(context, arguments) {
            Ok(mut request) => {
                request.headers_mut().insert(
                    "x-frontdesk-test",
                    reqwest::header::HeaderValue::from_static("1"),
                );
                request
            }
            Err(error) => {
                return WebhookTrial {
                    request: TrialRequest {
                        method: http_method(self.method).to_string(),
                        url: self.url.clone(),
                        headers: Vec::new(),
                        body: String::new(),
                    },
                    response: None,
                    error: Some(error),
                }
            }
        };
        let shown = TrialRequest {
            method: request.method().as_str().to_owned(),
            url: request.url().to_string(),
            headers: request
                .headers()
                .iter()
                .map(|(name, value)| TrialHeader {
                    value: match self
                        .headers
                        .iter()
                        .find(|(n, _)| n.eq_ignore_ascii_case(name.as_str()))
                    {
                        Some((_, written)) => written.clone(),
                        None => String::from_utf8_lossy(value.as_bytes()).into_owned(),
                    },
                    name: name.as_str().to_owned(),
                })
                .collect(),
            body: request
                .body()
                .and_then(|b| b.as_bytes())
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default(),
        };
        let started = std::time::Instant::now();
        let answered = match self.client.execute(request).await {
            Ok(response) => {
                let status = response.status().as_u16();
                let headers = response
                    .headers()
                    .iter()
                    .map(|(name, value)| TrialHeader {
                        name: name.as_str().to_owned(),
                        value: String::from_utf8_lossy(value.as_bytes()).into_owned(),
                    })
                    .collect();
                read_shown(response)
                    .await
                    .map(|(bytes, truncated)| TrialResponse {
                        status,
                        headers,
                        body: String::from_utf8_lossy(&bytes).into_owned(),
                        truncated,
                        duration_ms: started.elapsed().as_millis() as u64,
                    })
            }
            Err(error) => Err(outbound::describe(&error)),
        };
        // A receiver that echoes its request would hand the secrets back: they are shown by
        // name wherever they appear.
        let answered = answered.map(|mut response| {
            for header in &mut response.headers {
                header.value = self.hide_secrets(&header.value);
            }
            response.body = self.hide_secrets(&response.body);
            response
        });
        match answered {
            Ok(response) => WebhookTrial {
                request: shown,
                response: Some(response),
                error: None,
            },
            Err(error) => WebhookTrial {
                request: shown,
                response: None,
                error: Some(error),
            },
        }
    }
}

impl Webhook {
    /// `text` with the value of every secret this webhook's headers name replaced by
    /// `{{secrets.NAME}}`.
    fn hide_secrets(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for (name, secret) in &self.secrets {
            let value = secret.expose_secret();
            let named = self
                .headers
                .values()
                .any(|v| v.contains(&format!("secrets.{name}")));
            if named && !value.is_empty() && out.contains(value) {
                out = out.replace(value, &format!("{{{{secrets.{name}}}}}"));
            }
        }
        out
    }
}

/// At most [`TRIAL_SHOWN_BYTES`] of a response body, and whether there was more.
async fn read_shown(mut response: reqwest::Response) -> Result<(Vec<u8>, bool), String> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| outbound::describe(&e))? {
        body.extend_from_slice(&chunk);
        if body.len() > TRIAL_SHOWN_BYTES {
            body.truncate(TRIAL_SHOWN_BYTES);
            return Ok((body, true));
        }
    }
    Ok((body, false))
}

#[async_trait]
impl Tool for Webhook {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, context: &ToolContext, arguments: Value) -> ToolOutput {
        match self.send(context, &arguments).await {
            Ok(output) => output,
            Err(message) => ToolOutput::error(format!("the webhook call failed: {message}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_cover_timestamp_and_body() {
        let a = signature("whsec", 1_700_000_000, b"{\"a\":1}");
        assert!(a.starts_with("t=1700000000,v1="));
        assert_eq!(a.len(), "t=1700000000,v1=".len() + 64);
        assert_ne!(a, signature("whsec", 1_700_000_001, b"{\"a\":1}"));
        assert_ne!(a, signature("whsec", 1_700_000_000, b"{\"a\":2}"));
        assert_ne!(a, signature("other", 1_700_000_000, b"{\"a\":1}"));
        // A known vector, computed independently with Python's hmac module.
        assert_eq!(
            signature("secret", 1, b"x"),
            "t=1,v1=33270e99f50e3d3ec295e0d7185dc323a6231c2739f396d70e6b71ea6a435486"
        );
    }

    #[test]
    fn v2_binds_method_target_tool_run_context_and_body() {
        let base = Signed {
            method: "POST",
            target: "/hooks/refund?x=1",
            tool: "refund",
            run: "run_1",
            context: "eyJhIjoxfQ",
            body: b"{}",
        };
        let signed = signature_v2("whsec", 1_700_000_000, &base);
        assert_eq!(signed.len(), 64);
        let changed = [
            Signed {
                method: "PUT",
                ..base
            },
            Signed {
                target: "/hooks/other?x=1",
                ..base
            },
            Signed {
                tool: "other",
                ..base
            },
            Signed {
                run: "run_2",
                ..base
            },
            Signed {
                context: "",
                ..base
            },
            Signed {
                body: b"{\"a\":1}",
                ..base
            },
        ];
        for other in changed {
            assert_ne!(signature_v2("whsec", 1_700_000_000, &other), signed);
        }
        assert_ne!(signature_v2("whsec", 1_700_000_001, &base), signed);
        // A known vector, computed independently with Python's hmac module.
        let vector = Signed {
            method: "GET",
            target: "/a?b=1",
            tool: "t",
            run: "r",
            context: "",
            body: b"",
        };
        assert_eq!(
            signature_v2("secret", 1, &vector),
            "adb375dc23b80aadecc0f9789693ea24e82cc06f002da543f109375ea3635f13"
        );
    }
}
