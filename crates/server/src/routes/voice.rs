//! Voice: Twilio's voice webhook (TwiML), its media stream and ConversationRelay sockets
//! (each checked with `X-Twilio-Signature` against the tenant's auth token), the
//! ConversationRelay action callback, and the browser's voice page and socket.
//!
//! Handlers check who may connect and hand the socket to `frontdesk_voice`; calls run as
//! tracked tasks there.

use async_trait::async_trait;
use axum::body::Bytes;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use frontdesk_core::agent::{Agent, AgentRef};
use frontdesk_core::id::TenantId;
use frontdesk_core::Error;
use frontdesk_voice::{Socket, VoiceError, WsMessage};

use crate::error::{ApiError, ApiResult};
use crate::openapi::escape;
use crate::AppState;

/// The largest WebSocket message a caller's side may send (a browser's audio frames are a
/// few KB; Twilio's are 20 ms of μ-law).
const MAX_MESSAGE: usize = 256 * 1024;
/// Read buffer per socket.
const READ_BUFFER: usize = 8 * 1024;
/// The voice page: its own script and worklet, the microphone, our socket.
const VOICE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self' data:; media-src 'self' blob:; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

pub fn routes(state: &AppState) -> Router<AppState> {
    // The browser's socket is anyone's to open: a budget per client address, as the widget's.
    let browser = Router::new()
        .route("/voice/{tenant_id}/{agent}/ws", get(browser_socket))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            super::client_limits::per_address,
        ));
    Router::new()
        .route("/voice/twilio/{agent_id}", post(twilio_webhook))
        .route("/voice/twilio/{agent_id}/stream", get(twilio_stream))
        .route("/voice/twilio/{agent_id}/relay", get(twilio_relay))
        .route("/voice/twilio/{agent_id}/relay-action", post(relay_action))
        .route("/voice/twilio/{agent_id}/status", post(status_callback))
        .route("/voice.js", get(voice_script))
        .route("/voice-worklet.js", get(worklet_script))
        .route(
            "/voice.css",
            get(|headers: HeaderMap| async move {
                super::widget_pages::asset(
                    &headers,
                    "text/css; charset=utf-8",
                    include_str!("../../assets/voice.css"),
                )
            }),
        )
        .route("/voice/{tenant_id}/{agent}", get(voice_page))
        .merge(browser)
}

/// A voice error as the API's.
pub(crate) fn voice_error(error: VoiceError) -> ApiError {
    ApiError(match error {
        VoiceError::Domain(error) => error,
        VoiceError::Config(message) => Error::Conflict {
            code: "voice_not_configured",
            message,
        },
        VoiceError::Upstream(message) => Error::Upstream { message },
        VoiceError::Protocol(message) | VoiceError::Connection(message) => {
            Error::Upstream { message }
        }
    })
}

/// The URL the request was made to, as its sender saw it: the configured public URL (or
/// the `Host` the request names) with the path and query; `ws` for a socket.
fn request_url(state: &AppState, headers: &HeaderMap, uri: &Uri, socket: bool) -> String {
    let base = match &state.config.public_url {
        Some(public) => public.trim_end_matches('/').to_owned(),
        None => {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("localhost");
            let proto = headers
                .get("x-forwarded-proto")
                .and_then(|h| h.to_str().ok())
                .filter(|_| state.config.limits.trust_forwarded_for)
                .unwrap_or("http");
            format!("{proto}://{host}")
        }
    };
    let base = if socket { websocket_base(&base) } else { base };
    let path = uri.path_and_query().map_or(uri.path(), |pq| pq.as_str());
    format!("{base}{path}")
}

fn websocket_base(base: &str) -> String {
    if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        base.to_owned()
    }
}

/// The agent a Twilio request names, its signature checked with the tenant's auth token
/// (403 when it does not match or the tenant set no Twilio account).
async fn signed_agent(
    state: &AppState,
    agent_id: &str,
    headers: &HeaderMap,
    url: &str,
    params: &[(String, String)],
) -> ApiResult<Agent> {
    let agent = state.service.phone_agent(agent_id).await?;
    let account = state
        .voice
        .twilio_account(&agent.tenant_id)
        .await
        .map_err(|_| {
            ApiError(Error::Forbidden {
                code: "twilio_not_configured",
                message: "this agent's tenant has no Twilio account (secrets TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN)".to_owned(),
            })
        })?;
    let given = headers
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    use secrecy::ExposeSecret;
    if given.is_empty()
        || !frontdesk_voice::twilio::valid_signature(
            account.token.expose_secret(),
            url,
            params,
            given,
        )
    {
        tracing::warn!(agent = %agent.id, "a Twilio request with a wrong signature was refused");
        return Err(ApiError(Error::Forbidden {
            code: "invalid_signature",
            message: "the X-Twilio-Signature header does not sign this request".to_owned(),
        }));
    }
    Ok(agent)
}

fn form(body: &Bytes) -> ApiResult<Vec<(String, String)>> {
    serde_urlencoded::from_bytes(body).map_err(|_| {
        ApiError(Error::bad_request(
            "invalid_body",
            "expected a form (application/x-www-form-urlencoded)",
        ))
    })
}

fn twiml(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/xml; charset=utf-8")], body).into_response()
}

/// Twilio asks what to do with a call: TwiML connecting it to the agent's media stream or
/// to ConversationRelay (or, when the tenant's calls are at their limit, a polite refusal).
async fn twilio_webhook(
    State(state): State<AppState>,
    Path(agent_id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let params = form(&body)?;
    let url = request_url(&state, &headers, &uri, false);
    let agent = signed_agent(&state, &agent_id, &headers, &url, &params).await?;
    let call = uri.query().and_then(|q| {
        serde_urlencoded::from_str::<Vec<(String, String)>>(q)
            .ok()?
            .into_iter()
            .find_map(|(k, v)| (k == "call").then_some(v))
    });
    let base = url
        .split("/voice/twilio/")
        .next()
        .unwrap_or_default()
        .to_owned();
    let answer = frontdesk_voice::session::twiml_answer(
        &state.voice,
        &agent,
        &params,
        call.as_deref(),
        &base,
    )
    .await;
    Ok(twiml(answer))
}

/// Twilio's `<Connect action>` after ConversationRelay ended: a transfer dials the number
/// the agent's `end` frame named; anything else hangs up.
async fn relay_action(
    State(state): State<AppState>,
    Path(agent_id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let params = form(&body)?;
    let url = request_url(&state, &headers, &uri, false);
    let agent = signed_agent(&state, &agent_id, &headers, &url, &params).await?;
    let handoff = params
        .iter()
        .find_map(|(k, v)| (k == "HandoffData").then_some(v.as_str()));
    Ok(twiml(frontdesk_voice::session::relay_action(
        &agent, handoff,
    )))
}

/// Twilio's status callback of an outbound call placed through the API: a call that never
/// connected (busy, not answered, failed) ends its record.
async fn status_callback(
    State(state): State<AppState>,
    Path(agent_id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let params = form(&body)?;
    let url = request_url(&state, &headers, &uri, false);
    let agent = signed_agent(&state, &agent_id, &headers, &url, &params).await?;
    let query: Vec<(String, String)> =
        serde_urlencoded::from_str(uri.query().unwrap_or_default()).unwrap_or_default();
    let call = query
        .iter()
        .find_map(|(k, v)| (k == "call").then_some(v.as_str()));
    let status = params
        .iter()
        .find_map(|(k, v)| (k == "CallStatus").then_some(v.as_str()))
        .unwrap_or_default();
    if let Some(call) = call.and_then(|c| frontdesk_core::id::CallId::parse(c).ok()) {
        state
            .service
            .outbound_status(&agent.tenant_id, &call, status)
            .await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// A WebSocket as the voice crate reads and writes it.
struct AxumSocket(WebSocket);

#[async_trait]
impl Socket for AxumSocket {
    async fn recv(&mut self) -> Option<WsMessage> {
        loop {
            return match self.0.recv().await? {
                Ok(Message::Text(text)) => Some(WsMessage::Text(text.to_string())),
                Ok(Message::Binary(bytes)) => Some(WsMessage::Binary(bytes.to_vec())),
                Ok(Message::Close(_)) => Some(WsMessage::Close),
                Ok(Message::Ping(_) | Message::Pong(_)) => continue,
                Err(_) => None,
            };
        }
    }

    async fn send(&mut self, message: WsMessage) -> frontdesk_voice::Result<()> {
        self.0
            .send(axum_message(message))
            .await
            .map_err(|e| VoiceError::Connection(e.to_string()))
    }

    async fn send_all(&mut self, messages: Vec<WsMessage>) -> frontdesk_voice::Result<()> {
        use futures_util::SinkExt;
        for message in messages {
            self.0
                .feed(axum_message(message))
                .await
                .map_err(|e| VoiceError::Connection(e.to_string()))?;
        }
        self.0
            .flush()
            .await
            .map_err(|e| VoiceError::Connection(e.to_string()))
    }
}

fn axum_message(message: WsMessage) -> Message {
    match message {
        WsMessage::Text(text) => Message::Text(text.into()),
        WsMessage::Binary(bytes) => Message::Binary(bytes.into()),
        WsMessage::Close => Message::Close(None),
    }
}

/// A call's socket: bounded messages, and a small read buffer (calls send many small frames;
/// the library's default 128 KiB would be zeroed on every read, and held per call).
fn bounded(ws: WebSocketUpgrade) -> WebSocketUpgrade {
    ws.max_message_size(MAX_MESSAGE)
        .max_frame_size(MAX_MESSAGE)
        .read_buffer_size(READ_BUFFER)
}

/// Twilio's media stream for a call (the upgrade signed like the webhook, over the socket's
/// URL).
async fn twilio_stream(
    State(state): State<AppState>,
    Path(agent_id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> ApiResult<Response> {
    twilio_socket(
        &state,
        &agent_id,
        &uri,
        &headers,
        ws,
        frontdesk_voice::session::twilio_stream,
    )
    .await
}

/// ConversationRelay's socket for a call (signed like the webhook).
async fn twilio_relay(
    State(state): State<AppState>,
    Path(agent_id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> ApiResult<Response> {
    twilio_socket(
        &state,
        &agent_id,
        &uri,
        &headers,
        ws,
        frontdesk_voice::relay::run,
    )
    .await
}

/// A Twilio socket of `agent_id` whose upgrade is signed: the call runs as a tracked task.
async fn twilio_socket<F, Fut>(
    state: &AppState,
    agent_id: &str,
    uri: &Uri,
    headers: &HeaderMap,
    ws: WebSocketUpgrade,
    call: F,
) -> ApiResult<Response>
where
    F: FnOnce(frontdesk_voice::VoiceHost, Agent, AxumSocket) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let url = request_url(state, headers, uri, true);
    let agent = signed_agent(state, agent_id, headers, &url, &[]).await?;
    let host = state.voice.clone();
    Ok(bounded(ws).on_upgrade(move |socket| async move {
        let calls = host.clone();
        calls.spawn(call(host, agent, AxumSocket(socket)));
    }))
}

/// The agent of a browser voice page, when it offers one (`voice.browser`).
async fn browser_agent(state: &AppState, tenant: &str, agent: &str) -> Option<Agent> {
    let tenant = TenantId::parse(tenant).ok()?;
    let agent = state
        .service
        .get_agent(&tenant, &AgentRef::parse(agent).ok()?)
        .await
        .ok()?;
    agent.spec.voice.browser.then_some(agent)
}

fn page(status: StatusCode, html: String) -> Response {
    let mut response = (status, Html(html)).into_response();
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(VOICE_CSP),
    );
    response
        .headers_mut()
        .insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// The hosted voice page: a button to start talking to the agent in the browser.
async fn voice_page(
    State(state): State<AppState>,
    Path((tenant, agent)): Path<(String, String)>,
) -> Response {
    let Some(agent) = browser_agent(&state, &tenant, &agent).await else {
        return page(
            StatusCode::NOT_FOUND,
            include_str!("../../assets/voice.html")
                .replace("__TITLE__", "Voice not available")
                .replace("__SOCKET__", "")
                .replace("__GREETING__", "This voice assistant is not available."),
        );
    };
    let title = agent
        .spec
        .widget
        .title
        .clone()
        .unwrap_or_else(|| agent.spec.name.clone());
    let html = include_str!("../../assets/voice.html")
        .replace("__TITLE__", &escape(&title))
        .replace(
            "__SOCKET__",
            &escape(&format!(
                "/voice/{}/{}/ws",
                agent.tenant_id, agent.spec.slug
            )),
        )
        .replace(
            "__GREETING__",
            &escape("Press the button and speak. Press it again to hang up."),
        );
    page(StatusCode::OK, html)
}

async fn voice_script(headers: HeaderMap) -> Response {
    super::widget_pages::asset(
        &headers,
        "text/javascript; charset=utf-8",
        include_str!("../../assets/voice.js"),
    )
}

async fn worklet_script(headers: HeaderMap) -> Response {
    super::widget_pages::asset(
        &headers,
        "text/javascript; charset=utf-8",
        include_str!("../../assets/voice-worklet.js"),
    )
}

/// Whether a browser socket comes from this server's own voice page (a page elsewhere may
/// not open calls with the tenant's agent: browsers send `Origin` on every socket).
fn origin_allowed(state: &AppState, headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let own = match &state.config.public_url {
        // Its origin: scheme, host and port (a public URL may have a path).
        Some(public) => {
            let after_scheme = public.find("://").map_or(0, |i| i + 3);
            let end = public[after_scheme..]
                .find('/')
                .map_or(public.len(), |i| after_scheme + i);
            public[..end].to_owned()
        }
        None => headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(|host| format!("http://{host}"))
            .unwrap_or_default(),
    };
    let own_https = own.replacen("http://", "https://", 1);
    origin == own || origin == own_https
}

/// The browser's voice socket: PCM16 24 kHz audio both ways (see `frontdesk_voice::leg`).
async fn browser_socket(
    State(state): State<AppState>,
    Path((tenant, agent)): Path<(String, String)>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> ApiResult<Response> {
    let Some(agent) = browser_agent(&state, &tenant, &agent).await else {
        return Err(ApiError(Error::NotFound { resource: "agent" }));
    };
    if !origin_allowed(&state, &headers) {
        return Err(ApiError(Error::Forbidden {
            code: "origin_not_allowed",
            message: "voice calls may start only from this server's voice page".to_owned(),
        }));
    }
    let host = state.voice.clone();
    Ok(bounded(ws).on_upgrade(move |socket| async move {
        let calls = host.clone();
        calls.spawn(frontdesk_voice::session::browser(
            host,
            agent,
            AxumSocket(socket),
            None,
        ));
    }))
}
