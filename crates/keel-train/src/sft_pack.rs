//! SFT packing: whole examples side by side in rows of at most `max_len` tokens, chosen by
//! best-fit decreasing (TRL's `packing_strategy="bfd"`), and their collation into a batch
//! whose documents cannot see each other ([`keel_model::ops::Segments`]: attention stays
//! inside each example and RoPE positions restart at 0), so each example trains exactly as it
//! would alone, with its own loss mask, and almost no padding is computed.
//!
//! Examples are never split: one longer than `max_len` must have been dropped or truncated
//! first (the [`keel_data::chat::Truncation`] policy, applied when examples are rendered).

use crate::error::{Result, TrainError};
use crate::sft_batch::Batch;
use candle_core::{Device, Tensor};
use keel_core::rng::rng_for;
use keel_data::chat::TokenizedExample;
use keel_model::ops::Segments;
use rand::seq::SliceRandom;
use std::collections::BTreeSet;

/// How SFT examples are laid out in a micro-batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PackingMode {
    /// One example per row, right-padded to the batch's longest.
    #[default]
    Padding,
    /// Several examples per row (best-fit decreasing), attention masked at their boundaries.
    Packing,
}

/// Best-fit decreasing: examples (by length, `lens[i]` tokens) into rows of at most `max_len`
/// tokens. Longest first, each into the row it fills most tightly (the fullest row it still
/// fits in), a new row when none has room. Ties in length are broken by a `seed`ed shuffle,
/// so the result is deterministic given the seed. Returns each row's example indices.
pub fn pack_best_fit(lens: &[usize], max_len: usize, seed: u64) -> Result<Vec<Vec<usize>>> {
    if let Some((i, &n)) = lens
        .iter()
        .enumerate()
        .find(|&(_, &n)| n == 0 || n > max_len)
    {
        return Err(TrainError::Data(format!(
            "packing: example {i} has {n} tokens, outside 1..={max_len} (apply the truncation \
             policy before packing)"
        )));
    }
    let mut order: Vec<usize> = (0..lens.len()).collect();
    order.shuffle(&mut rng_for(seed, "sft-pack"));
    order.sort_by_key(|&i| std::cmp::Reverse(lens[i]));
    let mut rows: Vec<Vec<usize>> = Vec::new();
    // (room left, row index): the first entry with room ≥ n is the best fit.
    let mut room: BTreeSet<(usize, usize)> = BTreeSet::new();
    for i in order {
        let n = lens[i];
        match room.range((n, 0)..).next().copied() {
            Some((left, r)) => {
                room.remove(&(left, r));
                rows[r].push(i);
                room.insert((left - n, r));
            }
            None => {
                room.insert((max_len - n, rows.len()));
                rows.push(vec![i]);
            }
        }
    }
    Ok(rows)
}

/// Collate packed rows (each a list of examples, in order) into one batch: every example is
/// shifted into inputs/targets on its own (no target crosses into the next example), rows
/// are right-padded to the longest, and the padding is a document of its own with mask 0.
pub fn collate_packed(rows: &[Vec<&TokenizedExample>], pad_id: u32) -> Result<Batch> {
    let b = rows.len();
    let t = rows
        .iter()
        .map(|r| r.iter().map(|e| e.len().saturating_sub(1)).sum::<usize>())
        .max()
        .unwrap_or(0);
    if b == 0 || t == 0 {
        return Err(TrainError::Data("empty batch".into()));
    }
    let (mut x, mut y) = (vec![pad_id; b * t], vec![pad_id; b * t]);
    let mut m = vec![0f32; b * t];
    let mut doc = vec![0u32; b * t];
    let (mut trained, mut tokens) = (0, 0);
    for (r, exs) in rows.iter().enumerate() {
        let mut at = r * t;
        for (d, ex) in exs.iter().enumerate() {
            if ex.ids.len() != ex.mask.len() || ex.len() < 2 {
                return Err(TrainError::Data(format!(
                    "packing: an example with {} ids and {} mask entries",
                    ex.ids.len(),
                    ex.mask.len()
                )));
            }
            let n = ex.len() - 1;
            x[at..at + n].copy_from_slice(&ex.ids[..n]);
            y[at..at + n].copy_from_slice(&ex.ids[1..]);
            for (k, &mk) in ex.mask[1..].iter().enumerate() {
                m[at + k] = f32::from(mk);
            }
            doc[at..at + n].fill(d as u32);
            trained += ex.mask[1..].iter().filter(|&&v| v == 1).count();
            tokens += n;
            at += n;
        }
        doc[at..(r + 1) * t].fill(exs.len() as u32);
    }
    if trained == 0 {
        return Err(TrainError::Data(format!(
            "a batch of {b} packed rows has an all-zero loss mask: nothing to train on \
             (are the assistant turns empty or truncated away?)"
        )));
    }
    let dev = &Device::Cpu;
    Ok(Batch {
        x: Tensor::from_vec(x, (b, t), dev)?,
        y: Tensor::from_vec(y, (b, t), dev)?,
        mask: Tensor::from_vec(m, (b, t), dev)?,
        trained,
        tokens,
        positions: b * t,
        segs: Some(Segments::from_doc_ids(&doc, b, t)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    fn examples(n: usize, seed: u64) -> Vec<TokenizedExample> {
        let mut rng = rng_for(seed, "pack-test");
        (0..n)
            .map(|i| {
                let len = rng.random_range(2..=40usize);
                let ids = (0..len).map(|k| (i * 100 + k) as u32).collect();
                let mut mask: Vec<u8> = (0..len).map(|_| rng.random_range(0..2u8)).collect();
                mask[len - 1] = 1;
                TokenizedExample { ids, mask }
            })
            .collect()
    }

    #[test]
    fn best_fit_rows_fit_and_hold_every_example_once() {
        let exs = examples(300, 1);
        let lens: Vec<usize> = exs.iter().map(|e| e.len()).collect();
        let max_len = 64;
        let rows = pack_best_fit(&lens, max_len, 7).unwrap();
        let mut seen = vec![0; exs.len()];
        for r in &rows {
            assert!(r.iter().map(|&i| lens[i]).sum::<usize>() <= max_len);
            r.iter().for_each(|&i| seen[i] += 1);
        }
        assert!(seen.iter().all(|&c| c == 1), "each example exactly once");
        // Best fit leaves little room: fewer rows than 1.1× the lower bound.
        let total: usize = lens.iter().sum();
        let bound = total.div_ceil(max_len);
        assert!(
            rows.len() * 10 <= bound * 11,
            "{} rows for {bound}",
            rows.len()
        );
        // Deterministic given the seed.
        assert_eq!(rows, pack_best_fit(&lens, max_len, 7).unwrap());
        // Too long is an error, not a panic.
        let e = pack_best_fit(&[3, 65], 64, 0).unwrap_err().to_string();
        assert!(e.contains("example 1"), "{e}");
    }

    #[test]
    fn packed_batches_keep_each_examples_ids_mask_and_boundaries() {
        let exs = examples(40, 2);
        let lens: Vec<usize> = exs.iter().map(|e| e.len()).collect();
        let rows = pack_best_fit(&lens, 80, 3).unwrap();
        let refs: Vec<Vec<&TokenizedExample>> = rows
            .iter()
            .map(|r| r.iter().map(|&i| &exs[i]).collect())
            .collect();
        let b = collate_packed(&refs, 0).unwrap();
        let (bs, t) = b.x.dims2().unwrap();
        let x: Vec<u32> = b.x.flatten_all().unwrap().to_vec1().unwrap();
        let y: Vec<u32> = b.y.flatten_all().unwrap().to_vec1().unwrap();
        let m: Vec<f32> = b.mask.flatten_all().unwrap().to_vec1().unwrap();
        let segs = b.segs.as_ref().unwrap();
        assert_eq!(segs.dims(), (bs, t));
        let (mut trained, mut tokens) = (0, 0);
        for (r, row) in rows.iter().enumerate() {
            let mut at = r * t;
            for &i in row {
                let ex = &exs[i];
                let n = ex.len() - 1;
                assert_eq!(&x[at..at + n], &ex.ids[..n]);
                assert_eq!(&y[at..at + n], &ex.ids[1..]);
                let mk: Vec<u8> = m[at..at + n].iter().map(|&v| v as u8).collect();
                assert_eq!(mk, &ex.mask[1..], "loss mask of example {i}");
                // Positions restart at each example.
                let pos: Vec<u32> = (0..n as u32).collect();
                assert_eq!(&segs.positions()[at..at + n], pos.as_slice());
                trained += ex.mask[1..].iter().filter(|&&v| v == 1).count();
                tokens += n;
                at += n;
            }
            assert!(
                m[at..(r + 1) * t].iter().all(|&v| v == 0.0),
                "padding trains"
            );
        }
        assert_eq!(
            (b.trained, b.tokens, b.positions),
            (trained, tokens, bs * t)
        );
        let zero = TokenizedExample {
            ids: vec![1, 2, 3],
            mask: vec![0, 0, 0],
        };
        let e = collate_packed(&[vec![&zero, &zero]], 0).err().unwrap();
        assert!(e.to_string().contains("all-zero loss mask"), "{e}");
    }
}
