//! Reading the two streams the clients see: frontdesk's SSE of RunEvents and OpenAI's SSE
//! of `chat.completion.chunk`s (the upstream itself and LiteLLM speak the latter).

use serde_json::Value;

/// One server-sent event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseEvent {
    pub event: Option<String>,
    pub data: String,
}

/// Splits a byte stream into events; bytes may arrive cut anywhere.
#[derive(Debug, Default)]
pub struct SseDecoder {
    buffer: Vec<u8>,
    current: SseEvent,
    has_data: bool,
}

impl SseDecoder {
    /// Feeds bytes and returns the events they complete.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<SseEvent> {
        self.buffer.extend_from_slice(bytes);
        let mut events = Vec::new();
        while let Some(end) = self.buffer.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.buffer.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line[..end]);
            let line = line.strip_suffix('\r').unwrap_or(&line);
            if line.is_empty() {
                if self.has_data {
                    events.push(std::mem::take(&mut self.current));
                }
                self.current = SseEvent::default();
                self.has_data = false;
                continue;
            }
            let (field, value) = match line.split_once(':') {
                Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
                None => (line, ""),
            };
            match field {
                "event" => self.current.event = Some(value.to_owned()),
                "data" => {
                    if self.has_data {
                        self.current.data.push('\n');
                    }
                    self.current.data.push_str(value);
                    self.has_data = true;
                }
                _ => {}
            }
        }
        events
    }
}

/// Which stream a client reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// frontdesk's RunEvents: `message.delta {"text"}` … `run.completed {"status"}`.
    Frontdesk,
    /// OpenAI chunks: `choices[0].delta.content` … `[DONE]`.
    OpenAi,
}

/// What one event means to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// Answer text.
    Text(String),
    /// The end of the stream; `Err` when it ended badly.
    End(Result<(), String>),
    /// An error reported inside the stream.
    Error(String),
    /// Anything else (run.started, usage, finish chunks).
    Other,
}

/// Interprets one event of `protocol`.
pub fn interpret(protocol: Protocol, event: &SseEvent) -> Item {
    match protocol {
        Protocol::Frontdesk => {
            let data: Value = serde_json::from_str(&event.data).unwrap_or(Value::Null);
            let kind = event
                .event
                .as_deref()
                .or_else(|| data.get("type").and_then(Value::as_str))
                .unwrap_or_default();
            match kind {
                "message.delta" => Item::Text(text_at(&data, "/text")),
                "error" => Item::Error(format!(
                    "{}: {}",
                    text_at(&data, "/code"),
                    text_at(&data, "/message")
                )),
                "run.completed" => match data.pointer("/status").and_then(Value::as_str) {
                    Some("completed") => Item::End(Ok(())),
                    status => Item::End(Err(format!(
                        "run.completed with status {}",
                        status.unwrap_or("(none)")
                    ))),
                },
                _ => Item::Other,
            }
        }
        Protocol::OpenAi => {
            if event.data.trim() == "[DONE]" {
                return Item::End(Ok(()));
            }
            let data: Value = match serde_json::from_str(&event.data) {
                Ok(data) => data,
                Err(_) => return Item::Error(format!("not JSON: {}", short(&event.data))),
            };
            if let Some(error) = data.get("error") {
                return Item::Error(short(&error.to_string()));
            }
            match data
                .pointer("/choices/0/delta/content")
                .and_then(Value::as_str)
            {
                Some(text) if !text.is_empty() => Item::Text(text.to_owned()),
                _ => Item::Other,
            }
        }
    }
}

fn text_at(data: &Value, pointer: &str) -> String {
    data.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// The start of a long text, for error messages.
pub fn short(text: &str) -> String {
    text.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(name: Option<&str>, data: &str) -> SseEvent {
        SseEvent {
            event: name.map(str::to_owned),
            data: data.to_owned(),
        }
    }

    #[test]
    fn events_survive_any_split() {
        let body = "id: 1\r\nevent: message.delta\r\ndata: {\"text\":\"a\"}\r\n\r\n: keep-alive\n\ndata: x\ndata: y\n\n";
        let expect = vec![
            event(Some("message.delta"), "{\"text\":\"a\"}"),
            event(None, "x\ny"),
        ];
        for cut in 0..body.len() {
            let mut decoder = SseDecoder::default();
            let mut got = decoder.push(&body.as_bytes()[..cut]);
            got.extend(decoder.push(&body.as_bytes()[cut..]));
            assert_eq!(got, expect, "cut at {cut}");
        }
        let mut decoder = SseDecoder::default();
        let got: Vec<SseEvent> = body.bytes().flat_map(|b| decoder.push(&[b])).collect();
        assert_eq!(got, expect);
    }

    #[test]
    fn both_protocols_are_understood() {
        let check = |protocol, name, data: &str, expect: Item| {
            assert_eq!(interpret(protocol, &event(name, data)), expect, "{data}");
        };
        let fd = Protocol::Frontdesk;
        check(
            fd,
            Some("message.delta"),
            r#"{"type":"message.delta","text":"hi"}"#,
            Item::Text("hi".into()),
        );
        check(
            fd,
            None,
            r#"{"type":"message.delta","text":"hi"}"#,
            Item::Text("hi".into()),
        );
        check(
            fd,
            Some("run.started"),
            r#"{"type":"run.started"}"#,
            Item::Other,
        );
        check(
            fd,
            Some("run.completed"),
            r#"{"status":"completed"}"#,
            Item::End(Ok(())),
        );
        check(
            fd,
            Some("run.completed"),
            r#"{"status":"failed"}"#,
            Item::End(Err("run.completed with status failed".into())),
        );
        check(
            fd,
            Some("error"),
            r#"{"code":"upstream","message":"boom"}"#,
            Item::Error("upstream: boom".into()),
        );
        let oa = Protocol::OpenAi;
        check(
            oa,
            None,
            r#"{"choices":[{"delta":{"content":"hi"}}]}"#,
            Item::Text("hi".into()),
        );
        check(
            oa,
            None,
            r#"{"choices":[{"delta":{},"finish_reason":"stop"}]}"#,
            Item::Other,
        );
        check(oa, None, "[DONE]", Item::End(Ok(())));
        check(
            oa,
            None,
            r#"{"error":{"message":"no"}}"#,
            Item::Error(r#"{"message":"no"}"#.into()),
        );
        check(oa, None, "nope", Item::Error("not JSON: nope".into()));
    }
}
