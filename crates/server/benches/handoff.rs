//! Human handoff benchmark: 1,000 visitors each follow their own conversation over the
//! widget's event stream (`GET /widget/v1/conversations/{id}/events`) on the real server
//! (SQLite); staff then reply through the API, one conversation after another, and each
//! reply's delivery time is taken from just before its request is sent to the moment the
//! visitor's stream has the message. Reported: p50/p99 delivery (goal p99 < 50 ms), the
//! reply request's own time, and memory per followed conversation (the process's resident
//! memory with every stream open, less before: the server's side and the client's together,
//! in one process).
//!
//! `cargo bench -p frontdesk-server --bench handoff -- [--followers N] [--replies N]`; the
//! table also goes to `target/bench-handoff.md`.

#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use frontdesk_core::config::Config;
use frontdesk_core::service::NewTenant;
use frontdesk_core::store::BaseStore;
use frontdesk_core::Service;
use frontdesk_server::AppState;
use frontdesk_store::SqlStore;
use serde_json::{json, Value};
use tokio::sync::mpsc;

const ORIGIN: &str = "https://shop.example.com";

struct Args {
    followers: usize,
    replies: usize,
}

fn args() -> Args {
    let mut args = Args {
        followers: 1_000,
        replies: 2_000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--followers" => {
                args.followers = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--followers N")
            }
            "--replies" => {
                args.replies = it.next().and_then(|v| v.parse().ok()).expect("--replies N")
            }
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

/// This process's resident memory, in KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
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
    config.limits.rate_limit_per_minute = 10_000_000;
    config.limits.widget_per_ip_per_minute = 10_000_000;
    config.limits.max_connections_per_address = 100_000;
    let service = Service::new(Arc::new(store.clone()), config.limits.clone());
    let created = service
        .create_tenant(NewTenant {
            name: "Bench Inc".into(),
            owner_email: None,
            monthly_token_quota: None,
        })
        .await
        .unwrap();
    let secret = created.secret.expose().to_owned();
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
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();
    let post = |path: &str, key: &str, body: Value| {
        client
            .post(format!("{base}{path}"))
            .bearer_auth(key)
            .header("origin", ORIGIN)
            .json(&body)
    };
    assert!(post(
        "/api/v1/agents",
        &secret,
        json!({"slug": "support", "name": "Support"})
    )
    .send()
    .await
    .unwrap()
    .status()
    .is_success());
    let key: Value = post(
        "/api/v1/api-keys",
        &secret,
        json!({"kind": "publishable", "name": "site", "allowed_origins": [ORIGIN]}),
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let publishable = key["key"].as_str().unwrap().to_owned();

    println!("opening {} visitors' conversations…", args.followers);
    let mut visitors = Vec::with_capacity(args.followers);
    for _ in 0..args.followers {
        let session: Value = client
            .post(format!("{base}/widget/v1/session"))
            .header("x-frontdesk-key", &publishable)
            .header("origin", ORIGIN)
            .json(&json!({"agent": "support"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = session["token"].as_str().unwrap().to_owned();
        let conversation: Value = post(
            "/widget/v1/conversations",
            &token,
            json!({"agent": "support"}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
        visitors.push((token, conversation["id"].as_str().unwrap().to_owned()));
    }

    // Every visitor follows its conversation; each reply's arrival is reported by its mark.
    let before = rss_kib();
    let (arrived, mut arrivals) = mpsc::unbounded_channel::<(usize, Instant)>();
    let (ready, mut readies) = mpsc::unbounded_channel::<()>();
    for (token, conversation) in &visitors {
        let mut stream = client
            .get(format!(
                "{base}/widget/v1/conversations/{conversation}/events"
            ))
            .bearer_auth(token)
            .header("origin", ORIGIN)
            .header("accept", "text/event-stream")
            .send()
            .await
            .unwrap();
        assert!(stream.status().is_success());
        let (arrived, ready) = (arrived.clone(), ready.clone());
        tokio::spawn(async move {
            let mut seen = String::new();
            let mut announced = false;
            while let Ok(Some(chunk)) = stream.chunk().await {
                seen.push_str(&String::from_utf8_lossy(&chunk));
                if !announced && seen.contains(": following") {
                    announced = true;
                    let _ = ready.send(());
                }
                while let Some(at) = seen.find("mark-") {
                    let rest = &seen[at + 5..];
                    let Some(end) = rest.find('.') else { break };
                    if let Ok(mark) = rest[..end].parse::<usize>() {
                        let _ = arrived.send((mark, Instant::now()));
                    }
                    seen = rest[end..].to_owned();
                }
                if seen.len() > 4_096 {
                    seen = seen[seen.len() - 64..].to_owned();
                }
            }
        });
    }
    for _ in 0..visitors.len() {
        readies.recv().await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let during = rss_kib();
    println!(
        "{} streams open: resident memory {} MiB → {} MiB",
        visitors.len(),
        before / 1024,
        during / 1024
    );

    // Staff reply, one conversation after another (the first round takes each one).
    let reply = |n: usize| {
        let conversation = &visitors[n % visitors.len()].1;
        post(
            &format!("/api/v1/conversations/{conversation}/staff-messages"),
            &secret,
            json!({"content": format!("Reply mark-{n}. Thanks for waiting."),
                   "assignee": {"id": "staff-1", "name": "Sam"}}),
        )
    };
    let warm = visitors.len();
    let total = warm + args.replies;
    let mut deliveries = Vec::with_capacity(args.replies);
    let mut requests = Vec::with_capacity(args.replies);
    for n in 0..total {
        let sent = Instant::now();
        let response = reply(n).send().await.unwrap();
        let answered = sent.elapsed();
        assert_eq!(
            response.status(),
            reqwest::StatusCode::CREATED,
            "{}",
            response.text().await.unwrap()
        );
        let arrival = loop {
            let (mark, at) = tokio::time::timeout(Duration::from_secs(10), arrivals.recv())
                .await
                .expect("a reply never reached its visitor")
                .unwrap();
            if mark == n {
                break at;
            }
        };
        if n >= warm {
            deliveries.push(arrival.duration_since(sent));
            requests.push(answered);
        }
    }
    deliveries.sort();
    requests.sort();
    let per_follower = (during.saturating_sub(before)) as f64 / visitors.len() as f64;
    let table = format!(
        "| followed conversations | replies | delivery p50 ms | delivery p99 ms | reply request p50 ms | reply request p99 ms | memory per followed conversation KiB |\n\
         |---:|---:|---:|---:|---:|---:|---:|\n\
         | {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.1} |\n\n\
         Goal: delivery p99 < 50 ms. Delivery runs from just before the staff reply's request to the visitor's stream having it; memory is the process's (server and client) with every stream open, less before, per stream.\n",
        visitors.len(),
        deliveries.len(),
        percentile(&deliveries, 0.5),
        percentile(&deliveries, 0.99),
        percentile(&requests, 0.5),
        percentile(&requests, 0.99),
        per_follower,
    );
    println!("{table}");
    let out =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-handoff.md");
    let _ = std::fs::write(out, &table);
}
