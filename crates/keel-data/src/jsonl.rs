//! JSON-lines reading and writing.
//!
//! Every dataset file in Keel is JSONL: one JSON object per line. [`read_jsonl`] never panics on
//! user data; a bad row yields an error naming `file:line` and, for rows that parse as JSON but
//! do not fit the row type, the offending field (found without extra dependencies by locating
//! the top-level key at serde_json's error column).

use crate::error::{DataError, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::path::Path;

/// Read every non-blank line of `path` as a `T`.
pub fn read_jsonl<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    parse_jsonl(path, &bytes)
}

/// Parse JSONL `bytes`; `path` is only used to name the source in errors.
pub fn parse_jsonl<T: DeserializeOwned>(path: &Path, bytes: &[u8]) -> Result<Vec<T>> {
    let mut rows = Vec::new();
    for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let line_no = i + 1;
        let line = std::str::from_utf8(raw).map_err(|e| DataError::Json {
            path: path.to_path_buf(),
            line: line_no,
            message: format!("not valid UTF-8: {e}"),
        })?;
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        rows.push(parse_row(path, line_no, line)?);
    }
    Ok(rows)
}

fn parse_row<T: DeserializeOwned>(path: &Path, line_no: usize, line: &str) -> Result<T> {
    serde_json::from_str(line).map_err(|e| {
        let message = strip_position(&e.to_string());
        if !e.is_data() {
            return DataError::Json {
                path: path.to_path_buf(),
                line: line_no,
                message,
            };
        }
        let field = backticked(&message, "missing field `")
            .or_else(|| backticked(&message, "unknown field `"))
            .or_else(|| key_at(line, e.column()))
            .unwrap_or_else(|| "<row>".to_string());
        DataError::Field {
            path: path.to_path_buf(),
            line: line_no,
            field,
            message,
        }
    })
}

/// serde_json appends " at line 1 column N"; the line is ours to report, the column is noise.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

fn backticked(msg: &str, prefix: &str) -> Option<String> {
    let rest = &msg[msg.find(prefix)? + prefix.len()..];
    Some(rest[..rest.find('`')?].to_string())
}

/// The top-level object key whose value contains byte column `col` (1-based) of `line`.
/// serde_json reports type errors just after the offending value, so the last key opened at
/// depth 1 before that column is the field at fault.
fn key_at(line: &str, col: usize) -> Option<String> {
    let mut end = col.min(line.len());
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    let (mut depth, mut in_str, mut esc) = (0i32, false, false);
    let (mut cur, mut last_str, mut key) = (String::new(), None::<String>, None::<String>);
    for c in line[..end].chars() {
        if in_str {
            match (esc, c) {
                (true, _) => {
                    esc = false;
                    cur.push(c);
                }
                (false, '\\') => esc = true,
                (false, '"') => {
                    in_str = false;
                    last_str = Some(std::mem::take(&mut cur));
                }
                _ => cur.push(c),
            }
            continue;
        }
        match c {
            '"' => {
                in_str = true;
                cur.clear();
            }
            '{' | '[' => depth += 1,
            '}' | ']' => depth -= 1,
            ':' if depth == 1 => key = last_str.take(),
            _ => {}
        }
    }
    key
}

/// Serialise rows as JSONL bytes (one compact object per line, trailing newline).
pub fn to_jsonl_bytes<T: Serialize>(rows: &[T]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in rows {
        // Serialising our own plain structs to a Vec cannot fail.
        serde_json::to_writer(&mut out, r).expect("row serialises");
        out.push(b'\n');
    }
    out
}

/// Write rows atomically as JSONL; returns the number of rows written.
pub fn write_jsonl<T: Serialize>(path: &Path, rows: &[T]) -> Result<u64> {
    keel_core::artifact::write_atomic(path, &to_jsonl_bytes(rows))?;
    Ok(rows.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, Serialize, PartialEq)]
    struct Row {
        prompt: String,
        gold: Vec<String>,
        n: u32,
    }

    fn err_of(text: &str) -> String {
        parse_jsonl::<Row>(Path::new("data/x.jsonl"), text.as_bytes())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn round_trip_and_blank_lines() {
        let rows = vec![
            Row {
                prompt: "a\nb".into(),
                gold: vec!["x".into()],
                n: 1,
            },
            Row {
                prompt: "ü".into(),
                gold: vec![],
                n: 2,
            },
        ];
        let mut bytes = to_jsonl_bytes(&rows);
        bytes.extend_from_slice(b"\n\n");
        let back: Vec<Row> = parse_jsonl(Path::new("x"), &bytes).unwrap();
        assert_eq!(back, rows);
    }

    #[test]
    fn bad_json_names_file_and_line() {
        let e = err_of("{\"prompt\":\"a\",\"gold\":[],\"n\":1}\n{\"prompt\": oops}\n");
        assert!(e.starts_with("data/x.jsonl:2: invalid JSON"), "{e}");
    }

    #[test]
    fn missing_field_is_named() {
        let e = err_of("{\"prompt\":\"a\",\"gold\":[],\"n\":1}\n\n{\"prompt\":\"a\",\"n\":1}\n");
        assert!(e.starts_with("data/x.jsonl:3: field `gold`"), "{e}");
    }

    #[test]
    fn wrong_type_is_named() {
        let e = err_of("{\"prompt\":\"a:b\",\"gold\":[\"k\"],\"n\":\"seven\"}\n");
        assert!(e.starts_with("data/x.jsonl:1: field `n`"), "{e}");
        let e = err_of("{\"prompt\":\"p\",\"gold\":[\"ok\", 3],\"n\":1}\n");
        assert!(e.starts_with("data/x.jsonl:1: field `gold`"), "{e}");
        let e = err_of("{\"gold\":[],\"prompt\":5,\"n\":1}\n");
        assert!(e.starts_with("data/x.jsonl:1: field `prompt`"), "{e}");
    }

    #[test]
    fn non_utf8_and_missing_file_are_errors() {
        let e = parse_jsonl::<Row>(Path::new("y.jsonl"), b"{\"prompt\":\"\xff\"}\n").unwrap_err();
        assert!(e.to_string().starts_with("y.jsonl:1:"), "{e}");
        let e = read_jsonl::<Row>(Path::new("/nonexistent/z.jsonl")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/z.jsonl"), "{e}");
    }
}
