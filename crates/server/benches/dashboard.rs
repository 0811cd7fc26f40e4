//! Dashboard benchmark: one tenant with 100k conversations and about 1M messages on SQLite
//! (the store bench's seed), the real server, a signed-in owner; then each page requested
//! many times in a row, and its p50/p99 time to the last byte over loopback (which is server
//! time plus a local round trip). The budget is p99 under 50 ms per page.
//!
//! `cargo bench -p frontdesk-server --bench dashboard -- [--conversations N] [--rounds N]`
//! (`make bench-dashboard`); the table also goes to `target/bench-dashboard.md`.

#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use frontdesk_core::config::Config;
use frontdesk_core::service::{NewTenant, NewUser};
use frontdesk_core::store::BaseStore;
use frontdesk_core::tenant::Role;
use frontdesk_core::Service;
use frontdesk_server::AppState;
use frontdesk_store::db::Stmt;
use frontdesk_store::SqlStore;

#[path = "../../store/benches/support/seed.rs"]
#[allow(dead_code)]
mod seed;

const PASSWORD: &str = "a bench password";

struct Args {
    conversations: usize,
    rounds: usize,
}

fn args() -> Args {
    let mut args = Args {
        conversations: 100_000,
        rounds: 200,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--conversations" => {
                args.conversations = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--conversations N")
            }
            "--rounds" => args.rounds = it.next().and_then(|v| v.parse().ok()).expect("--rounds N"),
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    args
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let idx = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[idx].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let args = args();
    let dir = tempfile::tempdir().unwrap();
    let store = SqlStore::connect(&format!(
        "sqlite://{}",
        dir.path().join("bench.db").display()
    ))
    .await
    .unwrap();
    store.migrate().await.unwrap();
    let mut config = Config {
        bootstrap_demo: false,
        ..Config::default()
    };
    config.limits.rate_limit_per_minute = 1_000_000;
    let service = Service::new(Arc::new(store.clone()), config.limits.clone());
    let tenant = service
        .create_tenant(NewTenant {
            name: "Bench Inc".into(),
            owner_email: None,
            monthly_token_quota: Some(1_000_000_000),
        })
        .await
        .unwrap()
        .tenant;
    service
        .add_user(
            &tenant.id,
            NewUser {
                email: "owner@bench.test".into(),
                name: Some("Owner".into()),
                role: Role::Owner,
                password: Some(PASSWORD.into()),
            },
        )
        .await
        .unwrap();
    let agent = service
        .create_agent(
            &tenant.id,
            serde_json::json!({"slug": "support", "name": "Support"}),
        )
        .await
        .unwrap();
    for n in 0..4 {
        service
            .create_agent(
                &tenant.id,
                serde_json::json!({"slug": format!("agent-{n}"), "name": format!("Agent {n}")}),
            )
            .await
            .unwrap();
    }
    println!("seeding {} conversations…", args.conversations);
    let seeded = Instant::now();
    let mut rng = seed::Rng(0x9e37_79b9_7f4a_7c15);
    let vocabulary = seed::Vocabulary::new();
    let messages = seed::seed_tenant(
        &store,
        &vocabulary,
        &tenant.id,
        &agent.id,
        args.conversations,
        &mut rng,
    )
    .await;
    println!(
        "seeded {} conversations and {messages} messages in {:.0?}",
        args.conversations,
        seeded.elapsed()
    );
    // The seed writes rows around the store: fill the dashboard's daily rollup from them.
    store.rebuild_daily_activity().await.unwrap();
    store.db().execute_script("ANALYZE;").await.unwrap();
    let long = store
        .db()
        .query(
            Stmt::new(
                "SELECT id FROM conversations WHERE tenant_id = $1 AND message_count >= $2 LIMIT 1",
            )
            .arg(tenant.id.as_str())
            .arg(seed::LONG_MESSAGES as i64),
        )
        .await
        .unwrap();
    let long: String = long[0].get("id").unwrap();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    config.public_url = Some(base.clone());
    let state = AppState::new(service, config).unwrap();
    tokio::spawn(frontdesk_server::serve(
        listener,
        state,
        std::future::pending(),
    ));
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let signed = client
        .post(format!("{base}/login"))
        .form(&[("email", "owner@bench.test"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    let cookie = signed.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let common = vocabulary.rank(30).to_owned();
    let rare = vocabulary.rank(300).to_owned();
    let pages = [
        ("Overview (30 days)".to_owned(), "/".to_owned()),
        ("Overview (90 days)".to_owned(), "/?days=90".to_owned()),
        ("Agents".to_owned(), "/agents".to_owned()),
        (
            "Agent editor".to_owned(),
            format!("/agents/{}", agent.id.as_str()),
        ),
        (
            "Agent versions".to_owned(),
            format!("/agents/{}/versions", agent.id.as_str()),
        ),
        ("Playground".to_owned(), "/playground".to_owned()),
        ("Conversations".to_owned(), "/conversations".to_owned()),
        (
            "Conversations by agent".to_owned(),
            "/conversations?agent=support".to_owned(),
        ),
        (
            "Conversations by end user".to_owned(),
            "/conversations?end_user=visitor-42".to_owned(),
        ),
        (
            "Search (common word)".to_owned(),
            format!("/conversations?q={common}"),
        ),
        (
            "Search (rarer word)".to_owned(),
            format!("/conversations?q={rare}"),
        ),
        (
            // A common word that is the prefix of few others (the window).
            "Search (word of rank 113)".to_owned(),
            format!("/conversations?q={}", vocabulary.rank(113)),
        ),
        (
            // A word in no message: the vocabulary says so, and the set is empty.
            "Search (word in no message)".to_owned(),
            "/conversations?q=qqxjzv".to_owned(),
        ),
        (
            "Conversation (200 messages)".to_owned(),
            format!("/conversations/{long}"),
        ),
        ("Approvals".to_owned(), "/approvals".to_owned()),
        ("API keys".to_owned(), "/keys".to_owned()),
        ("Embed".to_owned(), "/embed".to_owned()),
        ("Usage by day (30 days)".to_owned(), "/usage".to_owned()),
        (
            "Usage by model (90 days)".to_owned(),
            "/usage?by=model&days=90".to_owned(),
        ),
        ("Members".to_owned(), "/members".to_owned()),
        ("Settings".to_owned(), "/settings".to_owned()),
    ];
    let mut table = format!(
        "# Dashboard pages: {} conversations, {messages} messages (SQLite)\n\n| page | p50 ms | p99 ms | bytes |\n|---|---:|---:|---:|\n",
        args.conversations
    );
    let mut worst: f64 = 0.0;
    for (name, path) in &pages {
        let mut samples = Vec::with_capacity(args.rounds);
        let mut bytes = 0;
        for round in 0..args.rounds + 5 {
            let started = Instant::now();
            let response = client
                .get(format!("{base}{path}"))
                .header("cookie", &cookie)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "{path}");
            bytes = response.bytes().await.unwrap().len();
            // The first few warm the caches.
            if round >= 5 {
                samples.push(started.elapsed());
            }
        }
        samples.sort();
        let (p50, p99) = (percentile(&samples, 0.5), percentile(&samples, 0.99));
        worst = worst.max(p99);
        println!("  {name:<32} p50 {p50:>8.2} ms   p99 {p99:>8.2} ms   {bytes:>7} bytes");
        table.push_str(&format!("| {name} | {p50:.2} | {p99:.2} | {bytes} |\n"));
    }
    table.push_str(&format!("\nWorst p99: {worst:.2} ms (budget 50 ms).\n"));
    let out = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/bench-dashboard.md");
    std::fs::write(&out, &table).unwrap();
    println!("worst p99 {worst:.2} ms; table in {}", out.display());
}
