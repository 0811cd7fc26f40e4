//! Markdown and plain text as [`Block`]s: `#` headings (and setext `===`/`---` underlines),
//! paragraphs separated by blank lines, list items, and tables (rows of `|` cells, the
//! separator row dropped). Emphasis, links and code marks are left in the text: the embedder
//! and the full-text index read through them. Plain text is Markdown without the marks.

use crate::chunk::{Block, BlockKind};

/// The blocks of a Markdown (or plain text) document.
pub fn blocks(text: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut paragraph: Vec<&str> = Vec::new();
    let mut table: Vec<String> = Vec::new();
    let mut fenced = false;
    let flush = |out: &mut Vec<Block>, paragraph: &mut Vec<&str>, table: &mut Vec<String>| {
        if !paragraph.is_empty() {
            out.push(Block::new(BlockKind::Paragraph, paragraph.join(" ")));
            paragraph.clear();
        }
        if !table.is_empty() {
            out.push(Block::new(BlockKind::Table, table.join("\n")));
            table.clear();
        }
    };
    let lines: Vec<&str> = text.lines().collect();
    let mut idx = 0;
    while idx < lines.len() {
        let line = lines[idx].trim_end();
        let trimmed = line.trim_start();
        idx += 1;
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            // A code block is a paragraph of its own, its lines kept.
            flush(&mut out, &mut paragraph, &mut table);
            fenced = !fenced;
            continue;
        }
        if fenced {
            paragraph.push(line);
            continue;
        }
        if trimmed.is_empty() {
            flush(&mut out, &mut paragraph, &mut table);
            continue;
        }
        if let Some(level) = atx_level(trimmed) {
            flush(&mut out, &mut paragraph, &mut table);
            let title = trimmed[level..].trim().trim_end_matches('#').trim();
            if !title.is_empty() {
                out.push(Block::new(BlockKind::Heading(level as u8), title));
            }
            continue;
        }
        // A line underlined with `===` or `---` is a heading (setext).
        if let Some(next) = lines.get(idx).map(|l| l.trim()) {
            let underline = |c: char| next.len() >= 3 && next.chars().all(|x| x == c);
            if paragraph.is_empty() && table.is_empty() && (underline('=') || underline('-')) {
                out.push(Block::new(
                    BlockKind::Heading(if underline('=') { 1 } else { 2 }),
                    trimmed,
                ));
                idx += 1;
                continue;
            }
        }
        if trimmed.starts_with('|') {
            if !paragraph.is_empty() {
                flush(&mut out, &mut paragraph, &mut table);
            }
            if !is_separator_row(trimmed) {
                let cells: Vec<&str> = trimmed
                    .trim_matches('|')
                    .split('|')
                    .map(str::trim)
                    .collect();
                table.push(cells.join(" | "));
            }
            continue;
        }
        if let Some(item) = list_item(trimmed) {
            flush(&mut out, &mut paragraph, &mut table);
            out.push(Block::new(BlockKind::ListItem, item));
            continue;
        }
        if !table.is_empty() {
            flush(&mut out, &mut paragraph, &mut table);
        }
        paragraph.push(trimmed);
    }
    flush(&mut out, &mut paragraph, &mut table);
    out
}

/// `#`…`######` followed by a space: the heading's level.
fn atx_level(line: &str) -> Option<usize> {
    let level = line.chars().take_while(|c| *c == '#').count();
    ((1..=6).contains(&level) && line[level..].starts_with(' ')).then_some(level)
}

/// A list item's text (`- `, `* `, `+ `, `1. `, `1) `).
fn list_item(line: &str) -> Option<&str> {
    for mark in ["- ", "* ", "+ "] {
        if let Some(rest) = line.strip_prefix(mark) {
            return Some(rest.trim());
        }
    }
    let digits = line.chars().take_while(char::is_ascii_digit).count();
    if digits > 0 && digits < 10 {
        let rest = &line[digits..];
        if let Some(rest) = rest.strip_prefix(". ").or_else(|| rest.strip_prefix(") ")) {
            return Some(rest.trim());
        }
    }
    None
}

/// `|---|:--:|` and the like.
fn is_separator_row(line: &str) -> bool {
    line.chars().all(|c| matches!(c, '|' | '-' | ':' | ' ')) && line.contains('-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headings_paragraphs_lists_tables_and_code_become_blocks() {
        let text = "# Returns\n\nItems can be returned\nwithin 30 days.\n\n## How\n\n- Pack it\n- Print the label\n\n\
                    | Item | Days |\n|---|---|\n| Jacket | 30 |\n\nShipping\n---\nFree over $50.\n\n```\ncode here\n```\n";
        let got = blocks(text);
        let kinds: Vec<BlockKind> = got.iter().map(|b| b.kind).collect();
        assert_eq!(
            kinds,
            [
                BlockKind::Heading(1),
                BlockKind::Paragraph,
                BlockKind::Heading(2),
                BlockKind::ListItem,
                BlockKind::ListItem,
                BlockKind::Table,
                BlockKind::Heading(2),
                BlockKind::Paragraph,
                BlockKind::Paragraph,
            ]
        );
        assert_eq!(got[1].text, "Items can be returned within 30 days.");
        assert_eq!(got[4].text, "Print the label");
        assert_eq!(got[5].text, "Item | Days\nJacket | 30");
        assert_eq!(got[6].text, "Shipping");
        assert_eq!(got[8].text, "code here");
    }

    #[test]
    fn plain_text_is_paragraphs() {
        let got = blocks("First line\nsame paragraph.\n\n\nSecond one.");
        assert_eq!(got.len(), 2);
        assert!(got.iter().all(|b| b.kind == BlockKind::Paragraph));
        assert!(blocks("").is_empty() && blocks(" \n\t\n").is_empty());
        // `#hashtag` is not a heading.
        assert_eq!(blocks("#hashtag here")[0].kind, BlockKind::Paragraph);
    }
}
