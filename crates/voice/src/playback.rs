//! What the caller has heard: the audio sent to them, with a mark after every 100 ms of it
//! (and at its end), and the marks their side echoes once that audio played. When the caller speaks over the answer
//! (barge-in), the answer is cut to what they heard: `conversation.item.truncate` with the
//! milliseconds played, and the transcript cut to the same share.

use std::collections::VecDeque;

/// Marks waiting for their echo, at most (five minutes of audio).
const MAX_MARKS: usize = 3_000;
/// Audio between two marks: what a barge-in can be off by, and a mark's echo per this much
/// audio (one per 20 ms frame would add half as many frames again to a call).
const MARK_EVERY_MS: u64 = 100;

/// The answer being played and the marks not yet echoed.
#[derive(Debug, Default)]
pub struct Playback {
    item: Option<String>,
    /// Audio of the item sent so far (ms).
    sent_ms: u64,
    /// Audio of the item the caller has heard (ms): up to the last echoed mark.
    heard_ms: u64,
    /// Marks sent and not yet echoed: name, item and the audio's end (ms) at that mark.
    marks: VecDeque<(String, String, u64)>,
    next_mark: u64,
    /// Audio of the item sent after the last mark (ms).
    unmarked_ms: u64,
}

/// Where an interrupted answer was cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cut {
    pub item_id: String,
    /// What the caller heard of it (ms).
    pub heard_ms: u64,
    /// How much of it had been sent (ms).
    pub sent_ms: u64,
}

impl Playback {
    /// Records `ms` more audio of `item` sent to the caller; the mark to send after it, when
    /// one is due.
    pub fn sent(&mut self, item: &str, ms: u64) -> Option<String> {
        if self.item.as_deref() != Some(item) {
            self.item = Some(item.to_owned());
            self.sent_ms = 0;
            self.heard_ms = 0;
            self.unmarked_ms = 0;
        }
        self.sent_ms += ms;
        self.unmarked_ms += ms;
        (self.unmarked_ms >= MARK_EVERY_MS).then(|| self.mark())
    }

    /// The item's audio ended: the mark for what is not marked yet.
    pub fn flush(&mut self) -> Option<String> {
        (self.unmarked_ms > 0 && self.item.is_some()).then(|| self.mark())
    }

    fn mark(&mut self) -> String {
        self.unmarked_ms = 0;
        self.next_mark += 1;
        let name = format!("fd{}", self.next_mark);
        // A peer that never echoes marks cannot grow this without bound: the oldest go
        // (what they covered counts as heard).
        if self.marks.len() >= MAX_MARKS {
            if let Some((_, item, end)) = self.marks.pop_front() {
                if self.item.as_deref() == Some(item.as_str()) {
                    self.heard_ms = end;
                }
            }
        }
        let item = self.item.clone().unwrap_or_default();
        self.marks.push_back((name.clone(), item, self.sent_ms));
        name
    }

    /// The caller's side echoed `name`: what came before it has played.
    pub fn marked(&mut self, name: &str) {
        let Some(position) = self.marks.iter().position(|(n, _, _)| n == name) else {
            return;
        };
        for (_, item, end) in self.marks.drain(..=position) {
            if self.item.as_deref() == Some(item.as_str()) {
                self.heard_ms = end;
            }
        }
    }

    /// Whether audio sent has not all played yet.
    pub fn playing(&self) -> bool {
        !self.marks.is_empty() || self.unmarked_ms > 0
    }

    /// The caller spoke: forget the queued audio and say where the current answer was cut
    /// (none when everything sent had played).
    pub fn interrupt(&mut self) -> Option<Cut> {
        let pending = self.playing();
        self.marks.clear();
        self.unmarked_ms = 0;
        let item = self.item.take()?;
        let cut = pending.then_some(Cut {
            item_id: item,
            heard_ms: self.heard_ms,
            sent_ms: self.sent_ms,
        });
        self.sent_ms = 0;
        self.heard_ms = 0;
        cut
    }
}

/// The words of `text` a caller heard when `heard_ms` of its `total_ms` of audio played:
/// the same share of its characters, ended at a word boundary.
pub fn heard_text(text: &str, heard_ms: u64, total_ms: u64) -> String {
    if total_ms == 0 || heard_ms >= total_ms {
        return text.to_owned();
    }
    let chars: Vec<char> = text.chars().collect();
    let keep = (chars.len() as u64 * heard_ms / total_ms) as usize;
    let mut end = keep.min(chars.len());
    // Back to the end of the last whole word.
    while end > 0 && end < chars.len() && !chars[end].is_whitespace() {
        end -= 1;
    }
    chars[..end]
        .iter()
        .collect::<String>()
        .trim_end()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_barge_in_cuts_at_the_last_mark_heard() {
        let mut playback = Playback::default();
        let first = playback.sent("item_a", 100).unwrap();
        let second = playback.sent("item_a", 100).unwrap();
        let _third = playback.sent("item_a", 100);
        assert!(playback.playing());
        playback.marked(&first);
        playback.marked(&second);
        assert_eq!(
            playback.interrupt(),
            Some(Cut {
                item_id: "item_a".into(),
                heard_ms: 200,
                sent_ms: 300
            })
        );
        assert!(!playback.playing());
        // Nothing pending: a caller speaking after the answer played cuts nothing.
        let last = playback.sent("item_b", 100).unwrap();
        playback.marked(&last);
        assert_eq!(playback.interrupt(), None);
    }

    #[test]
    fn marks_come_every_100_ms_and_at_the_end() {
        let mut playback = Playback::default();
        let marks: Vec<Option<String>> = (0..7).map(|_| playback.sent("x", 20)).collect();
        assert_eq!(marks.iter().filter(|m| m.is_some()).count(), 1, "{marks:?}");
        assert!(marks[4].is_some());
        // 40 ms after the mark play unmarked until the end's mark.
        assert!(playback.playing());
        let end = playback.flush().unwrap();
        assert_eq!(playback.flush(), None);
        playback.marked(marks[4].as_ref().unwrap());
        assert!(playback.playing());
        playback.marked(&end);
        assert!(!playback.playing());
    }

    #[test]
    fn marks_echoed_out_of_turn_count_up_to_the_latest() {
        let mut playback = Playback::default();
        let names: Vec<String> = (0..5).map(|_| playback.sent("x", 100).unwrap()).collect();
        playback.marked(&names[3]);
        playback.marked(&names[1]); // already drained: ignored
        assert_eq!(playback.interrupt().map(|c| c.heard_ms), Some(400));
    }

    #[test]
    fn a_new_answer_starts_counting_again() {
        let mut playback = Playback::default();
        let a = playback.sent("a", 500).unwrap();
        playback.marked(&a);
        playback.sent("b", 20);
        assert_eq!(
            playback.interrupt(),
            Some(Cut {
                item_id: "b".into(),
                heard_ms: 0,
                sent_ms: 20
            })
        );
    }

    #[test]
    fn heard_text_keeps_whole_words_in_proportion() {
        let text = "We have ten and half past two on Tuesday.";
        assert_eq!(heard_text(text, 500, 1_000), "We have ten and half");
        assert_eq!(heard_text(text, 0, 1_000), "");
        assert_eq!(heard_text(text, 1_000, 1_000), text);
        assert_eq!(heard_text(text, 5, 0), text);
    }
}
