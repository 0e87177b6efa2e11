//! Manifests: what a stage wrote, how many rows, and each file's sha256.
//! A manifest is the unit of lineage: a later stage records the manifest digest of its inputs.

use crate::artifact::{read_json, sha256_file, write_json_atomic};
use crate::error::Result;
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// Path relative to the manifest's directory, with `/` separators.
    pub path: String,
    /// Rows for JSONL files, documents for corpora, `None` for opaque files.
    pub rows: Option<u64>,
    pub bytes: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// What produced the files, e.g. `keel world`.
    pub producer: String,
    pub keel_version: String,
    pub seed: Option<u64>,
    /// Free-form settings of the producing stage (its config, serialised).
    pub config: serde_json::Value,
    pub files: Vec<ManifestEntry>,
}

impl Manifest {
    pub fn new(producer: &str, seed: Option<u64>, config: serde_json::Value) -> Self {
        Manifest {
            producer: producer.to_string(),
            keel_version: env!("CARGO_PKG_VERSION").to_string(),
            seed,
            config,
            files: Vec::new(),
        }
    }

    /// Record a file under `root`, computing its size and digest.
    pub fn add_file(&mut self, root: &Path, rel: &str, rows: Option<u64>) -> Result<()> {
        let p = root.join(rel);
        let bytes = std::fs::metadata(&p)
            .map_err(|e| crate::CoreError::io(&p, e))?
            .len();
        self.files.push(ManifestEntry {
            path: rel.to_string(),
            rows,
            bytes,
            sha256: sha256_file(&p)?,
        });
        Ok(())
    }

    pub fn write(&self, path: &Path) -> Result<()> {
        write_json_atomic(path, self)
    }

    pub fn read(path: &Path) -> Result<Self> {
        read_json(path)
    }

    /// Re-hash every file and report the first one whose digest no longer matches.
    pub fn verify(&self, root: &Path) -> Result<()> {
        for f in &self.files {
            let p = root.join(&f.path);
            let got = sha256_file(&p)?;
            if got != f.sha256 {
                return Err(crate::CoreError::invalid(
                    p,
                    format!("sha256 mismatch: manifest says {}, file is {got}", f.sha256),
                ));
            }
        }
        Ok(())
    }
}
