//! Reading a pretraining corpus: `{"text": …}` JSONL (the Hugging Face / TRL convention) or
//! plain `.txt` (documents separated by blank lines). Errors name the file and line, and a
//! corpus with no text is refused up front rather than producing a run that learns nothing.

use crate::error::{Result, TrainError};
use std::path::{Path, PathBuf};

/// All documents of the given files, in order.
pub fn read_corpus(paths: &[PathBuf]) -> Result<Vec<String>> {
    if paths.is_empty() {
        return Err(TrainError::Data("no corpus files given".into()));
    }
    let mut docs = Vec::new();
    for p in paths {
        let before = docs.len();
        read_one(p, &mut docs)?;
        if docs.len() == before {
            return Err(TrainError::Data(format!(
                "{}: corpus file contains no text",
                p.display()
            )));
        }
    }
    Ok(docs)
}

fn read_one(path: &Path, docs: &mut Vec<String>) -> Result<()> {
    let bytes = std::fs::read(path).map_err(|e| keel_core::CoreError::io(path, e))?;
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let line = e.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count() + 1;
            return Err(TrainError::Data(format!(
                "{}:{line}: not valid UTF-8 (byte offset {at}); re-encode the corpus as UTF-8",
                path.display()
            )));
        }
    };
    let is_jsonl = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("jsonl") || e.eq_ignore_ascii_case("json"));
    if is_jsonl {
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let v: serde_json::Value = serde_json::from_str(line).map_err(|e| {
                TrainError::Data(format!("{}:{}: invalid JSON: {e}", path.display(), i + 1))
            })?;
            match v.get("text") {
                Some(serde_json::Value::String(s)) if !s.trim().is_empty() => docs.push(s.clone()),
                Some(serde_json::Value::String(_)) => {}
                Some(_) => {
                    return Err(TrainError::Data(format!(
                        "{}:{}: field \"text\" must be a string",
                        path.display(),
                        i + 1
                    )))
                }
                None => {
                    return Err(TrainError::Data(format!(
                        "{}:{}: missing field \"text\"",
                        path.display(),
                        i + 1
                    )))
                }
            }
        }
    } else {
        docs.extend(
            text.split("\n\n")
                .map(|d| d.trim())
                .filter(|d| !d.is_empty())
                .map(str::to_string),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_jsonl_and_txt_and_reports_bad_rows() {
        let dir = tempfile::tempdir().unwrap();
        let j = dir.path().join("c.jsonl");
        std::fs::write(&j, "{\"text\":\"one\"}\n\n{\"text\":\"two\"}\n").unwrap();
        let t = dir.path().join("c.txt");
        std::fs::write(&t, "alpha\nbeta\n\n\ngamma\n").unwrap();
        let docs = read_corpus(&[j.clone(), t]).unwrap();
        assert_eq!(docs, vec!["one", "two", "alpha\nbeta", "gamma"]);

        std::fs::write(&j, "{\"text\":\"ok\"}\n{\"txt\":1}\n").unwrap();
        let e = read_corpus(std::slice::from_ref(&j))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("c.jsonl:2") && e.contains("missing field"),
            "{e}"
        );
        std::fs::write(&j, "{\"text\":\"ok\"}\n{oops\n").unwrap();
        let e = read_corpus(&[j]).unwrap_err().to_string();
        assert!(e.contains("c.jsonl:2") && e.contains("invalid JSON"), "{e}");
    }

    #[test]
    fn empty_and_non_utf8_corpora_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let e = dir.path().join("empty.txt");
        std::fs::write(&e, "\n\n  \n").unwrap();
        let err = read_corpus(&[e]).unwrap_err().to_string();
        assert!(
            err.contains("empty.txt") && err.contains("no text"),
            "{err}"
        );
        let b = dir.path().join("latin1.txt");
        std::fs::write(&b, b"fine line\ncaf\xe9\n").unwrap();
        let err = read_corpus(&[b]).unwrap_err().to_string();
        assert!(
            err.contains("latin1.txt:2") && err.contains("UTF-8"),
            "{err}"
        );
        assert!(read_corpus(&[dir.path().join("missing.txt")])
            .unwrap_err()
            .to_string()
            .contains("missing.txt"));
    }
}
