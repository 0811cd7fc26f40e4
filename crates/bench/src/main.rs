//! `stream-bench`: what frontdesk adds to a streamed chat turn, with LiteLLM's proxy as the
//! reference. `stream-bench run` starts a scripted OpenAI-compatible upstream, frontdesk and
//! LiteLLM as child processes and prints a markdown report; `stream-bench upstream` is that
//! upstream on its own. `make bench-stream` builds and runs it.

// Printing progress and the report is this binary's job.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod client;
mod procs;
mod report;
mod run;
mod script;
mod sse;
mod stats;
mod targets;
mod upstream;
mod waits;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Benchmarks streamed chat turns through frontdesk and LiteLLM.
#[derive(Debug, Parser)]
#[command(name = "stream-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the whole benchmark and print the report.
    Run(Box<run::RunArgs>),
    /// Serve the scripted upstream only (`POST /v1/chat/completions`, `POST /release`).
    Upstream {
        /// Port on 127.0.0.1; 0 picks a free one (printed as `listening on ADDR`).
        #[arg(long, default_value_t = 0)]
        port: u16,
    },
}

/// A progress line on stdout.
fn say(line: &str) {
    println!("{line}");
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("stream-bench: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Run(args) => run::run(*args).await,
            Command::Upstream { port } => upstream::serve(port).await.map(|()| true),
        }
    });
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("stream-bench: frontdesk failed streams; see the Errors section above");
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("\nstream-bench FAILED: {error:#}");
            ExitCode::FAILURE
        }
    }
}
