//! `/api/v1/knowledge-bases`: a tenant's knowledge bases (create, list, get by id or name,
//! delete), their documents (add a file, text, a URL or a sitemap; list with status and
//! progress; get with passages; delete; retry) and search (`/query`).

use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path, Request, State};
use axum::http::{header, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use frontdesk_core::knowledge::{
    Document, KnowledgeBase, KnowledgeHit, KnowledgeQuery, NewKnowledgeBase,
};
use frontdesk_core::Error;
use frontdesk_knowledge::{DocumentWithPassages, Library, NewDocument};
use serde::{Deserialize, Serialize};

use super::ListPage;
use crate::auth::SecretKeyAuth;
use crate::error::{ApiError, ApiResult, JsonBody};
use crate::AppState;

/// Room for the multipart framing around the largest document.
const MULTIPART_OVERHEAD: usize = 64 * 1024;

pub fn routes(state: &AppState) -> Router<AppState> {
    let upload_limit = state
        .knowledge
        .as_ref()
        .map_or(0, |k| k.settings().max_document_bytes)
        + MULTIPART_OVERHEAD;
    Router::new()
        .route(
            "/api/v1/knowledge-bases/{kb}/documents",
            get(list_documents)
                .post(add_document)
                .layer(DefaultBodyLimit::max(upload_limit)),
        )
        .route(
            "/api/v1/knowledge-bases/{kb}/documents/{doc}",
            get(get_document).delete(delete_document),
        )
        .route(
            "/api/v1/knowledge-bases/{kb}/documents/{doc}/retry",
            post(retry_document),
        )
        .route("/api/v1/knowledge-bases/{kb}/query", post(query))
        .route(
            "/api/v1/knowledge-bases",
            get(list_knowledge_bases).post(create_knowledge_base),
        )
        .route(
            "/api/v1/knowledge-bases/{kb}",
            get(get_knowledge_base).delete(delete_knowledge_base),
        )
}

/// Creates a knowledge base; its name is unique in the tenant.
#[utoipa::path(post, path = "/api/v1/knowledge-bases", tag = "knowledge", security(("secret_key" = [])),
    request_body = NewKnowledgeBase,
    responses((status = 201, body = KnowledgeBase), (status = 409, description = "name taken, or too many"), (status = 422)))]
pub async fn create_knowledge_base(
    State(state): State<AppState>,
    auth: SecretKeyAuth,
    JsonBody(new): JsonBody<NewKnowledgeBase>,
) -> ApiResult<(StatusCode, Json<KnowledgeBase>)> {
    let kb = state
        .service
        .create_knowledge_base(&auth.tenant, new)
        .await?;
    Ok((StatusCode::CREATED, Json(kb)))
}

/// Lists the tenant's knowledge bases, by name.
#[utoipa::path(get, path = "/api/v1/knowledge-bases", tag = "knowledge", security(("secret_key" = [])),
    responses((status = 200, body = ListPage<KnowledgeBase>)))]
pub async fn list_knowledge_bases(
    State(state): State<AppState>,
    auth: SecretKeyAuth,
) -> ApiResult<Json<ListPage<KnowledgeBase>>> {
    Ok(Json(ListPage::all(
        state.service.list_knowledge_bases(&auth.tenant).await?,
    )))
}

/// Gets a knowledge base by id (`kb_…`) or name.
#[utoipa::path(get, path = "/api/v1/knowledge-bases/{kb}", tag = "knowledge", security(("secret_key" = [])),
    params(("kb" = String, Path, description = "knowledge base id or name")),
    responses((status = 200, body = KnowledgeBase), (status = 404)))]
pub async fn get_knowledge_base(
    State(state): State<AppState>,
    auth: SecretKeyAuth,
    Path(kb): Path<String>,
) -> ApiResult<Json<KnowledgeBase>> {
    Ok(Json(
        state.service.get_knowledge_base(&auth.tenant, &kb).await?,
    ))
}

/// Deletes a knowledge base.
#[utoipa::path(delete, path = "/api/v1/knowledge-bases/{kb}", tag = "knowledge", security(("secret_key" = [])),
    params(("kb" = String, Path, description = "knowledge base id or name")),
    responses((status = 204), (status = 404)))]
pub async fn delete_knowledge_base(
    State(state): State<AppState>,
    auth: SecretKeyAuth,
    Path(kb): Path<String>,
) -> ApiResult<StatusCode> {
    state
        .service
        .delete_knowledge_base(&auth.tenant, &kb)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The knowledge service, or 503 on a server without an embedder.
fn library(state: &AppState) -> ApiResult<&Library> {
    state.knowledge.as_ref().ok_or_else(|| {
        ApiError(Error::Unavailable(
            "this server has no embedder, so it cannot ingest or search documents".into(),
        ))
    })
}

/// A document added through JSON: exactly one of `text`, `url` or `sitemap`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDocumentBody {
    /// Text to add (read as Markdown), with `title`.
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    /// A page to fetch (with the outbound checks of webhooks).
    #[serde(default)]
    pub url: Option<String>,
    /// Fetch the page again this often (a URL document).
    #[serde(default)]
    pub refresh_hours: Option<u32>,
    /// A sitemap whose pages to add, each a URL document.
    #[serde(default)]
    pub sitemap: Option<String>,
    /// Pages of the sitemap to add at most (default and limit 200).
    #[serde(default)]
    pub max_pages: Option<u32>,
}

impl NewDocumentBody {
    fn into_new(self) -> Result<NewDocument, Error> {
        let given = [
            self.text.is_some(),
            self.url.is_some(),
            self.sitemap.is_some(),
        ]
        .iter()
        .filter(|g| **g)
        .count();
        if given != 1 {
            return Err(Error::bad_request(
                "invalid_document",
                "give exactly one of `text` (with `title`), `url` or `sitemap`, or upload a multipart `file`",
            ));
        }
        Ok(if let Some(text) = self.text {
            NewDocument::Text {
                title: self.title,
                text,
            }
        } else if let Some(url) = self.url {
            NewDocument::Url {
                url,
                refresh_hours: self.refresh_hours,
            }
        } else {
            NewDocument::Sitemap {
                url: self.sitemap.unwrap_or_default(),
                max_pages: self.max_pages,
            }
        })
    }
}

/// A document as added: queued, or the one that already holds the same content or URL.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AddedDocument {
    #[serde(flatten)]
    pub document: Document,
    /// The content (or URL) was in the knowledge base already: this is that document (a URL
    /// is fetched again).
    pub existing: bool,
}

/// Adds a document: a multipart upload (field `file`, optional `url` to link citations to),
/// or JSON `{"text", "title"}`, `{"url", "refresh_hours"}` or `{"sitemap", "max_pages"}`.
/// The type of a file is sniffed from its content (PDF, DOCX, HTML, Markdown, CSV, text).
/// Ingestion runs in the background: follow `status` and `progress`.
#[utoipa::path(post, path = "/api/v1/knowledge-bases/{kb}/documents", tag = "knowledge", security(("secret_key" = [])),
    params(("kb" = String, Path, description = "knowledge base id or name")),
    request_body(content(
        (NewDocumentBody = "application/json"),
        (UploadForm = "multipart/form-data")
    )),
    responses((status = 202, body = AddedDocument, description = "queued"),
        (status = 200, body = AddedDocument, description = "the same content was there already"),
        (status = 400, description = "unsupported type, or not exactly one source"),
        (status = 404), (status = 409, description = "too many documents"), (status = 413), (status = 422),
        (status = 503, description = "no embedder on this server")))]
pub async fn add_document(
    State(state): State<AppState>,
    auth: SecretKeyAuth,
    Path(kb): Path<String>,
    request: Request,
) -> ApiResult<(StatusCode, Json<AddedDocument>)> {
    let library = library(&state)?;
    let multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/form-data")
        });
    let new = if multipart {
        upload(
            Multipart::from_request(request, &state)
                .await
                .map_err(|e| ApiError(Error::bad_request("invalid_multipart", e.body_text())))?,
        )
        .await?
    } else {
        let JsonBody(body) = JsonBody::<NewDocumentBody>::from_request(request, &state).await?;
        body.into_new()?
    };
    let added = library.add(&auth.tenant, &kb, new).await?;
    let status = if added.existing {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((
        status,
        Json(AddedDocument {
            document: added.document,
            existing: added.existing,
        }),
    ))
}

/// The multipart form of an upload.
#[derive(Debug, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct UploadForm {
    /// The document (at most the server's document size, 20 MiB by default).
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
    /// A link citations of it point to.
    url: Option<String>,
}

async fn upload(mut form: Multipart) -> Result<NewDocument, ApiError> {
    let bad = |message: String| ApiError(Error::bad_request("invalid_multipart", message));
    let mut file: Option<(Option<String>, Vec<u8>)> = None;
    let mut url: Option<String> = None;
    while let Some(field) = form.next_field().await.map_err(|e| bad(e.body_text()))? {
        match field.name() {
            Some("file") => {
                let filename = field.file_name().map(str::to_owned);
                let bytes = field.bytes().await.map_err(|e| {
                    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                        ApiError(Error::PayloadTooLarge {
                            message: "the file is larger than this server takes".into(),
                        })
                    } else {
                        bad(e.body_text())
                    }
                })?;
                file = Some((filename, bytes.to_vec()));
            }
            Some("url") => url = Some(field.text().await.map_err(|e| bad(e.body_text()))?),
            Some(other) => {
                return Err(bad(format!(
                    "unknown field `{other}`: send the document as `file` (and optionally `url`)"
                )))
            }
            None => return Err(bad("a part without a name".into())),
        }
    }
    let Some((filename, bytes)) = file else {
        return Err(ApiError(Error::invalid("file", "is required")));
    };
    Ok(NewDocument::File {
        filename,
        bytes,
        url: url.filter(|u| !u.trim().is_empty()),
    })
}

/// Lists a knowledge base's documents, newest first, each with its status and progress.
#[utoipa::path(get, path = "/api/v1/knowledge-bases/{kb}/documents", tag = "knowledge", security(("secret_key" = [])),
    params(("kb" = String, Path, description = "knowledge base id or name")),
    responses((status = 200, body = ListPage<Document>), (status = 404)))]
pub async fn list_documents(
    State(state): State<AppState>,
    auth: SecretKeyAuth,
    Path(kb): Path<String>,
) -> ApiResult<Json<ListPage<Document>>> {
    Ok(Json(ListPage::all(
        library(&state)?.documents(&auth.tenant, &kb).await?,
    )))
}

/// Gets a document with its passages (the first 1,000).
#[utoipa::path(get, path = "/api/v1/knowledge-bases/{kb}/documents/{doc}", tag = "knowledge", security(("secret_key" = [])),
    params(("kb" = String, Path, description = "knowledge base id or name"), ("doc" = String, Path)),
    responses((status = 200, body = DocumentWithPassages), (status = 404)))]
pub async fn get_document(
    State(state): State<AppState>,
    auth: SecretKeyAuth,
    Path((kb, doc)): Path<(String, String)>,
) -> ApiResult<Json<DocumentWithPassages>> {
    Ok(Json(library(&state)?.get(&auth.tenant, &kb, &doc).await?))
}

/// Deletes a document with its passages and vectors: answers stop citing it.
#[utoipa::path(delete, path = "/api/v1/knowledge-bases/{kb}/documents/{doc}", tag = "knowledge", security(("secret_key" = [])),
    params(("kb" = String, Path, description = "knowledge base id or name"), ("doc" = String, Path)),
    responses((status = 204), (status = 404)))]
pub async fn delete_document(
    State(state): State<AppState>,
    auth: SecretKeyAuth,
    Path((kb, doc)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    library(&state)?.delete(&auth.tenant, &kb, &doc).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Queues a document's ingestion again (a failed one, or a URL to fetch now).
#[utoipa::path(post, path = "/api/v1/knowledge-bases/{kb}/documents/{doc}/retry", tag = "knowledge", security(("secret_key" = [])),
    params(("kb" = String, Path, description = "knowledge base id or name"), ("doc" = String, Path)),
    responses((status = 202, body = Document), (status = 404)))]
pub async fn retry_document(
    State(state): State<AppState>,
    auth: SecretKeyAuth,
    Path((kb, doc)): Path<(String, String)>,
) -> ApiResult<(StatusCode, Json<Document>)> {
    let document = library(&state)?.retry(&auth.tenant, &kb, &doc).await?;
    Ok((StatusCode::ACCEPTED, Json(document)))
}

/// The passages found for a query.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct QueryResults {
    pub data: Vec<KnowledgeHit>,
}

/// Searches a knowledge base: vector and full-text rankings fused (or either alone, with
/// `mode`), best first, each passage with its document, title, section and page.
#[utoipa::path(post, path = "/api/v1/knowledge-bases/{kb}/query", tag = "knowledge", security(("secret_key" = [])),
    params(("kb" = String, Path, description = "knowledge base id or name")),
    request_body = KnowledgeQuery,
    responses((status = 200, body = QueryResults), (status = 404), (status = 422), (status = 503)))]
pub async fn query(
    State(state): State<AppState>,
    auth: SecretKeyAuth,
    Path(kb): Path<String>,
    JsonBody(query): JsonBody<KnowledgeQuery>,
) -> ApiResult<Json<QueryResults>> {
    let data = library(&state)?.query(&auth.tenant, &kb, &query).await?;
    Ok(Json(QueryResults { data }))
}
