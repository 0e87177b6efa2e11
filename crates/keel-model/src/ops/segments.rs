//! Packed rows: several documents side by side in one row of a batch (TRL's
//! `padding_free` / flash-attention's varlen, expressed as per-token document ids).
//!
//! A query attends only to keys of its own document at positions ≤ its own, and RoPE
//! positions restart at 0 at each document's first token, so every document computes exactly
//! what it would alone. Documents must be contiguous: ids are non-decreasing along a row.

use candle_core::{bail, Result};
use std::sync::Arc;

/// Document boundaries of a `[b, t]` batch, precomputed per token for the kernels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segments {
    b: usize,
    t: usize,
    /// Per token: the row position of its document's first token.
    pub(crate) starts: Vec<u32>,
    /// Per token: one past the row position of its document's last token.
    pub(crate) ends: Vec<u32>,
    /// Per token: its position within its document (the RoPE position).
    pub(crate) positions: Vec<u32>,
    /// Length of the longest document.
    longest: usize,
}

impl Segments {
    /// From document ids `[b, t]` (row-major), non-decreasing along each row.
    pub fn from_doc_ids(doc_ids: &[u32], b: usize, t: usize) -> Result<Arc<Segments>> {
        if doc_ids.len() != b * t || b == 0 || t == 0 {
            bail!(
                "segments: {} document ids for a [{b}, {t}] batch",
                doc_ids.len()
            );
        }
        let n = b * t;
        let (mut starts, mut ends, mut positions) = (vec![0u32; n], vec![0u32; n], vec![0u32; n]);
        let mut longest = 0;
        for r in 0..b {
            let row = &doc_ids[r * t..(r + 1) * t];
            let mut start = 0;
            for i in 0..=t {
                if i == t || (i > 0 && row[i] != row[i - 1]) {
                    if i < t && row[i] < row[i - 1] {
                        bail!(
                            "segments: row {r}: document id {} after {} (ids must be \
                             non-decreasing, each document contiguous)",
                            row[i],
                            row[i - 1]
                        );
                    }
                    for p in start..i {
                        starts[r * t + p] = start as u32;
                        ends[r * t + p] = i as u32;
                        positions[r * t + p] = (p - start) as u32;
                    }
                    longest = longest.max(i - start);
                    start = i;
                }
            }
        }
        Ok(Arc::new(Segments {
            b,
            t,
            starts,
            ends,
            positions,
            longest,
        }))
    }

    /// `(b, t)` of the batch these segments describe.
    pub fn dims(&self) -> (usize, usize) {
        (self.b, self.t)
    }

    /// Per-token positions within their documents, `[b, t]` row-major.
    pub fn positions(&self) -> &[u32] {
        &self.positions
    }

    /// Length of the longest document (the largest RoPE position is one less).
    pub fn longest(&self) -> usize {
        self.longest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_and_positions() {
        let s = Segments::from_doc_ids(&[0, 0, 0, 1, 1, 2, 7, 7, 7, 7, 7, 7], 2, 6).unwrap();
        assert_eq!(s.starts, [0, 0, 0, 3, 3, 5, 0, 0, 0, 0, 0, 0]);
        assert_eq!(s.ends, [3, 3, 3, 5, 5, 6, 6, 6, 6, 6, 6, 6]);
        assert_eq!(s.positions(), [0, 1, 2, 0, 1, 0, 0, 1, 2, 3, 4, 5]);
        assert_eq!(s.longest(), 6);
        let e = Segments::from_doc_ids(&[0, 1, 0], 1, 3).unwrap_err();
        assert!(e.to_string().contains("non-decreasing"), "{e}");
        assert!(Segments::from_doc_ids(&[0, 1], 1, 3).is_err());
    }
}
