//! Store benchmark: seeds one tenant with 100k conversations and ~1M messages (plus noise
//! tenants), then measures p50/p99 through the domain service of: appending a message (with
//! the conversation's counters, one transaction), listing conversations (first page and a
//! deep page), getting a conversation with its latest 50 messages, and searching.
//!
//! `cargo bench -p frontdesk-store --bench store -- [--backend sqlite|postgres|both]
//!  [--conversations N] [--noise-tenants N] [--sqlite-path FILE]`. PostgreSQL comes from
//! `FRONTDESK_TEST_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test`).

#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use frontdesk_core::config::Limits;
use frontdesk_core::conversation::{MessageDraft, MessageRole};
use frontdesk_core::id::ConversationId;
use frontdesk_core::service::{ListConversations, NewTenant};
use frontdesk_core::store::BaseStore;
use frontdesk_core::Service;
use frontdesk_store::db::Stmt;
use frontdesk_store::SqlStore;

#[path = "support/seed.rs"]
mod seed;
use seed::{seed_tenant, Rng, Vocabulary, LONG_MESSAGES};

struct Args {
    /// Keep the SQLite database at this path (to inspect query plans afterwards).
    sqlite_path: Option<String>,
    backends: Vec<String>,
    conversations: usize,
    noise_tenants: usize,
}

fn args() -> Args {
    let mut args = Args {
        sqlite_path: None,
        backends: vec!["sqlite".into(), "postgres".into()],
        conversations: 100_000,
        noise_tenants: 2,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--backend" => {
                let value = it.next().expect("--backend needs a value");
                args.backends = if value == "both" {
                    vec!["sqlite".into(), "postgres".into()]
                } else {
                    vec![value]
                };
            }
            "--conversations" => {
                args.conversations = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--conversations N")
            }
            "--noise-tenants" => {
                args.noise_tenants = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--noise-tenants N")
            }
            "--sqlite-path" => args.sqlite_path = it.next(),
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    args
}

fn percentiles(mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    (
        ms(samples[samples.len() / 2]),
        ms(samples[(samples.len() * 99 / 100).min(samples.len() - 1)]),
    )
}

fn report(name: &str, samples: Vec<Duration>) {
    let n = samples.len();
    let (p50, p99) = percentiles(samples);
    println!("  {name:<44} p50 {p50:>8.3} ms   p99 {p99:>8.3} ms   (n={n})");
}

async fn bench(backend: &str, args: &Args) {
    let dir = tempfile::tempdir().unwrap();
    let pg_url = std::env::var("FRONTDESK_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let schema = format!("fdbench_{}", frontdesk_core::id::new_body());
    let store = match backend {
        "sqlite" => {
            let path = args
                .sqlite_path
                .clone()
                .unwrap_or_else(|| dir.path().join("bench.db").display().to_string());
            SqlStore::connect(&format!("sqlite://{path}"))
                .await
                .unwrap()
        }
        "postgres" => SqlStore::connect_postgres_schema(&pg_url, &schema)
            .await
            .unwrap(),
        other => panic!("unknown backend {other}"),
    };
    store.migrate().await.unwrap();
    let service = Service::new(Arc::new(store.clone()), Limits::default());
    println!(
        "\n== {backend}: seeding {} conversations (+{} noise tenants)",
        args.conversations, args.noise_tenants
    );
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let vocabulary = Vocabulary::new();
    let seeded = Instant::now();
    let mut tenants = Vec::new();
    for idx in 0..=args.noise_tenants {
        let created = service
            .create_tenant(NewTenant {
                name: format!("tenant {idx}"),
                owner_email: None,
                monthly_token_quota: None,
            })
            .await
            .unwrap();
        let agent = service
            .create_agent(
                &created.tenant.id,
                serde_json::json!({"slug": "support", "name": "Support"}),
            )
            .await
            .unwrap();
        let n_conversations = if idx == 0 {
            args.conversations
        } else {
            args.conversations / 10
        };
        let n_messages = seed_tenant(
            &store,
            &vocabulary,
            &created.tenant.id,
            &agent.id,
            n_conversations,
            &mut rng,
        )
        .await;
        println!("  tenant {idx}: {n_conversations} conversations, {n_messages} messages");
        tenants.push(created.tenant.id);
    }
    store.db().execute_script("ANALYZE").await.unwrap();
    if backend == "sqlite" {
        // Measure the steady state: the search index merged (as the writer does between
        // requests), and the bulk load checkpointed.
        store
            .db()
            .execute_script("INSERT INTO messages_fts (messages_fts) VALUES ('optimize')")
            .await
            .unwrap();
        store
            .db()
            .execute_script("PRAGMA wal_checkpoint(TRUNCATE)")
            .await
            .unwrap();
    }
    // Nor the kernel writing back the bulk load while we measure.
    let _ = std::process::Command::new("sync").status();
    println!("  seeded in {:.1} s", seeded.elapsed().as_secs_f64());
    let tenant = &tenants[0];

    // Pick conversations to work on: long ones for reads, any for appends.
    let page = service
        .list_conversations(
            tenant,
            ListConversations {
                limit: Some(100),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let recent: Vec<ConversationId> = page.items.iter().map(|c| c.id.clone()).collect();
    let long_rows = store
        .db()
        .query(Stmt::new("SELECT id FROM conversations WHERE tenant_id = $1 AND message_count >= $2 LIMIT 200").arg(tenant.as_str()).arg(LONG_MESSAGES as i64))
        .await
        .unwrap();
    let long: Vec<ConversationId> = long_rows
        .iter()
        .map(|row| ConversationId::parse(&row.get::<String>("id").unwrap()).unwrap())
        .collect();

    let mut samples = Vec::new();
    for _ in 0..500 {
        let started = Instant::now();
        let page = service
            .list_conversations(
                tenant,
                ListConversations {
                    limit: Some(20),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(page.items.len(), 20);
        samples.push(started.elapsed());
    }
    report("list conversations, first page (20)", samples);

    // A deep page: the cursor of the conversation half-way down the list.
    let middle = args.conversations / 2;
    let rows = store
        .db()
        .query(
            Stmt::new(
                "SELECT activity_at, id FROM conversations WHERE tenant_id = $1 AND deleted_at IS NULL AND archived = 0 \
                 ORDER BY activity_at DESC, id DESC LIMIT 1 OFFSET $2",
            )
            .arg(tenant.as_str())
            .arg(middle as i64),
        )
        .await
        .unwrap();
    let cursor = frontdesk_core::conversation::Cursor {
        sort: rows[0].get("activity_at").unwrap(),
        id: rows[0].get("id").unwrap(),
    }
    .encode();
    let mut samples = Vec::new();
    for _ in 0..500 {
        let started = Instant::now();
        let page = service
            .list_conversations(
                tenant,
                ListConversations {
                    limit: Some(20),
                    cursor: Some(cursor.clone()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(page.items.len(), 20);
        samples.push(started.elapsed());
    }
    report(
        &format!("list conversations, deep page (after {middle})"),
        samples,
    );

    let mut samples = Vec::new();
    for idx in 0..500 {
        let conversation = &long[idx % long.len()];
        let started = Instant::now();
        service
            .get_conversation(tenant, conversation)
            .await
            .unwrap();
        let (messages, _) = service
            .list_messages(tenant, conversation, true, Some(50), None)
            .await
            .unwrap();
        assert_eq!(messages.len(), 50);
        samples.push(started.elapsed());
    }
    report("get conversation + latest 50 messages", samples);

    let searches = [
        (
            "search, a word in ~0.1% of messages".to_owned(),
            "zeppelin".to_owned(),
        ),
        (
            "search, a word in ~0.6% of messages".to_owned(),
            vocabulary.rank(300).to_owned(),
        ),
        (
            "search, a word in ~6% of messages".to_owned(),
            vocabulary.rank(30).to_owned(),
        ),
        (
            "search, two words (~6% and ~0.6%)".to_owned(),
            format!("{} {}", vocabulary.rank(30), vocabulary.rank(300)),
        ),
        (
            "search, the most common word (~85%)".to_owned(),
            vocabulary.rank(1).to_owned(),
        ),
    ];
    for (label, q) in searches {
        let mut samples = Vec::new();
        for _ in 0..30 {
            let started = Instant::now();
            let page = service
                .list_conversations(
                    tenant,
                    ListConversations {
                        q: Some(q.clone()),
                        limit: Some(20),
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            samples.push(started.elapsed());
            // A search that finds nothing is fast for the wrong reason.
            assert!(!page.items.is_empty(), "{label} `{q}` found nothing");
        }
        report(&format!("{label} `{q}`"), samples);
    }

    let mut samples = Vec::new();
    for idx in 0..2_000 {
        let conversation = &recent[idx % recent.len()];
        let started = Instant::now();
        service
            .append_message(
                tenant,
                conversation,
                MessageDraft::text(
                    MessageRole::User,
                    "Where is my order? It has not arrived yet.",
                ),
            )
            .await
            .unwrap();
        samples.push(started.elapsed());
    }
    report("append message (+ counters, one transaction)", samples);

    if backend == "postgres" && std::env::var_os("FRONTDESK_BENCH_KEEP").is_none() {
        store.drop_postgres_schema(&schema).await.unwrap();
    }
    store.close().await;
}

#[tokio::main]
async fn main() {
    let args = args();
    for backend in args.backends.clone() {
        bench(&backend, &args).await;
    }
}
