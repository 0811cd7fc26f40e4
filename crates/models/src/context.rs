//! How many tokens a model takes in, for fitting a conversation's history into it. Providers
//! that know their models' windows say so (`ModelProvider::context_window`); otherwise this
//! table of well-known families answers, and unknown models get a conservative default.

/// The window assumed for a model nobody describes.
pub const DEFAULT_CONTEXT_WINDOW: u32 = 32_768;

/// Well-known model families by name prefix, most specific first.
const KNOWN: &[(&str, u32)] = &[
    ("gpt-4.1", 1_047_576),
    ("gpt-5", 400_000),
    ("gpt-4o", 128_000),
    ("gpt-4-turbo", 128_000),
    ("gpt-4", 8_192),
    ("gpt-3.5-turbo", 16_385),
    ("o1", 200_000),
    ("o3", 200_000),
    ("o4", 200_000),
    ("claude", 200_000),
    ("smollm2", 8_192),
    ("llama3.1", 131_072),
    ("llama-3.1", 131_072),
    ("qwen2.5", 32_768),
    ("mistral", 32_768),
];

/// The context window of `model` (its name at the provider, e.g. `gpt-4.1-mini`).
pub fn known_window(model: &str) -> u32 {
    let name = model
        .rsplit('/')
        .next()
        .unwrap_or(model)
        .to_ascii_lowercase();
    KNOWN
        .iter()
        .find(|(prefix, _)| name.starts_with(prefix))
        .map_or(DEFAULT_CONTEXT_WINDOW, |(_, window)| *window)
}

/// A cautious estimate of the tokens a text takes: tokenizers give about four bytes of
/// English per token and about one token per character of CJK (three bytes in UTF-8), so a
/// third of the bytes over-counts English and counts CJK about right.
pub fn estimate_tokens(text: &str) -> u32 {
    u32::try_from(text.len().div_ceil(3)).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_by_family() {
        assert_eq!(known_window("gpt-4.1-mini"), 1_047_576);
        assert_eq!(known_window("gpt-4o-mini"), 128_000);
        assert_eq!(known_window("claude-sonnet-4-5"), 200_000);
        assert_eq!(known_window("meta-llama/Llama-3.1-8B"), 131_072);
        assert_eq!(known_window("something-new"), DEFAULT_CONTEXT_WINDOW);
        assert_eq!(estimate_tokens("abcdef"), 2);
        assert_eq!(estimate_tokens("ab"), 1);
    }
}
