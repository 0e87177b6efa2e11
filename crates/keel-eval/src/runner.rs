//! A concurrent, resumable work loop over items.
//!
//! Results go to an append-only JSONL file, one line per finished item, written and
//! flushed as each item finishes. This is the one place Keel does not write atomically, on
//! purpose: the file is a journal, and its value is that a crash keeps everything finished
//! before it. On rerun the journal is read back, final records are kept, and only the rest
//! is redone. A torn last line (crash mid-write) is ignored and its item redone.

use crate::error::{EvalError, Result};
use crate::record::Resumable;
use serde::{de::DeserializeOwned, Serialize};
use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// How to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunConfig {
    /// Worker threads (at least 1). For endpoints this is the number of requests in flight.
    pub concurrency: usize,
    /// Stop handing out new work after this many items were started in this call: used to
    /// bound a run (`--limit`) and by tests to simulate a crash part-way.
    pub stop_after: Option<usize>,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            concurrency: 4,
            stop_after: None,
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSummary {
    /// Items found final in the journal and skipped.
    pub skipped: usize,
    /// Items processed by this call.
    pub processed: usize,
    /// Items left undone (stopped early).
    pub remaining: usize,
}

/// Read every parseable record of a journal; later records for a key override earlier
/// ones. Unparseable lines are skipped with a warning (a torn final write after a crash).
pub fn read_journal<R: Resumable + DeserializeOwned>(path: &Path) -> Result<HashMap<String, R>> {
    let mut out = HashMap::new();
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(EvalError::io(path, e)),
    };
    for (i, line) in std::io::BufReader::new(f).lines().enumerate() {
        let line = line.map_err(|e| EvalError::io(path, e))?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<R>(&line) {
            Ok(r) => {
                out.insert(r.key(), r);
            }
            Err(e) => tracing::warn!(
                "{}:{}: skipping unreadable journal line ({e}); its item will be redone",
                path.display(),
                i + 1
            ),
        }
    }
    Ok(out)
}

/// Open `path` for appending, first terminating a torn last line so new records never
/// glue onto a fragment.
fn open_append(path: &Path) -> Result<std::fs::File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| EvalError::io(dir, e))?;
    }
    let needs_newline = match std::fs::read(path) {
        Ok(bytes) => !bytes.is_empty() && !bytes.ends_with(b"\n"),
        Err(_) => false,
    };
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| EvalError::io(path, e))?;
    if needs_newline {
        f.write_all(b"\n").map_err(|e| EvalError::io(path, e))?;
    }
    Ok(f)
}

/// Run `work` over `items` with `cfg.concurrency` threads, journaling to `journal`.
///
/// `key_of(item)` must equal `work(item).key()`: it is how finished items are recognised
/// without redoing them. Returns the final record of every item that has one (journal +
/// this run) in item order, plus a summary.
pub fn run_resumable<I, R, K, W>(
    items: &[I],
    journal: &Path,
    cfg: RunConfig,
    key_of: K,
    work: W,
) -> Result<(Vec<R>, RunSummary)>
where
    I: Sync,
    R: Resumable + Serialize + DeserializeOwned + Send,
    K: Fn(&I) -> String + Sync,
    W: Fn(&I) -> R + Sync,
{
    let mut done: HashMap<String, R> = read_journal(journal)?;
    let todo: Vec<usize> = (0..items.len())
        .filter(|&i| !done.get(&key_of(&items[i])).is_some_and(|r| r.is_final()))
        .collect();
    let skipped = items.len() - todo.len();
    let limit = cfg.stop_after.unwrap_or(usize::MAX).min(todo.len());
    let file = Mutex::new(open_append(journal)?);
    let next = AtomicUsize::new(0);
    let write_error: Mutex<Option<EvalError>> = Mutex::new(None);
    let fresh: Mutex<Vec<R>> = Mutex::new(Vec::with_capacity(limit));

    std::thread::scope(|s| {
        for _ in 0..cfg.concurrency.max(1).min(limit.max(1)) {
            s.spawn(|| loop {
                let n = next.fetch_add(1, Ordering::SeqCst);
                if n >= limit || write_error.lock().map(|e| e.is_some()).unwrap_or(true) {
                    break;
                }
                let rec = work(&items[todo[n]]);
                let mut line = match serde_json::to_string(&rec) {
                    Ok(l) => l,
                    Err(e) => {
                        let err = EvalError::data(journal, 0, format!("cannot encode record: {e}"));
                        *write_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(err);
                        break;
                    }
                };
                line.push('\n');
                {
                    // One write_all of the whole line, then flush: a crash leaves at most
                    // one torn line, which the reader skips.
                    let mut f = file.lock().unwrap_or_else(|p| p.into_inner());
                    if let Err(e) = f.write_all(line.as_bytes()).and_then(|_| f.flush()) {
                        *write_error.lock().unwrap_or_else(|p| p.into_inner()) =
                            Some(EvalError::io(journal, e));
                        break;
                    }
                }
                fresh.lock().unwrap_or_else(|p| p.into_inner()).push(rec);
            });
        }
    });
    if let Some(e) = write_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    let fresh = fresh.into_inner().unwrap_or_else(|p| p.into_inner());
    let processed = fresh.len();
    for r in fresh {
        done.insert(r.key(), r);
    }
    let ordered: Vec<R> = items
        .iter()
        .filter_map(|it| done.remove(&key_of(it)))
        .collect();
    Ok((
        ordered,
        RunSummary {
            skipped,
            processed,
            remaining: todo.len() - processed,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{ItemRecord, Outcome};
    use std::sync::atomic::AtomicUsize;

    fn rec(id: &str, retryable: bool) -> ItemRecord {
        let mut r = ItemRecord::new(id, "s", id);
        r.outcome = if retryable {
            Outcome::Unscored
        } else {
            Outcome::Pass
        };
        r.retryable = retryable;
        r
    }

    #[test]
    fn resumes_after_partial_run_and_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        let journal = dir.path().join("results.jsonl");
        let items: Vec<String> = (0..10).map(|i| format!("i{i}")).collect();
        let calls = AtomicUsize::new(0);
        let work = |id: &String| {
            calls.fetch_add(1, Ordering::SeqCst);
            rec(id, false)
        };
        let key = |id: &String| format!("s/{id}");
        let cfg = RunConfig {
            concurrency: 3,
            stop_after: Some(4),
        };
        let (recs, sum) = run_resumable(&items, &journal, cfg, key, work).unwrap();
        assert_eq!((recs.len(), sum.processed, sum.remaining), (4, 4, 6));
        // Simulate a crash mid-write: a torn fragment at the end of the journal.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&journal)
            .unwrap();
        f.write_all(br#"{"id":"i9","sou"#).unwrap();
        drop(f);
        let cfg = RunConfig {
            concurrency: 2,
            stop_after: None,
        };
        let (recs, sum) = run_resumable(&items, &journal, cfg, key, work).unwrap();
        assert_eq!(
            sum,
            RunSummary {
                skipped: 4,
                processed: 6,
                remaining: 0
            }
        );
        assert_eq!(calls.load(Ordering::SeqCst), 10);
        let ids: Vec<&str> = recs.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, items.iter().map(|s| s.as_str()).collect::<Vec<_>>());
        // A third run does nothing.
        let (_, sum) = run_resumable(&items, &journal, cfg, key, work).unwrap();
        assert_eq!(sum.processed, 0);
    }

    #[test]
    fn retryable_records_are_redone() {
        let dir = tempfile::tempdir().unwrap();
        let journal = dir.path().join("r.jsonl");
        let items = vec!["a".to_string(), "b".to_string()];
        let key = |id: &String| format!("s/{id}");
        let cfg = RunConfig::default();
        // First run: "b" fails transiently.
        run_resumable(&items, &journal, cfg, key, |id: &String| rec(id, id == "b")).unwrap();
        let redone = Mutex::new(Vec::new());
        let (recs, sum) = run_resumable(&items, &journal, cfg, key, |id: &String| {
            redone.lock().unwrap().push(id.clone());
            rec(id, false)
        })
        .unwrap();
        assert_eq!(*redone.lock().unwrap(), vec!["b".to_string()]);
        assert_eq!(sum.skipped, 1);
        assert!(recs.iter().all(|r| r.outcome == Outcome::Pass));
    }
}
