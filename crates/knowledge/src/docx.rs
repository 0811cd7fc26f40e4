//! DOCX (Word, Office Open XML) as blocks: the body of `word/document.xml` in reading order.
//! A paragraph styled Title or Heading 1–9 is a heading (known by the style's built-in name in
//! `word/styles.xml`, so localised style ids work, or by its outline level); one that is
//! numbered (`w:numPr` on the paragraph or its style) is a list item; the rest are paragraphs.
//! A table is one [`BlockKind::Table`] block, a row per line and ` | ` between cells (a table
//! inside a cell is flattened into that cell). Tabs are spaces, breaks are newlines, runs of
//! spaces are one; empty paragraphs are dropped, deleted text and field codes left out, and a
//! text box read once (not again from its fallback copy). The title is `docProps/core.xml`'s
//! `dc:title`, else the first Title or Heading 1.
//!
//! Input is untrusted: each part is read through a size limit ([`MAX_PART_BYTES`]
//! uncompressed), so a zip bomb stops there. An encrypted document (Word saves it as an OLE
//! compound file holding an `EncryptedPackage`) and a legacy binary `.doc` are told apart from
//! damage. Headers, footers, footnotes and comments are not read.

use std::io::{Cursor, Read};

use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::name::{Namespace, ResolveResult};
use quick_xml::{NsReader, XmlVersion};
use zip::result::ZipError;
use zip::ZipArchive;

use crate::chunk::{Block, BlockKind};

mod styles;

use styles::Styles;

/// The most bytes a part of the package is unpacked to.
pub const MAX_PART_BYTES: u64 = 50 << 20;

/// The signature of an OLE compound file (what encrypted Office files and `.doc` files are).
const OLE_SIGNATURE: [u8; 8] = [0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1];
const WORD_NAMESPACES: [&str; 2] = [
    "http://schemas.openxmlformats.org/wordprocessingml/2006/main",
    "http://purl.oclc.org/ooxml/wordprocessingml/main",
];
const MARKUP_COMPATIBILITY: &str = "http://schemas.openxmlformats.org/markup-compatibility/2006";
const DUBLIN_CORE: &str = "http://purl.org/dc/elements/1.1/";
/// Word elements whose content is not the document's text: tracked deletions, moved-away text
/// and the earlier formatting kept by tracked changes.
const SKIPPED: [&str; 8] = [
    "del",
    "moveFrom",
    "pPrChange",
    "rPrChange",
    "sectPrChange",
    "tblPrChange",
    "trPrChange",
    "tcPrChange",
];

/// Why a DOCX file gives no text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocxError {
    #[error("the document is encrypted (password protected); save an unprotected copy")]
    Encrypted,
    #[error("the file is not a readable Word document (.docx): {0}")]
    Corrupt(String),
    #[error("the document is too large to read: {part} is over 50 MiB uncompressed")]
    TooLarge { part: &'static str },
    #[error("the document has no text")]
    NoText,
}

/// The blocks of a DOCX file and its title.
pub fn blocks(bytes: &[u8]) -> Result<(Vec<Block>, Option<String>), DocxError> {
    if bytes.starts_with(&OLE_SIGNATURE) {
        return Err(if contains_utf16(bytes, "EncryptedPackage") {
            DocxError::Encrypted
        } else {
            DocxError::Corrupt(
                "it is an old Word (.doc) or other OLE file; save it as .docx".into(),
            )
        });
    }
    let mut archive = ZipArchive::new(Cursor::new(bytes))
        .map_err(|error| DocxError::Corrupt(format!("it is not a zip archive ({error})")))?;
    let document = part(&mut archive, "word/document.xml")?
        .ok_or_else(|| DocxError::Corrupt("it has no word/document.xml".into()))?;
    // Damage to the optional parts costs the heading levels or the title, not the text.
    let styles = part(&mut archive, "word/styles.xml")
        .ok()
        .flatten()
        .map(|xml| Styles::parse(&xml))
        .unwrap_or_default();
    let core_title = part(&mut archive, "docProps/core.xml")
        .ok()
        .flatten()
        .and_then(|xml| core_title(&xml));
    let blocks = body(&document, &styles).map_err(|error| {
        DocxError::Corrupt(format!(
            "word/document.xml is not well-formed XML ({error})"
        ))
    })?;
    if blocks.is_empty() {
        return Err(DocxError::NoText);
    }
    let title = core_title.or_else(|| {
        blocks
            .iter()
            .find(|block| block.kind == BlockKind::Heading(1))
            .map(|block| block.text.clone())
    });
    Ok((blocks, title))
}

/// A part of the package as text, `None` when the package has no such part.
fn part(
    archive: &mut ZipArchive<Cursor<&[u8]>>,
    name: &'static str,
) -> Result<Option<String>, DocxError> {
    let unreadable = |error: &dyn std::fmt::Display| {
        DocxError::Corrupt(format!("{name} cannot be unpacked ({error})"))
    };
    let file = match archive.by_name(name) {
        Ok(file) => file,
        Err(ZipError::FileNotFound) => return Ok(None),
        Err(error) => return Err(unreadable(&error)),
    };
    if file.size() > MAX_PART_BYTES {
        return Err(DocxError::TooLarge { part: name });
    }
    // The size in the archive can lie; the limit holds whatever it says.
    let mut bytes = Vec::new();
    file.take(MAX_PART_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|error| unreadable(&error))?;
    if bytes.len() as u64 > MAX_PART_BYTES {
        return Err(DocxError::TooLarge { part: name });
    }
    let text = String::from_utf8(bytes)
        .map_err(|_| DocxError::Corrupt(format!("{name} is not UTF-8 text")))?;
    Ok(Some(text))
}

/// Whether `bytes` hold `name` in UTF-16LE, as OLE directory entries name their streams.
fn contains_utf16(bytes: &[u8], name: &str) -> bool {
    let needle: Vec<u8> = name.encode_utf16().flat_map(u16::to_le_bytes).collect();
    bytes.windows(needle.len()).any(|window| window == needle)
}

/// The blocks of `word/document.xml`.
fn body(xml: &str, styles: &Styles) -> Result<Vec<Block>, quick_xml::Error> {
    let mut reader = NsReader::from_str(xml);
    let mut body = Body {
        styles,
        blocks: Vec::new(),
        paragraphs: Vec::new(),
        tables: Vec::new(),
        runs: 0,
        in_text: false,
        in_properties: false,
    };
    loop {
        let (namespace, event) = reader.read_resolved_event()?;
        let word = in_namespace(&namespace, &WORD_NAMESPACES);
        let compatibility = in_namespace(&namespace, &[MARKUP_COMPATIBILITY]);
        match event {
            Event::Start(element) => {
                let name = element.local_name();
                let skipped = if word {
                    SKIPPED.contains(&name.as_ref())
                } else {
                    compatibility && name.as_ref() == "Fallback"
                };
                if skipped {
                    reader.read_to_end(element.name())?;
                } else if word {
                    body.start(name.as_ref(), &element);
                }
            }
            Event::Empty(element) if word => {
                let name = element.local_name();
                body.start(name.as_ref(), &element);
                body.end(name.as_ref());
            }
            Event::End(element) if word => body.end(element.local_name().as_ref()),
            Event::Text(text) => body.text(&text.xml10_content()),
            Event::CData(text) => body.text(&text.xml10_content()),
            Event::GeneralRef(reference) => {
                if let Some(c) = resolve(&reference) {
                    body.text(c.encode_utf8(&mut [0; 4]));
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(body.blocks)
}

fn in_namespace(namespace: &ResolveResult<'_>, uris: &[&str]) -> bool {
    matches!(namespace, ResolveResult::Bound(Namespace(uri)) if uris.contains(uri))
}

/// The character an entity or character reference stands for.
fn resolve(reference: &BytesRef<'_>) -> Option<char> {
    if let Ok(Some(c)) = reference.resolve_char_ref() {
        return Some(c);
    }
    match reference.as_ref() {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        _ => None,
    }
}

/// The value of the attribute named `key` (any prefix).
fn attribute(element: &BytesStart<'_>, key: &str) -> Option<String> {
    element
        .attributes()
        .flatten()
        .find(|attribute| attribute.key.local_name().as_ref() == key)
        .and_then(|attribute| attribute.normalized_value(XmlVersion::Implicit1_0).ok())
        .map(|value| value.into_owned())
}

/// Reading `word/document.xml`: the open paragraphs (a text box's inside the paragraph that
/// holds it) and tables (a table inside a cell inside its table).
struct Body<'s> {
    styles: &'s Styles,
    blocks: Vec<Block>,
    paragraphs: Vec<Paragraph>,
    tables: Vec<Vec<Vec<String>>>,
    /// How many runs (`w:r`) are open: tabs and breaks count only inside one.
    runs: usize,
    in_text: bool,
    in_properties: bool,
}

#[derive(Debug, Default)]
struct Paragraph {
    text: String,
    style: Option<String>,
    numbered: Option<bool>,
    outline_level: Option<u8>,
}

impl Body<'_> {
    fn start(&mut self, name: &str, element: &BytesStart<'_>) {
        let in_run = self.runs > 0;
        if let (true, Some(paragraph)) = (self.in_properties, self.paragraphs.last_mut()) {
            match name {
                "pStyle" => paragraph.style = attribute(element, "val"),
                "numPr" => paragraph.numbered = Some(true),
                // Numbering 0 takes away the numbering a style gives.
                "numId" => {
                    paragraph.numbered = Some(attribute(element, "val").as_deref() != Some("0"));
                }
                "outlineLvl" => {
                    paragraph.outline_level = attribute(element, "val")
                        .and_then(|level| level.parse().ok())
                        .filter(|level| *level < 9);
                }
                _ => {}
            }
        }
        match name {
            "p" => self.paragraphs.push(Paragraph::default()),
            "pPr" => self.in_properties = !self.paragraphs.is_empty(),
            "r" => self.runs += 1,
            "t" => self.in_text = in_run,
            "tab" if in_run => self.push(" "),
            "br" | "cr" if in_run => self.push("\n"),
            "noBreakHyphen" if in_run => self.push("-"),
            "tbl" => self.tables.push(Vec::new()),
            "tr" => {
                if let Some(table) = self.tables.last_mut() {
                    table.push(Vec::new());
                }
            }
            "tc" => {
                if let Some(row) = self.tables.last_mut().and_then(|table| table.last_mut()) {
                    row.push(String::new());
                }
            }
            _ => {}
        }
    }

    fn end(&mut self, name: &str) {
        match name {
            "p" => {
                if let Some(paragraph) = self.paragraphs.pop() {
                    self.finish_paragraph(paragraph);
                }
            }
            "pPr" => self.in_properties = false,
            "r" => self.runs = self.runs.saturating_sub(1),
            "t" => self.in_text = false,
            "tbl" => {
                if let Some(rows) = self.tables.pop() {
                    self.finish_table(rows);
                }
            }
            _ => {}
        }
    }

    /// Text inside a `w:t`.
    fn text(&mut self, text: &str) {
        if self.in_text {
            self.push(text);
        }
    }

    fn push(&mut self, text: &str) {
        if let Some(paragraph) = self.paragraphs.last_mut() {
            paragraph.text.push_str(text);
        }
    }

    fn finish_paragraph(&mut self, paragraph: Paragraph) {
        let text = clean(&paragraph.text);
        if text.is_empty() {
            return;
        }
        if let Some(table) = self.tables.last_mut() {
            if let Some(cell) = table.last_mut().and_then(|row| row.last_mut()) {
                append(cell, &text.replace('\n', " "));
            }
            return;
        }
        let style = paragraph.style.as_deref();
        let level = paragraph
            .outline_level
            .map(|level| level + 1)
            .or_else(|| style.and_then(|style| self.styles.heading(style)));
        let numbered = paragraph
            .numbered
            .or_else(|| style.and_then(|style| self.styles.numbered(style)));
        let kind = match (level, numbered) {
            (Some(level), _) => BlockKind::Heading(level),
            (None, Some(true)) => BlockKind::ListItem,
            (None, _) => BlockKind::Paragraph,
        };
        self.blocks.push(Block::new(kind, text));
    }

    fn finish_table(&mut self, rows: Vec<Vec<String>>) {
        let rows: Vec<&Vec<String>> = rows
            .iter()
            .filter(|row| row.iter().any(|cell| !cell.is_empty()))
            .collect();
        if rows.is_empty() {
            return;
        }
        if self.tables.is_empty() {
            let lines: Vec<String> = rows.iter().map(|cells| cells.join(" | ")).collect();
            self.blocks
                .push(Block::new(BlockKind::Table, lines.join("\n")));
            return;
        }
        let cell = self
            .tables
            .last_mut()
            .and_then(|table| table.last_mut())
            .and_then(|row| row.last_mut());
        if let Some(cell) = cell {
            let nested: Vec<String> = rows.iter().map(|cells| cells.join(", ")).collect();
            append(cell, &nested.join("; "));
        }
    }
}

/// Adds a paragraph's text to a table cell.
fn append(cell: &mut String, text: &str) {
    if !cell.is_empty() {
        cell.push(' ');
    }
    cell.push_str(text);
}

/// Text with each line's runs of whitespace made one space, lines trimmed, empty lines dropped.
fn clean(text: &str) -> String {
    let lines: Vec<String> = text
        .split('\n')
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|line| !line.is_empty())
        .collect();
    lines.join("\n")
}

/// `dc:title` from `docProps/core.xml`, when it says something.
fn core_title(xml: &str) -> Option<String> {
    let mut reader = NsReader::from_str(xml);
    let mut title: Option<String> = None;
    loop {
        let (namespace, event) = reader.read_resolved_event().ok()?;
        let in_title = in_namespace(&namespace, &[DUBLIN_CORE]);
        match event {
            Event::Start(element) if in_title && element.local_name().as_ref() == "title" => {
                title = Some(String::new());
            }
            Event::End(element) if in_title && element.local_name().as_ref() == "title" => break,
            Event::Text(text) => {
                if let Some(title) = title.as_mut() {
                    title.push_str(&text.xml10_content());
                }
            }
            Event::GeneralRef(reference) => {
                if let (Some(title), Some(c)) = (title.as_mut(), resolve(&reference)) {
                    title.push(c);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let title = clean(&title?).replace('\n', " ");
    (!title.is_empty()).then_some(title)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use zip::write::SimpleFileOptions;
    use zip::{CompressionMethod, ZipWriter};

    const W: &str = r#"xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main" xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006""#;

    /// A .docx holding `parts`, each a path and its content.
    fn docx(parts: &[(&str, &str)]) -> Vec<u8> {
        let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
        let options = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
        for (name, content) in parts {
            writer.start_file(*name, options).unwrap();
            writer.write_all(content.as_bytes()).unwrap();
        }
        writer.finish().unwrap().into_inner()
    }

    fn document(body: &str) -> String {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document {W}><w:body>{body}<w:sectPr/></w:body></w:document>"#
        )
    }

    /// A paragraph in `style` (none when empty) of runs of `texts`.
    fn p(style: &str, texts: &[&str]) -> String {
        let properties = if style.is_empty() {
            String::new()
        } else {
            format!(r#"<w:pPr><w:pStyle w:val="{style}"/></w:pPr>"#)
        };
        let runs: String = texts
            .iter()
            .map(|text| format!(r#"<w:r><w:t xml:space="preserve">{text}</w:t></w:r>"#))
            .collect();
        format!("<w:p>{properties}{runs}</w:p>")
    }

    /// A table of texts.
    fn table(rows: &[&[&str]]) -> String {
        table_of(
            rows.iter()
                .map(|cells| cells.iter().map(|cell| p("", &[cell])).collect())
                .collect(),
        )
    }

    /// A table of cells, each its XML.
    fn table_of(rows: Vec<Vec<String>>) -> String {
        let rows: String = rows
            .iter()
            .map(|cells| {
                let cells: String = cells
                    .iter()
                    .map(|cell| format!("<w:tc><w:tcPr/>{cell}</w:tc>"))
                    .collect();
                format!("<w:tr>{cells}</w:tr>")
            })
            .collect();
        format!("<w:tbl><w:tblPr/>{rows}</w:tbl>")
    }

    const STYLES: &str = r#"<w:styles xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">
        <w:style w:type="paragraph" w:styleId="Titel"><w:name w:val="Title"/></w:style>
        <w:style w:type="paragraph" w:styleId="berschrift2"><w:name w:val="heading 2"/></w:style>
        <w:style w:type="paragraph" w:styleId="Policy"><w:name w:val="Policy heading"/><w:basedOn w:val="berschrift2"/></w:style>
        <w:style w:type="paragraph" w:styleId="Aufzhlung"><w:name w:val="List Bullet"/>
            <w:pPr><w:numPr><w:numId w:val="3"/></w:numPr></w:pPr></w:style>
        <w:style w:type="paragraph" w:styleId="Heading1"><w:name w:val="Plain text"/></w:style>
        </w:styles>"#;

    const CORE: &str = r#"<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:creator>Ann</dc:creator><dc:title>Returns &amp; refunds</dc:title></cp:coreProperties>"#;

    fn kinds_and_texts(blocks: &[Block]) -> Vec<(BlockKind, &str)> {
        blocks
            .iter()
            .map(|block| (block.kind, block.text.as_str()))
            .collect()
    }

    #[test]
    fn headings_paragraphs_lists_and_tables() {
        let body = [
            p("Titel", &["Returns ", "policy"]),
            p("berschrift2", &["Time limits"]),
            // Tab stops are properties, not text; a tracked change keeps the old style.
            r#"<w:p><w:pPr><w:tabs><w:tab w:val="left" w:pos="720"/></w:tabs>
                <w:pPrChange><w:pPr><w:pStyle w:val="Titel"/></w:pPr></w:pPrChange></w:pPr>
                <w:r><w:t xml:space="preserve">You have  30 </w:t></w:r><w:r><w:t>days</w:t><w:tab/>
                <w:t>to return.</w:t><w:br/><w:t>Keep the receipt&#x2E;</w:t></w:r>
                <w:del><w:r><w:delText>Not anymore.</w:delText></w:r></w:del>
                <w:r><w:instrText> PAGE </w:instrText></w:r></w:p>"#
                .to_owned(),
            "<w:p><w:pPr><w:pStyle w:val=\"Normal\"/></w:pPr></w:p><w:p/>".to_owned(),
            r#"<w:p><w:pPr><w:numPr><w:ilvl w:val="0"/><w:numId w:val="1"/></w:numPr></w:pPr>
                <w:r><w:t>Original packaging</w:t></w:r></w:p>"#
                .to_owned(),
            p("Aufzhlung", &["Tags on"]),
            r#"<w:p><w:pPr><w:pStyle w:val="Aufzhlung"/><w:numPr><w:numId w:val="0"/></w:numPr></w:pPr>
                <w:r><w:t>Not a list item</w:t></w:r></w:p>"#
                .to_owned(),
            p("Policy", &["Exceptions"]),
            p("Heading1", &["Styled like a heading by id only"]),
            table(&[&["Item", "Days", "Note"], &["Jacket", "30", "Tags on"]]),
            r#"<w:p><w:r><mc:AlternateContent><mc:Choice Requires="wps"><w:drawing><w:txbxContent>
                <w:p><w:r><w:t>Call us</w:t></w:r></w:p></w:txbxContent></w:drawing></mc:Choice>
                <mc:Fallback><w:pict><w:txbxContent><w:p><w:r><w:t>Call us</w:t></w:r></w:p>
                </w:txbxContent></w:pict></mc:Fallback></mc:AlternateContent></w:r></w:p>"#
                .to_owned(),
        ]
        .concat();
        let bytes = docx(&[
            ("word/document.xml", &document(&body)),
            ("word/styles.xml", STYLES),
            ("docProps/core.xml", CORE),
        ]);
        let (blocks, title) = blocks(&bytes).unwrap();
        assert_eq!(
            kinds_and_texts(&blocks),
            [
                (BlockKind::Heading(1), "Returns policy"),
                (BlockKind::Heading(2), "Time limits"),
                (
                    BlockKind::Paragraph,
                    "You have 30 days to return.\nKeep the receipt."
                ),
                (BlockKind::ListItem, "Original packaging"),
                (BlockKind::ListItem, "Tags on"),
                (BlockKind::Paragraph, "Not a list item"),
                (BlockKind::Heading(2), "Exceptions"),
                (BlockKind::Paragraph, "Styled like a heading by id only"),
                (
                    BlockKind::Table,
                    "Item | Days | Note\nJacket | 30 | Tags on"
                ),
                (BlockKind::Paragraph, "Call us"),
            ]
        );
        assert!(blocks.iter().all(|block| block.page.is_none()));
        assert_eq!(title.as_deref(), Some("Returns & refunds"));
    }

    #[test]
    fn the_title_falls_back_to_the_first_top_heading() {
        let body = [
            p("", &["Intro"]),
            p("Heading2", &["Scope"]),
            p("Heading1", &["Warranty"]),
            p("Title", &["Later title"]),
            table_of(vec![vec![
                p("", &["Outer"]),
                table(&[&["a", "b"], &["c", "d"]]) + "<w:p/>",
            ]]),
        ]
        .concat();
        // Without styles.xml the built-in style ids name the levels.
        let (blocks, title) = blocks(&docx(&[("word/document.xml", &document(&body))])).unwrap();
        assert_eq!(title.as_deref(), Some("Warranty"));
        assert_eq!(blocks[1].kind, BlockKind::Heading(2));
        assert_eq!(blocks[4].text, "Outer | a, b; c, d");
        let core = r#"<cp:coreProperties xmlns:cp="x" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title> </dc:title></cp:coreProperties>"#;
        let bytes = docx(&[
            ("word/document.xml", &document(&body)),
            ("docProps/core.xml", core),
        ]);
        assert_eq!(blocks_title(&bytes), Some("Warranty".to_owned()));
        let body = p("", &["No headings"]);
        assert_eq!(
            blocks_title(&docx(&[("word/document.xml", &document(&body))])),
            None
        );
    }

    fn blocks_title(bytes: &[u8]) -> Option<String> {
        blocks(bytes).unwrap().1
    }

    #[test]
    fn damage_is_corrupt_and_says_what() {
        let corrupt = |bytes: &[u8]| match blocks(bytes) {
            Err(DocxError::Corrupt(reason)) => reason,
            other => panic!("expected Corrupt, got {other:?}"),
        };
        assert!(corrupt(b"").starts_with("it is not a zip archive"));
        assert!(corrupt(b"%PDF-1.7 not a zip").starts_with("it is not a zip archive"));
        assert_eq!(
            corrupt(&docx(&[("word/other.xml", "<x/>")])),
            "it has no word/document.xml"
        );
        let broken = document("<w:p><w:r><w:t>unclosed</w:r></w:p>");
        assert!(corrupt(&docx(&[("word/document.xml", &broken)])).contains("not well-formed"));
        let truncated = docx(&[("word/document.xml", &document(&p("", &["Some text"])))]);
        assert!(matches!(
            blocks(&truncated[..truncated.len() / 2]),
            Err(DocxError::Corrupt(_))
        ));
        assert_eq!(
            DocxError::Corrupt("it has no word/document.xml".into()).to_string(),
            "the file is not a readable Word document (.docx): it has no word/document.xml"
        );
    }

    #[test]
    fn an_ole_file_is_encrypted_or_an_old_doc() {
        let mut encrypted = OLE_SIGNATURE.to_vec();
        encrypted.extend([0; 504]);
        let legacy = encrypted.clone();
        encrypted.extend("EncryptionInfo".encode_utf16().flat_map(u16::to_le_bytes));
        encrypted.extend([0; 50]);
        encrypted.extend("EncryptedPackage".encode_utf16().flat_map(u16::to_le_bytes));
        assert_eq!(blocks(&encrypted), Err(DocxError::Encrypted));
        assert_eq!(
            DocxError::Encrypted.to_string(),
            "the document is encrypted (password protected); save an unprotected copy"
        );
        assert!(
            matches!(blocks(&legacy), Err(DocxError::Corrupt(reason)) if reason.contains(".doc"))
        );
    }

    #[test]
    fn empty_documents_have_no_text() {
        let body = "<w:p/><w:p><w:r><w:t>  </w:t></w:r></w:p><w:tbl><w:tr><w:tc><w:p/></w:tc></w:tr></w:tbl>";
        let bytes = docx(&[("word/document.xml", &document(body))]);
        assert_eq!(blocks(&bytes), Err(DocxError::NoText));
    }

    #[test]
    fn a_part_too_large_unpacked_is_refused() {
        let huge = " ".repeat(MAX_PART_BYTES as usize + 1);
        let bytes = docx(&[("word/document.xml", &huge)]);
        assert!(
            bytes.len() < 1 << 20,
            "deflate packs it small: {}",
            bytes.len()
        );
        assert_eq!(
            blocks(&bytes),
            Err(DocxError::TooLarge {
                part: "word/document.xml"
            })
        );
    }
}
