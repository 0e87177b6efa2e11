//! The audit log: every decision, to JSONL and SQLite.
//!
//! Records hold the time, profile stack, policy hash, action, triggered categories, rule ids,
//! scores and latency, plus a sha256 of the input rather than the input itself (the log must
//! not become a second copy of users' personal data). JSONL lines are appended with one
//! `write` each on an `O_APPEND` file: unlike artifacts, a log grows, so it is not rewritten
//! atomically; a crash can at worst lose the last line.

use crate::error::{GuardError, Result};
use crate::verdict::Verdict;
use rusqlite::{params, Connection};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Milliseconds since the Unix epoch.
    pub ts_ms: i64,
    pub profile: String,
    pub policy_hash: String,
    pub scope: String,
    pub action: String,
    pub categories: Vec<String>,
    pub rule_ids: Vec<String>,
    pub scores: std::collections::BTreeMap<String, f32>,
    pub latency_us: u64,
    pub input_sha256: String,
}

pub struct AuditLog {
    jsonl: Option<(PathBuf, Mutex<std::fs::File>)>,
    db: Option<Mutex<Connection>>,
}

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS decisions (
    id INTEGER PRIMARY KEY,
    ts_ms INTEGER NOT NULL,
    profile TEXT NOT NULL,
    policy_hash TEXT NOT NULL,
    scope TEXT NOT NULL,
    action TEXT NOT NULL,
    categories TEXT NOT NULL,
    rule_ids TEXT NOT NULL,
    scores TEXT NOT NULL,
    latency_us INTEGER NOT NULL,
    input_sha256 TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS decisions_ts ON decisions(ts_ms);
CREATE INDEX IF NOT EXISTS decisions_action ON decisions(action);";

impl AuditLog {
    /// Open (creating) a JSONL file and/or a SQLite database.
    pub fn open(jsonl: Option<&Path>, sqlite: Option<&Path>) -> Result<AuditLog> {
        let jsonl = match jsonl {
            None => None,
            Some(p) => {
                if let Some(d) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(d).map_err(|e| GuardError::io(d, e))?;
                }
                let f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .map_err(|e| GuardError::io(p, e))?;
                Some((p.to_path_buf(), Mutex::new(f)))
            }
        };
        let db = match sqlite {
            None => None,
            Some(p) => {
                let c = Connection::open(p)
                    .map_err(|e| GuardError::Audit(format!("{}: {e}", p.display())))?;
                c.execute_batch(SCHEMA)?;
                Some(Mutex::new(c))
            }
        };
        Ok(AuditLog { jsonl, db })
    }

    pub fn record(&self, v: &Verdict, input_sha256: &str) -> Result<()> {
        let rec = AuditRecord {
            ts_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0),
            profile: v.profile.clone(),
            policy_hash: v.policy_hash.clone(),
            scope: v.scope.as_str().to_string(),
            action: v.action.as_str().to_string(),
            categories: v.categories.clone(),
            rule_ids: v.rule_ids.clone(),
            scores: v
                .category_scores
                .iter()
                .filter(|(_, s)| **s > 0.0)
                .map(|(k, s)| (k.clone(), *s))
                .collect(),
            latency_us: v.latency_us,
            input_sha256: input_sha256.to_string(),
        };
        self.append(&rec)
    }

    pub fn append(&self, rec: &AuditRecord) -> Result<()> {
        if let Some((path, f)) = &self.jsonl {
            let mut line = serde_json::to_vec(rec).map_err(|e| GuardError::Audit(e.to_string()))?;
            line.push(b'\n');
            let mut f = f
                .lock()
                .map_err(|_| GuardError::Audit("jsonl lock poisoned".into()))?;
            f.write_all(&line).map_err(|e| GuardError::io(path, e))?;
        }
        if let Some(db) = &self.db {
            let c = db
                .lock()
                .map_err(|_| GuardError::Audit("sqlite lock poisoned".into()))?;
            c.execute(
                "INSERT INTO decisions (ts_ms, profile, policy_hash, scope, action, categories, rule_ids, scores, latency_us, input_sha256)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    rec.ts_ms,
                    rec.profile,
                    rec.policy_hash,
                    rec.scope,
                    rec.action,
                    format!(",{},", rec.categories.join(",")),
                    rec.rule_ids.join(","),
                    serde_json::to_string(&rec.scores).unwrap_or_default(),
                    rec.latency_us as i64,
                    rec.input_sha256,
                ],
            )?;
        }
        Ok(())
    }
}

/// Filters for `keel guard audit`.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub action: Option<String>,
    pub category: Option<String>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    pub limit: Option<usize>,
}

/// Query a SQLite audit database.
pub fn query_sqlite(path: &Path, q: &AuditQuery) -> Result<Vec<AuditRecord>> {
    if !path.is_file() {
        return Err(GuardError::Audit(format!(
            "{}: no such database",
            path.display()
        )));
    }
    let c = Connection::open(path)
        .map_err(|e| GuardError::Audit(format!("{}: {e}", path.display())))?;
    let mut sql = String::from(
        "SELECT ts_ms, profile, policy_hash, scope, action, categories, rule_ids, scores, latency_us, input_sha256 FROM decisions WHERE 1=1",
    );
    let mut args: Vec<Box<dyn rusqlite::ToSql>> = Vec::new();
    if let Some(a) = &q.action {
        sql.push_str(" AND action = ?");
        args.push(Box::new(a.clone()));
    }
    if let Some(cat) = &q.category {
        sql.push_str(" AND instr(categories, ?) > 0");
        args.push(Box::new(format!(",{cat},")));
    }
    if let Some(s) = q.since_ms {
        sql.push_str(" AND ts_ms >= ?");
        args.push(Box::new(s));
    }
    if let Some(u) = q.until_ms {
        sql.push_str(" AND ts_ms <= ?");
        args.push(Box::new(u));
    }
    sql.push_str(" ORDER BY ts_ms, id");
    if let Some(l) = q.limit {
        sql.push_str(&format!(" LIMIT {l}"));
    }
    let mut stmt = c.prepare(&sql)?;
    let rows = stmt.query_map(
        rusqlite::params_from_iter(args.iter().map(|b| b.as_ref())),
        |r| {
            let cats: String = r.get(5)?;
            let rules: String = r.get(6)?;
            let scores: String = r.get(7)?;
            Ok(AuditRecord {
                ts_ms: r.get(0)?,
                profile: r.get(1)?,
                policy_hash: r.get(2)?,
                scope: r.get(3)?,
                action: r.get(4)?,
                categories: cats
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect(),
                rule_ids: rules
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect(),
                scores: serde_json::from_str(&scores).unwrap_or_default(),
                latency_us: r.get::<_, i64>(8)? as u64,
                input_sha256: r.get(9)?,
            })
        },
    )?;
    Ok(rows.collect::<std::result::Result<Vec<_>, _>>()?)
}

/// Read a JSONL audit log, applying the same filters.
pub fn query_jsonl(path: &Path, q: &AuditQuery) -> Result<Vec<AuditRecord>> {
    let text = std::fs::read_to_string(path).map_err(|e| GuardError::io(path, e))?;
    let mut out = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let r: AuditRecord = serde_json::from_str(line).map_err(|e| GuardError::Data {
            path: path.to_path_buf(),
            line: i + 1,
            reason: e.to_string(),
        })?;
        let keep = q.action.as_ref().is_none_or(|a| &r.action == a)
            && q.category.as_ref().is_none_or(|c| r.categories.contains(c))
            && q.since_ms.is_none_or(|s| r.ts_ms >= s)
            && q.until_ms.is_none_or(|u| r.ts_ms <= u);
        if keep {
            out.push(r);
        }
        if q.limit.is_some_and(|l| out.len() >= l) {
            break;
        }
    }
    Ok(out)
}

/// Counts by action and by category, for the audit summary.
pub fn summarize(recs: &[AuditRecord]) -> serde_json::Value {
    let mut by_action = std::collections::BTreeMap::<String, usize>::new();
    let mut by_cat = std::collections::BTreeMap::<String, usize>::new();
    for r in recs {
        *by_action.entry(r.action.clone()).or_default() += 1;
        for c in &r.categories {
            *by_cat.entry(c.clone()).or_default() += 1;
        }
    }
    serde_json::json!({"decisions": recs.len(), "by_action": by_action, "by_category": by_cat})
}
