//! Rendering: the embedded templates, the page-level error (an HTML page, or a redirect to
//! sign in), and the dashboard's two assets.

use std::sync::OnceLock;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use frontdesk_core::Error;
use minijinja::Environment;
use serde::Serialize;

/// What our pages may load: our own script, style and API; forms post only here; and no
/// page may frame them (a framed dashboard could be tricked into clicks).
pub(super) const DASHBOARD_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

macro_rules! templates {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("templates/", $name)))),*]
    };
}

const TEMPLATES: &[(&str, &str)] = templates!(
    "base.html",
    "macros.html",
    "account.html",
    "error.html",
    "overview.html",
    "usage.html",
    "agents.html",
    "agent_edit.html",
    "agent_versions.html",
    "conversations.html",
    "conversation.html",
    "run.html",
    "approvals.html",
    "keys.html",
    "embed.html",
    "members.html",
    "settings.html",
    "playground.html",
    "inbox.html",
    "inbox_conversation.html",
    "profile.html",
    "calls.html",
    "call.html",
);

fn environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Lenient);
        for (name, source) in TEMPLATES {
            if let Err(error) = env.add_template(name, source) {
                // A template that does not parse is a build mistake the tests catch.
                tracing::error!(template = name, error = %error, "dashboard template does not parse");
            }
        }
        env.add_filter("number", number);
        env.add_filter("usd", usd);
        env.add_filter("truncate", truncate);
        env
    })
}

/// `1234567` → `1,234,567`.
pub(super) fn number(value: i64) -> String {
    let digits = value.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if value < 0 {
        out.push('-');
    }
    for (idx, ch) in digits.chars().enumerate() {
        if idx > 0 && (digits.len() - idx).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// At most `chars` characters of `text`, with an ellipsis when cut.
fn truncate(text: &str, chars: usize) -> String {
    if text.chars().count() <= chars {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(chars.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// A dollar amount with cents, or four decimals under a cent.
fn usd(value: f64) -> String {
    if value != 0.0 && value.abs() < 0.01 {
        format!("${value:.4}")
    } else {
        format!("${value:.2}")
    }
}

/// Renders `template` with `context` as a complete HTML page.
pub(super) fn page(status: StatusCode, template: &str, context: impl Serialize) -> Response {
    let rendered = environment()
        .get_template(template)
        .and_then(|t| t.render(context));
    match rendered {
        Ok(html) => {
            let mut response = (status, Html(html)).into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(DASHBOARD_CSP),
            );
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            // Our own forms then carry our origin (with `no-referrer` they say `null`).
            headers.insert(
                header::REFERRER_POLICY,
                HeaderValue::from_static("same-origin"),
            );
            response
        }
        Err(error) => {
            tracing::error!(template, error = %error, "dashboard template failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "this page failed to render",
            )
                .into_response()
        }
    }
}

/// A dashboard request that ends elsewhere than its page: not signed in (to the sign-in
/// page), or an error shown as a page of its own.
#[derive(Debug)]
pub enum PageError {
    SignIn { next: String },
    Failed(Error),
}

impl From<Error> for PageError {
    fn from(error: Error) -> Self {
        PageError::Failed(error)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            PageError::SignIn { next } => {
                let target = if next == "/" || next.is_empty() {
                    "/login".to_owned()
                } else {
                    format!(
                        "/login?{}",
                        serde_urlencoded::to_string([("next", next.as_str())]).unwrap_or_default()
                    )
                };
                Redirect::to(&target).into_response()
            }
            PageError::Failed(error) => {
                if let Error::Internal(inner) = &error {
                    tracing::error!(error = %inner, "dashboard request failed");
                }
                let status = StatusCode::from_u16(error.status())
                    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let title = match status {
                    StatusCode::NOT_FOUND => "Not found",
                    StatusCode::FORBIDDEN => "Not allowed",
                    StatusCode::TOO_MANY_REQUESTS => "Too many requests",
                    s if s.is_server_error() => "Something went wrong",
                    _ => "That did not work",
                };
                let mut response = page(
                    status,
                    "error.html",
                    minijinja::context! { title, message => error.public_message(), status => status.as_u16() },
                );
                if let Some(secs) = error.retry_after_secs() {
                    if let Ok(value) = HeaderValue::from_str(&secs.to_string()) {
                        response.headers_mut().insert(header::RETRY_AFTER, value);
                    }
                }
                response
            }
        }
    }
}

pub(super) type PageResult<T = Response> = Result<T, PageError>;

/// The dashboard's stylesheet.
pub(super) async fn stylesheet(headers: HeaderMap) -> Response {
    crate::routes::widget_pages::asset(
        &headers,
        "text/css; charset=utf-8",
        include_str!("assets/app.css"),
    )
}

/// The dashboard's script (progressive: every page works without it).
pub(super) async fn script(headers: HeaderMap) -> Response {
    crate::routes::widget_pages::asset(
        &headers,
        "text/javascript; charset=utf-8",
        include_str!("assets/app.js"),
    )
}

/// The dashboard's icon (also answers `/favicon.ico`).
pub(super) async fn icon(headers: HeaderMap) -> Response {
    crate::routes::widget_pages::asset(&headers, "image/svg+xml", include_str!("assets/icon.svg"))
}

/// The playground's script (only that page loads it).
pub(super) async fn playground_script(headers: HeaderMap) -> Response {
    crate::routes::widget_pages::asset(
        &headers,
        "text/javascript; charset=utf-8",
        include_str!("assets/playground.js"),
    )
}

/// The agent editor's script (only that page loads it).
pub(super) async fn editor_script(headers: HeaderMap) -> Response {
    crate::routes::widget_pages::asset(
        &headers,
        "text/javascript; charset=utf-8",
        include_str!("assets/editor.js"),
    )
}

/// The inbox's script (only its pages load it).
pub(super) async fn inbox_script(headers: HeaderMap) -> Response {
    crate::routes::widget_pages::asset(
        &headers,
        "text/javascript; charset=utf-8",
        include_str!("assets/inbox.js"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_parses() {
        let env = environment();
        for (name, _) in TEMPLATES {
            assert!(env.get_template(name).is_ok(), "{name} does not parse");
        }
    }

    /// The budget: at most 30 KB of JavaScript per page, gzipped, besides the widget. The
    /// playground and the agent editor load a script of their own beside the first.
    #[test]
    fn the_pages_scripts_fit_the_budget() {
        use std::io::Write;
        let gzipped = |script: &str| {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            gz.write_all(script.as_bytes()).unwrap_or_default();
            gz.finish().map(|b| b.len()).unwrap_or(usize::MAX)
        };
        let app = gzipped(include_str!("assets/app.js"));
        for (page, own) in [
            ("playground", include_str!("assets/playground.js")),
            ("agent editor", include_str!("assets/editor.js")),
            ("inbox", include_str!("assets/inbox.js")),
        ] {
            let total = app + gzipped(own);
            assert!(total <= 30 * 1024, "{page}: {total} bytes gzipped");
            println!("dashboard JavaScript: {total} bytes gzipped ({page} page)");
        }
    }

    #[test]
    fn numbers_get_thousands_separators() {
        assert_eq!(number(0), "0");
        assert_eq!(number(999), "999");
        assert_eq!(number(1000), "1,000");
        assert_eq!(number(-1234567), "-1,234,567");
        assert_eq!(usd(0.0), "$0.00");
        assert_eq!(usd(0.0012), "$0.0012");
        assert_eq!(usd(12.5), "$12.50");
        assert_eq!(truncate("short", 10), "short");
        assert_eq!(truncate("a longer text", 5), "a lo…");
    }
}
