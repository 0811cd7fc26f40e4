//! `frontdesk ingest` and `frontdesk kb`: documents into a knowledge base from the command
//! line, ingested in this process with a progress bar, and the knowledge bases listed; and
//! the embedder the configuration names, which `serve` uses too.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use frontdesk_core::config::Config;
use frontdesk_core::embed::Embedder;
use frontdesk_core::id::{DocumentId, TenantId};
use frontdesk_core::knowledge::{DocumentStatus, NewKnowledgeBase};
use frontdesk_core::Service;
use frontdesk_knowledge::{Library, LibrarySettings, NewDocument};
use frontdesk_local::{catalog, embed::LocalEmbedder};
use frontdesk_models::openai_embeddings::{native_dimensions, OpenAiEmbeddings};
use frontdesk_models::Timeouts;
use serde_json::json;

use crate::commands::{open_service, print_json};

/// Files a folder contributes at most.
const MAX_FILES: usize = 10_000;

/// The embedder `knowledge.embedder` names: the local MiniLM, or a configured provider's
/// embeddings API.
pub fn embedder(config: &Config) -> anyhow::Result<Arc<dyn Embedder>> {
    let name = &config.knowledge.embedder;
    let (provider, model) = name
        .split_once('/')
        .with_context(|| format!("knowledge.embedder `{name}` is not `provider/model`"))?;
    if provider == "local" {
        anyhow::ensure!(
            model == catalog::DEFAULT_EMBEDDER,
            "the local embedder is `local/{}`; `{name}` is not known",
            catalog::DEFAULT_EMBEDDER
        );
        return Ok(Arc::new(LocalEmbedder::new(&config.local.models_dir)));
    }
    let settings = config.providers.get(provider).with_context(|| {
        format!("knowledge.embedder `{name}`: no provider `{provider}` is configured")
    })?;
    let dimensions = config
        .knowledge
        .dimensions
        .or_else(|| native_dimensions(model))
        .with_context(|| {
            format!("knowledge.dimensions: the vector length of `{model}` is not known; set it")
        })?;
    let base_url = settings
        .base_url
        .clone()
        .unwrap_or_else(|| "https://api.openai.com/v1".to_owned());
    let embeddings = OpenAiEmbeddings::new(
        &base_url,
        settings.api_key.clone(),
        model,
        dimensions,
        Timeouts::default(),
    )
    .map_err(|e| anyhow::anyhow!("knowledge.embedder `{name}`: {e}"))?;
    Ok(Arc::new(embeddings))
}

async fn tenant_of(service: &Service, tenant: Option<&str>) -> anyhow::Result<TenantId> {
    match tenant {
        Some(id) => TenantId::parse(id).map_err(|e| anyhow::anyhow!("--tenant: {e}")),
        None => service
            .demo_tenant()
            .await?
            .context("no --tenant given and there is no demo tenant"),
    }
}

/// The files of a path: the file itself, or a folder's files (recursively, sorted, hidden
/// ones left out).
fn files_of(path: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    if meta.is_file() {
        out.push(path.to_path_buf());
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .with_context(|| format!("reading {}", path.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            !p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'))
        })
        .collect();
    entries.sort();
    for entry in entries {
        if out.len() >= MAX_FILES {
            anyhow::bail!("more than {MAX_FILES} files under {}", path.display());
        }
        files_of(&entry, out)?;
    }
    Ok(())
}

/// `frontdesk ingest PATH_OR_URL… --kb NAME`.
pub async fn ingest(
    config: &Config,
    json: bool,
    paths: Vec<String>,
    kb: &str,
    tenant: Option<&str>,
) -> anyhow::Result<()> {
    let service = open_service(config).await?;
    let tenant = tenant_of(&service, tenant).await?;
    let kb = match service.get_knowledge_base(&tenant, kb).await {
        Ok(kb) => kb,
        Err(frontdesk_core::Error::NotFound { .. }) => {
            let kb = service
                .create_knowledge_base(
                    &tenant,
                    NewKnowledgeBase {
                        name: kb.to_owned(),
                        description: String::new(),
                    },
                )
                .await?;
            if !json {
                eprintln!("Created the knowledge base `{}` ({})", kb.name, kb.id);
            }
            kb
        }
        Err(other) => return Err(other.into()),
    };
    let library = Library::new(
        service.clone(),
        embedder(config)?,
        LibrarySettings {
            allow_private_urls: config.allow_private_urls,
            max_document_bytes: config.knowledge.max_document_mb * 1024 * 1024,
            ..Default::default()
        },
    );
    let mut sources: Vec<(String, NewDocument)> = Vec::new();
    for path in &paths {
        if path.starts_with("http://") || path.starts_with("https://") {
            sources.push((
                path.clone(),
                NewDocument::Url {
                    url: path.clone(),
                    refresh_hours: None,
                },
            ));
            continue;
        }
        let mut files = Vec::new();
        files_of(Path::new(path), &mut files)?;
        for file in files {
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            sources.push((
                file.display().to_string(),
                NewDocument::File {
                    filename: file.file_name().map(|n| n.to_string_lossy().into_owned()),
                    bytes,
                    url: None,
                },
            ));
        }
    }
    let total = sources.len();
    let mut results = Vec::new();
    let mut failed = 0;
    for (n, (name, source)) in sources.into_iter().enumerate() {
        let added = match library.add(&tenant, kb.id.as_str(), source).await {
            Ok(added) => added,
            Err(error) => {
                failed += 1;
                if !json {
                    eprintln!("\r\x1b[K✗ {name}: {error}");
                }
                results
                    .push(json!({"source": name, "status": "failed", "error": error.to_string()}));
                continue;
            }
        };
        let id: DocumentId = added.document.id.clone();
        if !added.existing || added.document.status == DocumentStatus::Queued {
            let progress = watch(&library, &tenant, kb.id.as_str(), &id, n + 1, total, json);
            let (outcome, ()) = tokio::join!(library.ingest_now(&id), progress);
            outcome?;
        }
        let document = library.get(&tenant, kb.id.as_str(), id.as_str()).await?;
        let doc = &document.document;
        if doc.status == DocumentStatus::Failed {
            failed += 1;
        }
        if !json {
            let mark = if doc.status == DocumentStatus::Ready {
                "✓"
            } else {
                "✗"
            };
            let detail = match (&doc.status, &doc.error) {
                (DocumentStatus::Failed, Some(error)) => error.clone(),
                _ if added.existing => {
                    format!("{} passages (already there)", document.passages.len())
                }
                _ => format!("{} passages", document.passages.len()),
            };
            eprintln!("\r\x1b[K{mark} {name}: {} — {detail}", doc.title);
        }
        results.push(json!({"source": name, "document": doc, "existing": added.existing}));
    }
    if json {
        print_json(&json!({"knowledge_base": kb, "documents": results}))?;
    } else {
        eprintln!(
            "{} of {total} documents ready in `{}`",
            total - failed,
            kb.name
        );
    }
    anyhow::ensure!(failed == 0, "{failed} of {total} documents failed");
    Ok(())
}

/// Draws a progress bar for one document until it is no longer queued or processing.
async fn watch(
    library: &Library,
    tenant: &TenantId,
    kb: &str,
    id: &DocumentId,
    n: usize,
    total: usize,
    quiet: bool,
) {
    if quiet {
        return;
    }
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let Ok(document) = library.get(tenant, kb, id.as_str()).await else {
            return;
        };
        let doc = document.document;
        let (done, all) = (doc.progress.done, doc.progress.total.max(1));
        let width = 30;
        let filled = (done * width / all).min(width) as usize;
        eprint!(
            "\r\x1b[K[{n}/{total}] [{}{}] {done}/{} passages  {}",
            "#".repeat(filled),
            "-".repeat(width as usize - filled),
            doc.progress.total,
            doc.title
        );
        let _ = std::io::stderr().flush();
        if !matches!(
            doc.status,
            DocumentStatus::Queued | DocumentStatus::Processing
        ) {
            return;
        }
    }
}

/// `frontdesk kb list`.
pub async fn list(config: &Config, json: bool, tenant: Option<&str>) -> anyhow::Result<()> {
    let service = open_service(config).await?;
    let tenant = tenant_of(&service, tenant).await?;
    let mut rows = Vec::new();
    for kb in service.list_knowledge_bases(&tenant).await? {
        let documents = service
            .store()
            .list_documents(&tenant, &kb.id)
            .await
            .map_err(|e| frontdesk_core::Error::from_store("document", e))?;
        let count =
            |status: DocumentStatus| documents.iter().filter(|d| d.status == status).count();
        rows.push(json!({
            "id": kb.id,
            "name": kb.name,
            "documents": documents.len(),
            "ready": count(DocumentStatus::Ready),
            "queued": count(DocumentStatus::Queued) + count(DocumentStatus::Processing),
            "failed": count(DocumentStatus::Failed),
            "passages": documents.iter().map(|d| d.progress.total).sum::<u64>(),
        }));
    }
    if json {
        return print_json(&json!({ "data": rows }));
    }
    if rows.is_empty() {
        println!("No knowledge bases yet: `frontdesk ingest PATH --kb NAME` makes one.");
        return Ok(());
    }
    println!(
        "{:<30} {:<30} {:>9} {:>6} {:>7} {:>7} {:>9}",
        "ID", "NAME", "DOCUMENTS", "READY", "QUEUED", "FAILED", "PASSAGES"
    );
    for row in rows {
        println!(
            "{:<30} {:<30} {:>9} {:>6} {:>7} {:>7} {:>9}",
            row["id"].as_str().unwrap_or_default(),
            row["name"].as_str().unwrap_or_default(),
            row["documents"],
            row["ready"],
            row["queued"],
            row["failed"],
            row["passages"],
        );
    }
    Ok(())
}
