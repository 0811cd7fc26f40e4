//! A Server-Sent Events decoder: bytes in (split anywhere), events out.
//!
//! Follows the HTML specification's parsing rules: lines end in LF, CRLF or CR; a line
//! starting with `:` is a comment; `field: value` loses one leading space of its value;
//! `data` lines join with LF; an empty line dispatches the event.

/// One event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseEvent {
    pub event: Option<String>,
    pub data: String,
    pub id: Option<String>,
}

/// The longest line accepted (a guard against a server that never ends a line).
const MAX_LINE: usize = 4 * 1024 * 1024;
/// The line buffer kept between lines at most (a longer line's buffer is let go).
const KEEP_LINE_CAPACITY: usize = 64 * 1024;

/// Incremental decoder state.
#[derive(Debug, Default)]
pub struct SseDecoder {
    line: Vec<u8>,
    /// A CR ended the last line: a following LF belongs to it.
    after_cr: bool,
    event: Option<String>,
    data: Option<String>,
    id: Option<String>,
}

/// A line longer than the decoder accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineTooLong;

impl SseDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes; returns the events they complete.
    pub fn push(&mut self, mut bytes: &[u8]) -> Result<Vec<SseEvent>, LineTooLong> {
        let mut events = Vec::new();
        while let Some(&first) = bytes.first() {
            if self.after_cr {
                self.after_cr = false;
                if first == b'\n' {
                    bytes = &bytes[1..];
                    continue;
                }
            }
            // A line at a time: its bytes are copied once, into a buffer kept between lines.
            let Some(end) = memchr::memchr2(b'\n', b'\r', bytes) else {
                self.extend_line(bytes)?;
                break;
            };
            self.extend_line(&bytes[..end])?;
            self.after_cr = bytes[end] == b'\r';
            let mut line = std::mem::take(&mut self.line);
            if let Some(event) = self.line_done(&line) {
                events.push(event);
            }
            line.clear();
            // A rare long line does not keep its buffer for the rest of the stream.
            if line.capacity() > KEEP_LINE_CAPACITY {
                line = Vec::new();
            }
            self.line = line;
            bytes = &bytes[end + 1..];
        }
        Ok(events)
    }

    fn extend_line(&mut self, part: &[u8]) -> Result<(), LineTooLong> {
        if self.line.len() + part.len() > MAX_LINE {
            return Err(LineTooLong);
        }
        self.line.extend_from_slice(part);
        Ok(())
    }

    fn line_done(&mut self, line: &[u8]) -> Option<SseEvent> {
        if line.is_empty() {
            let data = self.data.take();
            let event = self.event.take();
            return data.map(|data| SseEvent {
                event,
                data,
                id: self.id.clone(),
            });
        }
        if line[0] == b':' {
            return None;
        }
        // Valid UTF-8 (nearly always) is checked at full speed; only a bad line is repaired.
        let text = match std::str::from_utf8(line) {
            Ok(text) => std::borrow::Cow::Borrowed(text),
            Err(_) => String::from_utf8_lossy(line),
        };
        let (field, value) = match text.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (text.as_ref(), ""),
        };
        match field {
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            },
            "event" => self.event = Some(value.to_owned()),
            "id" if !value.contains('\0') => self.id = Some(value.to_owned()),
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(chunks: &[&str]) -> Vec<SseEvent> {
        let mut decoder = SseDecoder::new();
        chunks
            .iter()
            .flat_map(|c| decoder.push(c.as_bytes()).unwrap_or_default())
            .collect()
    }

    fn data(texts: &[&str]) -> Vec<String> {
        texts.iter().map(|t| (*t).to_owned()).collect()
    }

    #[test]
    fn decodes_events_split_anywhere() {
        let cases: Vec<(Vec<&str>, Vec<String>)> = vec![
            (vec!["data: a\n\n"], data(&["a"])),
            (vec!["da", "ta: a\n", "\n"], data(&["a"])),
            (vec!["data: a\r\n\r\ndata: b\r\r"], data(&["a", "b"])),
            (vec!["data: a\r", "\n\r", "\n"], data(&["a"])),
            (vec![": keep-alive\n\ndata:x\n\n"], data(&["x"])),
            (
                vec!["data: line1\ndata: line2\n\n"],
                data(&["line1\nline2"]),
            ),
            (vec!["data: unterminated"], data(&[])),
            (vec!["event: ping\n\n"], data(&[])),
            (vec!["data:  two spaces\n\n"], data(&[" two spaces"])),
        ];
        for (chunks, want) in cases {
            let got: Vec<String> = decode(&chunks).into_iter().map(|e| e.data).collect();
            assert_eq!(got, want, "{chunks:?}");
        }
    }

    #[test]
    fn keeps_event_names_and_ids() {
        let events = decode(&["id: 7\nevent: message.delta\ndata: {}\n\ndata: next\n\n"]);
        assert_eq!(
            events[0],
            SseEvent {
                event: Some("message.delta".into()),
                data: "{}".into(),
                id: Some("7".into())
            }
        );
        assert_eq!(events[1].event, None);
        assert_eq!(events[1].id.as_deref(), Some("7"), "the last id persists");
    }

    #[test]
    fn any_split_decodes_as_the_whole() {
        let stream = "id: 1\r\nevent: a\r\ndata: {\"x\": 1}\r\n\r\n: note\n\ndata: b\rdata: c\r\rdata: é\n\n";
        let whole = decode(&[stream]);
        assert_eq!(whole.len(), 3);
        for at in 0..=stream.len() {
            let (head, tail) = stream.as_bytes().split_at(at);
            let mut decoder = SseDecoder::new();
            let mut got = decoder.push(head).unwrap_or_default();
            got.extend(decoder.push(tail).unwrap_or_default());
            assert_eq!(got, whole, "split at {at}");
        }
        let mut decoder = SseDecoder::new();
        let bytewise: Vec<SseEvent> = stream
            .as_bytes()
            .iter()
            .flat_map(|b| decoder.push(&[*b]).unwrap_or_default())
            .collect();
        assert_eq!(bytewise, whole);
    }

    /// A byte that is not UTF-8 becomes U+FFFD; the rest of the line and stream is kept,
    /// even when the bad byte arrives split from its line.
    #[test]
    fn repairs_bytes_that_are_not_utf8() {
        let mut decoder = SseDecoder::new();
        let mut events = decoder.push(b"data: caf\xc3").unwrap_or_default();
        events.extend(
            decoder
                .push(b" \xff ok\r\n\r\ndata: next\n\n")
                .unwrap_or_default(),
        );
        let data: Vec<&str> = events.iter().map(|e| e.data.as_str()).collect();
        assert_eq!(data, ["caf\u{fffd} \u{fffd} ok", "next"]);
    }

    #[test]
    fn refuses_endless_lines() {
        let mut decoder = SseDecoder::new();
        let big = vec![b'a'; MAX_LINE + 1];
        assert_eq!(decoder.push(&big), Err(LineTooLong));
        // A line of the longest length passes, also when it comes in pieces; one more byte
        // in a later piece does not.
        let mut decoder = SseDecoder::new();
        let half = vec![b'a'; MAX_LINE / 2];
        assert!(decoder.push(&half).is_ok());
        let rest = vec![b'a'; MAX_LINE - MAX_LINE / 2];
        assert!(decoder.push(&rest).is_ok());
        assert_eq!(decoder.push(b"a"), Err(LineTooLong));
    }
}
