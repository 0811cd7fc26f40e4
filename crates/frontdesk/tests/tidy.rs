//! House rules checked by machine: every Rust file opens with a `//!` doc, no test is
//! skipped with an ignore attribute, and no source file outgrows 700 lines.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test code: a failure should fail loudly.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if path
                .file_name()
                .is_some_and(|n| n == "target" || n == "node_modules")
            {
                continue;
            }
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn house_rules() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut files = Vec::new();
    rust_files(crates, &mut files);
    assert!(
        files.len() > 20,
        "found only {} files under {}",
        files.len(),
        crates.display()
    );
    let ignore_attribute = concat!("#[", "ignore");
    let mut problems = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let shown = file.strip_prefix(crates).unwrap().display();
        if !text.trim_start().starts_with("//!") {
            problems.push(format!("{shown}: does not start with a //! doc comment"));
        }
        if text.contains(ignore_attribute) {
            problems.push(format!("{shown}: skips a test with an ignore attribute"));
        }
        let in_tests = file
            .components()
            .any(|c| c.as_os_str() == "tests" || c.as_os_str() == "benches");
        let lines = text.lines().count();
        if !in_tests && lines > 700 {
            problems.push(format!(
                "{shown}: {lines} lines; split it by responsibility"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "house rules broken:\n{}",
        problems.join("\n")
    );
}
