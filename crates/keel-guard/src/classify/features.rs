//! Hashed features for the linear model: word unigrams and bigrams plus character 3–5-grams
//! of each word (with boundary marks), over the normalised view — so the classifier sees the
//! same de-obfuscated text the rules do. Hashing (FNV-1a) needs no vocabulary file.

use crate::normalize::NormText;

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

/// [`featurize`] of an already normalised view.
pub fn featurize_view(view: &str, dim: usize, out: &mut Vec<(u32, f32)>) {
    out.clear();
    let mut idx: Vec<u32> = Vec::with_capacity(view.len() * 3);
    let d = dim as u64;
    let mut prev: Option<&str> = None;
    for w in view.split(' ').filter(|w| !w.is_empty()) {
        idx.push((fnv(&[w.as_bytes()], 1) % d) as u32);
        if let Some(p) = prev {
            idx.push((fnv(&[p.as_bytes(), w.as_bytes()], 2) % d) as u32);
        }
        prev = Some(w);
        let padded: Vec<u8> = std::iter::once(b'<')
            .chain(w.bytes())
            .chain(std::iter::once(b'>'))
            .collect();
        for n in 3..=5 {
            if padded.len() < n {
                break;
            }
            for g in padded.windows(n) {
                idx.push((fnv(&[g], 3) % d) as u32);
            }
        }
    }
    idx.sort_unstable();
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j < idx.len() && idx[j] == idx[i] {
            j += 1;
        }
        out.push((idx[i], (1.0 + (j - i) as f32).ln()));
        i = j;
    }
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
