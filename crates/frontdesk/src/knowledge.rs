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

/// One labelled question: the passage that answers it is in `document` and holds `evidence`.
#[derive(Debug, serde::Deserialize)]
struct Labelled {
    id: String,
    question: String,
    document: String,
    evidence: String,
}

/// How one retrieval mode did over the set.
#[derive(Debug, Default, serde::Serialize)]
struct Scores {
    recall_at_5: f64,
    recall_at_10: f64,
    mrr: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn normalized(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `frontdesk kb eval`: ingests a corpus into a scratch SQLite database (kept in `data` when
/// given, and reused when it is there) and scores vector, full-text and hybrid retrieval on a
/// labelled set: recall@5, recall@10 and MRR (a question counts when a passage from its
/// document holding its evidence is among the first 10).
pub async fn eval(
    config: &Config,
    json: bool,
    set: &Path,
    corpus: &Path,
    data: Option<&Path>,
    max_pages: Option<usize>,
) -> anyhow::Result<()> {
    use frontdesk_core::knowledge::RetrievalMode;
    let questions: Vec<Labelled> = std::fs::read_to_string(set)
        .with_context(|| format!("reading {}", set.display()))?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()
        .with_context(|| format!("parsing {}", set.display()))?;
    anyhow::ensure!(!questions.is_empty(), "{} has no questions", set.display());
    let scratch = tempfile_dir()?;
    let dir = data.map_or_else(|| scratch.clone(), Path::to_path_buf);
    std::fs::create_dir_all(&dir)?;
    let url = format!("sqlite://{}", dir.join("eval.db").display());
    let store = frontdesk_store::SqlStore::connect(&url).await?;
    frontdesk_core::store::BaseStore::migrate(&store).await?;
    let service = Service::new(Arc::new(store.clone()), config.limits.clone());
    let tenant = match service.demo_tenant().await? {
        Some(tenant) => tenant,
        None => {
            let created = service
                .create_tenant(frontdesk_core::service::NewTenant {
                    name: "Retrieval evaluation".into(),
                    owner_email: None,
                    monthly_token_quota: None,
                })
                .await?;
            // Remembered as the "demo" tenant of this scratch database, to find it again.
            frontdesk_core::store::BaseStore::set_setting(
                &store,
                "demo_tenant_id",
                created.tenant.id.as_str(),
            )
            .await?;
            created.tenant.id
        }
    };
    let kb = match service.get_knowledge_base(&tenant, "corpus").await {
        Ok(kb) => kb,
        Err(_) => {
            service
                .create_knowledge_base(
                    &tenant,
                    NewKnowledgeBase {
                        name: "corpus".into(),
                        description: String::new(),
                    },
                )
                .await?
        }
    };
    let library = Library::new(
        service.clone(),
        embedder(config)?,
        LibrarySettings::default(),
    );
    // Ingest what is not there yet.
    let mut files = Vec::new();
    files_of(corpus, &mut files)?;
    files.retain(|f| f.extension().and_then(|e| e.to_str()) == Some("html"));
    anyhow::ensure!(
        !files.is_empty(),
        "no .html files under {}",
        corpus.display()
    );
    // A smaller corpus when asked: the pages the questions name first, then the others in
    // order, as distractors.
    if let Some(max) = max_pages {
        let labelled: std::collections::HashSet<&str> =
            questions.iter().map(|q| q.document.as_str()).collect();
        let is_labelled = |f: &PathBuf| {
            f.strip_prefix(corpus)
                .ok()
                .and_then(|p| p.to_str())
                .is_some_and(|p| labelled.contains(p))
        };
        let (mut chosen, others): (Vec<PathBuf>, Vec<PathBuf>) =
            files.into_iter().partition(|f| is_labelled(f));
        chosen.extend(others);
        chosen.truncate(max.max(labelled.len()));
        files = chosen;
    }
    let known: std::collections::HashMap<String, DocumentId> = library
        .documents(&tenant, kb.id.as_str())
        .await?
        .into_iter()
        .filter(|d| d.status == DocumentStatus::Ready)
        .filter_map(|d| d.filename.clone().map(|f| (f, d.id)))
        .collect();
    let started = std::time::Instant::now();
    let (mut pages, mut passages, mut failed) = (0u64, 0u64, 0u64);
    for (n, file) in files.iter().enumerate() {
        let name = file
            .strip_prefix(corpus)
            .unwrap_or(file)
            .display()
            .to_string();
        if known.contains_key(&name) {
            continue;
        }
        let bytes = std::fs::read(file)?;
        let added = library
            .add(
                &tenant,
                kb.id.as_str(),
                NewDocument::File {
                    filename: Some(name.clone()),
                    bytes,
                    url: None,
                },
            )
            .await;
        let Ok(added) = added else {
            failed += 1;
            continue;
        };
        library.ingest_now(&added.document.id).await?;
        let doc = library
            .get(&tenant, kb.id.as_str(), added.document.id.as_str())
            .await?;
        if doc.document.status == DocumentStatus::Ready {
            pages += 1;
            passages += doc.document.progress.total;
        } else {
            failed += 1;
        }
        if !json && (n % 20 == 0 || n + 1 == files.len()) {
            eprint!(
                "\r\x1b[Kingesting [{}/{}] {passages} passages, {:.1} pages/s",
                n + 1,
                files.len(),
                pages as f64 / started.elapsed().as_secs_f64().max(0.001)
            );
        }
    }
    let ingest_secs = started.elapsed().as_secs_f64();
    if !json && pages > 0 {
        eprintln!();
    }
    let names: std::collections::HashMap<DocumentId, String> = library
        .documents(&tenant, kb.id.as_str())
        .await?
        .into_iter()
        .filter_map(|d| d.filename.clone().map(|f| (d.id, f)))
        .collect();
    let mut report = serde_json::Map::new();
    for (label, mode) in [
        ("vector", RetrievalMode::Vector),
        ("text", RetrievalMode::Text),
        ("hybrid", RetrievalMode::Hybrid),
    ] {
        let mut scores = Scores::default();
        let mut times = Vec::with_capacity(questions.len());
        for question in &questions {
            let clock = std::time::Instant::now();
            let hits = library
                .search(
                    &tenant,
                    std::slice::from_ref(&kb.id),
                    &[],
                    &question.question,
                    10,
                    None,
                    mode,
                )
                .await?;
            times.push(clock.elapsed().as_secs_f64() * 1000.0);
            let evidence = normalized(&question.evidence);
            let rank = hits.iter().position(|h| {
                names.get(&h.document_id) == Some(&question.document)
                    && normalized(&h.text).contains(&evidence)
            });
            if let Some(rank) = rank {
                scores.recall_at_10 += 1.0;
                if rank < 5 {
                    scores.recall_at_5 += 1.0;
                }
                scores.mrr += 1.0 / (rank as f64 + 1.0);
            }
            let _ = &question.id;
        }
        let n = questions.len() as f64;
        scores.recall_at_5 /= n;
        scores.recall_at_10 /= n;
        scores.mrr /= n;
        times.sort_by(f64::total_cmp);
        scores.p50_ms = times[times.len() / 2];
        scores.p99_ms = times[((times.len() as f64 * 0.99) as usize).min(times.len() - 1)];
        report.insert(label.to_owned(), serde_json::to_value(&scores)?);
    }
    let total_passages: u64 = library
        .documents(&tenant, kb.id.as_str())
        .await?
        .iter()
        .map(|d| d.progress.total)
        .sum();
    let summary = json!({
        "questions": questions.len(),
        "documents": names.len(),
        "passages": total_passages,
        "embedder": library.embedder(),
        "ingested_now": {"pages": pages, "passages": passages, "failed": failed, "seconds": ingest_secs,
            "pages_per_second": pages as f64 / ingest_secs.max(0.001), "passages_per_second": passages as f64 / ingest_secs.max(0.001)},
        "modes": report,
    });
    if json {
        print_json(&summary)?;
    } else {
        println!(
            "{} questions over {} documents ({} passages, embedder {})",
            questions.len(),
            names.len(),
            total_passages,
            library.embedder()
        );
        if pages > 0 {
            println!(
                "ingested {pages} pages ({passages} passages) in {ingest_secs:.1} s: {:.1} pages/s, {:.1} passages/s; {failed} failed",
                pages as f64 / ingest_secs,
                passages as f64 / ingest_secs
            );
        }
        println!(
            "{:<8} {:>10} {:>10} {:>7} {:>9} {:>9}",
            "mode", "recall@5", "recall@10", "MRR", "p50 ms", "p99 ms"
        );
        for label in ["vector", "text", "hybrid"] {
            let s = &summary["modes"][label];
            println!(
                "{label:<8} {:>10.3} {:>10.3} {:>7.3} {:>9.1} {:>9.1}",
                s["recall_at_5"].as_f64().unwrap_or_default(),
                s["recall_at_10"].as_f64().unwrap_or_default(),
                s["mrr"].as_f64().unwrap_or_default(),
                s["p50_ms"].as_f64().unwrap_or_default(),
                s["p99_ms"].as_f64().unwrap_or_default(),
            );
        }
    }
    store.close().await;
    if data.is_none() {
        let _ = std::fs::remove_dir_all(&scratch);
    }
    Ok(())
}

fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("frontdesk-eval-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
