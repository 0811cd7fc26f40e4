//! PDF as blocks: the text of each page in the order its content streams draw it, placed by
//! where it is drawn. Text on one baseline is a line (a horizontal gap wider than a fraction of
//! the font size is a space); lines are cut into paragraphs where the gap between them is
//! clearly larger than the page's usual line spacing, where the font size changes, and after a
//! short line that ends a sentence. Every block is a [`BlockKind::Paragraph`] (a
//! [`BlockKind::ListItem`] when it starts with a bullet) on its page (from 1), its whitespace
//! collapsed, ligatures and odd spaces made plain, and words hyphenated across lines joined.
//!
//! A PDF that needs a password, a file that is not a PDF, one with more than [`MAX_PAGES`] pages
//! and one without text are errors that tell the user what to do. Input is untrusted: decoded
//! streams, operations and text per page and the nesting of forms are bounded, and the parser
//! (lopdf) runs under `catch_unwind`, so no input panics. It does not OCR images, find columns
//! or tables, or tell headings from paragraphs.

use std::panic::{catch_unwind, AssertUnwindSafe};

use lopdf::{Document, LoadOptions};

use crate::chunk::{Block, BlockKind};

mod page;

use page::{page_lines, Line};

/// The most pages read. A longer PDF is refused rather than cut short without a word.
pub const MAX_PAGES: usize = 2_000;
/// The most bytes one stream decompresses to, and a page's content with its forms in all.
const MAX_STREAM_BYTES: usize = 32 << 20;

/// Why a PDF gives no text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PdfError {
    #[error("the PDF is encrypted (password protected); upload an unprotected copy")]
    Encrypted,
    #[error("the file is not a readable PDF: {0}")]
    Corrupt(String),
    #[error("the PDF has {pages} pages, more than the {max} read; split it into smaller files", max = MAX_PAGES)]
    TooManyPages { pages: usize },
    #[error("the PDF has no extractable text (a scan? OCR it first)")]
    NoText,
}

/// The paragraphs of a PDF, page by page.
///
/// A file that opens without a password is read even when it is encrypted (a PDF whose only
/// protection is an owner password restricting printing or copying); one that needs a password
/// is [`PdfError::Encrypted`].
pub fn blocks(bytes: &[u8]) -> Result<Vec<Block>, PdfError> {
    let head = &bytes[..bytes.len().min(1024)];
    if !head.windows(5).any(|window| window == b"%PDF-") {
        return Err(PdfError::Corrupt(
            "it does not start with a PDF header".into(),
        ));
    }
    catch_unwind(AssertUnwindSafe(|| read(bytes))).unwrap_or_else(|_| {
        Err(PdfError::Corrupt(
            "its structure could not be parsed".into(),
        ))
    })
}

fn read(bytes: &[u8]) -> Result<Vec<Block>, PdfError> {
    let options = LoadOptions {
        max_decompressed_size: Some(MAX_STREAM_BYTES),
        ..LoadOptions::default()
    };
    let document = match Document::load_mem_with_options(bytes, options) {
        Ok(document) => document,
        // A file whose encryption dictionary lopdf cannot use fails to load; say why.
        Err(_) if bytes.windows(8).any(|window| window == b"/Encrypt") => {
            return Err(PdfError::Encrypted)
        }
        Err(error) => return Err(PdfError::Corrupt(error.to_string())),
    };
    // lopdf decrypts a file that opens with the empty user password and takes `/Encrypt` out
    // of its trailer; a file that needs a password keeps it, its objects still encrypted.
    if document.trailer.has(b"Encrypt") {
        return Err(PdfError::Encrypted);
    }
    let pages = document.get_pages();
    if pages.is_empty() {
        return Err(PdfError::Corrupt("it has no pages".into()));
    }
    if pages.len() > MAX_PAGES {
        return Err(PdfError::TooManyPages { pages: pages.len() });
    }
    let mut out = Vec::new();
    let mut first_error = None;
    for (&page_number, &page_id) in &pages {
        match page_lines(&document, page_id) {
            Ok(lines) => out.extend(
                paragraphs(&lines)
                    .into_iter()
                    .map(|(kind, text)| Block::new(kind, text).on_page(page_number)),
            ),
            Err(error) => {
                first_error.get_or_insert(error);
            }
        }
    }
    match first_error {
        // A damaged page costs its own text, not the document's.
        _ if !out.is_empty() => Ok(out),
        Some(error) => Err(PdfError::Corrupt(error.to_string())),
        None => Err(PdfError::NoText),
    }
}

/// The paragraphs of a page's lines, each normalised; one that starts with a bullet is a list
/// item (the bullet left out).
fn paragraphs(lines: &[Line]) -> Vec<(BlockKind, String)> {
    let lines: Vec<Line> = lines
        .iter()
        .map(|line| Line {
            text: normalise(&line.text),
            ..line.clone()
        })
        .filter(|line| !line.text.is_empty())
        .collect();
    let mut spacings: Vec<f32> = lines
        .windows(2)
        .map(|pair| line_gap(&pair[0], &pair[1]))
        .filter(|gap| *gap > 0.0 && *gap < 3.0)
        .collect();
    spacings.sort_by(f32::total_cmp);
    let usual = spacings.get(spacings.len() / 2).copied().unwrap_or(1.2);
    let left = lines
        .iter()
        .map(|line| line.x_start)
        .fold(f32::MAX, f32::min);
    let right = lines.iter().map(|line| line.x_end).fold(f32::MIN, f32::max);
    let mut out = Vec::new();
    let mut paragraph = (BlockKind::Paragraph, String::new());
    for (idx, line) in lines.iter().enumerate() {
        let item = line.text.strip_prefix(BULLETS).map(str::trim_start);
        if idx > 0 {
            let previous = &lines[idx - 1];
            let gap = line_gap(previous, line);
            let size_changed =
                (previous.size - line.size).abs() > 0.15 * previous.size.max(line.size);
            let short = previous.x_end < left + 0.75 * (right - left);
            let ends_sentence = previous.text.ends_with(['.', '!', '?', ':']);
            if gap <= 0.0
                || gap > usual * 1.3
                || size_changed
                || (short && ends_sentence)
                || item.is_some()
            {
                out.push(std::mem::replace(
                    &mut paragraph,
                    (BlockKind::Paragraph, String::new()),
                ));
            }
        }
        match item {
            Some(item) => paragraph = (BlockKind::ListItem, item.to_owned()),
            None => join_line(&mut paragraph.1, &line.text),
        }
    }
    out.push(paragraph);
    out.retain(|(_, text)| !text.is_empty());
    out
}

/// The marks a line of a bulleted list starts with.
const BULLETS: [char; 9] = ['•', '◦', '▪', '▫', '‣', '●', '○', '■', '⁃'];

/// How far below `upper` the baseline of `lower` is, in font sizes (negative when above).
fn line_gap(upper: &Line, lower: &Line) -> f32 {
    (upper.y - lower.y) / upper.size.max(lower.size).max(0.1)
}

/// Adds a line to a paragraph, joining a word hyphenated across the two.
fn join_line(paragraph: &mut String, line: &str) {
    let hyphenated = paragraph
        .strip_suffix('-')
        .and_then(|stem| stem.chars().last())
        .is_some_and(char::is_alphabetic)
        && line.chars().next().is_some_and(char::is_lowercase);
    if hyphenated {
        paragraph.pop();
    } else if !paragraph.is_empty() {
        paragraph.push(' ');
    }
    paragraph.push_str(line);
}

/// Text made plain: ligatures spelled out, any kind of space or run of spaces one space,
/// invisible and control characters (and the replacement character of glyphs without a
/// Unicode mapping) dropped, the ends trimmed.
fn normalise(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut space = false;
    for c in text.chars() {
        let spelled = match c {
            '\u{fb00}' => "ff",
            '\u{fb01}' => "fi",
            '\u{fb02}' => "fl",
            '\u{fb03}' => "ffi",
            '\u{fb04}' => "ffl",
            '\u{fb05}' | '\u{fb06}' => "st",
            c if c.is_whitespace() => {
                space = !out.is_empty();
                continue;
            }
            '\u{ad}' | '\u{200b}'..='\u{200d}' | '\u{2060}' | '\u{feff}' | '\u{fffd}' => continue,
            c if c.is_control() => continue,
            _ => {
                if std::mem::take(&mut space) {
                    out.push(' ');
                }
                out.push(c);
                continue;
            }
        };
        if std::mem::take(&mut space) {
            out.push(' ');
        }
        out.push_str(spelled);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use lopdf::encryption::{EncryptionState, EncryptionVersion, Permissions};
    use lopdf::{dictionary, Object, Stream};

    /// A PDF whose pages draw `contents` with `/F1` (Helvetica) and `/F2` (Times-Roman).
    fn document(contents: &[&str]) -> Document {
        let mut document = Document::with_version("1.5");
        let pages_id = document.new_object_id();
        let helvetica = document.add_object(dictionary! {
            "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica",
            "Encoding" => "WinAnsiEncoding",
        });
        let times = document.add_object(dictionary! {
            "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Times-Roman",
        });
        let resources = document.add_object(dictionary! {
            "Font" => dictionary! { "F1" => helvetica, "F2" => times },
        });
        let mut kids = Vec::new();
        for content in contents {
            let stream = Stream::new(dictionary! {}, content.as_bytes().to_vec());
            let content_id = document.add_object(stream);
            let page = document.add_object(dictionary! {
                "Type" => "Page",
                "Parent" => pages_id,
                "Contents" => content_id,
                "Resources" => resources,
                "MediaBox" => vec![0.into(), 0.into(), 612.into(), 792.into()],
            });
            kids.push(Object::Reference(page));
        }
        let count = kids.len() as i64;
        document.objects.insert(
            pages_id,
            Object::Dictionary(dictionary! { "Type" => "Pages", "Kids" => kids, "Count" => count }),
        );
        let catalog = document.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
        document.trailer.set("Root", catalog);
        let id = Object::string_literal(b"0123456789abcdef".to_vec());
        document.trailer.set("ID", vec![id.clone(), id]);
        document
    }

    fn save(mut document: Document) -> Vec<u8> {
        let mut bytes = Vec::new();
        document.save_to(&mut bytes).unwrap();
        bytes
    }

    fn pdf(contents: &[&str]) -> Vec<u8> {
        save(document(contents))
    }

    fn texts(blocks: &[Block]) -> Vec<(u32, &str)> {
        blocks
            .iter()
            .map(|block| (block.page.unwrap(), block.text.as_str()))
            .collect()
    }

    #[test]
    fn each_page_keeps_its_text() {
        let bytes = pdf(&[
            "BT /F1 12 Tf 72 720 Td (Returns within 30 days.) Tj ET",
            "BT /F1 12 Tf 72 720 Td (Shipping is free over) Tj 0 -14 Td (50 euros.) Tj ET",
            "BT /F2 11 Tf 72 720 Td [(Opening) -300 (hours) -20 (:) ( 9 to 5)] TJ ET",
        ]);
        let got = blocks(&bytes).unwrap();
        assert_eq!(
            texts(&got),
            [
                (1, "Returns within 30 days."),
                (2, "Shipping is free over 50 euros."),
                (3, "Opening hours: 9 to 5"),
            ]
        );
        assert!(got.iter().all(|block| block.kind == BlockKind::Paragraph));
    }

    #[test]
    fn gaps_sizes_short_lines_and_bullets_end_paragraphs() {
        let page = "BT /F1 18 Tf 72 740 Td (Delivery) Tj ET \
            BT /F1 12 Tf 14 TL 72 710 Td (Parcels leave the ware-) Tj T* (house the same day and) Tj \
            T* (arrive in two days.) Tj 0 -30 Td (Tracking links come by) Tj \
            T* (email.) Tj T* (Refunds take five days when the parcel arrives back.) Tj \
            T* (\\225 Receipt) Tj T* (\\225 Original packaging, tags) Tj T* (on) Tj ET";
        let got = blocks(&pdf(&[page])).unwrap();
        assert_eq!(
            texts(&got),
            [
                (1, "Delivery"),
                (
                    1,
                    "Parcels leave the warehouse the same day and arrive in two days."
                ),
                (1, "Tracking links come by email."),
                (1, "Refunds take five days when the parcel arrives back."),
                (1, "Receipt"),
                (1, "Original packaging, tags on"),
            ]
        );
        let kinds: Vec<BlockKind> = got.iter().map(|block| block.kind).collect();
        assert_eq!(
            kinds[3..],
            [
                BlockKind::Paragraph,
                BlockKind::ListItem,
                BlockKind::ListItem
            ]
        );
    }

    #[test]
    fn text_in_forms_and_flipped_coordinates_is_read() {
        let mut document = document(&["q 1 0 0 -1 0 792 cm /Fm1 Do Q"]);
        let form = Stream::new(
            dictionary! { "Type" => "XObject", "Subtype" => "Form",
            "BBox" => vec![0.into(), 0.into(), 612.into(), 792.into()] },
            b"BT /F1 10 Tf 1 0 0 -1 72 100 Tm (Inside a form) Tj ET".to_vec(),
        );
        let form_id = document.add_object(form);
        let page_id = document.page_iter().next().unwrap();
        let resources = document
            .get_dictionary(page_id)
            .unwrap()
            .get(b"Resources")
            .unwrap()
            .as_reference()
            .unwrap();
        let resources = document.get_dictionary_mut(resources).unwrap();
        resources.set("XObject", dictionary! { "Fm1" => form_id });
        assert_eq!(
            texts(&blocks(&save(document)).unwrap()),
            [(1, "Inside a form")]
        );
    }

    #[test]
    fn normalises_spaces_and_ligatures() {
        let check = |input: &str, expect: &str| assert_eq!(normalise(input), expect, "{input:?}");
        check("  o\u{fb03}ce \u{fb01}le\u{a0}\u{a0}\t x ", "office file x");
        check("re\u{ad}fund\u{200b}s\u{2009}now", "refunds now");
        check("\u{fffd}\u{0}tab\u{3000}", "tab");
        check("\u{fb00}\u{fb02}\u{fb04}\u{fb06}", "ffflfflst");
        let mut paragraph = String::from("well-");
        join_line(&mut paragraph, "Known");
        assert_eq!(paragraph, "well- Known");
    }

    #[test]
    fn a_pdf_that_needs_a_password_is_encrypted() {
        let encrypted = |user_password: &str| {
            let mut document = document(&["BT /F1 12 Tf 72 720 Td (Secret terms) Tj ET"]);
            let version = EncryptionVersion::V2 {
                document: &document,
                owner_password: "owner",
                user_password,
                key_length: 128,
                permissions: Permissions::empty(),
            };
            let state = EncryptionState::try_from(version).unwrap();
            document.encrypt(&state).unwrap();
            save(document)
        };
        assert_eq!(blocks(&encrypted("secret")), Err(PdfError::Encrypted));
        // Restrictions without a password to open it: read like any PDF.
        let got = blocks(&encrypted("")).unwrap();
        assert_eq!(texts(&got), [(1, "Secret terms")]);

        // An encryption dictionary written by hand, nothing in it usable.
        let mut document = document(&["BT /F1 12 Tf 72 720 Td (Secret) Tj ET"]);
        let encrypt = document.add_object(dictionary! {
            "Filter" => "Standard", "V" => 1, "R" => 2, "P" => -4,
            "O" => Object::string_literal(vec![1u8; 32]),
            "U" => Object::string_literal(vec![2u8; 32]),
        });
        document.trailer.set("Encrypt", encrypt);
        assert_eq!(blocks(&save(document)), Err(PdfError::Encrypted));
    }

    #[test]
    fn a_pdf_without_text_has_no_text() {
        let bytes = pdf(&[
            "0 0 1 rg 72 72 200 100 re f",
            "BT /F1 12 Tf 72 720 Td ( ) Tj ET",
        ]);
        assert_eq!(blocks(&bytes), Err(PdfError::NoText));
        assert_eq!(
            PdfError::NoText.to_string(),
            "the PDF has no extractable text (a scan? OCR it first)"
        );
    }

    #[test]
    fn what_is_not_a_pdf_is_corrupt() {
        let corrupt = |bytes: &[u8]| matches!(blocks(bytes), Err(PdfError::Corrupt(_)));
        assert!(corrupt(b""));
        assert!(corrupt(b"PK\x03\x04 this is a zip"));
        assert!(corrupt(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"));
        let mut noise = Vec::from(&b"%PDF-1.4\n"[..]);
        let mut seed = 0x2545_f491_u32;
        noise.extend((0..4096).map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed as u8
        }));
        assert!(corrupt(&noise));
        let error = blocks(b"GIF89a").unwrap_err();
        assert_eq!(
            error.to_string(),
            "the file is not a readable PDF: it does not start with a PDF header"
        );
    }

    #[test]
    fn damaged_pdfs_fail_cleanly() {
        let bytes = pdf(&[
            "BT /F1 12 Tf 72 720 Td (First page) Tj ET",
            "BT /F1 12 Tf 72 720 Td (Second page) Tj ET",
        ]);
        // Every prefix, and every byte flipped in turn: an answer, never a panic.
        for end in (0..bytes.len()).step_by(7) {
            let _ = blocks(&bytes[..end]);
        }
        for idx in (0..bytes.len()).step_by(5) {
            let mut damaged = bytes.clone();
            damaged[idx] ^= 0x5a;
            let _ = blocks(&damaged);
        }
        assert!(matches!(blocks(&bytes[..40]), Err(PdfError::Corrupt(_))));
    }
}
