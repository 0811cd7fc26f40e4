//! Seeding for the benchmarks: one tenant's 100k conversations and about 1M messages of
//! Zipf-distributed made-up words, with literal multi-row inserts. The store bench and the
//! dashboard bench (`crates/server/benches/dashboard.rs`) share it.

#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::should_implement_trait,
    clippy::new_without_default
)]

use std::time::{Duration, Instant};

use frontdesk_core::id::{AgentId, ConversationId, MessageId, TenantId};
use frontdesk_core::time::Timestamp;
use frontdesk_store::SqlStore;

/// Conversations of the big tenant that get a long history.
pub const LONG_CONVERSATIONS: usize = 1_000;
pub const LONG_MESSAGES: usize = 200;
pub const SHORT_MESSAGES: usize = 8;
const BATCH: usize = 2_000;

/// A cheap deterministic generator (xorshift), so runs are comparable.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A Zipf-distributed vocabulary of pronounceable made-up words, like natural text: a few
/// words are everywhere, most are rare.
pub struct Vocabulary {
    words: Vec<String>,
    cumulative: Vec<f64>,
}

const VOCABULARY_SIZE: usize = 5_000;

impl Vocabulary {
    pub fn new() -> Self {
        const ONSETS: &[&str] = &[
            "b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "br", "st", "tr",
        ];
        const VOWELS: &[&str] = &["a", "e", "i", "o", "u", "ai", "ou"];
        let mut words = Vec::with_capacity(VOCABULARY_SIZE);
        let mut n = 0usize;
        while words.len() < VOCABULARY_SIZE {
            let (mut rest, mut word) = (n, String::new());
            for _ in 0..3 {
                word.push_str(ONSETS[rest % ONSETS.len()]);
                rest /= ONSETS.len();
                word.push_str(VOWELS[rest % VOWELS.len()]);
                rest /= VOWELS.len();
                if rest == 0 {
                    break;
                }
            }
            words.push(word);
            n += 1;
        }
        let mut total = 0.0;
        let cumulative = (1..=VOCABULARY_SIZE)
            .map(|rank| {
                total += 1.0 / rank as f64;
                total
            })
            .collect();
        Self { words, cumulative }
    }

    pub fn sample(&self, rng: &mut Rng) -> &str {
        let total = self.cumulative[VOCABULARY_SIZE - 1];
        let x = (rng.next() % 1_000_000_000) as f64 / 1e9 * total;
        let idx = self
            .cumulative
            .partition_point(|c| *c < x)
            .min(VOCABULARY_SIZE - 1);
        &self.words[idx]
    }

    /// The word of a given frequency rank (1 = most common).
    pub fn rank(&self, rank: usize) -> &str {
        &self.words[rank - 1]
    }
}

pub fn sentence(vocabulary: &Vocabulary, rng: &mut Rng, n_words: usize) -> String {
    let mut words: Vec<&str> = (0..n_words).map(|_| vocabulary.sample(rng)).collect();
    // One message in a thousand mentions a word that appears nowhere else.
    if rng.below(1000) == 0 {
        words.push("zeppelin");
    }
    words.join(" ")
}

/// Seeds `n_conversations` conversations for `tenant` with literal multi-row inserts.
pub async fn seed_tenant(
    store: &SqlStore,
    vocabulary: &Vocabulary,
    tenant: &TenantId,
    agent: &AgentId,
    n_conversations: usize,
    rng: &mut Rng,
) -> usize {
    let start = Timestamp::now().as_millis() - (n_conversations as i64) * 1000;
    let mut n_messages = 0;
    let mut conv_rows = Vec::with_capacity(BATCH);
    let mut msg_rows = Vec::with_capacity(BATCH * 2);
    let mut last_report = Instant::now();
    for idx in 0..n_conversations {
        let id = ConversationId::new();
        let count = if idx < LONG_CONVERSATIONS {
            LONG_MESSAGES
        } else {
            SHORT_MESSAGES
        };
        let created = start + (idx as i64) * 1000;
        let title = sentence(vocabulary, rng, 5);
        let mut parent: Option<String> = None;
        for seq in 1..=count {
            let text = sentence(vocabulary, rng, 18);
            let content = serde_json::json!([{"type": "text", "text": text}]).to_string();
            let message_id = MessageId::new();
            let role = if seq % 2 == 1 { "user" } else { "assistant" };
            let parent_sql = parent
                .as_ref()
                .map(|p| format!("'{p}'"))
                .unwrap_or_else(|| "NULL".to_owned());
            // Answers carry a model and tokens, as a model's would (usage reports read them).
            let usage = if role == "assistant" {
                "'local/smollm2-135m', 'stop', 120, 40, 160, 900"
            } else {
                "NULL, NULL, NULL, NULL, NULL, NULL"
            };
            msg_rows.push(format!(
                "('{message_id}', '{tenant}', '{id}', {seq}, {parent_sql}, '{role}', '{content}', '{text}', {usage}, {})",
                created + seq as i64
            ));
            parent = Some(message_id.to_string());
            n_messages += 1;
        }
        let last = created + count as i64;
        // The last message heads the active branch, as appends leave it.
        let head = parent.take().unwrap_or_default();
        conv_rows.push(format!(
            "('{id}', '{tenant}', '{agent}', 'visitor-{}', '{title}', 'preview', {count}, {last}, '{head}', {last}, 0, '{{}}', {created}, {last})",
            idx % 5000
        ));
        if conv_rows.len() >= BATCH || msg_rows.len() >= BATCH * 8 || idx + 1 == n_conversations {
            let mut script = format!(
                "BEGIN; INSERT INTO conversations (id, tenant_id, agent_id, end_user_id, title, preview, message_count, last_message_at, \
                 last_message_id, activity_at, archived, metadata, created_at, updated_at) VALUES {};",
                conv_rows.join(",")
            );
            for chunk in msg_rows.chunks(BATCH) {
                script.push_str(&format!(
                    "INSERT INTO messages (id, tenant_id, conversation_id, seq, parent_id, role, content, text, model, \
                     finish_reason, prompt_tokens, completion_tokens, total_tokens, latency_ms, created_at) VALUES {};",
                    chunk.join(",")
                ));
            }
            script.push_str("COMMIT;");
            store.db().execute_script(&script).await.unwrap();
            conv_rows.clear();
            msg_rows.clear();
            if last_report.elapsed() > Duration::from_secs(10) {
                println!(
                    "  seeding {tenant}: {}/{n_conversations} conversations, {n_messages} messages",
                    idx + 1
                );
                last_report = Instant::now();
            }
        }
    }
    n_messages
}
