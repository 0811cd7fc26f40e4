//! Cutting a document into passages. Structure first: a heading closes the passage before it
//! and names the section of those after it; paragraphs, list items and tables are packed
//! whole into a passage while they fit the token budget. Then the budget: a block larger than
//! it is cut at sentence ends, and a sentence larger than it at words, consecutive pieces
//! sharing `overlap_tokens` so no statement is lost at a cut. A passage never crosses a page
//! (its page is what a citation names).

use serde::{Deserialize, Serialize};

/// What a block of a document is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockKind {
    /// A heading of this level (1 is the title).
    Heading(u8),
    Paragraph,
    ListItem,
    /// A table as text: one row per line, cells separated by ` | `.
    Table,
}

/// A piece of a document's text with its place in the document's structure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub kind: BlockKind,
    pub text: String,
    /// The page it is on (PDF), from 1.
    pub page: Option<u32>,
}

impl Block {
    pub fn new(kind: BlockKind, text: impl Into<String>) -> Self {
        Self {
            kind,
            text: text.into(),
            page: None,
        }
    }

    pub fn on_page(mut self, page: u32) -> Self {
        self.page = Some(page);
        self
    }
}

/// How large passages are, in tokens as [`ChunkSettings::count`] counts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkSettings {
    /// The most tokens in a passage (all-MiniLM-L6-v2 reads 256 word pieces).
    pub max_tokens: usize,
    /// How many tokens a passage cut out of a longer block repeats from the one before.
    pub overlap_tokens: usize,
}

impl Default for ChunkSettings {
    fn default() -> Self {
        Self {
            max_tokens: 200,
            overlap_tokens: 32,
        }
    }
}

impl ChunkSettings {
    /// Tokens of `text` as an embedder's word-piece tokenizer makes them, estimated: a word
    /// is one token plus one for every four characters past the fourth (long and rare words
    /// split into pieces), and each punctuation mark is one.
    pub fn count(text: &str) -> usize {
        text.split_whitespace()
            .map(|word| {
                let letters = word.chars().filter(|c| c.is_alphanumeric()).count();
                let marks = word.chars().count() - letters;
                1 + letters.saturating_sub(4) / 4 + marks
            })
            .sum()
    }

    /// The settings made usable: a budget of at least 16 tokens, an overlap under half of it.
    fn sane(self) -> Self {
        let max_tokens = self.max_tokens.max(16);
        Self {
            max_tokens,
            overlap_tokens: self.overlap_tokens.min(max_tokens / 2),
        }
    }
}

/// A passage of a document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunk {
    /// Its place in the document, from 0.
    pub index: usize,
    pub text: String,
    /// The headings it is under, outermost first.
    pub section: Vec<String>,
    pub page: Option<u32>,
    pub tokens: usize,
}

/// The passages of a document's blocks, in order.
pub fn chunk(blocks: &[Block], settings: ChunkSettings) -> Vec<Chunk> {
    let settings = settings.sane();
    let mut out = Cutter {
        settings,
        chunks: Vec::new(),
        section: Vec::new(),
        parts: Vec::new(),
        tokens: 0,
        page: None,
    };
    for block in blocks {
        let text = normalize(&block.text);
        if text.is_empty() {
            continue;
        }
        if block.page != out.page {
            out.flush();
            out.page = block.page;
        }
        match block.kind {
            BlockKind::Heading(level) => {
                out.flush();
                let depth = usize::from(level.max(1)) - 1;
                out.section.truncate(depth);
                out.section.push(text);
            }
            _ => out.add(text),
        }
    }
    out.flush();
    out.chunks
}

/// White space made single spaces, except that a table keeps its rows on lines.
fn normalize(text: &str) -> String {
    text.lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

struct Cutter {
    settings: ChunkSettings,
    chunks: Vec<Chunk>,
    section: Vec<String>,
    /// The blocks of the passage being filled.
    parts: Vec<String>,
    tokens: usize,
    page: Option<u32>,
}

impl Cutter {
    fn add(&mut self, text: String) {
        let tokens = ChunkSettings::count(&text);
        if tokens > self.settings.max_tokens {
            self.flush();
            for piece in split(&text, self.settings) {
                let tokens = ChunkSettings::count(&piece);
                self.emit(piece, tokens);
            }
            return;
        }
        if self.tokens + tokens > self.settings.max_tokens {
            self.flush();
        }
        self.tokens += tokens;
        self.parts.push(text);
    }

    fn flush(&mut self) {
        if self.parts.is_empty() {
            return;
        }
        let text = self.parts.join("\n\n");
        let tokens = std::mem::take(&mut self.tokens);
        self.parts.clear();
        self.emit(text, tokens);
    }

    fn emit(&mut self, text: String, tokens: usize) {
        self.chunks.push(Chunk {
            index: self.chunks.len(),
            text,
            section: self.section.clone(),
            page: self.page,
            tokens,
        });
    }
}

/// A block too large for one passage, cut into pieces that fit: whole sentences while they
/// fit, a sentence too long cut at words; each piece after the first starts with the last
/// `overlap_tokens` of the one before.
fn split(text: &str, settings: ChunkSettings) -> Vec<String> {
    let mut units: Vec<String> = Vec::new();
    for sentence in sentences(text) {
        if ChunkSettings::count(&sentence) <= settings.max_tokens - settings.overlap_tokens {
            units.push(sentence);
        } else {
            units.extend(word_runs(
                &sentence,
                settings.max_tokens - settings.overlap_tokens,
            ));
        }
    }
    let mut pieces: Vec<String> = Vec::new();
    let mut current: Vec<String> = Vec::new();
    let mut tokens = 0;
    for unit in units {
        let size = ChunkSettings::count(&unit);
        if tokens + size > settings.max_tokens && !current.is_empty() {
            let piece = current.join(" ");
            current.clear();
            tokens = 0;
            if let Some(carried) = tail(&piece, settings.overlap_tokens) {
                tokens = ChunkSettings::count(&carried);
                current.push(carried);
            }
            pieces.push(piece);
        }
        tokens += size;
        current.push(unit);
    }
    if !current.is_empty() {
        pieces.push(current.join(" "));
    }
    pieces
}

/// The last words of `text` that make at most `tokens` tokens; `None` for no overlap.
fn tail(text: &str, tokens: usize) -> Option<String> {
    if tokens == 0 {
        return None;
    }
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut taken = 0;
    let mut start = words.len();
    while start > 0 {
        let size = ChunkSettings::count(words[start - 1]);
        if taken + size > tokens {
            break;
        }
        taken += size;
        start -= 1;
    }
    (start < words.len()).then(|| words[start..].join(" "))
}

/// Sentences: text up to a `.`, `!` or `?` followed by white space (a table's lines count as
/// sentences).
fn sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut current = String::new();
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            current.push(c);
            if matches!(c, '.' | '!' | '?') && chars.peek().is_some_and(|n| n.is_whitespace()) {
                out.push(current.trim().to_owned());
                current.clear();
            }
        }
        if !current.trim().is_empty() {
            out.push(current.trim().to_owned());
        }
    }
    out
}

/// Runs of whole words of at most `tokens` tokens each (a single word larger than that is a
/// run of its own).
fn word_runs(text: &str, tokens: usize) -> Vec<String> {
    let mut runs = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    let mut size = 0;
    for word in text.split_whitespace() {
        let n = ChunkSettings::count(word);
        if size + n > tokens && !current.is_empty() {
            runs.push(current.join(" "));
            current.clear();
            size = 0;
        }
        size += n;
        current.push(word);
    }
    if !current.is_empty() {
        runs.push(current.join(" "));
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::markdown::blocks;

    fn settings(max: usize, overlap: usize) -> ChunkSettings {
        ChunkSettings {
            max_tokens: max,
            overlap_tokens: overlap,
        }
    }

    #[test]
    fn tokens_are_estimated_like_word_pieces() {
        assert_eq!(ChunkSettings::count(""), 0);
        assert_eq!(ChunkSettings::count("the cat sat"), 3);
        // A long word splits into pieces; punctuation is a token of its own.
        assert_eq!(ChunkSettings::count("internationalisation"), 5);
        assert_eq!(ChunkSettings::count("Hello, world!"), 4);
    }

    #[test]
    fn headings_start_passages_and_name_their_section() {
        let doc = blocks("# Shop\n\nWelcome.\n\n## Returns\n\nThirty days, free.\n\n### Jackets\n\nIn the original packaging.\n\n## Shipping\n\nTwo days.");
        let got = chunk(&doc, ChunkSettings::default());
        let view: Vec<(Vec<&str>, &str)> = got
            .iter()
            .map(|c| {
                (
                    c.section.iter().map(String::as_str).collect(),
                    c.text.as_str(),
                )
            })
            .collect();
        assert_eq!(
            view,
            [
                (vec!["Shop"], "Welcome."),
                (vec!["Shop", "Returns"], "Thirty days, free."),
                (
                    vec!["Shop", "Returns", "Jackets"],
                    "In the original packaging."
                ),
                (vec!["Shop", "Shipping"], "Two days."),
            ]
        );
        assert_eq!(
            got.iter().map(|c| c.index).collect::<Vec<_>>(),
            [0, 1, 2, 3]
        );
    }

    #[test]
    fn small_blocks_are_packed_and_a_full_passage_starts_another() {
        let doc: Vec<Block> = (0..10)
            .map(|i| Block::new(BlockKind::Paragraph, format!("Sentence number {i} here.")))
            .collect();
        // Each paragraph is 6 tokens ("Sentence" is two pieces, "here." two): 3 fit in 20.
        let got = chunk(&doc, settings(20, 4));
        assert_eq!(got.len(), 4);
        assert!(got.iter().all(|c| c.tokens <= 20), "{got:?}");
        assert!(got[0].text.starts_with("Sentence number 0") && got[0].text.contains("number 2"));
        assert!(got[1].text.starts_with("Sentence number 3"));
    }

    #[test]
    fn a_long_block_is_cut_at_sentences_with_overlap_and_nothing_is_lost() {
        let text: String = (0..60)
            .map(|i| format!("Fact {i} is true."))
            .collect::<Vec<_>>()
            .join(" ");
        let got = chunk(
            &[Block::new(BlockKind::Paragraph, text.clone())],
            settings(40, 8),
        );
        assert!(got.len() > 1);
        for c in &got {
            assert!(ChunkSettings::count(&c.text) <= 40, "{c:?}");
        }
        for i in 0..60 {
            let fact = format!("Fact {i} is true.");
            assert!(got.iter().any(|c| c.text.contains(&fact)), "{fact} lost");
        }
        // Each piece after the first repeats the end of the one before.
        for pair in got.windows(2) {
            let last_words: Vec<&str> = pair[0].text.split_whitespace().rev().take(2).collect();
            assert!(
                pair[1].text.contains(last_words[1]) && pair[1].text.contains(last_words[0]),
                "{pair:?}"
            );
        }
    }

    #[test]
    fn a_sentence_without_ends_is_cut_at_words() {
        let text = "word ".repeat(500);
        let got = chunk(&[Block::new(BlockKind::Paragraph, text)], settings(50, 10));
        assert!(got.len() >= 10);
        assert!(got.iter().all(|c| c.tokens <= 50));
    }

    #[test]
    fn passages_keep_their_page_and_never_cross_one() {
        let doc = vec![
            Block::new(BlockKind::Paragraph, "On the first page.").on_page(1),
            Block::new(BlockKind::Paragraph, "Also the first.").on_page(1),
            Block::new(BlockKind::Paragraph, "On the second page.").on_page(2),
        ];
        let got = chunk(&doc, ChunkSettings::default());
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].page, got[1].page), (Some(1), Some(2)));
        assert_eq!(got[0].text, "On the first page.\n\nAlso the first.");
    }

    #[test]
    fn empty_documents_and_odd_settings_are_safe() {
        assert!(chunk(&[], ChunkSettings::default()).is_empty());
        assert!(chunk(
            &[Block::new(BlockKind::Paragraph, "  \n ")],
            ChunkSettings::default()
        )
        .is_empty());
        // A zero budget is raised to 16 tokens; an overlap at least the budget is lowered.
        let got = chunk(
            &[Block::new(
                BlockKind::Paragraph,
                "ünïcödé wörds ".repeat(40),
            )],
            settings(0, 99),
        );
        assert!(
            !got.is_empty() && got.iter().all(|c| c.tokens <= 16),
            "{got:?}"
        );
        // A table keeps its rows on lines.
        let table = chunk(
            &blocks("| a | b |\n|---|---|\n| 1 | 2 |"),
            ChunkSettings::default(),
        );
        assert_eq!(table[0].text, "a | b\n1 | 2");
    }
}
