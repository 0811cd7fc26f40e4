//! The contract between the clients and the scripted upstream: the user message names the
//! script the upstream plays, and every content chunk carries a stamp with the upstream's
//! clock, so a client can tell how long a token took to reach it through a proxy.
//!
//! The script travels in the message text because that is the one thing every proxy passes
//! through unchanged: frontdesk sends the user's message to the model, LiteLLM forwards
//! the request body.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What the upstream does with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Script {
    /// `first` after the request, then `chunks - 1` more content chunks `gap` apart, then
    /// the finish chunk and `[DONE]`.
    Stream {
        first: Duration,
        chunks: u32,
        gap: Duration,
    },
    /// One content chunk after `first`, then a keep-alive chunk every `gap` until the
    /// upstream is told to release its held streams (`POST /release`).
    Hold { first: Duration, gap: Duration },
}

impl Script {
    /// The default turn: the first token after 50 ms, then 19 more 20 ms apart.
    pub const TURN: Script = Script::Stream {
        first: Duration::from_millis(50),
        chunks: 20,
        gap: Duration::from_millis(20),
    };

    /// A held stream: the first token after 50 ms, then one every 10 s (well inside the
    /// idle timeouts of both proxies) until released.
    pub const HOLD: Script = Script::Hold {
        first: Duration::from_millis(50),
        gap: Duration::from_secs(10),
    };

    /// How long the upstream takes to play a streamed turn (a held stream: its first token).
    pub fn length(&self) -> Duration {
        match *self {
            Script::Stream { first, chunks, gap } => first + gap * chunks.saturating_sub(1),
            Script::Hold { first, .. } => first,
        }
    }

    /// The message text that asks for this script.
    pub fn message(&self) -> String {
        match self {
            Script::Stream { first, chunks, gap } => format!(
                "bench stream first_ms={} chunks={chunks} gap_ms={}",
                first.as_millis(),
                gap.as_millis()
            ),
            Script::Hold { first, gap } => format!(
                "bench hold first_ms={} gap_ms={}",
                first.as_millis(),
                gap.as_millis()
            ),
        }
    }

    /// Reads a script from a message; anything else plays the default turn.
    pub fn parse(message: &str) -> Script {
        let mut words = message.split_whitespace();
        if words.next() != Some("bench") {
            return Script::TURN;
        }
        let hold = match words.next() {
            Some("stream") => false,
            Some("hold") => true,
            _ => return Script::TURN,
        };
        let (mut first_ms, mut chunks, mut gap_ms) = (50_u64, 20_u32, 20_u64);
        if hold {
            gap_ms = 10_000;
        }
        for word in words {
            let Some((name, value)) = word.split_once('=') else {
                continue;
            };
            match name {
                "first_ms" => first_ms = value.parse().unwrap_or(first_ms),
                "chunks" => chunks = value.parse().unwrap_or(chunks),
                "gap_ms" => gap_ms = value.parse().unwrap_or(gap_ms),
                _ => {}
            }
        }
        let (first, gap) = (
            Duration::from_millis(first_ms),
            Duration::from_millis(gap_ms),
        );
        if hold {
            Script::Hold { first, gap }
        } else {
            Script::Stream {
                first,
                chunks: chunks.max(1),
                gap,
            }
        }
    }
}

/// The upstream's clock readings carried in one content chunk, in unix nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// When the upstream received the request (first chunk only).
    pub received: Option<i64>,
    /// When the upstream sent this chunk.
    pub sent: i64,
}

impl Stamp {
    /// The chunk text: `<rx=… tx=…>` for the first chunk, `<tx=…>` for the others.
    pub fn text(&self) -> String {
        match self.received {
            Some(received) => format!("<rx={received} tx={}>", self.sent),
            None => format!("<tx={}>", self.sent),
        }
    }
}

/// Every stamp in a piece of answer text, in order. A stamp cut in two by a proxy that
/// splits deltas is not found; callers that care join the text first.
pub fn stamps(text: &str) -> Vec<Stamp> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find('<') {
        rest = &rest[start + 1..];
        let Some(end) = rest.find('>') else { break };
        let (mut received, mut sent) = (None, None);
        for field in rest[..end].split_whitespace() {
            match field.split_once('=') {
                Some(("rx", value)) => received = value.parse().ok(),
                Some(("tx", value)) => sent = value.parse().ok(),
                _ => {}
            }
        }
        if let Some(sent) = sent {
            found.push(Stamp { received, sent });
        }
        rest = &rest[end + 1..];
    }
    found
}

/// Now, in unix nanoseconds (the wall clock, comparable across processes on one machine).
pub fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_round_trip_through_their_message() {
        for script in [
            Script::TURN,
            Script::HOLD,
            Script::Stream {
                first: Duration::from_millis(5),
                chunks: 3,
                gap: Duration::from_millis(1),
            },
        ] {
            assert_eq!(Script::parse(&script.message()), script);
        }
        for other in ["", "hello", "bench", "bench dance", "bench stream chunks=x"] {
            assert_eq!(Script::parse(other), Script::TURN, "{other}");
        }
    }

    #[test]
    fn stamps_are_found_in_any_text() {
        let first = Stamp {
            received: Some(10),
            sent: 20,
        };
        let later = Stamp {
            received: None,
            sent: 1_700_000_000_000_000_000,
        };
        let check = |text: &str, expect: &[Stamp]| assert_eq!(stamps(text), expect, "{text}");
        check(&first.text(), &[first]);
        check(
            &format!("a {} b{}c", first.text(), later.text()),
            &[first, later],
        );
        check("no stamp < here", &[]);
        check("<rx=1>", &[]);
        check("<tx=12", &[]);
        check(
            "<tx=oops><tx=5>",
            &[Stamp {
                received: None,
                sent: 5,
            }],
        );
    }
}
