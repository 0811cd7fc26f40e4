//! PDF ingestion's own part: generated PDFs (text pages in two fonts, headings, paragraphs
//! and bullet lists, 40 lines a page) read into blocks and cut into passages. Embedding is
//! measured by the local crate's `embed` bench. Prints pages/s and passages/s over
//! `PDF_BENCH_DOCUMENTS` (default 20) documents of `PDF_BENCH_PAGES` (default 50) pages.

#![allow(clippy::print_stdout, clippy::expect_used)] // A bench prints its table.

use std::time::Instant;

use frontdesk_knowledge::{chunk, pdf, ChunkSettings};
use lopdf::{dictionary, Document, Object, Stream};

const WORDS: &[&str] = &[
    "parcel",
    "refund",
    "order",
    "delivery",
    "warehouse",
    "customer",
    "invoice",
    "return",
    "window",
    "days",
    "shipping",
    "tracking",
    "packaging",
    "receipt",
    "store",
    "account",
    "payment",
    "exchange",
    "size",
    "colour",
    "jacket",
    "policy",
    "address",
    "carrier",
];

/// One page: a heading, paragraphs of wrapped lines, a bullet list.
fn page(n: usize) -> String {
    let mut content = format!("BT /F1 18 Tf 72 750 Td (Section {n}: returns and delivery) Tj ET ");
    content.push_str("BT /F2 11 Tf 13 TL 72 720 Td ");
    for line in 0..40 {
        let words: Vec<&str> = (0..11)
            .map(|w| WORDS[(n * 7 + line * 5 + w * 3) % WORDS.len()])
            .collect();
        let text = if line % 12 == 11 {
            format!("\\225 {}", words[..4].join(" "))
        } else {
            words.join(" ")
        };
        content.push_str(&format!("({text}) Tj T* "));
        if line % 8 == 7 {
            content.push_str("0 -10 Td ");
        }
    }
    content.push_str("ET");
    content
}

fn document(pages: usize, seed: usize) -> Vec<u8> {
    let mut document = Document::with_version("1.5");
    let pages_id = document.new_object_id();
    let helvetica = document.add_object(dictionary! {
        "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica",
        "Encoding" => "WinAnsiEncoding",
    });
    let times = document.add_object(dictionary! {
        "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Times-Roman",
        "Encoding" => "WinAnsiEncoding",
    });
    let resources = document.add_object(dictionary! {
        "Font" => dictionary! { "F1" => helvetica, "F2" => times },
    });
    let mut kids = Vec::new();
    for n in 0..pages {
        let stream = Stream::new(dictionary! {}, page(seed * pages + n).into_bytes());
        let content_id = document.add_object(stream);
        let page = document.add_object(dictionary! {
            "Type" => "Page", "Parent" => pages_id, "Contents" => content_id,
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
    let mut bytes = Vec::new();
    document.save_to(&mut bytes).expect("a generated PDF saves");
    bytes
}

fn main() {
    let count = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let (documents, pages) = (
        count("PDF_BENCH_DOCUMENTS", 20),
        count("PDF_BENCH_PAGES", 50),
    );
    let files: Vec<Vec<u8>> = (0..documents).map(|d| document(pages, d)).collect();
    let bytes: usize = files.iter().map(Vec::len).sum();
    let started = Instant::now();
    let mut passages = 0;
    for file in &files {
        let blocks = pdf::blocks(file).expect("a generated PDF reads");
        passages += chunk(&blocks, ChunkSettings::default()).len();
    }
    let seconds = started.elapsed().as_secs_f64();
    let total_pages = documents * pages;
    println!("| documents | pages | MiB | passages | seconds | pages/s | passages/s |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {documents} | {total_pages} | {:.1} | {passages} | {seconds:.2} | {:.0} | {:.0} |",
        bytes as f64 / (1024.0 * 1024.0),
        total_pages as f64 / seconds,
        passages as f64 / seconds
    );
}
