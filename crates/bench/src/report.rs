//! The report: markdown tables of added latency per system and concurrency, the LiteLLM to
//! frontdesk ratio, memory per held stream and the most streams held, then every error.

use std::fmt::Write;

use crate::client::LevelResult;
use crate::stats::Summary;

/// Everything measured.
#[derive(Debug, Default)]
pub struct Report {
    pub cores: usize,
    pub nofile: u64,
    pub concurrency: Vec<usize>,
    /// LiteLLM's version and workers, when it ran.
    pub litellm: Option<String>,
    /// The turn of the steady levels.
    pub steady_script: Option<crate::script::Script>,
    /// The HTTP version frontdesk spoke to the upstream.
    pub upstream_http: String,
    pub systems: Vec<SystemResult>,
}

/// One system's results.
#[derive(Debug, Default)]
pub struct SystemResult {
    pub name: String,
    pub levels: Vec<LevelResult>,
    /// Levels with steady arrivals.
    pub steady: Vec<LevelResult>,
    pub memory: Option<Memory>,
    /// Why something is missing.
    pub note: Option<String>,
}

impl SystemResult {
    pub fn named(name: &str) -> SystemResult {
        SystemResult {
            name: name.to_owned(),
            ..SystemResult::default()
        }
    }
}

/// Memory and held streams of one system.
#[derive(Debug, Default)]
pub struct Memory {
    pub idle_kib: u64,
    pub nofile_limit: Option<u64>,
    pub steps: Vec<HoldStep>,
    /// How the held streams ended once released.
    pub after_release: LevelResult,
    pub note: Option<String>,
}

/// One step of streams held open.
#[derive(Debug, Clone, Copy, Default)]
pub struct HoldStep {
    pub tried: usize,
    pub opened: usize,
    pub held: usize,
    pub failed: usize,
    pub rss_kib: u64,
    pub fds: usize,
}

/// The name of the floor: the client reading the upstream with nothing between.
pub const DIRECT: &str = "direct (no proxy)";

/// Above this first-token p99 (ms) at a steady level, the direct path says the machine was
/// busy (or slow): on a quiet 2-core machine it stays at 0.2–0.4 ms, and when it rises every
/// system's numbers at that level carry the same noise.
const QUIET_FLOOR_P99_MS: f64 = 0.5;

/// `p50 … p99 … max …` of the first-token added latency, for progress lines.
pub fn brief(first_added: &[i64]) -> String {
    match Summary::of_nanos(first_added) {
        Some(s) => format!(
            "first token added p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            s.p50, s.p99, s.max
        ),
        None => "no first token measured".to_owned(),
    }
}

fn ms(value: Option<f64>) -> String {
    value.map_or("–".to_owned(), |v| format!("{v:.2}"))
}

fn ratio(numerator: Option<f64>, denominator: Option<f64>) -> String {
    match (numerator, denominator) {
        (Some(n), Some(d)) if d > 0.0 => format!("{:.1}×", n / d),
        _ => "–".to_owned(),
    }
}

impl Report {
    pub fn new(cores: usize, nofile: u64, concurrency: &[usize]) -> Report {
        Report {
            cores,
            nofile,
            concurrency: concurrency.to_vec(),
            ..Report::default()
        }
    }

    fn system(&self, name: &str) -> Option<&SystemResult> {
        self.systems.iter().find(|s| s.name == name)
    }

    fn first(&self, name: &str, concurrency: usize) -> Option<Summary> {
        let level = self
            .system(name)?
            .levels
            .iter()
            .find(|l| l.concurrency == concurrency)?;
        Summary::of_nanos(&level.first_added)
    }

    /// The whole report as markdown.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, name)| name.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown CPU".to_owned());
        let _ = writeln!(
            out,
            "# stream-bench: what a proxy adds to a streamed chat turn\n"
        );
        let _ = writeln!(
            out,
            "{} cores ({cpu}); open-file limit {} per process; LiteLLM {}.\n",
            self.cores,
            self.nofile,
            self.litellm.as_deref().unwrap_or("not measured")
        );
        let _ = writeln!(
            out,
            "The scripted upstream (its own process) answers every turn with a first token 50 ms after \
             the request and 19 more 20 ms apart, each stamped with its send time. **Added latency** is \
             the client's receive time minus the upstream's send time of the same token (wall clock, one \
             machine). **TTFT overhead** adds the request's way in (client send to upstream receive): all \
             a proxy adds to the time to first token. The direct row is the floor: client and upstream \
             with nothing between.\n"
        );
        self.latency_table(&mut out);
        self.steady_table(&mut out);
        self.ratio_table(&mut out);
        self.memory_table(&mut out);
        self.errors(&mut out);
        let _ = writeln!(
            out,
            "\n## Notes\n\n\
             - Everything shares this machine's {} cores: the clients (in the bench process), the upstream \
               and the proxy. At 1000 streams the numbers include contention with the clients' own work.\n\
             - frontdesk runs its release build on SQLite in a temporary data directory; every turn stores \
               the user message and the answer, and each stream has its own conversation, made before \
               the clock starts. It speaks {} to the upstream (`--upstream-http`). LiteLLM runs without a \
               database, so it stores nothing.\n\
             - Memory is the resident set (VmRSS) of the process and its children, read from /proc, \
               after a warm-up; per stream is (RSS held - RSS idle) / streams held. Held streams get a \
               token every 10 s until the upstream releases them.\n\
             - Each system is measured in two fresh processes: one for the latency levels, one for memory.",
            self.cores,
            if self.upstream_http == "http2" { "HTTP/2 (h2c)" } else { "HTTP/1.1" }
        );
        out
    }

    fn latency_table(&self, out: &mut String) {
        let _ = writeln!(out, "## Added latency (ms)\n");
        let _ = writeln!(
            out,
            "| system | concurrent | streams | first token p50 | p99 | max | TTFT overhead p50 | p99 | every token p99 | failed |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for system in &self.systems {
            if let Some(note) = &system.note {
                let _ = writeln!(out, "| {} | | | {note} | | | | | | |", system.name);
            }
            for level in &system.levels {
                let first = Summary::of_nanos(&level.first_added);
                let ttft = Summary::of_nanos(&level.ttft_overhead);
                let every = Summary::of_nanos(&level.token_added);
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                    system.name,
                    level.concurrency,
                    level.streams,
                    ms(first.map(|s| s.p50)),
                    ms(first.map(|s| s.p99)),
                    ms(first.map(|s| s.max)),
                    ms(ttft.map(|s| s.p50)),
                    ms(ttft.map(|s| s.p99)),
                    ms(every.map(|s| s.p99)),
                    level.streams - level.ok,
                );
            }
        }
    }

    fn steady_table(&self, out: &mut String) {
        let Some(crate::script::Script::Stream { gap, .. }) = self.steady_script else {
            return;
        };
        if self.systems.iter().all(|s| s.steady.is_empty()) {
            return;
        }
        let _ = writeln!(
            out,
            "\n## Added latency with steady arrivals (ms)\n\nEach of the concurrent slots streams \
             turns one after another (20 tokens, the first after 50 ms, then one every {} ms), the \
             slots offset evenly over a turn, so turns arrive at a steady rate rather than all at once.\n",
            gap.as_millis()
        );
        let _ = writeln!(
            out,
            "| system | concurrent | turns/s | tokens/s | turns | first token p50 | p99 | max | every token p50 | p99 | failed |"
        );
        let _ = writeln!(
            out,
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for system in &self.systems {
            for level in &system.steady {
                let first = Summary::of_nanos(&level.first_added);
                let every = Summary::of_nanos(&level.token_added);
                let per_second = |n: usize| {
                    if level.seconds > 0.0 {
                        format!("{:.0}", n as f64 / level.seconds)
                    } else {
                        "–".to_owned()
                    }
                };
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                    system.name,
                    level.concurrency,
                    per_second(level.streams),
                    per_second(level.token_added.len()),
                    level.streams,
                    ms(first.map(|s| s.p50)),
                    ms(first.map(|s| s.p99)),
                    ms(first.map(|s| s.max)),
                    ms(every.map(|s| s.p50)),
                    ms(every.map(|s| s.p99)),
                    level.streams - level.ok,
                );
            }
        }
        self.noisy_floor(out);
        self.inside(out);
    }

    /// Says which steady levels ran on a busy or slow machine: where the direct path's own p99 was
    /// past [`QUIET_FLOOR_P99_MS`], so that runs are compared only where it was not.
    fn noisy_floor(&self, out: &mut String) {
        let Some(direct) = self.system(DIRECT) else {
            return;
        };
        let noisy: Vec<String> = direct
            .steady
            .iter()
            .filter_map(|level| {
                let p99 = Summary::of_nanos(&level.first_added)?.p99;
                (p99 > QUIET_FLOOR_P99_MS)
                    .then(|| format!("{} streams ({p99:.2} ms)", level.concurrency))
            })
            .collect();
        if !noisy.is_empty() {
            let _ = writeln!(
                out,
                "\n**A noisy floor:** the direct path's own first-token p99 passed \
                 {QUIET_FLOOR_P99_MS} ms at {} (on a quiet 2-core machine it stays at 0.2–0.4 ms): \
                 the machine was busy or slow during this run, and every system's numbers at that \
                 level include it. Compare runs where the floor stayed below.",
                noisy.join(", ")
            );
        }
    }

    /// frontdesk's own timing of one hop at each steady level, where it could be read.
    fn inside(&self, out: &mut String) {
        let lines: Vec<String> = self
            .systems
            .iter()
            .flat_map(|system| {
                system.steady.iter().filter_map(move |level| {
                    let waits = level.event_wait.as_ref()?;
                    Some(format!(
                        "- {}, {} concurrent: {}",
                        system.name,
                        level.concurrency,
                        waits.summary()
                    ))
                })
            })
            .collect();
        if !lines.is_empty() {
            let _ = writeln!(
                out,
                "\nOne hop timed inside frontdesk (`frontdesk_run_event_wait_seconds` from its \
                 `/metrics`): from a run showing an event to the client's connection taking it.\n\n{}",
                lines.join("\n")
            );
        }
    }

    fn ratio_table(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "\n## LiteLLM ÷ frontdesk, first-token added latency\n\nAbove 1×, frontdesk adds less. \
             **Raw** divides the two systems' percentiles as measured. **Net of the floor** first \
             takes the direct path's percentile at the same level from each: the client's own read \
             of the upstream, which is there with or without a proxy, so what remains is what each \
             proxy adds (a dash where a system was not above the floor).\n"
        );
        let _ = writeln!(
            out,
            "| concurrent | raw p50 | raw p99 | raw max | net p50 | net p99 |\n|---:|---:|---:|---:|---:|---:|"
        );
        for &concurrency in &self.concurrency {
            let (litellm, frontdesk, direct) = (
                self.first("LiteLLM", concurrency),
                self.first("frontdesk", concurrency),
                self.first(DIRECT, concurrency),
            );
            let raw =
                |f: fn(&Summary) -> f64| ratio(litellm.as_ref().map(f), frontdesk.as_ref().map(f));
            let net = |f: fn(&Summary) -> f64| {
                let above = |s: &Option<Summary>| {
                    Some(f(s.as_ref()?) - f(direct.as_ref()?)).filter(|d| *d > 0.0)
                };
                ratio(above(&litellm), above(&frontdesk))
            };
            let _ = writeln!(
                out,
                "| {concurrency} | {} | {} | {} | {} | {} |",
                raw(|s| s.p50),
                raw(|s| s.p99),
                raw(|s| s.max),
                net(|s| s.p50),
                net(|s| s.p99)
            );
        }
    }

    fn memory_table(&self, out: &mut String) {
        let _ = writeln!(out, "\n## Memory per active stream and the most held\n");
        let _ = writeln!(
            out,
            "| system | streams tried | held | failed | RSS idle (MiB) | RSS held (MiB) | per stream (KiB) | open files (limit) |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|");
        for system in &self.systems {
            let Some(memory) = &system.memory else {
                continue;
            };
            for step in &memory.steps {
                let per_stream = (step.held > 0)
                    .then(|| (step.rss_kib as f64 - memory.idle_kib as f64) / step.held as f64);
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {:.0} | {:.0} | {} | {} ({}) |",
                    system.name,
                    step.tried,
                    step.held,
                    step.failed + step.tried.saturating_sub(step.opened),
                    memory.idle_kib as f64 / 1024.0,
                    step.rss_kib as f64 / 1024.0,
                    per_stream.map_or("–".to_owned(), |v| format!("{v:.1}")),
                    step.fds,
                    memory
                        .nofile_limit
                        .map_or("?".to_owned(), |l| l.to_string()),
                );
            }
        }
        let _ = writeln!(out);
        for system in &self.systems {
            let Some(memory) = &system.memory else {
                continue;
            };
            let most = memory.steps.iter().map(|s| s.held).max().unwrap_or(0);
            let clean = memory
                .steps
                .iter()
                .filter(|s| s.held == s.tried)
                .map(|s| s.tried)
                .max();
            let _ = writeln!(
                out,
                "- {}: most streams held at once {most}; every stream held up to {}; after release {} of {} ended cleanly.{}",
                system.name,
                clean.map_or("no step".to_owned(), |c| c.to_string()),
                memory.after_release.ok,
                memory.after_release.streams,
                memory
                    .note
                    .as_ref()
                    .map_or(String::new(), |n| format!(" {n}")),
            );
        }
    }

    fn errors(&self, out: &mut String) {
        let mut lines = Vec::new();
        for system in &self.systems {
            for level in &system.levels {
                for (error, count) in &level.errors {
                    lines.push(format!(
                        "- {} at {} concurrent: {count} × {error}",
                        system.name, level.concurrency
                    ));
                }
            }
            if let Some(memory) = &system.memory {
                for (error, count) in &memory.after_release.errors {
                    lines.push(format!("- {} held streams: {count} × {error}", system.name));
                }
            }
        }
        let _ = writeln!(out, "\n## Errors\n");
        if lines.is_empty() {
            let _ = writeln!(out, "None: every stream ended with its end event.");
        } else {
            let _ = writeln!(out, "{}", lines.join("\n"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steady(concurrency: usize, first_ms: &[f64]) -> LevelResult {
        LevelResult {
            concurrency,
            first_added: first_ms.iter().map(|ms| (ms * 1e6) as i64).collect(),
            ..LevelResult::default()
        }
    }

    fn with_direct(levels: Vec<LevelResult>) -> Report {
        let mut report = Report::new(2, 1024, &[1]);
        let mut direct = SystemResult::named(DIRECT);
        direct.steady = levels;
        report.systems.push(direct);
        report
    }

    /// A run is flagged only at the levels where the floor itself was slow.
    #[test]
    fn a_slow_floor_flags_its_level_and_only_it() {
        let report = with_direct(vec![
            steady(100, &[0.1, 0.2, 0.3]),
            steady(1000, &[0.1, 1.25]),
        ]);
        let mut out = String::new();
        report.noisy_floor(&mut out);
        assert!(out.contains("A noisy floor"), "{out}");
        assert!(out.contains("1000 streams (1.25 ms)"), "{out}");
        assert!(!out.contains("100 streams"), "{out}");

        let quiet = with_direct(vec![steady(1000, &[0.1, 0.45])]);
        let mut out = String::new();
        quiet.noisy_floor(&mut out);
        assert!(out.is_empty(), "{out}");
    }

    /// The net ratio takes the direct path's own time from both systems before dividing,
    /// and gives a dash where a system was not above that floor.
    #[test]
    fn the_net_ratio_leaves_out_the_floor() {
        let mut report = Report::new(2, 1024, &[1, 100]);
        for (name, at_1, at_100) in [
            (DIRECT, [0.2, 0.3], [0.2, 0.3]),
            ("frontdesk", [0.4, 0.5], [0.1, 0.2]),
            ("LiteLLM", [3.2, 4.3], [5.0, 6.0]),
        ] {
            let mut system = SystemResult::named(name);
            system.levels = vec![steady(1, &at_1), steady(100, &at_100)];
            report.systems.push(system);
        }
        let mut out = String::new();
        report.ratio_table(&mut out);
        // Raw: 3.2 / 0.4 and 4.3 / 0.5; net: (3.2 - 0.2) / (0.4 - 0.2) and (4.3 - 0.3) / (0.5 - 0.3).
        assert!(
            out.contains("| 1 | 8.0× | 8.6× | 8.6× | 15.0× | 20.0× |"),
            "{out}"
        );
        // frontdesk under the floor at 100: raw still divides, net has nothing to divide by.
        assert!(
            out.contains("| 100 | 50.0× | 30.0× | 30.0× | – | – |"),
            "{out}"
        );
    }
}
