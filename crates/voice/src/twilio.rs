//! Twilio: request signatures, TwiML answers, media-stream frames and the REST calls a
//! call needs (redirecting it to a number, placing an outbound call, hanging up).
//!
//! Wire facts: `../shared/PROTOCOLS.md` §6 and §6b.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;

use crate::codec::Audio;
use crate::error::{Result, VoiceError};

/// The tenant secrets that hold a tenant's Twilio account.
pub const ACCOUNT_SID_SECRET: &str = "TWILIO_ACCOUNT_SID";
pub const AUTH_TOKEN_SECRET: &str = "TWILIO_AUTH_TOKEN";
/// Twilio's REST API root (the operator may point it elsewhere, e.g. a test peer).
pub const DEFAULT_API_BASE: &str = "https://api.twilio.com";

/// `X-Twilio-Signature` of a request: Base64(HMAC-SHA1(auth token, URL + each POST
/// parameter's name and value, sorted by name)).
pub fn signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut message = url.to_owned();
    for (name, value) in sorted {
        message.push_str(name);
        message.push_str(value);
    }
    let Ok(mut mac) = Hmac::<sha1::Sha1>::new_from_slice(auth_token.as_bytes()) else {
        return String::new();
    };
    mac.update(message.as_bytes());
    B64.encode(mac.finalize().into_bytes())
}

/// Whether `given` signs the request, for the URL as written and with or without its
/// default port (Twilio is not consistent about it), compared in constant time.
pub fn valid_signature(
    auth_token: &str,
    url: &str,
    params: &[(String, String)],
    given: &str,
) -> bool {
    let mut candidates = vec![url.to_owned()];
    if let Some(other) = other_port_form(url) {
        candidates.push(other);
    }
    candidates.iter().any(|candidate| {
        constant_eq(
            signature(auth_token, candidate, params).as_bytes(),
            given.as_bytes(),
        )
    })
}

/// The URL with its default port written out when it has none, or without it when it is
/// written (`https://h/p` ↔ `https://h:443/p`).
fn other_port_form(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let default = match scheme {
        "https" | "wss" => "443",
        "http" | "ws" => "80",
        _ => return None,
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    // The port follows the last colon, outside an IPv6 literal's brackets.
    let port_colon = authority
        .rfind(':')
        .filter(|&i| !authority[i..].contains(']'));
    let host = match port_colon {
        Some(i) if &authority[i + 1..] == default => {
            return Some(format!("{scheme}://{}{tail}", &authority[..i]))
        }
        Some(_) => return None,
        None => authority,
    };
    Some(format!("{scheme}://{host}:{default}{tail}"))
}

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// How long a call's stream may take to connect after the webhook answered (seconds).
pub const STREAM_TOKEN_SECONDS: i64 = 600;

/// The token the webhook's TwiML gives a call's stream (as a parameter), binding the socket
/// to the call Twilio signed the webhook for: HMAC-SHA256 with the tenant's auth token of the
/// agent, the call and when the token expires. The socket's own signature covers only its
/// URL, the same for every call of the agent.
pub fn stream_token(auth_token: &str, agent: &str, call_sid: &str, expires: i64) -> String {
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(auth_token.as_bytes()) else {
        return String::new();
    };
    mac.update(format!("frontdesk-stream:{agent}:{call_sid}:{expires}").as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Whether `token` is the stream token of this call, not expired at `now` (unix seconds).
pub fn valid_stream_token(
    auth_token: &str,
    agent: &str,
    call_sid: &str,
    expires: i64,
    token: &str,
    now: i64,
) -> bool {
    expires >= now
        && expires <= now + STREAM_TOKEN_SECONDS
        && constant_eq(
            stream_token(auth_token, agent, call_sid, expires).as_bytes(),
            token.as_bytes(),
        )
}

/// Whether `sid` looks like a Twilio call sid (`CA` and letters or digits): it goes into
/// REST paths.
pub fn is_call_sid(sid: &str) -> bool {
    sid.len() <= 64 && sid.starts_with("CA") && sid.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Escapes text for an XML attribute or element.
pub fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

fn parameters(params: &[(&str, &str)]) -> String {
    params
        .iter()
        .map(|(name, value)| {
            format!(
                "<Parameter name=\"{}\" value=\"{}\"/>",
                xml_escape(name),
                xml_escape(value)
            )
        })
        .collect()
}

/// TwiML that connects the call to a bidirectional media stream at `url` (`wss://…`, no
/// query string: values travel as parameters).
pub fn connect_stream(url: &str, params: &[(&str, &str)]) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Connect><Stream url=\"{}\">{}</Stream></Connect></Response>",
        xml_escape(url),
        parameters(params)
    )
}

/// TwiML that connects the call to ConversationRelay at `url`: Twilio recognises speech
/// and speaks the text frontdesk streams back.
pub fn connect_relay(
    url: &str,
    action: &str,
    greeting: Option<&str>,
    language: &str,
    voice: Option<&str>,
    params: &[(&str, &str)],
) -> String {
    let mut attributes = format!(
        "url=\"{}\" language=\"{}\" interruptible=\"any\"",
        xml_escape(url),
        xml_escape(language)
    );
    if let Some(greeting) = greeting {
        attributes.push_str(&format!(" welcomeGreeting=\"{}\"", xml_escape(greeting)));
    }
    if let Some(voice) = voice {
        attributes.push_str(&format!(" voice=\"{}\"", xml_escape(voice)));
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Connect action=\"{}\"><ConversationRelay {attributes}>{}</ConversationRelay></Connect></Response>",
        xml_escape(action),
        parameters(params)
    )
}

/// TwiML that dials a number (a transfer), saying `message` first.
pub fn dial(number: &str, message: Option<&str>) -> String {
    let say = message
        .map(|m| format!("<Say>{}</Say>", xml_escape(m)))
        .unwrap_or_default();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response>{say}<Dial>{}</Dial></Response>",
        xml_escape(number)
    )
}

/// TwiML that says something and hangs up (a call refused or ended).
pub fn say_and_hang_up(message: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Say>{}</Say><Hangup/></Response>",
        xml_escape(message)
    )
}

/// A frame Twilio sends on a media stream.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    Connected,
    Start {
        stream_sid: String,
        call_sid: String,
        account_sid: String,
        parameters: serde_json::Map<String, Value>,
    },
    /// μ-law 8 kHz audio.
    Media {
        payload: Audio,
    },
    Dtmf {
        digit: String,
    },
    /// Audio queued before the mark of this name has played (or was cleared).
    Mark {
        name: String,
    },
    Stop,
}

#[derive(Deserialize)]
struct Frame {
    event: String,
    #[serde(default)]
    start: Option<StartBody>,
    #[serde(default)]
    media: Option<MediaBody>,
    #[serde(default)]
    dtmf: Option<DtmfBody>,
    #[serde(default)]
    mark: Option<MarkBody>,
    #[serde(default, rename = "streamSid")]
    stream_sid: Option<String>,
}

#[derive(Deserialize)]
struct StartBody {
    #[serde(rename = "streamSid", default)]
    stream_sid: Option<String>,
    #[serde(rename = "callSid", default)]
    call_sid: String,
    #[serde(rename = "accountSid", default)]
    account_sid: String,
    #[serde(rename = "customParameters", default)]
    custom_parameters: serde_json::Map<String, Value>,
}

#[derive(Deserialize)]
struct MediaBody {
    payload: String,
}

#[derive(Deserialize)]
struct DtmfBody {
    digit: String,
}

#[derive(Deserialize)]
struct MarkBody {
    name: String,
}

/// Reads one media-stream frame; `Ok(None)` for events this bridge does not use.
pub fn parse_stream_frame(text: &str) -> Result<Option<StreamEvent>> {
    let frame: Frame = serde_json::from_str(text)
        .map_err(|e| VoiceError::Protocol(format!("not a media-stream frame: {e}")))?;
    let missing =
        |what: &str| VoiceError::Protocol(format!("`{}` frame without `{what}`", frame.event));
    Ok(Some(match frame.event.as_str() {
        "connected" => StreamEvent::Connected,
        "start" => {
            let start = frame.start.ok_or_else(|| missing("start"))?;
            StreamEvent::Start {
                stream_sid: start
                    .stream_sid
                    .or(frame.stream_sid)
                    .ok_or_else(|| missing("streamSid"))?,
                call_sid: start.call_sid,
                account_sid: start.account_sid,
                parameters: start.custom_parameters,
            }
        }
        "media" => {
            let media = frame.media.ok_or_else(|| missing("media"))?;
            if !crate::codec::is_base64(&media.payload) {
                return Err(VoiceError::Protocol(
                    "media payload is not base64".to_owned(),
                ));
            }
            StreamEvent::Media {
                payload: Audio::Base64(media.payload),
            }
        }
        "dtmf" => StreamEvent::Dtmf {
            digit: frame.dtmf.ok_or_else(|| missing("dtmf"))?.digit,
        },
        "mark" => StreamEvent::Mark {
            name: frame.mark.ok_or_else(|| missing("mark"))?.name,
        },
        "stop" => StreamEvent::Stop,
        _ => return Ok(None),
    }))
}

/// A stream sid as a JSON string, made once per stream for the frames below.
pub fn quoted(stream_sid: &str) -> String {
    Value::String(stream_sid.to_owned()).to_string()
}

/// Audio for the caller: raw μ-law, base64 (`sid` as [`quoted`] made it). Written by hand:
/// it is the hottest frame of a call.
pub fn media_frame(sid: &str, mulaw: &Audio) -> String {
    format!(
        "{{\"event\":\"media\",\"streamSid\":{sid},\"media\":{{\"payload\":\"{}\"}}}}",
        mulaw.base64()
    )
}

pub fn mark_frame(sid: &str, name: &str) -> String {
    format!(
        "{{\"event\":\"mark\",\"streamSid\":{sid},\"mark\":{{\"name\":{}}}}}",
        Value::String(name.to_owned())
    )
}

/// Flushes what Twilio has queued for the caller (barge-in).
pub fn clear_frame(sid: &str) -> String {
    format!("{{\"event\":\"clear\",\"streamSid\":{sid}}}")
}

/// A tenant's Twilio account, for REST calls.
#[derive(Clone)]
pub struct Account {
    pub sid: String,
    pub token: SecretString,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account").field("sid", &self.sid).finish()
    }
}

/// Twilio's REST API, as much as calls need.
#[derive(Clone, Debug)]
pub struct Rest {
    pub client: reqwest::Client,
    pub base: String,
}

impl Rest {
    fn calls_url(&self, account: &Account, call: Option<&str>) -> String {
        let base = self.base.trim_end_matches('/');
        match call {
            Some(call) => format!(
                "{base}/2010-04-01/Accounts/{}/Calls/{call}.json",
                account.sid
            ),
            None => format!("{base}/2010-04-01/Accounts/{}/Calls.json", account.sid),
        }
    }

    async fn post(&self, account: &Account, url: String, form: &[(&str, &str)]) -> Result<Value> {
        let response = self
            .client
            .post(url)
            .basic_auth(&account.sid, Some(account.token.expose_secret()))
            .form(form)
            .send()
            .await
            .map_err(|e| VoiceError::Upstream(format!("Twilio did not answer: {e}")))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let message = body
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("no message");
            return Err(VoiceError::Upstream(format!(
                "Twilio answered {status}: {message}"
            )));
        }
        Ok(body)
    }

    /// Gives the call new TwiML (a transfer's `<Dial>`, or a goodbye and `<Hangup/>`).
    pub async fn redirect(&self, account: &Account, call_sid: &str, twiml: &str) -> Result<()> {
        let url = self.calls_url(account, Some(call_sid));
        self.post(account, url, &[("Twiml", twiml)])
            .await
            .map(|_| ())
    }

    /// Places a call from `from` to `to`; Twilio asks `answer_url` for its TwiML when it is
    /// answered. The new call's sid.
    pub async fn create_call(
        &self,
        account: &Account,
        from: &str,
        to: &str,
        answer_url: &str,
        status_url: Option<&str>,
    ) -> Result<String> {
        let url = self.calls_url(account, None);
        let mut form = vec![("To", to), ("From", from), ("Url", answer_url)];
        if let Some(status_url) = status_url {
            form.push(("StatusCallback", status_url));
        }
        let body = self.post(account, url, &form).await?;
        body.get("sid")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| VoiceError::Upstream("Twilio's answer has no call sid".to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> Vec<(String, String)> {
        [
            ("CallSid", "CA123"),
            ("From", "+15550001111"),
            ("To", "+15550002222"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
    }

    #[test]
    fn signature_matches_the_vector_twilios_validator_made() {
        // PROTOCOLS.md §6: made offline with twilio 9.13's RequestValidator.
        let url = "https://example.test/twilio/voice?x=1";
        assert_eq!(
            signature("12345", url, &params()),
            "OXig1DCeNcAhcfrmyZgJLIEs/gs="
        );
        assert!(valid_signature(
            "12345",
            url,
            &params(),
            "OXig1DCeNcAhcfrmyZgJLIEs/gs="
        ));
        // Signed with the port, checked without (and the other way round).
        let with_port = signature(
            "12345",
            "https://example.test:443/twilio/voice?x=1",
            &params(),
        );
        assert!(valid_signature("12345", url, &params(), &with_port));
        assert!(valid_signature(
            "12345",
            "https://example.test:443/twilio/voice?x=1",
            &params(),
            "OXig1DCeNcAhcfrmyZgJLIEs/gs="
        ));
        assert!(!valid_signature(
            "54321",
            url,
            &params(),
            "OXig1DCeNcAhcfrmyZgJLIEs/gs="
        ));
        let mut changed = params();
        changed[1].1 = "+15559999999".to_owned();
        assert!(!valid_signature(
            "12345",
            url,
            &changed,
            "OXig1DCeNcAhcfrmyZgJLIEs/gs="
        ));
    }

    #[test]
    fn stream_tokens_bind_the_call_and_expire() {
        let token = stream_token("t0k", "agt_1", "CA1", 1_000);
        assert!(valid_stream_token(
            "t0k", "agt_1", "CA1", 1_000, &token, 900
        ));
        assert!(
            !valid_stream_token("t0k", "agt_1", "CA2", 1_000, &token, 900),
            "another call"
        );
        assert!(
            !valid_stream_token("t0k", "agt_2", "CA1", 1_000, &token, 900),
            "another agent"
        );
        assert!(
            !valid_stream_token("other", "agt_1", "CA1", 1_000, &token, 900),
            "another key"
        );
        assert!(
            !valid_stream_token("t0k", "agt_1", "CA1", 1_000, &token, 1_001),
            "expired"
        );
        assert!(is_call_sid("CA0123456789abcdef0123456789abcdef"));
        assert!(!is_call_sid("CA1/../Accounts"));
    }

    #[test]
    fn twiml_escapes_what_it_carries() {
        let twiml = connect_stream("wss://h/voice/twilio/agt_1/stream", &[("call", "a\"<b>")]);
        assert!(twiml.contains("<Stream url=\"wss://h/voice/twilio/agt_1/stream\">"));
        assert!(twiml.contains("value=\"a&quot;&lt;b&gt;\""));
        let relay = connect_relay(
            "wss://h/r",
            "https://h/a",
            Some("Hi & welcome"),
            "en-US",
            None,
            &[],
        );
        assert!(relay.contains("welcomeGreeting=\"Hi &amp; welcome\""));
        assert!(dial("+15550001111", None).contains("<Dial>+15550001111</Dial>"));
    }

    #[test]
    fn stream_frames_parse_with_string_counters() {
        let start = r#"{"event":"start","sequenceNumber":"1","streamSid":"MZ1","start":{"streamSid":"MZ1","accountSid":"AC1","callSid":"CA1","tracks":["inbound"],"customParameters":{"call":"call_x"},"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}}}"#;
        match parse_stream_frame(start) {
            Ok(Some(StreamEvent::Start {
                stream_sid,
                call_sid,
                parameters,
                ..
            })) => {
                assert_eq!((stream_sid.as_str(), call_sid.as_str()), ("MZ1", "CA1"));
                assert_eq!(parameters.get("call"), Some(&Value::from("call_x")));
            }
            other => panic!("{other:?}"),
        }
        let media = r#"{"event":"media","sequenceNumber":"3","streamSid":"MZ1","media":{"track":"inbound","chunk":"2","timestamp":"40","payload":"//8="}}"#;
        assert_eq!(
            parse_stream_frame(media).ok().flatten(),
            Some(StreamEvent::Media {
                payload: Audio::Base64("//8=".into()),
            })
        );
        assert!(parse_stream_frame("{\"event\":\"media\"}").is_err());
        assert!(parse_stream_frame("not json").is_err());
        let bad = r#"{"event":"media","media":{"payload":"%%%"}}"#;
        assert!(
            parse_stream_frame(bad).is_err(),
            "a payload that is not base64"
        );
        // The frames written by hand are JSON Twilio reads.
        let sid = quoted("MZ\"1");
        for frame in [
            media_frame(&sid, &Audio::Raw(vec![1, 2, 3])),
            mark_frame(&sid, "fd1"),
            clear_frame(&sid),
        ] {
            let value: Value = serde_json::from_str(&frame).unwrap();
            assert_eq!(value["streamSid"], "MZ\"1", "{frame}");
        }
        assert_eq!(parse_stream_frame("{\"event\":\"other\"}").ok(), Some(None));
    }
}
