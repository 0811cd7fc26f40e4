//! Child processes of the bench: starting one and waiting for the line that says where it
//! listens, reading its memory and open files from `/proc`, and stopping it with everything
//! it started.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;
use tokio::sync::oneshot;

/// A running child process whose output goes to a log file.
pub struct Child {
    pub pid: u32,
    pub log: PathBuf,
    child: tokio::process::Child,
}

impl Child {
    /// Starts `command` and waits up to `wait` for a line of its stdout that `find` turns
    /// into a value (such as the address it listens on). Stdout and stderr go to `log`.
    pub async fn start<T: Send + 'static>(
        name: &str,
        command: Command,
        log: &Path,
        wait: Duration,
        find: fn(&str) -> Option<T>,
    ) -> anyhow::Result<(Child, T)> {
        let (mut started, found) = Child::spawn_finding(name, command, log, find)?;
        match tokio::time::timeout(wait, found).await {
            Ok(Ok(value)) => Ok((started, value)),
            _ => {
                started.stop().await;
                anyhow::bail!(
                    "{name} did not start within {}s; its log {} ends with:\n{}",
                    wait.as_secs(),
                    log.display(),
                    log_tail(log)
                )
            }
        }
    }

    /// Starts `command` without waiting for anything; stdout and stderr go to `log`.
    pub fn spawn(name: &str, command: Command, log: &Path) -> anyhow::Result<Child> {
        Ok(Child::spawn_finding(name, command, log, |_| None::<()>)?.0)
    }

    fn spawn_finding<T: Send + 'static>(
        name: &str,
        mut command: Command,
        log: &Path,
        find: fn(&str) -> Option<T>,
    ) -> anyhow::Result<(Child, oneshot::Receiver<T>)> {
        let file = std::fs::File::create(log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(file.try_clone()?))
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        let pid = child.id().context("the child has no pid")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let (found_tx, found_rx) = oneshot::channel();
        // Copies stdout to the log for the child's whole life, so the pipe never fills.
        tokio::spawn(async move {
            let mut log = tokio::fs::File::from_std(file);
            let mut lines = BufReader::new(stdout).lines();
            let mut found_tx = Some(found_tx);
            while let Ok(Some(line)) = lines.next_line().await {
                let _ = log.write_all(format!("{line}\n").as_bytes()).await;
                if found_tx.is_some() {
                    if let Some(value) = find(&line) {
                        if let Some(tx) = found_tx.take() {
                            let _ = tx.send(value);
                        }
                    }
                }
            }
        });
        let started = Child {
            pid,
            log: log.to_owned(),
            child,
        };
        Ok((started, found_rx))
    }

    /// `Some(status)` once the child has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Kills the child and every process it started.
    pub async fn stop(&mut self) {
        for pid in descendants(self.pid) {
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(pid.to_string())
                .status()
                .await;
        }
        let _ = self.child.kill().await;
    }
}

/// The last lines of a log file, for error messages.
pub fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// Every process under `root` (not `root` itself), from `/proc/*/stat`.
pub fn descendants(root: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // The command name may hold spaces and parentheses: the fields start after the last ')'.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|ppid| ppid.parse::<u32>().ok());
        if let Some(ppid) = ppid {
            children.entry(ppid).or_default().push(pid);
        }
    }
    let mut found = Vec::new();
    let mut queue = vec![root];
    while let Some(pid) = queue.pop() {
        for &child in children.get(&pid).map(Vec::as_slice).unwrap_or_default() {
            found.push(child);
            queue.push(child);
        }
    }
    found
}

/// Resident memory of `pid` and its descendants, in KiB (`VmRSS` of `/proc/<pid>/status`).
pub fn tree_rss_kib(pid: u32) -> anyhow::Result<u64> {
    let mut total = rss_kib(pid)?;
    for child in descendants(pid) {
        total += rss_kib(child).unwrap_or(0);
    }
    Ok(total)
}

fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("process {pid} is gone"))?;
    parse_vm_rss(&status).with_context(|| format!("no VmRSS for process {pid}"))
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Open file descriptors of `pid` and its descendants.
pub fn tree_fds(pid: u32) -> usize {
    std::iter::once(pid)
        .chain(descendants(pid))
        .map(|pid| {
            std::fs::read_dir(format!("/proc/{pid}/fd"))
                .map(|dir| dir.count())
                .unwrap_or(0)
        })
        .sum()
}

/// The soft limit on open files of `pid`, from `/proc/<pid>/limits`.
pub fn nofile_limit(pid: u32) -> Option<u64> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// A free TCP port on 127.0.0.1 (for children that cannot be told to pick one).
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rss_from_status() {
        let status = "Name:\tfrontdesk\nVmPeak:\t  9000 kB\nVmRSS:\t   12345 kB\nThreads:\t3\n";
        assert_eq!(parse_vm_rss(status), Some(12345));
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
        let own = tree_rss_kib(std::process::id()).unwrap_or(0);
        assert!(own > 0);
        assert!(nofile_limit(std::process::id()).is_some());
    }
}
