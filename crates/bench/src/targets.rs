//! The systems under test, started as child processes: the scripted upstream, frontdesk
//! (release binary, its own temporary data directory, tenant, agent and key made with its
//! CLI) and LiteLLM's proxy (installed from PyPI into a virtual environment on first use).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde_json::Value;
use tokio::process::Command;

use crate::client::Target;
use crate::procs::{free_port, log_tail, Child};
use crate::sse::Protocol;

/// The model name every target asks the upstream for.
pub const MODEL: &str = "bench-model";

/// LiteLLM's master key: it refuses to start without one, and with one it checks every
/// request's bearer token, as frontdesk does.
const LITELLM_MASTER_KEY: &str =
    "sk-3f9a7c1e5b2d4086a1c3e5f7092b4d6f8a0c2e4f6b8d0a2c4e6f8b0d2a4c6e8f";

/// Starts `stream-bench upstream` (this same executable) and returns it with its base URL
/// (`http://127.0.0.1:P`).
pub async fn start_upstream(logs: &Path) -> anyhow::Result<(Child, String)> {
    let exe = std::env::current_exe().context("cannot find the stream-bench executable")?;
    let mut command = Command::new(exe);
    command.args(["upstream", "--port", "0"]);
    let (child, addr) = Child::start(
        "upstream",
        command,
        &logs.join("upstream.log"),
        Duration::from_secs(20),
        |line| line.strip_prefix("listening on ").map(str::to_owned),
    )
    .await?;
    Ok((child, format!("http://{addr}")))
}

/// A frontdesk install: its binary and a data directory with the bench tenant in it.
pub struct Frontdesk {
    binary: PathBuf,
    data_dir: tempfile::TempDir,
    upstream: String,
    key: String,
}

impl Frontdesk {
    /// Makes a data directory and, with the CLI, a tenant, an agent on
    /// `openai/bench-model` and a secret key with a rate limit no bench reaches. frontdesk
    /// speaks `http` (`http1` or `http2`) to the upstream.
    pub async fn setup(binary: &Path, upstream: &str, http: &str) -> anyhow::Result<Frontdesk> {
        anyhow::ensure!(
            binary.exists(),
            "{} is missing: build it with `cargo build --release --bin frontdesk` (or run `make bench-stream`)",
            binary.display()
        );
        // The commands run in the data directory: a relative path would not reach it.
        let binary = std::fs::canonicalize(binary)?;
        let data_dir = tempfile::Builder::new()
            .prefix("frontdesk-bench-")
            .tempdir()?;
        // Read from the working directory (the data directory) by every command.
        std::fs::write(
            data_dir.path().join("frontdesk.toml"),
            format!("[providers.openai]\nkind = \"openai\"\nhttp = \"{http}\"\n"),
        )?;
        let mut frontdesk = Frontdesk {
            binary,
            data_dir,
            upstream: upstream.to_owned(),
            key: String::new(),
        };
        let tenant = frontdesk
            .cli(&["tenant", "create", "--name", "bench"])
            .await?;
        let tenant_id = json_str(&tenant, "/tenant/id")?;
        frontdesk
            .cli(&[
                "agent",
                "create",
                "--tenant",
                &tenant_id,
                "--slug",
                "bench",
                "--model",
                &format!("openai/{MODEL}"),
            ])
            .await?;
        let key = frontdesk
            .cli(&[
                "key",
                "create",
                "--tenant",
                &tenant_id,
                "--kind",
                "secret",
                "--name",
                "bench",
                "--rate-limit-per-minute",
                "1000000",
            ])
            .await?;
        frontdesk.key = json_str(&key, "/key")?;
        Ok(frontdesk)
    }

    /// The command with the bench's environment: only what it sets, so a `DATABASE_URL`
    /// or `FRONTDESK_*` of the caller cannot point it elsewhere.
    fn command(&self) -> Command {
        let mut command = Command::new(&self.binary);
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("OPENAI_BASE_URL", format!("{}/v1", self.upstream))
            .env("OPENAI_API_KEY", "sk-bench")
            // The per-key default; the bench key also carries its own.
            .env("FRONTDESK_RATE_LIMIT_PER_MINUTE", "1000000")
            // Every stream of the bench comes from this one address.
            .env("FRONTDESK_MAX_CONNECTIONS_PER_ADDRESS", "0")
            .env("FRONTDESK_BOOTSTRAP_DEMO", "false")
            .arg("--data-dir")
            .arg(self.data_dir.path())
            .current_dir(self.data_dir.path());
        command
    }

    async fn cli(&self, args: &[&str]) -> anyhow::Result<Value> {
        let output = self
            .command()
            .arg("--json")
            .args(args)
            .output()
            .await
            .context("cannot run frontdesk")?;
        anyhow::ensure!(
            output.status.success(),
            "frontdesk {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout)
            .with_context(|| format!("frontdesk {} printed no JSON", args.join(" ")))
    }

    /// Starts `frontdesk serve` on a free port.
    pub async fn start(&self, logs: &Path, tag: &str) -> anyhow::Result<(Child, Target)> {
        let mut command = self.command();
        command.args(["serve", "--bind", "127.0.0.1:0"]);
        let (child, addr) = Child::start(
            "frontdesk",
            command,
            &logs.join(format!("frontdesk-{tag}.log")),
            Duration::from_secs(30),
            |line| {
                let rest = line.split_once(" listening on http://")?.1;
                Some(rest.split_whitespace().next()?.to_owned())
            },
        )
        .await?;
        let target = Target {
            name: "frontdesk".to_owned(),
            protocol: Protocol::Frontdesk,
            base_url: format!("http://{addr}"),
            key: Some(self.key.clone()),
            model: "bench".to_owned(),
        };
        Ok((child, target))
    }
}

fn json_str(value: &Value, pointer: &str) -> anyhow::Result<String> {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .with_context(|| format!("no {pointer} in {value}"))
}

/// LiteLLM's proxy, installed in a virtual environment.
pub struct Litellm {
    executable: PathBuf,
    pub version: String,
    pub workers: usize,
    config: tempfile::NamedTempFile,
}

impl Litellm {
    /// Installs `requirement` (such as `litellm[proxy]`) into `venv` unless its `litellm`
    /// is already there, and writes a config routing `bench-model` to the upstream.
    pub async fn setup(
        venv: &Path,
        requirement: &str,
        upstream: &str,
        workers: usize,
    ) -> anyhow::Result<Litellm> {
        let executable = venv.join("bin").join("litellm");
        let python = venv.join("bin").join("python");
        if !executable.exists() {
            crate::say(&format!(
                "installing {requirement} into {} (pip, a few minutes)",
                venv.display()
            ));
            let python3 = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned());
            run(Command::new(&python3).arg("-m").arg("venv").arg(venv))
                .await
                .with_context(|| format!("`{python3} -m venv {}` failed", venv.display()))?;
            run(Command::new(&python).args(["-m", "pip", "install", "--quiet", requirement]))
                .await
                .with_context(|| format!("`pip install {requirement}` failed"))?;
            anyhow::ensure!(
                executable.exists(),
                "pip installed {requirement} but {} is not there",
                executable.display()
            );
        }
        let version = Command::new(&python)
            .args([
                "-c",
                "import importlib.metadata as m; print(m.version('litellm'))",
            ])
            .output()
            .await
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
            .unwrap_or_default();
        let config = tempfile::Builder::new()
            .prefix("litellm-bench-")
            .suffix(".yaml")
            .tempfile()?;
        std::fs::write(
            config.path(),
            format!(
                "model_list:\n  - model_name: {MODEL}\n    litellm_params:\n      model: openai/{MODEL}\n      api_base: {upstream}/v1\n      api_key: sk-bench\ngeneral_settings:\n  master_key: {LITELLM_MASTER_KEY}\n"
            ),
        )?;
        Ok(Litellm {
            executable,
            version,
            workers,
            config,
        })
    }

    /// Starts the proxy on a free port and waits until it answers its liveness probe.
    pub async fn start(
        &self,
        http: &reqwest::Client,
        logs: &Path,
        tag: &str,
    ) -> anyhow::Result<(Child, Target)> {
        let port = free_port()?;
        let mut command = Command::new(&self.executable);
        command
            .arg("--config")
            .arg(self.config.path())
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--num_workers", &self.workers.to_string()])
            // Uvicorn's default of 5 s kills workers that are still importing LiteLLM.
            .args(["--timeout_worker_healthcheck", "300"])
            // No network here but the package registries: use the bundled price map, and
            // never a database the caller's environment may name.
            .env("LITELLM_LOCAL_MODEL_COST_MAP", "True")
            .env_remove("DATABASE_URL")
            .env_remove("OPENAI_API_KEY")
            .env_remove("OPENAI_BASE_URL");
        // Readiness is LiteLLM's liveness probe, below.
        let mut child = Child::spawn("litellm", command, &logs.join(format!("litellm-{tag}.log")))?;
        let base_url = format!("http://127.0.0.1:{port}");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
        loop {
            if let Some(status) = child.exited() {
                anyhow::bail!(
                    "litellm exited ({status}) before it was ready; {} ends with:\n{}",
                    child.log.display(),
                    log_tail(&child.log)
                );
            }
            let probe = http
                .get(format!("{base_url}/health/liveliness"))
                .send()
                .await;
            if probe.is_ok_and(|r| r.status().is_success()) {
                break;
            }
            if tokio::time::Instant::now() > deadline {
                child.stop().await;
                anyhow::bail!(
                    "litellm did not answer /health/liveliness within 300s; {} ends with:\n{}",
                    child.log.display(),
                    log_tail(&child.log)
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let target = Target {
            name: "LiteLLM".to_owned(),
            protocol: Protocol::OpenAi,
            base_url,
            key: Some(LITELLM_MASTER_KEY.to_owned()),
            model: MODEL.to_owned(),
        };
        Ok((child, target))
    }
}

async fn run(command: &mut Command) -> anyhow::Result<()> {
    let output = command.output().await?;
    anyhow::ensure!(
        output.status.success(),
        "{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}
