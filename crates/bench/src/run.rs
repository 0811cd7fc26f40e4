//! The benchmark from start to end: the upstream, then each system in turn (the upstream
//! alone as the floor, frontdesk, LiteLLM), each measured for latency at every concurrency
//! level in one process and for memory and held streams in a fresh one.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use crate::client::{level, steady as level_steady, Held, LevelResult, Target};
use crate::procs::{nofile_limit, tree_fds, tree_rss_kib, Child};
use crate::report::{HoldStep, Memory, Report, SystemResult};
use crate::script::Script;
use crate::sse::Protocol;
use crate::targets::{start_upstream, Frontdesk, Litellm, MODEL};

/// How long one measured turn may take before it counts as failed.
const TURN_TIMEOUT: Duration = Duration::from_secs(120);
/// How long held streams may make no progress before the bench stops waiting for them.
const STALL: Duration = Duration::from_secs(30);
/// How many held streams may be between their request and their first token at once.
const OPENING: usize = 256;

/// What `stream-bench run` was asked to do.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Concurrent streams per latency level.
    #[arg(long, value_delimiter = ',', default_value = "1,100,1000")]
    pub concurrency: Vec<usize>,
    /// Each level runs rounds until it has at least this many streams.
    #[arg(long, default_value_t = 30)]
    pub min_samples: usize,
    /// Concurrent streams kept going with steady arrivals (each slot starts its next turn
    /// when one ends, slots offset evenly); `--steady` alone skips them.
    #[arg(long, value_delimiter = ',', num_args = 0.., default_value = "100,1000")]
    pub steady: Vec<usize>,
    /// How long each steady level runs, in seconds.
    #[arg(long, default_value_t = 20)]
    pub steady_seconds: u64,
    /// Milliseconds between tokens in the steady levels' turns (20 tokens, the first after
    /// 50 ms).
    #[arg(long, default_value_t = 100)]
    pub steady_gap_ms: u64,
    /// Streams to hold open at once, in steps, for memory and the most held; `--hold` alone
    /// skips them.
    #[arg(long, value_delimiter = ',', num_args = 0.., default_value = "1000,5000,10000")]
    pub hold: Vec<usize>,
    /// The HTTP version frontdesk speaks to the upstream: `http2` (h2c, as it speaks HTTP/2
    /// to HTTPS providers that offer it) or `http1` (a connection per stream).
    #[arg(long, default_value = "http2", value_parser = ["http1", "http2"])]
    pub upstream_http: String,
    /// The frontdesk binary (default: `frontdesk` beside this executable).
    #[arg(long)]
    pub frontdesk: Option<PathBuf>,
    /// The virtual environment for LiteLLM (default: `<target>/bench-venv`).
    #[arg(long)]
    pub venv: Option<PathBuf>,
    /// What pip installs for LiteLLM.
    #[arg(long, default_value = "litellm[proxy]")]
    pub litellm_requirement: String,
    /// LiteLLM worker processes (default: one per CPU core, as frontdesk uses every core).
    #[arg(long)]
    pub litellm_workers: Option<usize>,
    /// Measure frontdesk alone; the report says LiteLLM was not measured.
    #[arg(long)]
    pub no_litellm: bool,
    /// Where the markdown report goes (default: `<target>/bench-stream.md`).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Runs the benchmark, prints the report and writes it; `Ok(false)` when a stream of
/// frontdesk's latency levels failed.
pub async fn run(args: RunArgs) -> anyhow::Result<bool> {
    let nofile = rlimit::increase_nofile_limit(u64::MAX).context("raising RLIMIT_NOFILE")?;
    crate::say(&format!(
        "open files: up to {nofile} per process (the children inherit it)"
    ));
    let exe = std::env::current_exe().context("cannot find this executable")?;
    let exe_dir = exe.parent().context("the executable has no directory")?;
    let target_dir = exe_dir.parent().unwrap_or(exe_dir).to_owned();
    let frontdesk_bin = args
        .frontdesk
        .clone()
        .unwrap_or_else(|| exe_dir.join("frontdesk"));
    let venv = args
        .venv
        .clone()
        .unwrap_or_else(|| target_dir.join("bench-venv"));
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| target_dir.join("bench-stream.md"));
    let logs = target_dir.join("bench-stream-logs");
    std::fs::create_dir_all(&logs)?;
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let http = reqwest::Client::builder()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(usize::MAX)
        .build()?;

    let (mut upstream, upstream_url) = start_upstream(&logs).await?;
    crate::say(&format!(
        "upstream on {upstream_url} (pid {})",
        upstream.pid
    ));
    // LiteLLM first: it is the reference, and a failed install should cost nothing else.
    let litellm = if args.no_litellm {
        crate::say("LiteLLM: NOT MEASURED (--no-litellm)");
        None
    } else {
        let workers = args.litellm_workers.unwrap_or(cores);
        let setup = Litellm::setup(&venv, &args.litellm_requirement, &upstream_url, workers);
        Some(setup.await.context(
            "LiteLLM is this benchmark's reference and could not be set up; \
             fix the install (pip, python3 -m venv) or pass --no-litellm to measure frontdesk alone",
        )?)
    };
    let frontdesk = Frontdesk::setup(&frontdesk_bin, &upstream_url, &args.upstream_http).await?;

    let mut report = Report::new(cores, nofile, &args.concurrency);
    report.steady_script = Some(steady_script(&args));
    report.upstream_http = args.upstream_http.clone();
    let direct = Target {
        name: crate::report::DIRECT.to_owned(),
        protocol: Protocol::OpenAi,
        base_url: format!("{upstream_url}/v1"),
        key: None,
        model: MODEL.to_owned(),
    };
    let (levels, steady) = latencies(&http, &direct, &args).await?;
    report.systems.push(SystemResult {
        name: direct.name.clone(),
        levels,
        steady,
        memory: None,
        note: None,
    });

    let mut system = SystemResult::named("frontdesk");
    let (mut child, target) = frontdesk.start(&logs, "latency").await?;
    record(&mut system, latencies(&http, &target, &args).await, &child);
    child.stop().await;
    let (mut child, target) = frontdesk.start(&logs, "memory").await?;
    system.memory = Some(hold_ladder(&http, &target, &child, &upstream_url, &args.hold).await?);
    child.stop().await;
    let frontdesk_clean =
        system.levels.iter().all(|l| l.errors.is_empty()) && system.note.is_none();
    report.systems.push(system);

    match &litellm {
        None => report.systems.push(SystemResult {
            note: Some("NOT MEASURED: run with --no-litellm".to_owned()),
            ..SystemResult::named("LiteLLM")
        }),
        Some(litellm) => {
            report.litellm = Some(format!("{} ({} workers)", litellm.version, litellm.workers));
            let mut system = SystemResult::named("LiteLLM");
            let (mut child, target) = litellm.start(&http, &logs, "latency").await?;
            record(&mut system, latencies(&http, &target, &args).await, &child);
            child.stop().await;
            let (mut child, target) = litellm.start(&http, &logs, "memory").await?;
            system.memory =
                Some(hold_ladder(&http, &target, &child, &upstream_url, &args.hold).await?);
            child.stop().await;
            report.systems.push(system);
        }
    }
    upstream.stop().await;

    let text = report.markdown();
    crate::say("");
    crate::say(&text);
    std::fs::write(&out, &text).with_context(|| format!("cannot write {}", out.display()))?;
    crate::say(&format!(
        "written to {}; the children's logs are in {}",
        out.display(),
        logs.display()
    ));
    Ok(frontdesk_clean)
}

/// The turn the steady levels play.
fn steady_script(args: &RunArgs) -> Script {
    Script::Stream {
        first: Duration::from_millis(50),
        chunks: 20,
        gap: Duration::from_millis(args.steady_gap_ms),
    }
}

type Levels = (Vec<LevelResult>, Vec<LevelResult>);

fn record(system: &mut SystemResult, levels: anyhow::Result<Levels>, child: &Child) {
    match levels {
        Ok((levels, steady)) => {
            system.levels = levels;
            system.steady = steady;
        }
        Err(error) => {
            system.note = Some(format!(
                "the latency run failed: {error:#} (see {})",
                child.log.display()
            ))
        }
    }
}

/// Every concurrency level on one target, after a short warm-up, then the steady levels.
async fn latencies(
    http: &reqwest::Client,
    target: &Target,
    args: &RunArgs,
) -> anyhow::Result<Levels> {
    level(http, target, 1, 3, TURN_TIMEOUT).await?;
    let mut results = Vec::new();
    for &concurrency in &args.concurrency {
        let rounds = args.min_samples.div_ceil(concurrency.max(1)).max(1);
        let result = level(http, target, concurrency.max(1), rounds, TURN_TIMEOUT).await?;
        crate::say(&format!(
            "{}: {} streams ({concurrency} at once): {} ok, {} failed; {}",
            target.name,
            result.streams,
            result.ok,
            result.streams - result.ok,
            crate::report::brief(&result.first_added)
        ));
        results.push(result);
    }
    let mut steady = Vec::new();
    for &concurrency in &args.steady {
        let duration = Duration::from_secs(args.steady_seconds);
        let script = steady_script(args);
        // frontdesk's own timing of one hop, read around the level (only when the first
        // reading worked: otherwise the level would get the process's totals).
        let before = match target.protocol {
            Protocol::Frontdesk => crate::waits::read(http, &target.base_url).await.ok(),
            Protocol::OpenAi => None,
        };
        let mut result = level_steady(
            http,
            target,
            concurrency.max(1),
            script,
            duration,
            TURN_TIMEOUT,
        )
        .await?;
        if let Some(before) = before {
            if let Ok(Some(after)) = crate::waits::read(http, &target.base_url).await {
                result.event_wait = Some(after.since(&before.unwrap_or_default()));
            }
        }
        crate::say(&format!(
            "{}: steady {concurrency} streams: {} turns in {:.1} s, {} failed; {}",
            target.name,
            result.streams,
            result.seconds,
            result.streams - result.ok,
            crate::report::brief(&result.first_added)
        ));
        steady.push(result);
    }
    Ok((results, steady))
}

/// Holds streams open in steps, reading the process tree's memory at each.
async fn hold_ladder(
    http: &reqwest::Client,
    target: &Target,
    child: &Child,
    upstream_url: &str,
    steps: &[usize],
) -> anyhow::Result<Memory> {
    level(http, target, 1, 10, TURN_TIMEOUT).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut memory = Memory {
        idle_kib: tree_rss_kib(child.pid)?,
        nofile_limit: nofile_limit(child.pid),
        ..Memory::default()
    };
    let mut held = Held::new(OPENING);
    let mut opened = 0;
    for &step in steps {
        if step <= opened {
            continue;
        }
        let slots = match target.prepare(http, step - opened).await {
            Ok(slots) => slots,
            Err(error) => {
                memory.note = Some(format!(
                    "{step} streams: could not make their conversations: {error:#}"
                ));
                break;
            }
        };
        opened += held.open(http, target, slots, STALL).await?;
        settle(&held, opened).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (first, failed) = held.counts();
        let row = HoldStep {
            tried: step,
            opened,
            held: first,
            failed,
            rss_kib: tree_rss_kib(child.pid)?,
            fds: tree_fds(child.pid),
        };
        crate::say(&format!(
            "{}: holding {first} of {step} streams ({failed} failed), RSS {} MiB, {} open files",
            target.name,
            row.rss_kib / 1024,
            row.fds
        ));
        memory.steps.push(row);
        if first < step {
            break;
        }
    }
    let released = http.post(format!("{upstream_url}/release")).send().await;
    released.context("POST /release to the upstream")?;
    let mut after = LevelResult::default();
    let drain = async {
        while let Some(outcome) = held.tasks.join_next().await {
            after.add(outcome?);
        }
        anyhow::Ok(())
    };
    if tokio::time::timeout(STALL * 4, drain).await.is_err() {
        let left = held.tasks.len();
        *after
            .errors
            .entry(format!(
                "still open {}s after the upstream released it",
                (STALL * 4).as_secs()
            ))
            .or_default() += left;
        after.streams += left;
        held.tasks.abort_all();
    }
    memory.after_release = after;
    Ok(memory)
}

/// Waits until every opened stream has its first token or has failed, or until the counts
/// stop moving for `STALL`.
async fn settle(held: &Held, opened: usize) {
    let mut last = held.counts();
    let mut since = tokio::time::Instant::now();
    loop {
        let now = held.counts();
        if now.0 + now.1 >= opened {
            return;
        }
        if now != last {
            last = now;
            since = tokio::time::Instant::now();
        } else if since.elapsed() > STALL {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
