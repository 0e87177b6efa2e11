//! Hashed features for the linear model: word unigrams and bigrams plus character 3–5-grams
//! of each word (with boundary marks), over the normalised view — so the classifier sees the
//! same de-obfuscated text the rules do. Hashing (FNV-1a) needs no vocabulary file.

use crate::normalize::NormText;
use std::cell::RefCell;

pub const DEFAULT_DIM: usize = 1 << 16;

fn fnv(parts: &[&[u8]], salt: u8) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ salt as u64;
    for p in parts {
        for &b in *p {
            h ^= b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Sparse, L2-normalised feature vector of `text` (sorted by index, no duplicates). Encoded
/// payloads are the caller's business: see [`crate::normalize::decoded_views`].
pub fn featurize(text: &str, dim: usize, norm: &mut NormText, out: &mut Vec<(u32, f32)>) {
    norm.normalize(text);
    featurize_view(&norm.text, dim, out);
}

/// Buffers [`featurize_view`] reuses between calls.
#[derive(Default)]
struct Scratch {
    idx: Vec<u32>,
    padded: Vec<u8>,
    /// Occurrences per feature index (all zero between calls), and which are non-zero.
    counts: Vec<u32>,
    seen: Vec<u64>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// [`featurize`] of an already normalised view.
pub fn featurize_view(view: &str, dim: usize, out: &mut Vec<(u32, f32)>) {
    out.clear();
    SCRATCH.with(|s| {
        let s = &mut *s.borrow_mut();
        let idx = &mut s.idx;
        idx.clear();
        let d = dim as u64;
        let mut prev: Option<&str> = None;
        for w in view.split(' ').filter(|w| !w.is_empty()) {
            idx.push((fnv(&[w.as_bytes()], 1) % d) as u32);
            if let Some(p) = prev {
                idx.push((fnv(&[p.as_bytes(), w.as_bytes()], 2) % d) as u32);
            }
            prev = Some(w);
            let padded = &mut s.padded;
            padded.clear();
            padded.push(b'<');
            padded.extend_from_slice(w.as_bytes());
            padded.push(b'>');
            for n in 3..=5 {
                if padded.len() < n {
                    break;
                }
                for g in padded.windows(n) {
                    idx.push((fnv(&[g], 3) % d) as u32);
                }
            }
        }
        // Count occurrences per index and read them back in index order from a bitmap of the
        // indices seen: the same sorted, merged list as sorting the indices, which was the
        // largest cost of featurising a prompt.
        s.counts.resize(dim, 0);
        s.seen.resize(dim.div_ceil(64), 0);
        for &i in idx.iter() {
            s.counts[i as usize] += 1;
            s.seen[i as usize / 64] |= 1 << (i % 64);
        }
        for (k, word) in s.seen.iter_mut().enumerate() {
            while *word != 0 {
                let i = k * 64 + word.trailing_zeros() as usize;
                *word &= *word - 1;
                out.push((i as u32, (1.0 + s.counts[i] as f32).ln()));
                s.counts[i] = 0;
            }
        }
    });
    let norm2: f32 = out.iter().map(|(_, v)| v * v).sum::<f32>().sqrt();
    if norm2 > 0.0 {
        for (_, v) in out.iter_mut() {
            *v /= norm2;
        }
    }
}

/// A dense vector as sparse features (for embedding heads).
pub fn dense(v: &[f32]) -> Vec<(u32, f32)> {
    v.iter().enumerate().map(|(i, &x)| (i as u32, x)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plain reading: collect indices, sort, merge runs.
    fn reference(view: &str, dim: usize) -> Vec<(u32, f32)> {
        let mut idx: Vec<u32> = Vec::new();
        let d = dim as u64;
        let mut prev: Option<&str> = None;
        for w in view.split(' ').filter(|w| !w.is_empty()) {
            idx.push((fnv(&[w.as_bytes()], 1) % d) as u32);
            if let Some(p) = prev {
                idx.push((fnv(&[p.as_bytes(), w.as_bytes()], 2) % d) as u32);
            }
            prev = Some(w);
            let padded: Vec<u8> = [b"<", w.as_bytes(), b">"].concat();
            for n in 3..=5 {
                for g in padded.windows(n) {
                    idx.push((fnv(&[g], 3) % d) as u32);
                }
            }
        }
        idx.sort_unstable();
        let mut out: Vec<(u32, f32)> = Vec::new();
        for i in idx {
            match out.last_mut() {
                Some((j, c)) if *j == i => *c += 1.0,
                _ => out.push((i, 1.0)),
            }
        }
        for (_, c) in out.iter_mut() {
            *c = (1.0 + *c).ln();
        }
        let norm2: f32 = out.iter().map(|(_, v)| v * v).sum::<f32>().sqrt();
        for (_, v) in out.iter_mut() {
            *v /= norm2;
        }
        out
    }

    #[test]
    fn counting_gives_the_sorted_features_exactly() {
        let mut out = Vec::new();
        for (view, dim) in [
            ("how to make a bomb how to make a cake", DEFAULT_DIM),
            ("a a a a b", 64),
            ("x", 7),
            ("", DEFAULT_DIM),
        ] {
            featurize_view(view, dim, &mut out);
            assert_eq!(out, reference(view, dim), "{view:?}");
        }
    }
}
