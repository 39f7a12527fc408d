//! A small RFC 4180 reader: enough for loghub's quoted CSV and our own data tables.

use std::collections::HashMap;
use std::fs;
use std::path::Path;

/// Rows of fields. Quoted fields may hold commas, doubled quotes and newlines.
pub(crate) fn parse(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' => quoted = true,
            ',' => row.push(std::mem::take(&mut field)),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            _ => field.push(c),
        }
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows
}

/// A CSV file with a header row, as one map per record. Rows whose first field starts
/// with `#` are comments (our tables use them; loghub's never start with `#`).
pub(crate) fn read_records(path: &Path) -> Vec<HashMap<String, String>> {
    let text =
        fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut rows = parse(&text).into_iter().filter(|r| {
        !r.first().is_some_and(|f| f.starts_with('#')) && r.iter().any(|f| !f.is_empty())
    });
    let header = rows
        .next()
        .unwrap_or_else(|| panic!("{} has no header row", path.display()));
    rows.enumerate()
        .map(|(i, r)| {
            assert_eq!(
                r.len(),
                header.len(),
                "{} record {}: {} fields, header has {}: {r:?}",
                path.display(),
                i + 1,
                r.len(),
                header.len()
            );
            header.iter().cloned().zip(r).collect()
        })
        .collect()
}

#[test]
fn csv_reader_handles_quotes() {
    let rows = parse("a,b\n\"x, \"\"y\"\"\",\"multi\nline\"\r\nlast,\n");
    assert_eq!(
        rows,
        vec![
            vec!["a".to_owned(), "b".to_owned()],
            vec!["x, \"y\"".to_owned(), "multi\nline".to_owned()],
            vec!["last".to_owned(), String::new()],
        ]
    );
}
