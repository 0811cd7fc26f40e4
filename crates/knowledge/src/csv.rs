//! CSV (RFC 4180: commas, double-quoted fields with `""` for a quote, fields across lines;
//! also `;` or tab when the header has them and no comma) as blocks: each row one block
//! that names its columns, `Name: Jacket | Days: 30`, so a passage of rows still says what
//! each value is.

use crate::chunk::{Block, BlockKind};

/// Why a CSV file cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvError {
    pub line: usize,
    pub message: &'static str,
}

impl std::fmt::Display for CsvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CSV line {}: {}", self.line, self.message)
    }
}

/// The rows of a CSV text as blocks (the first row names the columns).
pub fn blocks(text: &str) -> Result<Vec<Block>, CsvError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let first_line = text.lines().next().unwrap_or_default();
    let separator = if first_line.contains(',') {
        ','
    } else if first_line.contains(';') {
        ';'
    } else if first_line.contains('\t') {
        '\t'
    } else {
        ','
    };
    let rows = records(text, separator)?;
    let mut rows = rows.into_iter();
    let Some(header) = rows.next() else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .filter(|(_, value)| !value.trim().is_empty())
            .map(|(idx, value)| match header.get(idx).map(|h| h.trim()) {
                Some(name) if !name.is_empty() => format!("{name}: {}", value.trim()),
                _ => value.trim().to_owned(),
            })
            .collect();
        if !cells.is_empty() {
            out.push(Block::new(BlockKind::Table, cells.join(" | ")));
        }
    }
    Ok(out)
}

/// The records of `text`, each a list of fields.
fn records(text: &str, separator: char) -> Result<Vec<Vec<String>>, CsvError> {
    let mut out = Vec::new();
    let mut record: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut line = 1;
    let mut opened_at = 0;
    let mut chars = text.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                '\n' => {
                    line += 1;
                    field.push('\n');
                }
                other => field.push(other),
            }
            continue;
        }
        match c {
            '"' if field.is_empty() => {
                quoted = true;
                opened_at = line;
                any = true;
            }
            c if c == separator => {
                record.push(std::mem::take(&mut field));
                any = true;
            }
            '\r' => {}
            '\n' => {
                if any || !field.is_empty() {
                    record.push(std::mem::take(&mut field));
                    out.push(std::mem::take(&mut record));
                }
                any = false;
                line += 1;
            }
            other => {
                field.push(other);
                any = true;
            }
        }
    }
    if quoted {
        return Err(CsvError {
            line: opened_at,
            message: "a quoted field is not closed",
        });
    }
    if any || !field.is_empty() {
        record.push(field);
        out.push(record);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_name_their_columns() {
        let got = blocks("\u{feff}Item,Days,Note\r\nJacket,30,\"Original packaging, tags on\"\r\nShoes,14,\"Say \"\"hi\"\"\nto us\"\n\n,,\n").unwrap();
        let texts: Vec<&str> = got.iter().map(|b| b.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "Item: Jacket | Days: 30 | Note: Original packaging, tags on",
                "Item: Shoes | Days: 14 | Note: Say \"hi\"\nto us",
            ]
        );
        assert!(got.iter().all(|b| b.kind == BlockKind::Table));
    }

    #[test]
    fn semicolons_and_tabs_and_extra_cells() {
        let got = blocks("a;b\n1;2;3\n").unwrap();
        assert_eq!(got[0].text, "a: 1 | b: 2 | 3");
        let got = blocks("a\tb\nx\ty\n").unwrap();
        assert_eq!(got[0].text, "a: x | b: y");
        assert!(blocks("").unwrap().is_empty());
        assert!(blocks("only,a,header\n").unwrap().is_empty());
    }

    #[test]
    fn an_unclosed_quote_is_an_error_with_its_line() {
        let error = blocks("a,b\n1,2\n3,\"never closed\n4,5\n").unwrap_err();
        assert_eq!(error.line, 3);
        assert_eq!(
            error.to_string(),
            "CSV line 3: a quoted field is not closed"
        );
    }
}
