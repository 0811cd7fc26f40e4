//! What each command does: load the config, open the store, call the domain, print.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context;
use frontdesk_core::config::Config;
use frontdesk_core::id::TenantId;
use frontdesk_core::key::{KeyKind, Origin};
use frontdesk_core::service::{Demo, NewKey, NewTenant, NewUser};
use frontdesk_core::store::BaseStore;
use frontdesk_core::tenant::Role;
use frontdesk_core::Service;
use frontdesk_local::{catalog, LocalChat, LocalConfig};
use frontdesk_models::registry::{Registry, LOCAL};
use frontdesk_models::Timeouts;
use frontdesk_server::AppState;
use frontdesk_store::SqlStore;
use serde_json::json;

use crate::{
    AgentCommand, Cli, Command, ConfigCommand, KbCommand, KeyCommand, ModelsCommand, TenantCommand,
    UserCommand,
};

/// Runs one command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = load_config(&cli)?;
    init_logging(&config);
    match cli.command {
        Command::Config {
            command: ConfigCommand::Show,
        } => {
            if cli.json {
                print_json(&config.show_json())
            } else {
                print!("{}", config.show());
                Ok(())
            }
        }
        Command::Serve { .. } => serve(config).await,
        Command::Migrate => {
            let store = open_store(&config).await?;
            if cli.json {
                print_json(&json!({"status": "migrated", "backend": store.backend()}))
            } else {
                println!("migrations applied ({})", store.backend());
                Ok(())
            }
        }
        Command::Tenant { command } => tenant(&config, cli.json, command).await,
        Command::Key { command } => key(&config, cli.json, command).await,
        Command::Agent { command } => agent(&config, cli.json, command).await,
        Command::User { command } => user(&config, cli.json, command).await,
        Command::Models { command } => models(&config, cli.json, command),
        Command::Ingest { paths, kb, tenant } => {
            crate::knowledge::ingest(&config, cli.json, paths, &kb, tenant.as_deref()).await
        }
        Command::Kb {
            command: KbCommand::List { tenant },
        } => crate::knowledge::list(&config, cli.json, tenant.as_deref()).await,
        Command::Kb {
            command:
                KbCommand::Eval {
                    set,
                    corpus,
                    data,
                    max_pages,
                },
        } => {
            crate::knowledge::eval(&config, cli.json, &set, &corpus, data.as_deref(), max_pages)
                .await
        }
    }
}

fn load_config(cli: &Cli) -> anyhow::Result<Config> {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let mut config = Config::load(cli.config.as_deref(), &env).context("invalid configuration")?;
    if let Some(dir) = &cli.data_dir {
        config.data_dir = dir.clone();
    }
    if let Some(url) = &cli.database_url {
        config.database_url = Some(url.clone().into());
    }
    if let Command::Serve { bind: Some(bind) } = &cli.command {
        config.bind = bind
            .parse()
            .with_context(|| format!("--bind {bind}: not an address such as 127.0.0.1:8080"))?;
    }
    config.validate().context("invalid configuration")?;
    Ok(config)
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .try_init();
}

async fn open_store(config: &Config) -> anyhow::Result<SqlStore> {
    let url = config.database_url();
    let store = SqlStore::connect(&url).await.with_context(|| {
        format!(
            "opening the database {}",
            frontdesk_core::config::redact_url(&url)
        )
    })?;
    store.migrate().await.context("applying migrations")?;
    Ok(store)
}

pub(crate) async fn open_service(config: &Config) -> anyhow::Result<Service> {
    let store = open_store(config).await?;
    Ok(Service::new(Arc::new(store), config.limits.clone()))
}

fn tenant_id(value: &str) -> anyhow::Result<TenantId> {
    TenantId::parse(value).map_err(|e| anyhow::anyhow!("--tenant: {e}"))
}

pub(crate) fn print_json(value: &serde_json::Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let store = open_store(&config).await?;
    let backend = store.backend();
    let sealer = frontdesk_core::credentials::sealer_for(&config)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("loading the master key")?;
    if sealer.is_none() {
        tracing::warn!("no FRONTDESK_MASTER_KEY: tenants cannot store their own provider keys");
    }
    let service = Service::new(Arc::new(store.clone()), config.limits.clone()).with_sealer(sealer);
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (use --bind or FRONTDESK_BIND)",
                config.bind
            )
        })?;
    let local = listener.local_addr()?;
    let mut config = config;
    if config.public_url.is_none() {
        // Links to 0.0.0.0 lead nowhere in a browser: show localhost instead.
        config.public_url = Some(if local.ip().is_unspecified() {
            format!("http://localhost:{}", local.port())
        } else {
            format!("http://{local}")
        });
    }
    let base = config.public_url();
    let demo = if config.bootstrap_demo {
        let mut origins = vec![base.clone()];
        if local.ip().is_loopback() {
            origins.push(format!("http://localhost:{}", local.port()));
            origins.push(format!("http://127.0.0.1:{}", local.port()));
        }
        origins.dedup();
        Some(
            service
                .bootstrap_demo(&origins)
                .await
                .context("creating the demo tenant")?,
        )
    } else {
        None
    };
    let demo_tenant = match &demo {
        Some(Demo::Created(demo)) => Some(demo.tenant.id.clone()),
        Some(Demo::Existing { tenant, .. }) => Some(tenant.id.clone()),
        _ => None,
    };
    let mut registry = Registry::from_config(&config.providers, Timeouts::default())
        .context("configuring the model providers")?;
    let local_chat = LocalChat::new(local_config(&config));
    registry.register(LOCAL, Arc::new(local_chat.clone()));
    let models_dir = &config.local.models_dir;
    let local_line;
    if catalog::chat_model_path(models_dir, catalog::DEFAULT_CHAT_MODEL).is_some() {
        local_line = format!(
            "  Local model: local/{} ({})",
            catalog::DEFAULT_CHAT_MODEL,
            models_dir.display()
        );
        if config.local.preload {
            if let Err(error) = local_chat.preload(catalog::DEFAULT_CHAT_MODEL).await {
                tracing::warn!(%error, "the local model did not load");
            }
        }
    } else {
        local_line = format!(
            "  Local model: not in {} yet: run `frontdesk models fetch` (or `make models`)",
            models_dir.display()
        );
    }
    println!(
        "frontdesk {} listening on http://{local} ({backend})",
        env!("CARGO_PKG_VERSION")
    );
    println!("  Dashboard:  {base}/");
    println!("  API docs:   {base}/api/v1/docs");
    if demo.is_some() {
        println!("  Demo page:  {base}/demo (the widget on a made-up shop)");
    }
    println!("{local_line}");
    match demo {
        Some(Demo::Created(demo)) => {
            println!(
                "  Demo tenant {} created. These secrets are shown only now:",
                demo.tenant.id
            );
            println!(
                "  Login:       {} / {}",
                demo.owner_email, demo.owner_password
            );
            println!("  Secret key:  {}", demo.secret_key.expose());
            println!(
                "  Publishable: {} (agent `{}`)",
                demo.publishable_key.expose(),
                demo.agent_slug
            );
        }
        Some(Demo::Existing {
            tenant,
            owner_email,
            agent_slug,
        }) => {
            println!(
                "  Demo tenant {} (agent `{agent_slug}`), login {owner_email}",
                tenant.id
            );
            println!(
                "  Keys and the password were printed at first start; make new keys with `frontdesk key create`,"
            );
            println!("  and a password reset link with `frontdesk user reset-link --email {owner_email}`.");
        }
        Some(Demo::InProgress) => {
            println!("  The demo tenant is being created by another instance.");
        }
        None => {}
    }
    let embedder = crate::knowledge::embedder(&config)?;
    let state = AppState::with_embedder(service, config, registry, Some(embedder));
    if let Some(tenant) = demo_tenant {
        if let Err(error) =
            frontdesk_server::demo::ensure_demo_knowledge(&state, &tenant, "support").await
        {
            tracing::warn!(%error, "the demo's knowledge base could not be made");
        }
    }
    frontdesk_server::serve(listener, state, frontdesk_server::shutdown_signal()).await?;
    store.close().await;
    println!("frontdesk stopped");
    Ok(())
}

fn local_config(config: &Config) -> LocalConfig {
    let defaults = LocalConfig::default();
    LocalConfig {
        models_dir: config.local.models_dir.clone(),
        parallel: config.local.parallel,
        queue: defaults.queue,
        threads: match config.local.threads {
            0 => defaults.threads,
            n => i32::try_from(n).unwrap_or(defaults.threads),
        },
        context: config.local.context,
    }
}

fn models(config: &Config, json: bool, command: ModelsCommand) -> anyhow::Result<()> {
    let dir = &config.local.models_dir;
    match command {
        ModelsCommand::Fetch { names } => {
            let mut progress = |line: &str| eprintln!("{line}");
            let fetched = catalog::fetch(dir, &names, &mut progress)?;
            if json {
                print_json(&json!({
                    "models_dir": dir.display().to_string(),
                    "fetched": fetched.iter().map(|m| m.name).collect::<Vec<_>>(),
                }))
            } else {
                println!("models are in {}", dir.display());
                Ok(())
            }
        }
        ModelsCommand::List => {
            let rows: Vec<serde_json::Value> = catalog::KNOWN
                .iter()
                .map(|model| {
                    json!({
                        "name": model.name,
                        "kind": model.kind,
                        "description": model.description,
                        "present": catalog::is_present(dir, model),
                        "path": dir.join(model.name).display().to_string(),
                    })
                })
                .collect();
            if json {
                return print_json(
                    &json!({"models_dir": dir.display().to_string(), "models": rows}),
                );
            }
            for model in catalog::KNOWN {
                let state = if catalog::is_present(dir, model) {
                    "present"
                } else {
                    "missing (frontdesk models fetch)"
                };
                println!(
                    "{:<18} {:<10} {:<8} {}",
                    model.name, model.kind, state, model.description
                );
            }
            Ok(())
        }
    }
}

async fn tenant(config: &Config, json: bool, command: TenantCommand) -> anyhow::Result<()> {
    let service = open_service(config).await?;
    let TenantCommand::Create {
        name,
        owner_email,
        monthly_token_quota,
    } = command;
    let created = service
        .create_tenant(NewTenant {
            name,
            owner_email,
            monthly_token_quota,
        })
        .await?;
    if json {
        // The same shape as `POST /api/v1/tenants` answers.
        print_json(&serde_json::to_value(
            frontdesk_server::routes::tenants::CreatedTenant::from(created),
        )?)
    } else {
        println!(
            "tenant:     {} ({})",
            created.tenant.id, created.tenant.name
        );
        if let Some(owner) = &created.owner {
            match &owner.generated_password {
                Some(password) => {
                    println!("owner:      {} / {password} (shown once)", owner.user.email)
                }
                None => println!(
                    "owner:      {} (existing user, password unchanged)",
                    owner.user.email
                ),
            }
        }
        println!("secret key: {} (shown once)", created.secret.expose());
        Ok(())
    }
}

async fn key(config: &Config, json: bool, command: KeyCommand) -> anyhow::Result<()> {
    let service = open_service(config).await?;
    let KeyCommand::Create {
        tenant,
        kind,
        name,
        origins,
        agents,
        rate_limit_per_minute,
    } = command;
    let tenant = tenant_id(&tenant)?;
    service.get_tenant(&tenant).await?;
    let allowed_origins = origins
        .iter()
        .map(|o| Origin::parse(o))
        .collect::<Result<Vec<_>, _>>()?;
    let input = NewKey {
        kind: KeyKind::parse(&kind)?,
        name,
        allowed_origins,
        allowed_agents: agents,
        rate_limit_per_minute,
    };
    let (record, secret) = service.create_key(&tenant, input).await?;
    if json {
        let mut value = serde_json::to_value(&record)?;
        value["key"] = json!(secret.expose());
        print_json(&value)
    } else {
        println!(
            "{} key {} created: {} (shown once)",
            record.kind.as_str(),
            record.id,
            secret.expose()
        );
        Ok(())
    }
}

async fn agent(config: &Config, json: bool, command: AgentCommand) -> anyhow::Result<()> {
    let service = open_service(config).await?;
    let AgentCommand::Create {
        tenant,
        slug,
        name,
        instructions,
        model,
    } = command;
    let tenant = tenant_id(&tenant)?;
    service.get_tenant(&tenant).await?;
    let mut spec = json!({"slug": slug, "name": name.unwrap_or_else(|| slug.clone()), "instructions": instructions});
    if let Some(model) = model {
        spec["model"] = json!(model);
    }
    let agent = service.create_agent(&tenant, spec).await?;
    if json {
        print_json(&serde_json::to_value(&agent)?)
    } else {
        println!(
            "agent {} created: `{}` on {}",
            agent.id, agent.spec.slug, agent.spec.model
        );
        Ok(())
    }
}

async fn user(config: &Config, json: bool, command: UserCommand) -> anyhow::Result<()> {
    let service = open_service(config).await?;
    let (tenant, email, name, role) = match command {
        UserCommand::Add {
            tenant,
            email,
            name,
            role,
        } => (tenant, email, name, role),
        UserCommand::ResetLink { email } => {
            let token = service.create_reset_link(&email).await?;
            let link = format!(
                "{}/reset/{}",
                config.public_url().trim_end_matches('/'),
                token.expose()
            );
            if json {
                print_json(&json!({"email": email, "link": link, "expires_in_seconds": 3600}))?;
            } else {
                println!("password reset link for {email} (works once, for one hour):\n{link}");
            }
            return Ok(());
        }
    };
    let tenant = tenant_id(&tenant)?;
    let added = service
        .add_user(
            &tenant,
            NewUser {
                email,
                name,
                role: Role::parse(&role)?,
                password: None,
            },
        )
        .await?;
    if json {
        print_json(
            &json!({"user": added.user, "role": added.role, "password": added.generated_password}),
        )
    } else {
        match &added.generated_password {
            Some(password) => println!(
                "user {} added as {}: password {password} (shown once)",
                added.user.email,
                added.role.as_str()
            ),
            None => println!(
                "existing user {} is now {} of this tenant",
                added.user.email,
                added.role.as_str()
            ),
        }
        Ok(())
    }
}
