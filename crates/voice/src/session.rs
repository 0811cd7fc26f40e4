//! Where calls come in: a Twilio media stream or a browser's voice socket becomes a call
//! with a record and a conversation, run by the realtime bridge (an agent with a realtime
//! model) or the pipeline (speech-to-text → the agent's chat model → text-to-speech).

use frontdesk_core::agent::Agent;
use frontdesk_core::service::NewCall;
use frontdesk_core::voice::{CallChannel, CallDirection, CallStatus};
use serde_json::{Map, Value};

use crate::bridge::{self, Ending, PhoneLine};
use crate::call::CallLog;
use crate::host::VoiceHost;
use crate::leg::{twilio_start, BrowserLeg, Leg, Socket, TwilioLeg};
use crate::twilio::StreamEvent;

/// The mode a call of `agent` runs in.
pub fn mode(agent: &Agent) -> &'static str {
    if agent.spec.voice.realtime_model.is_some() {
        "realtime"
    } else {
        "pipeline"
    }
}

/// Runs the call on `leg` to its end and stores how it went.
async fn run_call(mut log: CallLog, leg: &mut dyn Leg, phone: Option<PhoneLine>) {
    let ending = if log.agent.spec.voice.realtime_model.is_some() {
        bridge::run(&mut log, leg, phone).await
    } else {
        crate::pipeline::run(&mut log, leg, phone).await
    };
    let Ending { status, error } = ending;
    let status = if status == CallStatus::Completed && log.call.transferred_to.is_some() {
        CallStatus::Transferred
    } else {
        status
    };
    log.finish(status, error).await;
}

/// A Twilio media stream for `agent` (its upgrade's signature already checked): waits for
/// `start`, opens the call (its numbers come as the stream's parameters) and runs it.
pub async fn twilio_stream<S: Socket + 'static>(host: VoiceHost, agent: Agent, mut socket: S) {
    let (stream_sid, call_sid, account_sid, parameters) = match twilio_start(&mut socket).await {
        Ok(StreamEvent::Start {
            stream_sid,
            call_sid,
            account_sid,
            parameters,
        }) => (stream_sid, call_sid, account_sid, parameters),
        Ok(_) | Err(_) => {
            tracing::warn!(agent = %agent.spec.slug, "a media stream closed before it started");
            return;
        }
    };
    let param = |key: &str| {
        parameters
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let Some(account) = stream_account(&host, &agent, &call_sid, &account_sid, &parameters).await
    else {
        return;
    };
    let direction = match param("direction").as_deref() {
        Some(d) if d.starts_with("outbound") => CallDirection::Outbound,
        _ => CallDirection::Inbound,
    };
    let context: Map<String, Value> = parameters
        .iter()
        .filter(|(key, _)| {
            !matches!(
                key.as_str(),
                "from" | "to" | "direction" | "call_id" | "token" | "expires"
            )
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let provider_call_id = Some(call_sid.clone()).filter(|s| !s.is_empty());
    let opened = match param("call_id") {
        Some(id) => CallLog::resume(&host, agent.clone(), &id, provider_call_id, context).await,
        None => {
            CallLog::open(
                &host,
                agent.clone(),
                NewCall {
                    channel: CallChannel::Phone,
                    direction,
                    mode: mode(&agent),
                    from: param("from"),
                    to: param("to"),
                    provider_call_id,
                },
                context,
            )
            .await
        }
    };
    let log = match opened {
        Ok(log) => log,
        Err(error) => {
            tracing::warn!(%error, "a call was refused");
            return;
        }
    };
    let phone = Some(PhoneLine { account, call_sid });
    let mut leg = TwilioLeg::new(socket, stream_sid);
    run_call(log, &mut leg, phone).await;
}

/// The tenant's Twilio account, when a stream's `start` (or ConversationRelay's `setup`) is
/// one of this agent's calls: its account, a call sid, and the token the webhook gave it.
pub(crate) async fn stream_account(
    host: &VoiceHost,
    agent: &Agent,
    call_sid: &str,
    account_sid: &str,
    parameters: &Map<String, Value>,
) -> Option<crate::twilio::Account> {
    use secrecy::ExposeSecret;
    let param = |key: &str| {
        parameters
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    let account = host.twilio_account(&agent.tenant_id).await.ok()?;
    let now = frontdesk_core::time::Timestamp::now().as_millis() / 1000;
    let valid = crate::twilio::is_call_sid(call_sid)
        && (account_sid.is_empty() || account_sid == account.sid)
        && crate::twilio::valid_stream_token(
            account.token.expose_secret(),
            agent.id.as_str(),
            call_sid,
            param("expires").parse().unwrap_or(0),
            param("token"),
            now,
        );
    if !valid {
        tracing::warn!(agent = %agent.id, "a stream that is not one of the agent's calls was refused");
        return None;
    }
    Some(account)
}

/// A browser's voice socket for `agent` (the page's origin already checked).
pub async fn browser<S: Socket + 'static>(
    host: VoiceHost,
    agent: Agent,
    socket: S,
    visitor: Option<String>,
) {
    let mut context = Map::new();
    if let Some(visitor) = &visitor {
        context.insert("visitor".into(), Value::String(visitor.clone()));
    }
    let mut leg = BrowserLeg { socket };
    let log = match CallLog::open(
        &host,
        agent.clone(),
        NewCall {
            channel: CallChannel::Browser,
            direction: CallDirection::Inbound,
            mode: mode(&agent),
            from: None,
            to: None,
            provider_call_id: None,
        },
        context,
    )
    .await
    {
        Ok(log) => log,
        Err(error) => {
            // The visitor hears why in words meant for them, never the server's details.
            tracing::warn!(%error, "a browser call was refused");
            let reason = match error {
                crate::VoiceError::Domain(
                    frontdesk_core::Error::RateLimited { .. }
                    | frontdesk_core::Error::QuotaExceeded { .. },
                ) => "This assistant is busy right now. Please try again in a few minutes.",
                _ => "This assistant cannot take calls right now.",
            };
            let _ = leg.end(reason).await;
            return;
        }
    };
    if leg.ready(log.call.id.as_str()).await.is_err() {
        log.finish(CallStatus::Completed, Some("the page left".to_owned()))
            .await;
        return;
    }
    run_call(log, &mut leg, None).await;
}

/// Places an outbound phone call for `agent` through the tenant's Twilio account: the call's
/// record is opened now (its id travels in the answer URL) and goes on when Twilio connects
/// the answered call to this server's voice webhook.
pub async fn place_call(
    host: &VoiceHost,
    agent: &Agent,
    to: &str,
    from: Option<&str>,
) -> crate::Result<frontdesk_core::voice::Call> {
    frontdesk_core::voice::check_phone("to", to)?;
    let from = match from.or(agent.spec.voice.phone_number.as_deref()) {
        Some(from) => {
            frontdesk_core::voice::check_phone("from", from)?;
            from.to_owned()
        }
        None => {
            return Err(frontdesk_core::Error::invalid(
                "from",
                "name the Twilio number to call from, or set the agent's voice.phone_number",
            )
            .into())
        }
    };
    let public = host.public_url().ok_or_else(|| {
        crate::VoiceError::Config(
            "set FRONTDESK_PUBLIC_URL to the address Twilio reaches this server at".to_owned(),
        )
    })?;
    let account = host.twilio_account(&agent.tenant_id).await?;
    let service = host.service();
    let mut call = service
        .open_call(
            agent,
            NewCall {
                channel: CallChannel::Phone,
                direction: CallDirection::Outbound,
                mode: if agent.spec.voice.transport
                    == frontdesk_core::voice::Transport::ConversationRelay
                {
                    "conversation_relay"
                } else {
                    mode(agent)
                },
                from: Some(from.clone()),
                to: Some(to.to_owned()),
                provider_call_id: None,
            },
        )
        .await?;
    let root = public.trim_end_matches('/');
    let answer = format!("{root}/voice/twilio/{}?call={}", agent.id, call.id);
    let status = format!("{root}/voice/twilio/{}/status?call={}", agent.id, call.id);
    match host
        .twilio()
        .create_call(&account, &from, to, &answer, Some(&status))
        .await
    {
        Ok(sid) => {
            // Only the sid: the answered call may already be under way and own the record.
            service
                .set_provider_call_id(&agent.tenant_id, &call.id, &sid)
                .await?;
            call.provider_call_id = Some(sid);
            Ok(call)
        }
        Err(error) => {
            call.status = CallStatus::Failed;
            call.error = Some(error.to_string());
            call.ended_at = Some(frontdesk_core::time::Timestamp::now());
            call.duration_ms = Some(0);
            service.save_call(&call).await?;
            Err(error)
        }
    }
}

/// Mints a short-lived Realtime client secret configured from `agent` (its instructions,
/// voice, turn detection) at the agent's realtime provider: `{value, expires_at, session}`
/// as the provider answers. Tools stay with frontdesk's own bridge: a browser connected
/// straight to the provider runs none.
pub async fn client_secret(host: &VoiceHost, agent: &Agent) -> crate::Result<Value> {
    let model = agent.spec.voice.realtime_model.as_deref().ok_or_else(|| {
        crate::VoiceError::Config("the agent has no voice.realtime_model".to_owned())
    })?;
    let endpoint = host.http_model(&agent.tenant_id, model).await?;
    let voice = &agent.spec.voice;
    let mut output = Map::new();
    if let Some(name) = &voice.voice {
        output.insert("voice".into(), Value::String(name.clone()));
    }
    let body = serde_json::json!({
        "expires_after": {"anchor": "created_at", "seconds": 600},
        "session": {
            "type": "realtime",
            "model": endpoint.model,
            "instructions": crate::supervisor::instructions(agent),
            "audio": {"output": output, "input": {"turn_detection": crate::realtime::turn_detection(voice.turn_detection.as_ref())}},
        },
    });
    let response = endpoint
        .authorize(host.http().post(endpoint.url("realtime/client_secrets")))
        .json(&body)
        .send()
        .await
        .map_err(|e| {
            crate::VoiceError::Upstream(format!(
                "the realtime provider did not answer: {}",
                e.without_url()
            ))
        })?;
    let status = response.status();
    let answer: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        return Err(crate::VoiceError::Upstream(format!(
            "the realtime provider answered {status}"
        )));
    }
    Ok(answer)
}

/// What Twilio's voice webhook answers for a call of `agent`: TwiML that connects it to the
/// agent's media stream or to ConversationRelay, its numbers passed as parameters (`call`:
/// the record of an outbound call placed through the API). `base` is this server's public
/// root as Twilio reached it.
pub async fn twiml_answer(
    host: &VoiceHost,
    agent: &Agent,
    params: &[(String, String)],
    call: Option<&str>,
    base: &str,
) -> String {
    use crate::twilio;
    let get = |name: &str| {
        params
            .iter()
            .find_map(|(k, v)| (k == name).then_some(v.as_str()))
            .unwrap_or_default()
    };
    if call.is_none() {
        match host.service().calls_at_limit(&agent.tenant_id).await {
            Ok(false) => {}
            Ok(true) => {
                return twilio::say_and_hang_up(
                    "All our lines are busy. Please call again in a few minutes.",
                )
            }
            Err(error) => {
                tracing::warn!(%error, "the call limit could not be checked");
                return twilio::say_and_hang_up("Sorry, we cannot take your call right now.");
            }
        }
    }
    let voice = &agent.spec.voice;
    let socket_base = if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        base.to_owned()
    };
    // The stream proves it belongs to this call (see `twilio::stream_token`).
    let call_sid = get("CallSid");
    let expires = (frontdesk_core::time::Timestamp::now().as_millis() / 1000
        + twilio::STREAM_TOKEN_SECONDS)
        .to_string();
    let token = match host.twilio_account(&agent.tenant_id).await {
        Ok(account) => {
            use secrecy::ExposeSecret;
            twilio::stream_token(
                account.token.expose_secret(),
                agent.id.as_str(),
                call_sid,
                expires.parse().unwrap_or_default(),
            )
        }
        Err(_) => String::new(),
    };
    let mut parameters = vec![
        ("from", get("From")),
        ("to", get("To")),
        ("direction", get("Direction")),
        ("expires", expires.as_str()),
        ("token", token.as_str()),
    ];
    if let Some(call) = call {
        parameters.push(("call_id", call));
    }
    parameters.retain(|(_, v)| !v.is_empty());
    match voice.transport {
        frontdesk_core::voice::Transport::ConversationRelay => twilio::connect_relay(
            &format!("{socket_base}/voice/twilio/{}/relay", agent.id),
            &format!("{base}/voice/twilio/{}/relay-action", agent.id),
            voice.greeting.as_deref(),
            voice.language(),
            voice.voice.as_deref(),
            &parameters,
        ),
        frontdesk_core::voice::Transport::MediaStream => {
            let pipeline_ready =
                voice.transcription_model.is_some() && voice.speech_model.is_some();
            if voice.realtime_model.is_none() && !pipeline_ready {
                tracing::warn!(agent = %agent.spec.slug, "a call came in for an agent that cannot take calls by media stream");
                return twilio::say_and_hang_up("Sorry, this number cannot take calls right now.");
            }
            twilio::connect_stream(
                &format!("{socket_base}/voice/twilio/{}/stream", agent.id),
                &parameters,
            )
        }
    }
}

/// What Twilio does after ConversationRelay ended (its `<Connect action>`): dial the number
/// a transfer named, or hang up.
pub fn relay_action(agent: &Agent, handoff: Option<&str>) -> String {
    use crate::twilio;
    let data: Value = handoff
        .and_then(|h| serde_json::from_str(h).ok())
        .unwrap_or(Value::Null);
    let number = data
        .get("number")
        .and_then(Value::as_str)
        .filter(|_| data.get("reason").and_then(Value::as_str) == Some("transfer"));
    // Only the agent's own transfer number is dialled, whatever the frame said.
    match (number, &agent.spec.voice.transfer_number) {
        (Some(number), Some(own)) if number == own => {
            twilio::dial(own, Some("Transferring you now. Please hold."))
        }
        _ => "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Hangup/></Response>".to_owned(),
    }
}
