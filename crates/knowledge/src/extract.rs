//! From a document's bytes to its blocks: the format is sniffed from the content (a file's
//! name or a server's `Content-Type` is never trusted), then the format's reader keeps the
//! structure (headings, pages, tables). Failures say what is wrong with the file in words a
//! person can act on.

use crate::chunk::{Block, BlockKind};
use crate::{csv, docx, html, markdown, pdf};

/// A format frontdesk reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Pdf,
    Docx,
    Html,
    Markdown,
    Text,
    Csv,
    /// A sitemap (`<urlset>` or `<sitemapindex>`): the pages it lists, not text.
    Sitemap,
}

impl Format {
    /// The media type stored with the document.
    pub fn media_type(self) -> &'static str {
        match self {
            Format::Pdf => "application/pdf",
            Format::Docx => {
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
            }
            Format::Html => "text/html",
            Format::Markdown => "text/markdown",
            Format::Text => "text/plain",
            Format::Csv => "text/csv",
            Format::Sitemap => "application/xml",
        }
    }
}

/// Why a document cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtractError {
    #[error("the file is empty")]
    Empty,
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    Unreadable(String),
    #[error("the document has no text to answer from")]
    NoText,
}

/// What a document holds: its blocks and its own title, when it names one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extracted {
    pub blocks: Vec<Block>,
    pub title: Option<String>,
}

/// The format of `bytes`, from their content alone.
pub fn sniff(bytes: &[u8]) -> Result<Format, ExtractError> {
    let bytes = strip_bom(bytes);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ExtractError::Empty);
    }
    if bytes.starts_with(b"%PDF-") {
        return Ok(Format::Pdf);
    }
    if bytes.starts_with(b"PK\x03\x04") {
        if contains(bytes, b"word/document.xml") {
            return Ok(Format::Docx);
        }
        return Err(ExtractError::Unsupported(
            "the file is a ZIP archive that is not a Word document (.docx); upload the documents in it one by one".into(),
        ));
    }
    if bytes.starts_with(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]) {
        return Err(ExtractError::Unsupported(
            "the file is an encrypted Office document or an old .doc/.xls file; save it unprotected as .docx or PDF".into(),
        ));
    }
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Err(ExtractError::Unsupported(
            "the file is neither PDF, DOCX nor UTF-8 text (HTML, Markdown, CSV or plain text)"
                .into(),
        ));
    };
    if text.contains('\0') {
        return Err(ExtractError::Unsupported(
            "the file is binary, not text; frontdesk reads PDF, DOCX, HTML, Markdown, CSV and plain text".into(),
        ));
    }
    let head: String = text
        .trim_start()
        .chars()
        .take(1_024)
        .collect::<String>()
        .to_ascii_lowercase();
    if head.starts_with("<?xml") || head.starts_with("<urlset") || head.starts_with("<sitemapindex")
    {
        if head.contains("<urlset") || head.contains("<sitemapindex") {
            return Ok(Format::Sitemap);
        }
        if head.contains("<html") {
            return Ok(Format::Html);
        }
        return Err(ExtractError::Unsupported(
            "the file is XML that is neither a web page nor a sitemap".into(),
        ));
    }
    if head.starts_with("<!doctype html")
        || head.starts_with("<html")
        || head.contains("<body")
        || (head.starts_with('<') && head.contains("</p>"))
    {
        return Ok(Format::Html);
    }
    if looks_like_csv(text) {
        return Ok(Format::Csv);
    }
    if looks_like_markdown(text) {
        return Ok(Format::Markdown);
    }
    Ok(Format::Text)
}

/// Reads a document of a known format. A document with nothing to answer from is an error.
pub fn extract(bytes: &[u8], format: Format) -> Result<Extracted, ExtractError> {
    let bytes = strip_bom(bytes);
    let text = || {
        std::str::from_utf8(bytes)
            .map_err(|_| ExtractError::Unreadable("the text is not valid UTF-8".into()))
    };
    let extracted = match format {
        Format::Pdf => Extracted {
            blocks: pdf::blocks(bytes).map_err(|e| match e {
                pdf::PdfError::NoText => ExtractError::NoText,
                other => ExtractError::Unreadable(other.to_string()),
            })?,
            title: None,
        },
        Format::Docx => {
            let (blocks, title) = docx::blocks(bytes).map_err(|e| match e {
                docx::DocxError::NoText => ExtractError::NoText,
                other => ExtractError::Unreadable(other.to_string()),
            })?;
            Extracted { blocks, title }
        }
        Format::Html => {
            let (blocks, title) = html::blocks(text()?);
            Extracted { blocks, title }
        }
        Format::Markdown | Format::Text => Extracted {
            blocks: markdown::blocks(text()?),
            title: None,
        },
        Format::Csv => Extracted {
            blocks: csv::blocks(text()?).map_err(|e| ExtractError::Unreadable(e.to_string()))?,
            title: None,
        },
        Format::Sitemap => {
            return Err(ExtractError::Unsupported(
                "a sitemap lists pages; add it as a sitemap (`{\"sitemap\": url}`) to fetch them"
                    .into(),
            ))
        }
    };
    let blocks: Vec<Block> = extracted
        .blocks
        .into_iter()
        .filter(|b| b.text.chars().any(char::is_alphanumeric))
        .collect();
    if blocks.is_empty() {
        return Err(ExtractError::NoText);
    }
    let title = extracted
        .title
        .map(|t| clean_line(&t, 200))
        .filter(|t| !t.is_empty())
        .or_else(|| {
            blocks
                .iter()
                .find(|b| matches!(b.kind, BlockKind::Heading(_)))
                .map(|b| clean_line(&b.text, 200))
        });
    Ok(Extracted { blocks, title })
}

/// The `<loc>` of every entry of a sitemap (pages, or further sitemaps of an index), in order.
pub fn sitemap_locations(xml: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find("<loc>") {
        rest = &rest[start + 5..];
        let Some(end) = rest.find("</loc>") else {
            break;
        };
        let loc = html::decode_entities(rest[..end].trim());
        let loc = loc
            .strip_prefix("<![CDATA[")
            .and_then(|l| l.strip_suffix("]]>"))
            .map(str::to_owned)
            .unwrap_or(loc);
        if !loc.is_empty() {
            out.push(loc);
        }
        rest = &rest[end..];
    }
    out
}

/// Whether a sitemap is an index of further sitemaps.
pub fn is_sitemap_index(xml: &str) -> bool {
    xml.contains("<sitemapindex")
}

fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// At least three lines, the first ten (non-empty) all with the same number (one or more) of
/// the same separator outside quotes: prose does not look like that.
fn looks_like_csv(text: &str) -> bool {
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(10)
        .collect();
    if lines.len() < 3 || lines.iter().any(|l| l.len() > 4_000) {
        return false;
    }
    [',', ';', '\t'].iter().any(|&separator| {
        let count = |line: &str| {
            let mut quoted = false;
            line.chars()
                .filter(|&c| {
                    if c == '"' {
                        quoted = !quoted;
                    }
                    c == separator && !quoted
                })
                .count()
        };
        let first = count(lines[0]);
        first >= 1 && lines.iter().all(|l| count(l) == first)
    })
}

fn looks_like_markdown(text: &str) -> bool {
    text.lines().take(200).any(|line| {
        let line = line.trim_start();
        let hashes = line.chars().take_while(|&c| c == '#').count();
        (1..=6).contains(&hashes) && line[hashes..].starts_with(' ')
            || line.starts_with("```")
            || line.starts_with("- ")
            || line.starts_with("* ")
            || line.starts_with("| ")
    })
}

/// One line of text: control characters out, white space collapsed, at most `max` characters.
pub(crate) fn clean_line(text: &str, max: usize) -> String {
    let line = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if line.chars().count() <= max {
        line
    } else {
        let mut clipped: String = line.chars().take(max.saturating_sub(1)).collect();
        clipped.push('…');
        clipped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_sniffed_from_content_not_names() {
        assert_eq!(sniff(b"%PDF-1.7\n..."), Ok(Format::Pdf));
        assert_eq!(
            sniff(b"<!DOCTYPE html><html><body><p>Hi</p></body></html>"),
            Ok(Format::Html)
        );
        assert_eq!(
            sniff(
                b"<?xml version=\"1.0\"?><urlset><url><loc>https://a.example/</loc></url></urlset>"
            ),
            Ok(Format::Sitemap)
        );
        assert_eq!(sniff(b"# Returns\n\nThirty days."), Ok(Format::Markdown));
        assert_eq!(sniff(b"name,days\njacket,30\nboots,14\n"), Ok(Format::Csv));
        assert_eq!(
            sniff(b"Returns are free, within thirty days.\nKeep the receipt, please.\nThanks."),
            Ok(Format::Text)
        );
        assert_eq!(sniff(b"  \n "), Err(ExtractError::Empty));
        assert!(matches!(
            sniff(b"PK\x03\x04 some other zip"),
            Err(ExtractError::Unsupported(_))
        ));
        assert!(matches!(
            sniff(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1, 0, 0]),
            Err(ExtractError::Unsupported(m)) if m.contains("encrypted")
        ));
        assert!(matches!(
            sniff(&[0xff, 0xfe, 0x00, 0x41]),
            Err(ExtractError::Unsupported(_))
        ));
    }

    #[test]
    fn text_keeps_its_title_and_empty_documents_fail() {
        let got = extract(
            b"# Returns\n\nWithin 30 days, free of charge.",
            Format::Markdown,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(got.title.as_deref(), Some("Returns"));
        assert_eq!(got.blocks.len(), 2);
        assert_eq!(
            extract(b"<html><body><nav>Home</nav></body></html>", Format::Html),
            Err(ExtractError::NoText)
        );
    }

    #[test]
    fn sitemaps_list_their_locations() {
        let xml =
            "<?xml version=\"1.0\"?><urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">\
            <url><loc>https://shop.example/returns</loc></url>\
            <url><loc> https://shop.example/a?b=1&amp;c=2 </loc></url></urlset>";
        assert_eq!(
            sitemap_locations(xml),
            vec![
                "https://shop.example/returns".to_owned(),
                "https://shop.example/a?b=1&c=2".to_owned()
            ]
        );
        assert!(!is_sitemap_index(xml));
    }
}
