//! The dashboard over HTTP: sign-in and sessions, CSRF, roles, tenant isolation, invites,
//! password resets, sign-up, the sign-in back-off, and every page answering.

use frontdesk_core::service::NewUser;
use frontdesk_core::tenant::Role;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::{redirect, StatusCode};
use serde_json::json;

use crate::common::{TestApp, TestTenant};

pub(crate) const PASSWORD: &str = "correct horse battery";

/// A browser-like client that keeps the session cookie itself and never follows redirects.
pub(crate) struct Dash {
    pub base: String,
    pub client: reqwest::Client,
    pub cookie: String,
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(redirect::Policy::none())
        .build()
        .unwrap()
}

/// Adds a member with a known password.
pub(crate) async fn member(app: &TestApp, tenant: &TestTenant, email: &str, role: Role) {
    app.service
        .add_user(
            &tenant.id,
            NewUser {
                email: email.into(),
                name: Some(email.split('@').next().unwrap().into()),
                role,
                password: Some(PASSWORD.into()),
            },
        )
        .await
        .unwrap();
}

fn session_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("fd_session=") && !v.starts_with("fd_session=;"))
        .map(|v| v.split(';').next().unwrap().to_owned())
}

impl Dash {
    pub(crate) async fn sign_in(app: &TestApp, email: &str, password: &str) -> Dash {
        let client = client();
        let response = client
            .post(format!("{}/login", app.base))
            .form(&[("email", email), ("password", password), ("next", "/")])
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::SEE_OTHER,
            "sign-in of {email}"
        );
        let cookie = session_cookie(&response).expect("a session cookie");
        Dash {
            base: app.base.clone(),
            client,
            cookie,
        }
    }

    pub(crate) async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .header(COOKIE, &self.cookie)
            .send()
            .await
            .unwrap()
    }

    /// A page's HTML, asserting its status.
    pub(crate) async fn page(&self, path: &str, status: StatusCode) -> String {
        let response = self.get(path).await;
        let got = response.status();
        let body = response.text().await.unwrap();
        assert_eq!(got, status, "GET {path}: {body}");
        body
    }

    /// The CSRF token the pages of this session carry.
    pub(crate) async fn csrf(&self) -> String {
        let html = self.page("/agents", StatusCode::OK).await;
        let marker = "name=\"csrf\" value=\"";
        let start = html.find(marker).expect("a csrf field") + marker.len();
        html[start..start + html[start..].find('"').unwrap()].to_owned()
    }

    /// Posts a form with this session's CSRF token.
    pub(crate) async fn post(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let csrf = self.csrf().await;
        let mut form: Vec<(&str, &str)> = vec![("csrf", csrf.as_str())];
        form.extend_from_slice(fields);
        self.post_raw(path, &form).await
    }

    pub(crate) async fn post_raw(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.base))
            .header(COOKIE, &self.cookie)
            .form(form)
            .send()
            .await
            .unwrap()
    }
}

fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn signing_in_opens_a_session_that_signing_out_ends() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    member(&app, &acme, "ada@acme.test", Role::Owner).await;

    // Not signed in: every page sends to the sign-in page, remembering where it was.
    let response = client()
        .get(format!("{}/agents?x=1", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/login?next=%2Fagents%3Fx%3D1");

    // A wrong password is refused without a session.
    let response = client()
        .post(format!("{}/login", app.base))
        .form(&[("email", "ada@acme.test"), ("password", "wrong password")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(session_cookie(&response).is_none());
    assert!(response
        .text()
        .await
        .unwrap()
        .contains("do not match an account"));

    let response = client()
        .post(format!("{}/login", app.base))
        .form(&[
            ("email", " ADA@acme.test"),
            ("password", PASSWORD),
            ("next", "//evil.test/x"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        location(&response),
        "/",
        "only a local path is a place to go back to"
    );
    let set_cookie = response
        .headers()
        .get(SET_COOKIE)
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    assert!(
        !set_cookie.contains("Secure"),
        "plain HTTP: no Secure flag ({set_cookie})"
    );

    let dash = Dash::sign_in(&app, "ada@acme.test", PASSWORD).await;
    let home = dash.page("/", StatusCode::OK).await;
    assert!(home.contains("Overview") && home.contains("Acme"), "{home}");
    let response = dash.get("/").await;
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("form-action 'self'"),
        "{csp}"
    );

    let response = dash.post("/logout", &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(response.headers()[SET_COOKIE]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    // The old cookie is dead on the server, not just forgotten by the browser.
    let response = dash.get("/agents").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(location(&response).starts_with("/login"));
    app.stop().await;
}

#[tokio::test]
async fn forms_without_the_csrf_token_or_from_another_site_are_refused() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    member(&app, &acme, "ada@acme.test", Role::Owner).await;
    let dash = Dash::sign_in(&app, "ada@acme.test", PASSWORD).await;

    let response = dash
        .post_raw("/agents", &[("name", "Sneaky"), ("template", "blank")])
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response.text().await.unwrap().contains("security token"));
    let response = dash
        .post_raw(
            "/agents",
            &[
                ("csrf", "forged"),
                ("name", "Sneaky"),
                ("template", "blank"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    // The right token from another site's page is refused too.
    let csrf = dash.csrf().await;
    let response = dash
        .client
        .post(format!("{}/agents", app.base))
        .header(COOKIE, &dash.cookie)
        .header("origin", "https://evil.test")
        .form(&[
            ("csrf", csrf.as_str()),
            ("name", "Sneaky"),
            ("template", "blank"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = dash
        .client
        .post(format!("{}/agents", app.base))
        .header(COOKIE, &dash.cookie)
        .header("sec-fetch-site", "cross-site")
        .form(&[
            ("csrf", csrf.as_str()),
            ("name", "Sneaky"),
            ("template", "blank"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let agents = app.service.list_agents(&acme.id).await.unwrap();
    assert!(agents.is_empty(), "nothing was created: {agents:?}");

    // With the token, from this site, it works.
    let response = dash
        .post(
            "/agents",
            &[("name", "Front desk"), ("template", "support")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let agents = app.service.list_agents(&acme.id).await.unwrap();
    assert_eq!(agents.len(), 1);
    assert_eq!(agents[0].spec.slug, "front-desk");
    assert!(agents[0].spec.instructions.contains("support assistant"));
    app.stop().await;
}

#[tokio::test]
async fn roles_decide_what_a_member_sees_and_may_do() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    app.agent(&acme, "support").await;
    member(&app, &acme, "vera@acme.test", Role::Viewer).await;
    member(&app, &acme, "eddie@acme.test", Role::Editor).await;
    let agent_id = app.service.list_agents(&acme.id).await.unwrap()[0]
        .id
        .as_str()
        .to_owned();

    let viewer = Dash::sign_in(&app, "vera@acme.test", PASSWORD).await;
    let list = viewer.page("/agents", StatusCode::OK).await;
    assert!(
        list.contains("support") && !list.contains("New agent"),
        "{list}"
    );
    let editor_page = viewer
        .page(&format!("/agents/{agent_id}"), StatusCode::OK)
        .await;
    assert!(!editor_page.contains("Save changes") && editor_page.contains("disabled"));
    // Posted anyway: refused, and nothing changed.
    let response = viewer
        .post(
            &format!("/agents/{agent_id}"),
            &[
                ("version", "1"),
                ("name", "Hacked"),
                ("slug", "support"),
                ("model", "local/smollm2-135m"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let agent = &app.service.list_agents(&acme.id).await.unwrap()[0];
    assert_eq!(agent.spec.name, "SUPPORT");
    // Keys and settings are for admins.
    viewer.page("/keys", StatusCode::FORBIDDEN).await;
    viewer.page("/settings", StatusCode::FORBIDDEN).await;
    let response = viewer
        .post("/keys", &[("kind", "secret"), ("name", "mine")])
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    // An editor edits agents but does not manage keys or members.
    let editor = Dash::sign_in(&app, "eddie@acme.test", PASSWORD).await;
    let response = editor
        .post(
            &format!("/agents/{agent_id}"),
            &[
                ("version", "1"),
                ("name", "Support desk"),
                ("slug", "support"),
                ("model", "local/smollm2-135m"),
                ("instructions", "Answer in French."),
                ("tools", "[]"),
                ("widget", "{\"greeting\": \"Bonjour\"}"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let agent = &app.service.list_agents(&acme.id).await.unwrap()[0];
    assert_eq!(
        (agent.spec.name.as_str(), agent.version),
        ("Support desk", 2)
    );
    assert_eq!(agent.spec.instructions, "Answer in French.");
    assert_eq!(agent.spec.widget.greeting.as_deref(), Some("Bonjour"));
    editor.page("/keys", StatusCode::FORBIDDEN).await;
    let response = editor.post("/members/invite", &[("role", "viewer")]).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    app.stop().await;
}

#[tokio::test]
async fn the_editor_shows_errors_beside_their_field_and_keeps_what_was_typed() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    app.agent(&acme, "support").await;
    member(&app, &acme, "ada@acme.test", Role::Owner).await;
    let dash = Dash::sign_in(&app, "ada@acme.test", PASSWORD).await;
    let id = app.service.list_agents(&acme.id).await.unwrap()[0]
        .id
        .as_str()
        .to_owned();
    let base = [
        ("version", "1"),
        ("name", "Support"),
        ("slug", "support"),
        ("model", "local/smollm2-135m"),
        ("instructions", "Typed text kept"),
    ];

    let mut form = base.to_vec();
    form.push(("output_schema", "{\"type\": \"object\""));
    let response = dash.post(&format!("/agents/{id}"), &form).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await.unwrap();
    assert!(
        html.contains("id=\"output_schema-error\"") && html.contains("not valid JSON"),
        "{html}"
    );
    assert!(html.contains("Typed text kept"));

    let mut form = base.to_vec();
    form.push(("output_schema", "{\"type\": \"no-such-type\"}"));
    let response = dash.post(&format!("/agents/{id}"), &form).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await.unwrap();
    assert!(
        html.contains("id=\"output_schema-error\""),
        "the schema's own error is beside it: {html}"
    );

    let mut form = base.to_vec();
    form.push(("temperature", "warm"));
    let response = dash.post(&format!("/agents/{id}"), &form).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response
        .text()
        .await
        .unwrap()
        .contains("id=\"temperature-error\""));

    // A stale form (someone saved meanwhile) is not saved over the newer version.
    app.patch(
        &format!("/api/v1/agents/{id}"),
        &acme.key,
        &json!({"description": "newer"}),
    )
    .send()
    .await
    .unwrap();
    let response = dash.post(&format!("/agents/{id}"), &base).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let agent = &app.service.list_agents(&acme.id).await.unwrap()[0];
    assert_eq!(agent.spec.description, "newer");
    assert_eq!(agent.version, 2);
    app.stop().await;
}

#[tokio::test]
async fn another_tenants_objects_are_not_found_from_the_dashboard() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let globex = app.tenant("Globex").await;
    member(&app, &acme, "ada@acme.test", Role::Owner).await;
    let theirs = app.agent(&globex, "secret-agent").await;
    let their_id = theirs["id"].as_str().unwrap();
    let conversation = app
        .conversation(&globex, "secret-agent", &["hello", "hi"])
        .await;
    let their_conversation = conversation["id"].as_str().unwrap();
    let dash = Dash::sign_in(&app, "ada@acme.test", PASSWORD).await;

    for path in [
        format!("/agents/{their_id}"),
        format!("/agents/{their_id}/versions"),
        format!("/conversations/{their_conversation}"),
        format!("/conversations/{their_conversation}/export"),
        format!("/inbox/{their_conversation}"),
        "/agents/agt_nonsense".to_owned(),
    ] {
        dash.page(&path, StatusCode::NOT_FOUND).await;
    }
    // Their conversation cannot be taken, answered or handed back from here, nor listed.
    for (action, fields) in [
        ("take", vec![]),
        ("reply", vec![("content", "hello from Acme")]),
        ("handback", vec![]),
    ] {
        let response = dash
            .post(&format!("/inbox/{their_conversation}/{action}"), &fields)
            .await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{action}");
    }
    assert!(!dash
        .page("/inbox", StatusCode::OK)
        .await
        .contains(their_conversation));
    let untouched = app
        .service
        .get_conversation(
            &globex.id,
            &frontdesk_core::id::ConversationId::parse(their_conversation).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(untouched.handler, frontdesk_core::handoff::Handler::Agent);
    let response = dash
        .post(
            &format!("/agents/{their_id}/delete"),
            &[("confirm", "secret-agent")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = dash
        .post(
            &format!("/conversations/{their_conversation}/delete"),
            &[("confirm", "delete")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    // Switching to a tenant one is not a member of is a 404 as well.
    let response = dash
        .post("/switch", &[("tenant", globex.id.as_str())])
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.service.list_agents(&globex.id).await.unwrap().len(), 1);
    app.service
        .get_conversation(
            &globex.id,
            &frontdesk_core::id::ConversationId::parse(their_conversation).unwrap(),
        )
        .await
        .unwrap();
    // Their conversations are not in our list or search either.
    let list = dash.page("/conversations?q=hello", StatusCode::OK).await;
    assert!(!list.contains(their_conversation));
    app.stop().await;
}

#[tokio::test]
async fn a_member_of_two_tenants_switches_between_them() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let globex = app.tenant("Globex").await;
    member(&app, &acme, "ada@example.test", Role::Owner).await;
    member(&app, &globex, "ada@example.test", Role::Viewer).await;
    app.agent(&globex, "globex-bot").await;
    let dash = Dash::sign_in(&app, "ada@example.test", PASSWORD).await;
    let page = dash.page("/agents", StatusCode::OK).await;
    assert!(page.contains("Acme (owner)") && page.contains("Globex (viewer)"));
    assert!(!page.contains("globex-bot"));
    let response = dash
        .post("/switch", &[("tenant", globex.id.as_str())])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let page = dash.page("/agents", StatusCode::OK).await;
    assert!(
        page.contains("globex-bot") && !page.contains("New agent"),
        "a viewer in Globex"
    );
    app.stop().await;
}

#[tokio::test]
async fn an_invite_link_brings_in_a_member_once() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    member(&app, &acme, "ada@acme.test", Role::Admin).await;
    let admin = Dash::sign_in(&app, "ada@acme.test", PASSWORD).await;

    // An admin may not invite an owner.
    let response = admin.post("/members/invite", &[("role", "owner")]).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let response = admin
        .post(
            "/members/invite",
            &[("role", "editor"), ("email", "ben@acme.test")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    // Templates escape `/` as `&#x2f;` (the browser reads it back).
    let html = response.text().await.unwrap().replace("&#x2f;", "/");
    let start = html
        .find(&format!("{}/invite/", app.base))
        .expect("the link is shown");
    let link = &html[start..start + html[start..].find('<').unwrap()];
    let path = link.trim_start_matches(&app.base).to_owned();

    let page = client().get(link).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("Join Acme"));
    // Another email than the invited one is refused.
    let response = client()
        .post(link)
        .form(&[("email", "eve@evil.test"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let response = client()
        .post(link)
        .form(&[
            ("email", "ben@acme.test"),
            ("name", "Ben"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(
        session_cookie(&response).is_some(),
        "the new member is signed in"
    );
    let members = app.service.list_members(&acme.id).await.unwrap();
    let ben = members
        .iter()
        .find(|(_, u)| u.email == "ben@acme.test")
        .unwrap();
    assert_eq!(ben.0.role, Role::Editor);
    // The link worked once.
    let again = client()
        .get(format!("{}{path}", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
    Dash::sign_in(&app, "ben@acme.test", PASSWORD).await;

    // Ben's role changes and he can be removed; the last owner cannot be.
    let ben_id = ben.1.id.as_str().to_owned();
    let response = admin
        .post(&format!("/members/{ben_id}/role"), &[("role", "viewer")])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let response = admin.post(&format!("/members/{ben_id}/remove"), &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.service.list_members(&acme.id).await.unwrap().len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn a_reset_link_sets_a_new_password_and_ends_every_session() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    member(&app, &acme, "ada@acme.test", Role::Owner).await;
    let old_session = Dash::sign_in(&app, "ada@acme.test", PASSWORD).await;
    let token = app
        .service
        .create_reset_link("ada@acme.test")
        .await
        .unwrap();
    let link = format!("{}/reset/{}", app.base, token.expose());
    assert_eq!(
        client().get(&link).send().await.unwrap().status(),
        StatusCode::OK
    );
    let response = client()
        .post(&link)
        .form(&[("password", "short")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let response = client()
        .post(&link)
        .form(&[("password", "a brand new password")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        old_session.get("/").await.status() == StatusCode::SEE_OTHER,
        "old sessions end"
    );
    Dash::sign_in(&app, "ada@acme.test", "a brand new password").await;
    let response = client()
        .post(&link)
        .form(&[("password", "yet another password")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::NOT_FOUND,
        "a link works once"
    );
    app.stop().await;
}

#[tokio::test]
async fn failed_sign_ins_back_off() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    member(&app, &acme, "ada@acme.test", Role::Owner).await;
    let mut statuses = Vec::new();
    for _ in 0..7 {
        let response = client()
            .post(format!("{}/login", app.base))
            .form(&[("email", "ada@acme.test"), ("password", "guess guess")])
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
    }
    assert_eq!(&statuses[..5], &[401; 5], "{statuses:?}");
    assert_eq!(statuses[5], 429, "{statuses:?}");
    // Even the right password waits now.
    let response = client()
        .post(format!("{}/login", app.base))
        .form(&[("email", "ada@acme.test"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key("retry-after"));
    app.stop().await;
}

#[tokio::test]
async fn sign_up_creates_an_organisation_only_when_the_operator_allows_it() {
    let app = TestApp::spawn().await;
    assert_eq!(
        client()
            .get(format!("{}/signup", app.base))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    app.stop().await;

    let app = TestApp::builder().allow_signup().spawn().await;
    let response = client()
        .post(format!("{}/signup", app.base))
        .form(&[
            ("organisation", "Initech"),
            ("name", "Peter"),
            ("email", "peter@initech.test"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let dash = Dash::sign_in(&app, "peter@initech.test", PASSWORD).await;
    let page = dash.page("/members", StatusCode::OK).await;
    assert!(page.contains("Initech") && page.contains("owner"));
    let response = client()
        .post(format!("{}/signup", app.base))
        .form(&[
            ("organisation", "Initech 2"),
            ("email", "peter@initech.test"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    app.stop().await;
}

#[tokio::test]
async fn every_page_answers_for_an_owner_with_data() {
    let app = TestApp::builder()
        .price("local/smollm2-135m", 1.0, 2.0)
        .spawn()
        .await;
    let acme = app.tenant("Acme").await;
    member(&app, &acme, "ada@acme.test", Role::Owner).await;
    let agent = app.agent(&acme, "support").await;
    let conversation = app
        .conversation(&acme, "support", &["Where is my parcel?", "On its way."])
        .await;
    let dash = Dash::sign_in(&app, "ada@acme.test", PASSWORD).await;
    let id = agent["id"].as_str().unwrap();
    let conv = conversation["id"].as_str().unwrap();
    for (path, expect) in [
        ("/", "Overview"),
        ("/?days=7", "7 days"),
        ("/agents", "SUPPORT"),
        ("/agents/new", "Start from"),
        (&format!("/agents/{id}") as &str, "Instructions"),
        (&format!("/agents/{id}/versions"), "Version history"),
        ("/conversations", "Where is my parcel?"),
        ("/conversations?q=parcel", "Where is my parcel?"),
        (&format!("/conversations/{conv}"), "On its way."),
        ("/approvals", "Nothing is waiting"),
        ("/keys", "Default secret key"),
        ("/embed", "Script tag"),
        ("/usage", "Quota"),
        ("/usage?by=model&days=90", "By model"),
        ("/members", "ada@acme.test"),
        ("/settings", "Webhook signing secret"),
        ("/inbox", "Where is my parcel?"),
        (&format!("/inbox/{conv}"), "On its way."),
        ("/profile", "Your profile"),
    ] {
        let html = dash.page(path, StatusCode::OK).await;
        assert!(html.contains(expect), "{path} lacks {expect:?}");
    }
    let csv = dash.get("/usage.csv?by=day").await;
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    assert!(csv.text().await.unwrap().starts_with("key,label,"));
    let export = dash.get(&format!("/conversations/{conv}/export")).await;
    assert!(export.text().await.unwrap().contains("Where is my parcel?"));
    for asset in ["/assets/app.css", "/assets/app.js", "/assets/inbox.js"] {
        assert_eq!(dash.get(asset).await.status(), StatusCode::OK);
    }
    app.stop().await;
}

#[tokio::test]
async fn the_api_takes_a_dashboard_session_with_its_csrf_header_and_the_members_role() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    app.agent(&acme, "support").await;
    member(&app, &acme, "vera@acme.test", Role::Viewer).await;
    member(&app, &acme, "eddie@acme.test", Role::Editor).await;
    let viewer = Dash::sign_in(&app, "vera@acme.test", PASSWORD).await;
    let csrf = viewer.csrf().await;
    let api = |dash: &Dash, method: reqwest::Method, path: &str, csrf: Option<&str>| {
        let mut request = dash
            .client
            .request(method, format!("{}{path}", dash.base))
            .header(COOKIE, &dash.cookie);
        if let Some(csrf) = csrf {
            request = request.header("x-csrf-token", csrf);
        }
        request
    };
    // Without the CSRF header even a read is refused (no other site can add it).
    let response = api(&viewer, reqwest::Method::GET, "/api/v1/agents", None)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = api(&viewer, reqwest::Method::GET, "/api/v1/agents", Some(&csrf))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["data"][0]["slug"], "support");
    // A viewer cannot write; nobody below admin reads keys.
    let response = api(
        &viewer,
        reqwest::Method::POST,
        "/api/v1/conversations",
        Some(&csrf),
    )
    .json(&json!({"agent": "support"}))
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let editor = Dash::sign_in(&app, "eddie@acme.test", PASSWORD).await;
    let csrf = editor.csrf().await;
    let response = api(
        &editor,
        reqwest::Method::POST,
        "/api/v1/conversations",
        Some(&csrf),
    )
    .json(&json!({"agent": "support"}))
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let response = api(
        &editor,
        reqwest::Method::GET,
        "/api/v1/api-keys",
        Some(&csrf),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    // A dead session is a 401.
    editor.post("/logout", &[]).await;
    let response = api(&editor, reqwest::Method::GET, "/api/v1/agents", Some(&csrf))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    app.stop().await;
}

#[tokio::test]
async fn a_staff_member_approves_a_waiting_call_from_the_approvals_page() {
    use crate::scripted::{call, text, Receiver, Scripted};
    let receiver = Receiver::start(200, r#"{"ok": true}"#, 0).await;
    let scripted = Scripted::start(vec![
        call("c1", "refund", json!({"amount": 5})),
        text("Done."),
    ])
    .await;
    let app = TestApp::builder()
        .provider("scripted", scripted.provider())
        .allow_private_urls()
        .spawn()
        .await;
    let acme = app.tenant("Acme").await;
    member(&app, &acme, "eddie@acme.test", Role::Editor).await;
    member(&app, &acme, "vera@acme.test", Role::Viewer).await;
    let agent = json!({"slug": "a", "name": "A", "model": "scripted/m", "approvals": {"approver": "staff"},
        "tools": [{"type": "webhook", "name": "refund", "url": receiver.url, "requires_approval": true,
                   "parameters": {"type": "object", "properties": {"amount": {"type": "number"}}}}]});
    app.post("/api/v1/agents", &acme.key, &agent)
        .send()
        .await
        .unwrap();
    let conversation = app.conversation(&acme, "a", &[]).await;
    let id = conversation["id"].as_str().unwrap();
    let paused: serde_json::Value = app
        .post(
            &format!("/api/v1/conversations/{id}/messages"),
            &acme.key,
            &json!({"content": "refund 5"}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let run = paused["run_id"].as_str().unwrap();
    let viewer = Dash::sign_in(&app, "vera@acme.test", PASSWORD).await;
    let page = viewer.page("/approvals", StatusCode::OK).await;
    assert!(
        page.contains("refund") && !page.contains("value=\"approve\""),
        "a viewer sees it but cannot decide"
    );
    let response = viewer
        .post(&format!("/approvals/{run}/c1"), &[("decision", "approve")])
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let editor = Dash::sign_in(&app, "eddie@acme.test", PASSWORD).await;
    let response = editor
        .post(&format!("/approvals/{run}/c1"), &[("decision", "approve")])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    for _ in 0..100 {
        if !receiver.received().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(receiver.received().len(), 1);
    // Deciding again is a conflict, shown as a page.
    let response = editor
        .post(&format!("/approvals/{run}/c1"), &[("decision", "reject")])
        .await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    app.stop().await;
}

#[tokio::test]
async fn settings_say_so_when_the_server_cannot_keep_secrets() {
    let app = TestApp::builder().no_master_key().spawn().await;
    let acme = app.tenant("Acme").await;
    member(&app, &acme, "ada@acme.test", Role::Owner).await;
    let dash = Dash::sign_in(&app, "ada@acme.test", PASSWORD).await;
    let page = dash.page("/settings", StatusCode::OK).await;
    assert!(page.contains("no master key"), "{page}");
    app.stop().await;
}

#[tokio::test]
async fn conversations_filter_by_status_and_by_day() {
    use crate::scripted::{text, Reply, Scripted};
    let scripted = Scripted::start(vec![Reply::Fail(400), text("A fine answer.")]).await;
    let app = TestApp::builder()
        .provider("scripted", scripted.provider())
        .spawn()
        .await;
    let acme = app.tenant("Acme").await;
    member(&app, &acme, "ada@acme.test", Role::Owner).await;
    let agent = json!({"slug": "a", "name": "A", "model": "scripted/m",
        "guardrails": {"input": {"blocked_patterns": ["forbidden"]}}});
    app.post("/api/v1/agents", &acme.key, &agent)
        .send()
        .await
        .unwrap();
    let mut ids = Vec::new();
    for (title, text) in [
        ("Fails", "hello"),
        ("Fine", "hello again"),
        ("Blocked", "something forbidden"),
    ] {
        let c = app
            .post(
                "/api/v1/conversations",
                &acme.key,
                &json!({"agent": "a", "title": title}),
            )
            .send()
            .await
            .unwrap()
            .json::<serde_json::Value>()
            .await
            .unwrap();
        let id = c["id"].as_str().unwrap().to_owned();
        app.post(
            &format!("/api/v1/conversations/{id}/messages"),
            &acme.key,
            &json!({"content": text}),
        )
        .send()
        .await
        .unwrap();
        ids.push(id);
    }
    let dash = Dash::sign_in(&app, "ada@acme.test", PASSWORD).await;
    let listed = |html: &str| {
        ids.iter()
            .map(|id| html.contains(id.as_str()))
            .collect::<Vec<_>>()
    };
    let all = dash.page("/conversations", StatusCode::OK).await;
    assert_eq!(listed(&all), [true, true, true]);
    let failed = dash
        .page("/conversations?status=failed", StatusCode::OK)
        .await;
    assert_eq!(listed(&failed), [true, false, false], "a run failed");
    let blocked = dash
        .page("/conversations?status=guardrail_tripped", StatusCode::OK)
        .await;
    assert_eq!(
        listed(&blocked),
        [false, false, true],
        "a guardrail stopped it"
    );
    let waiting = dash
        .page("/conversations?status=awaiting_approval", StatusCode::OK)
        .await;
    assert_eq!(listed(&waiting), [false, false, false]);
    let today = frontdesk_core::time::Timestamp::now().to_rfc3339()[..10].to_owned();
    let dated = dash
        .page(
            &format!("/conversations?from={today}&to={today}"),
            StatusCode::OK,
        )
        .await;
    assert_eq!(listed(&dated), [true, true, true]);
    let old = dash
        .page(
            "/conversations?from=2020-01-01&to=2020-01-31",
            StatusCode::OK,
        )
        .await;
    assert_eq!(listed(&old), [false, false, false]);
    // The overview counts the answer the guardrail stopped among the answers.
    let overview = dash.page("/?days=7", StatusCode::OK).await;
    assert!(overview.contains("(1 of 3 answers)"), "{overview}");
    dash.page(
        "/conversations?from=yesterday",
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    dash.page(
        "/conversations?status=sad",
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn an_open_invite_cannot_be_used_to_guess_a_password_or_change_a_role() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let globex = app.tenant("Globex").await;
    member(&app, &acme, "ada@acme.test", Role::Owner).await;
    member(&app, &globex, "victim@globex.test", Role::Owner).await;
    let admin = Dash::sign_in(&app, "ada@acme.test", PASSWORD).await;
    let invite_link = |html: String| {
        let html = html.replace("&#x2f;", "/");
        let start = html.find(&format!("{}/invite/", app.base)).unwrap();
        html[start..start + html[start..].find('<').unwrap()].to_owned()
    };
    let response = admin.post("/members/invite", &[("role", "viewer")]).await;
    let link = invite_link(response.text().await.unwrap());
    // Guessing another account's password through the link backs off like a sign-in.
    let mut statuses = Vec::new();
    for n in 0..6 {
        let guess = format!("guess number {n}");
        let response = client()
            .post(&link)
            .form(&[
                ("email", "victim@globex.test"),
                ("password", guess.as_str()),
            ])
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429], "{statuses:?}");
    assert_eq!(app.service.list_members(&acme.id).await.unwrap().len(), 1);

    // A member accepting an invite keeps their role: the owner stays an owner.
    let response = admin.post("/members/invite", &[("role", "viewer")]).await;
    let link = invite_link(response.text().await.unwrap());
    let response = client()
        .post(&link)
        .form(&[("email", "ada@acme.test"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let members = app.service.list_members(&acme.id).await.unwrap();
    assert_eq!(members[0].0.role, Role::Owner);
    app.stop().await;
}

/// The transcript shows which branch a message is on, and editors switch to another; the
/// next answer continues from there. Viewers see the branches but cannot switch.
#[tokio::test]
async fn an_editor_switches_branches_from_the_transcript() {
    use crate::common::{expect, RecordingModel};
    let app = TestApp::builder()
        .provider("rec", RecordingModel::new("answer", None))
        .spawn()
        .await;
    let (t, conversation) = app.chat("rec/m").await;
    let first = expect(
        app.post(
            &format!("/api/v1/conversations/{conversation}/messages"),
            &t.key,
            &json!({"content": "one"}),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    let a1 = first["message"]["id"].as_str().unwrap().to_owned();
    let again = expect(
        app.post(
            &format!("/api/v1/conversations/{conversation}/messages/{a1}/regenerate"),
            &t.key,
            &json!({}),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    let a2 = again["message"]["id"].as_str().unwrap().to_owned();
    member(&app, &t, "eddie@acme.test", Role::Editor).await;
    member(&app, &t, "vera@acme.test", Role::Viewer).await;
    let editor = Dash::sign_in(&app, "eddie@acme.test", PASSWORD).await;
    let path = format!("/conversations/{conversation}");
    let html = editor.page(&path, StatusCode::OK).await;
    assert!(
        html.contains("Branch 2 of 2") && html.contains("answer #2"),
        "{html}"
    );
    assert!(
        html.contains(&format!("value=\"{a1}\"")),
        "a control to the first branch"
    );

    let response = editor
        .post(&format!("{path}/branch"), &[("message", &a1)])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), format!("{path}#{a1}"));
    let html = editor.page(&path, StatusCode::OK).await;
    assert!(
        html.contains("Branch 1 of 2") && html.contains("answer #1") && !html.contains("answer #2")
    );
    let stored = app
        .service
        .get_conversation(
            &t.id,
            &frontdesk_core::id::ConversationId::parse(&conversation).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(stored.active_message_id.unwrap().as_str(), a1);

    // A viewer sees the branch, without the controls, and a posted switch is refused.
    let viewer = Dash::sign_in(&app, "vera@acme.test", PASSWORD).await;
    let html = viewer.page(&path, StatusCode::OK).await;
    assert!(html.contains("Branch 1 of 2") && !html.contains(&format!("value=\"{a2}\"")));
    let response = viewer
        .post(&format!("{path}/branch"), &[("message", &a2)])
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    // A message that is not in the conversation, or no message id at all: not found.
    let other = app.conversation(&t, "support", &["elsewhere"]).await;
    let elsewhere = app
        .service
        .active_branch(
            &t.id,
            &frontdesk_core::id::ConversationId::parse(other["id"].as_str().unwrap()).unwrap(),
        )
        .await
        .unwrap()[0]
        .message
        .id
        .as_str()
        .to_owned();
    for message in [elsewhere.as_str(), "not-an-id"] {
        let response = editor
            .post(&format!("{path}/branch"), &[("message", message)])
            .await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{message}");
    }
    app.stop().await;
}

#[tokio::test]
async fn staff_work_a_conversation_from_the_inbox_with_plain_forms() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    member(&app, &acme, "ada@acme.test", Role::Editor).await;
    member(&app, &acme, "vera@acme.test", Role::Viewer).await;
    app.agent(&acme, "support").await;
    let conversation = app
        .conversation(&acme, "support", &["Where is my parcel?", "On its way."])
        .await;
    let id = conversation["id"].as_str().unwrap();
    let dash = Dash::sign_in(&app, "ada@acme.test", PASSWORD).await;
    // The profile: a picture must be a URL; the name shows on replies.
    let bad = dash
        .post(
            "/profile",
            &[("name", "Ada L."), ("avatar_url", "javascript:alert(1)")],
        )
        .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.text().await.unwrap().contains("avatar_url"));
    let saved = dash
        .post(
            "/profile",
            &[
                ("name", "Ada Lovelace"),
                ("avatar_url", "https://cdn.acme.test/ada.png"),
            ],
        )
        .await;
    assert_eq!(saved.status(), StatusCode::OK);
    // A viewer may look but not take.
    let viewer = Dash::sign_in(&app, "vera@acme.test", PASSWORD).await;
    assert!(!viewer
        .page(&format!("/inbox/{id}"), StatusCode::OK)
        .await
        .contains("Take over"));
    assert_eq!(
        viewer
            .post(&format!("/inbox/{id}/take"), &[])
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    // Take, reply, note, hand back: each a form post that lands back on the conversation.
    for (action, fields) in [
        ("take", vec![]),
        (
            "reply",
            vec![("content", "I checked: it arrives tomorrow.")],
        ),
        (
            "reply",
            vec![
                ("content", "Customer asked twice already"),
                ("internal", "1"),
            ],
        ),
    ] {
        let response = dash.post(&format!("/inbox/{id}/{action}"), &fields).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{action}");
    }
    let page = dash.page(&format!("/inbox/{id}"), StatusCode::OK).await;
    assert!(
        page.contains("Ada Lovelace took the conversation"),
        "{page}"
    );
    assert!(page.contains("I checked: it arrives tomorrow."));
    assert!(page.contains("Internal note"));
    assert!(page.contains("Hand back to the agent"));
    let stored = app
        .service
        .get_conversation(
            &acme.id,
            &frontdesk_core::id::ConversationId::parse(id).unwrap(),
        )
        .await
        .unwrap();
    let holder = stored.assignee.unwrap();
    assert_eq!(holder.name, "Ada Lovelace");
    assert_eq!(
        holder.avatar_url.as_deref(),
        Some("https://cdn.acme.test/ada.png")
    );
    assert!(dash
        .page("/inbox", StatusCode::OK)
        .await
        .contains("Ada Lovelace"));
    let response = dash.post(&format!("/inbox/{id}/handback"), &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let page = dash.page(&format!("/inbox/{id}"), StatusCode::OK).await;
    assert!(page.contains("handed the conversation back to the agent"));
    assert!(page.contains("the agent answers"));
    // Replying to nothing is refused with the field named.
    let empty = dash
        .post(&format!("/inbox/{id}/reply"), &[("content", "   ")])
        .await;
    assert_eq!(empty.status(), StatusCode::UNPROCESSABLE_ENTITY);
    app.stop().await;
}
