//! HTML as blocks: headings, paragraphs, list items and table rows, read from the page's
//! main content. What is not content is dropped: scripts, styles, navigation, headers,
//! footers, asides, forms and the like, and `<main>` (or `<article>`) alone when the page
//! has one. A scanner of tags and text, forgiving the way browsers are: unclosed
//! paragraphs end at the next block, unknown tags are read through, entities are decoded.

use crate::chunk::{Block, BlockKind};

/// Elements whose whole content is left out.
const DROPPED: &[&str] = &[
    "script", "style", "noscript", "template", "svg", "nav", "header", "footer", "aside", "form",
    "button", "select", "iframe", "head",
];

/// Elements that end the text before them (a block of their own).
const BREAKS: &[&str] = &[
    "p",
    "div",
    "section",
    "article",
    "main",
    "br",
    "hr",
    "ul",
    "ol",
    "li",
    "table",
    "tr",
    "blockquote",
    "pre",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "dl",
    "dt",
    "dd",
    "figure",
    "figcaption",
    "body",
];

/// The blocks of an HTML page, and its `<title>` when it has one.
pub fn blocks(html: &str) -> (Vec<Block>, Option<String>) {
    let scope = main_content(html).unwrap_or(html);
    let title = element_text(html, "title");
    let mut reader = Reader::default();
    let mut rest = scope;
    while let Some(open) = rest.find('<') {
        reader.text(&rest[..open]);
        rest = &rest[open..];
        if let Some(after) = rest.strip_prefix("<!--") {
            rest = after.find("-->").map_or("", |end| &after[end + 3..]);
            continue;
        }
        let Some(close) = rest.find('>') else {
            reader.text(rest);
            rest = "";
            break;
        };
        let tag = &rest[1..close];
        rest = &rest[close + 1..];
        let closing = tag.starts_with('/');
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        if name.is_empty() {
            continue;
        }
        if DROPPED.contains(&name.as_str()) || (!closing && is_navigation(tag)) {
            if !closing && !tag.ends_with('/') {
                rest = skip_element(rest, &name);
            }
            continue;
        }
        reader.tag(&name, closing);
    }
    reader.text(rest);
    reader.flush();
    (reader.blocks, title)
}

/// Whether an element's attributes mark it as navigation (`role="navigation"`, or a class
/// such as `navheader`, `navbar` or `breadcrumb`): generated manuals and site templates put
/// their page links in plain `<div>`s.
fn is_navigation(tag: &str) -> bool {
    const CLASSES: &[&str] = &[
        "navheader",
        "navfooter",
        "navbar",
        "navigation",
        "breadcrumb",
        "breadcrumbs",
        "sidebar",
        "skip-link",
        "cookie-banner",
    ];
    let lower = tag.to_ascii_lowercase();
    if lower.contains("role=\"navigation\"") || lower.contains("role='navigation'") {
        return true;
    }
    let Some(at) = lower.find("class=") else {
        return false;
    };
    let value = &lower[at + 6..];
    let quote = value.chars().next().filter(|c| *c == '"' || *c == '\'');
    let value = match quote {
        Some(q) => value[1..].split(q).next().unwrap_or_default(),
        None => value
            .split(|c: char| c.is_whitespace() || c == '>')
            .next()
            .unwrap_or_default(),
    };
    value
        .split_whitespace()
        .any(|class| CLASSES.contains(&class))
}

/// Decodes character references in `text`.
pub(crate) fn decode_entities(text: &str) -> String {
    decode(text)
}

/// The inside of `<main>`, else of the first `<article>`, when the page has one.
fn main_content(html: &str) -> Option<&str> {
    ["main", "article"].iter().find_map(|name| {
        let lower = html.to_ascii_lowercase();
        let start = lower.find(&format!("<{name}"))?;
        let open_end = start + lower[start..].find('>')? + 1;
        let end = lower[open_end..]
            .find(&format!("</{name}"))
            .map(|e| open_end + e)?;
        html.get(open_end..end)
    })
}

/// The text of the first `<name>` element (decoded, white space collapsed).
fn element_text(html: &str, name: &str) -> Option<String> {
    let lower = html.to_ascii_lowercase();
    let start = find_tag(&lower, 0, &format!("<{name}"))?;
    let open_end = start + lower[start..].find('>')? + 1;
    let end = find_tag(&lower, open_end, &format!("</{name}"))?;
    let text = collapse(&decode(html.get(open_end..end)?));
    (!text.is_empty()).then_some(text)
}

/// What follows the end of the element `name` that `rest` is inside of (nested ones too).
fn skip_element<'a>(rest: &'a str, name: &str) -> &'a str {
    let lower = rest.to_ascii_lowercase();
    let (open, close) = (format!("<{name}"), format!("</{name}"));
    let mut depth = 1;
    let mut at = 0;
    while depth > 0 {
        let next_open = find_tag(&lower, at, &open);
        let Some(next_close) = find_tag(&lower, at, &close) else {
            return "";
        };
        match next_open {
            Some(o) if o < next_close => {
                depth += 1;
                at = o + open.len();
            }
            _ => {
                depth -= 1;
                at = next_close + close.len();
            }
        }
    }
    match lower[at..].find('>') {
        Some(end) => &rest[at + end + 1..],
        None => "",
    }
}

/// Where `<name` (or `</name`) next starts from `at`, as a whole tag name (`<head` is not
/// found in `<header`).
fn find_tag(lower: &str, mut at: usize, pattern: &str) -> Option<usize> {
    loop {
        let found = at + lower[at..].find(pattern)?;
        let after = lower[found + pattern.len()..].chars().next();
        if !after.is_some_and(|c| c.is_ascii_alphanumeric()) {
            return Some(found);
        }
        at = found + pattern.len();
    }
}

#[derive(Default)]
struct Reader {
    blocks: Vec<Block>,
    text: String,
    kind: Option<BlockKind>,
    /// The cells of the table row being read.
    row: Vec<String>,
    in_cell: bool,
    pre: bool,
}

impl Reader {
    fn text(&mut self, raw: &str) {
        if raw.is_empty() {
            return;
        }
        let decoded = decode(raw);
        if self.pre {
            self.text.push_str(&decoded);
        } else {
            self.text
                .push_str(&decoded.replace(['\n', '\r', '\t'], " "));
        }
    }

    fn tag(&mut self, name: &str, closing: bool) {
        match (name, closing) {
            ("td" | "th", false) => {
                self.end_cell();
                self.in_cell = true;
            }
            ("td" | "th", true) => self.end_cell(),
            ("tr", _) => {
                self.end_cell();
                if !self.row.is_empty() {
                    self.flush();
                    let row = std::mem::take(&mut self.row).join(" | ");
                    self.blocks.push(Block::new(BlockKind::Table, row));
                }
            }
            ("pre", closing) => {
                self.flush();
                self.pre = !closing;
            }
            (name, _) if BREAKS.contains(&name) => {
                if !self.in_cell {
                    self.flush();
                    if !closing {
                        self.kind = match name.as_bytes() {
                            [b'h', level @ b'1'..=b'6'] => Some(BlockKind::Heading(level - b'0')),
                            b"li" | b"dd" | b"dt" => Some(BlockKind::ListItem),
                            _ => None,
                        };
                    }
                } else {
                    self.text.push(' ');
                }
            }
            _ => {}
        }
    }

    fn end_cell(&mut self) {
        if self.in_cell {
            let cell = collapse(&std::mem::take(&mut self.text));
            self.row.push(cell);
            self.in_cell = false;
        }
    }

    fn flush(&mut self) {
        let text = if self.pre {
            self.text.trim_matches('\n').to_owned()
        } else {
            collapse(&self.text)
        };
        self.text.clear();
        if !text.is_empty() {
            let kind = self.kind.take().unwrap_or(BlockKind::Paragraph);
            self.blocks.push(Block::new(kind, text));
        }
    }
}

/// White space runs as single spaces, trimmed.
fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Character references: the common named ones and every numeric one.
fn decode(text: &str) -> String {
    if !text.contains('&') {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let end = rest[1..].find(';').map(|e| e + 1).filter(|e| *e <= 12);
        let decoded = end.and_then(|end| {
            let name = &rest[1..end];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" | "#39" => Some('\''),
                "nbsp" => Some(' '),
                "mdash" => Some('—'),
                "ndash" => Some('–'),
                "hellip" => Some('…'),
                "euro" => Some('€'),
                "copy" => Some('©'),
                _ => name
                    .strip_prefix("#x")
                    .or_else(|| name.strip_prefix("#X"))
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .or_else(|| name.strip_prefix('#').and_then(|d| d.parse().ok()))
                    .and_then(char::from_u32),
            };
            c.map(|c| (c, end))
        });
        match decoded {
            Some((c, end)) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_main_content_becomes_blocks_and_navigation_is_dropped() {
        let page = r#"<!doctype html><html><head><title>Returns &amp; refunds</title>
            <style>p { color: red }</style><script>var x = "<p>not text</p>";</script></head>
            <body><nav><a href="/">Home</a> <a href="/shop">Shop</a></nav>
            <header><h1>Site name</h1></header>
            <main><h1>Returns</h1><p>Items can be returned within <b>30&nbsp;days</b>,
            free of charge.<p>In the original packaging.</p>
            <!-- a comment <p>hidden</p> -->
            <h2>Exceptions</h2><ul><li>Gift cards</li><li>Food &#x26; drink</li></ul>
            <table><tr><th>Item</th><th>Days</th></tr><tr><td>Jacket</td><td>30</td></tr></table>
            <aside>Related: shipping</aside></main>
            <footer>© Shop</footer></body></html>"#;
        let (got, title) = blocks(page);
        assert_eq!(title.as_deref(), Some("Returns & refunds"));
        let view: Vec<(BlockKind, &str)> = got.iter().map(|b| (b.kind, b.text.as_str())).collect();
        assert_eq!(
            view,
            [
                (BlockKind::Heading(1), "Returns"),
                (
                    BlockKind::Paragraph,
                    "Items can be returned within 30 days, free of charge."
                ),
                (BlockKind::Paragraph, "In the original packaging."),
                (BlockKind::Heading(2), "Exceptions"),
                (BlockKind::ListItem, "Gift cards"),
                (BlockKind::ListItem, "Food & drink"),
                (BlockKind::Table, "Item | Days"),
                (BlockKind::Table, "Jacket | 30"),
            ]
        );
    }

    #[test]
    fn pages_without_main_broken_markup_and_preformatted_text() {
        let (got, title) =
            blocks("<body><div>First<br>second</div><pre>a\n  b</pre><p>unclosed <i>tag");
        assert_eq!(title, None);
        let texts: Vec<&str> = got.iter().map(|b| b.text.as_str()).collect();
        assert_eq!(texts, ["First", "second", "a\n  b", "unclosed tag"]);
        assert!(blocks("").0.is_empty());
        assert_eq!(
            blocks("plain &bogus; text &amp").0[0].text,
            "plain &bogus; text &amp"
        );
        // A dropped element nested in itself is dropped whole.
        let (got, _) = blocks("<p>keep</p><nav><nav>x</nav>y</nav><p>also</p>");
        assert_eq!(
            got.iter().map(|b| b.text.as_str()).collect::<Vec<_>>(),
            ["keep", "also"]
        );
    }

    #[test]
    fn divs_marked_as_navigation_are_dropped() {
        let page = "<body><div class=\"navheader\"><table><tr><td>Prev</td><td>Next</td></tr></table></div>\
            <div class=\"sect1\"><h2>Indexes</h2><p>Use them.</p></div>\
            <div role=\"navigation\"><a>Home</a></div><div class='navfooter'>Up</div></body>";
        let (got, _) = blocks(page);
        assert_eq!(
            got.iter().map(|b| b.text.as_str()).collect::<Vec<_>>(),
            ["Indexes", "Use them."]
        );
    }
}
