//! The dashboard: server-rendered pages at `/` for a tenant's staff.
//!
//! Pages are minijinja templates compiled into the binary (`templates/`), styled by one
//! embedded stylesheet and made livelier by one small script (`assets/`); nothing comes from
//! elsewhere, and every page works, read-only at least, without script. Handlers read and
//! write through the same `Service` calls as the API.
//!
//! Every page takes a [`session::StaffSession`] (a signed-in member, else a redirect to the
//! sign-in page); every state change takes a [`session::Submit`], which also checks the
//! session's CSRF token and the request's origin; every action checks the member's role.

mod account;
mod agent_form;
mod agents;
mod calls;
mod chart;
mod conversations;
mod diff;
mod frame;
mod inbox;
mod keys;
mod members;
mod overview;
mod playground;
mod render;
pub mod session;
mod settings;

use axum::routing::{get, post};
use axum::Router;

use crate::AppState;

pub use render::PageError;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(overview::page_overview))
        .route("/login", get(account::login_page).post(account::login))
        .route("/logout", post(account::logout))
        .route("/signup", get(account::signup_page).post(account::signup))
        .route(
            "/invite/{token}",
            get(account::invite_page).post(account::accept_invite),
        )
        .route(
            "/reset/{token}",
            get(account::reset_page).post(account::reset),
        )
        .route("/switch", post(account::switch_tenant))
        .route("/agents", get(agents::list).post(agents::create))
        .route("/agents/new", get(agents::new_page))
        .route("/agents/{agent}", get(agents::edit).post(agents::save))
        .route("/agents/{agent}/delete", post(agents::delete))
        .route("/agents/{agent}/versions", get(agents::versions))
        .route("/agents/{agent}/restore", post(agents::restore))
        .route("/playground", get(playground::page_playground))
        .route("/conversations", get(conversations::list))
        .route("/conversations/{conversation}", get(conversations::show))
        .route(
            "/conversations/{conversation}/delete",
            post(conversations::delete),
        )
        .route(
            "/conversations/{conversation}/branch",
            post(conversations::switch_branch),
        )
        .route(
            "/conversations/{conversation}/export",
            get(conversations::export),
        )
        .route("/runs/{run}", get(conversations::run))
        .route("/calls", get(calls::list))
        .route("/calls/{call}", get(calls::show))
        .route("/inbox", get(inbox::list))
        .route("/inbox/changes", get(inbox::changes))
        .route("/inbox/{conversation}", get(inbox::show))
        .route("/inbox/{conversation}/take", post(inbox::take))
        .route("/inbox/{conversation}/handback", post(inbox::hand_back))
        .route("/inbox/{conversation}/reply", post(inbox::reply))
        .route("/profile", get(inbox::profile).post(inbox::save_profile))
        .route("/approvals", get(conversations::approvals))
        .route("/approvals/{run}/{call_id}", post(conversations::decide))
        .route("/keys", get(keys::list).post(keys::create))
        .route("/keys/{key}/revoke", post(keys::revoke))
        .route("/embed", get(keys::embed))
        .route("/usage", get(overview::usage))
        .route("/usage.csv", get(overview::usage_csv))
        .route("/members", get(members::list))
        .route("/members/invite", post(members::invite))
        .route(
            "/members/invites/{invite}/revoke",
            post(members::revoke_invite),
        )
        .route("/members/{user}/role", post(members::set_role))
        .route("/members/{user}/remove", post(members::remove))
        .route("/settings", get(settings::page_get))
        .route("/settings/provider-keys", post(settings::put_provider_key))
        .route(
            "/settings/provider-keys/{provider}/delete",
            post(settings::delete_provider_key),
        )
        .route("/settings/secrets", post(settings::put_secret))
        .route(
            "/settings/secrets/{name}/delete",
            post(settings::delete_secret),
        )
        .route("/settings/rotate/{which}", post(settings::rotate))
        .route("/assets/app.css", get(render::stylesheet))
        .route("/assets/app.js", get(render::script))
        .route("/assets/playground.js", get(render::playground_script))
        .route("/assets/editor.js", get(render::editor_script))
        .route("/assets/inbox.js", get(render::inbox_script))
        .route("/assets/icon.svg", get(render::icon))
        .route("/favicon.ico", get(render::icon))
}

/// A textarea's entries: its non-empty lines, commas separating too.
fn entries(text: &str) -> Vec<String> {
    text.split(['\n', ','])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// An agent's name by id, for lists that outlive their agents.
/// The next page of a list: its filters (those set) and the cursor, in the URL.
fn next_page(
    path: &str,
    filters: &[(&str, &Option<String>)],
    cursor: &frontdesk_core::conversation::Cursor,
) -> String {
    let mut pairs: Vec<(&str, String)> = filters
        .iter()
        .filter_map(|(key, value)| {
            value
                .as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(|v| (*key, v.to_owned()))
        })
        .collect();
    pairs.push(("cursor", cursor.encode()));
    format!(
        "{path}?{}",
        serde_urlencoded::to_string(&pairs).unwrap_or_default()
    )
}

/// The agents of a list's filter: slug and name.
fn agent_options(agents: &[frontdesk_core::agent::Agent]) -> Vec<serde_json::Value> {
    agents
        .iter()
        .map(|a| serde_json::json!({"slug": a.spec.slug, "name": a.spec.name}))
        .collect()
}

fn agent_name(agents: &[frontdesk_core::agent::Agent], id: &str) -> String {
    agents
        .iter()
        .find(|a| a.id.as_str() == id)
        .map(|a| a.spec.name.clone())
        .unwrap_or_else(|| "(deleted agent)".to_owned())
}
