//! Fused rotary embedding in Hugging Face's "rotate half" layout, applied to activations in
//! the projection's own layout `[b, t, heads·dh]`: no transpose to `[b, h, t, dh]`, no copy.
//!
//! Per head, with `x = (x1, x2)` split at `dh/2`: `y1 = x1·cos − x2·sin`, `y2 = x2·cos + x1·sin`.
//! The map is a rotation, so its backward is the inverse rotation (sin negated).
//! Positions are `offset..offset + t` per row, or, for packed rows ([`Segments`]), each
//! token's position within its own document.

use super::kernel::{row_chunk, slice, with_f32};
use super::segments::Segments;
use candle_core::{bail, CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use rayon::prelude::*;
use std::sync::Arc;

/// Cos/sin tables `[max_pos, dh/2]`, shared by every layer.
#[derive(Debug)]
pub struct RopeTables {
    pub head_dim: usize,
    pub max_pos: usize,
    pub cos: Vec<f32>,
    pub sin: Vec<f32>,
}

impl RopeTables {
    pub fn new(head_dim: usize, max_pos: usize, theta: f64) -> Arc<Self> {
        let half = head_dim / 2;
        let mut cos = Vec::with_capacity(max_pos * half);
        let mut sin = Vec::with_capacity(max_pos * half);
        for p in 0..max_pos {
            for i in 0..half {
                let inv = 1.0 / theta.powf(2.0 * i as f64 / head_dim as f64);
                let a = p as f64 * inv;
                cos.push(a.cos() as f32);
                sin.push(a.sin() as f32);
            }
        }
        Arc::new(RopeTables {
            head_dim,
            max_pos,
            cos,
            sin,
        })
    }

    /// The tables for positions `offset..offset + t` as tensors `[t, dh/2]` (for the
    /// composite reference).
    pub fn narrow(&self, offset: usize, t: usize) -> Result<(Tensor, Tensor)> {
        let half = self.head_dim / 2;
        let r = offset * half..(offset + t) * half;
        let dev = &candle_core::Device::Cpu;
        Ok((
            Tensor::from_slice(&self.cos[r.clone()], (t, half), dev)?,
            Tensor::from_slice(&self.sin[r], (t, half), dev)?,
        ))
    }

    /// The tables at each of `segs`' per-token positions, as tensors `[b, t, dh/2]` (for the
    /// composite reference).
    pub fn gather(&self, segs: &Segments) -> Result<(Tensor, Tensor)> {
        let half = self.head_dim / 2;
        let (b, t) = segs.dims();
        let pick = |table: &[f32]| -> Vec<f32> {
            segs.positions()
                .iter()
                .flat_map(|&p| {
                    table[p as usize * half..(p as usize + 1) * half]
                        .iter()
                        .copied()
                })
                .collect()
        };
        if segs.longest() > self.max_pos {
            bail!(
                "rope: positions up to {} exceed the table's {}",
                segs.longest(),
                self.max_pos
            );
        }
        let dev = &candle_core::Device::Cpu;
        Ok((
            Tensor::from_vec(pick(&self.cos), (b, t, half), dev)?,
            Tensor::from_vec(pick(&self.sin), (b, t, half), dev)?,
        ))
    }
}

struct Rope {
    tables: Arc<RopeTables>,
    heads: usize,
    offset: usize,
    /// Per-token positions of packed rows (replaces `offset`).
    segs: Option<Arc<Segments>>,
    /// +1 forward, −1 for the inverse rotation used by backward.
    sign: f32,
}

impl Rope {
    fn run(&self, x: &[f32], dims: &[usize]) -> Result<Vec<f32>> {
        let dh = self.tables.head_dim;
        let half = dh / 2;
        let width = self.heads * dh;
        if dims.len() < 2 || dims[dims.len() - 1] != width {
            bail!(
                "rope: expected [.., t, {width}] (heads {}, head_dim {dh}), got {dims:?}",
                self.heads
            );
        }
        let t = dims[dims.len() - 2];
        let rows = x.len() / width;
        if let Some(sg) = &self.segs {
            let (sb, st) = sg.dims();
            if st != t || sb * st != rows {
                bail!("rope: segments [{sb}, {st}] do not match input {dims:?}");
            }
            if sg.longest() > self.tables.max_pos {
                bail!(
                    "rope: a document of {} positions exceeds the table's {}",
                    sg.longest(),
                    self.tables.max_pos
                );
            }
        } else if self.offset + t > self.tables.max_pos {
            bail!(
                "rope: positions up to {} exceed the table's {}",
                self.offset + t,
                self.tables.max_pos
            );
        }
        let mut y = vec![0f32; x.len()];
        let chunk = row_chunk(rows, width) * width;
        y.par_chunks_mut(chunk)
            .zip(x.par_chunks(chunk))
            .enumerate()
            .for_each(|(ci, (yc, xc))| {
                let row0 = ci * chunk / width;
                for (r, (yr, xr)) in yc
                    .chunks_exact_mut(width)
                    .zip(xc.chunks_exact(width))
                    .enumerate()
                {
                    let pos = match &self.segs {
                        None => self.offset + (row0 + r) % t,
                        Some(sg) => sg.positions[row0 + r] as usize,
                    };
                    let cos = &self.tables.cos[pos * half..(pos + 1) * half];
                    let sin = &self.tables.sin[pos * half..(pos + 1) * half];
                    for (yh, xh) in yr.chunks_exact_mut(dh).zip(xr.chunks_exact(dh)) {
                        let (x1, x2) = xh.split_at(half);
                        let (y1, y2) = yh.split_at_mut(half);
                        for i in 0..half {
                            let s = self.sign * sin[i];
                            y1[i] = x1[i] * cos[i] - x2[i] * s;
                            y2[i] = x2[i] * cos[i] + x1[i] * s;
                        }
                    }
                }
            });
        Ok(y)
    }
}

impl CustomOp1 for Rope {
    fn name(&self) -> &'static str {
        "keel-rope"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = slice(s, l, self.name())?;
        Ok((CpuStorage::F32(self.run(x, l.dims())?), l.shape().clone()))
    }

    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let inverse = Rope {
            tables: self.tables.clone(),
            heads: self.heads,
            offset: self.offset,
            segs: self.segs.clone(),
            sign: -self.sign,
        };
        let g = with_f32(grad, self.name(), |g| inverse.run(g, grad.dims()))??;
        Ok(Some(Tensor::from_vec(g, grad.shape(), grad.device())?))
    }
}

/// RoPE on `x` `[.., t, heads·dh]` for positions `offset..offset + t`; differentiable.
pub fn rope(x: &Tensor, tables: &Arc<RopeTables>, heads: usize, offset: usize) -> Result<Tensor> {
    x.contiguous()?.apply_op1(Rope {
        tables: tables.clone(),
        heads,
        offset,
        segs: None,
        sign: 1.0,
    })
}

/// RoPE on packed rows `x` `[b, t, heads·dh]`: each token at its position within its own
/// document (`segs`), so positions restart at 0 at every document; differentiable.
pub fn rope_segments(
    x: &Tensor,
    tables: &Arc<RopeTables>,
    heads: usize,
    segs: &Arc<Segments>,
) -> Result<Tensor> {
    x.contiguous()?.apply_op1(Rope {
        tables: tables.clone(),
        heads,
        offset: 0,
        segs: Some(segs.clone()),
        sign: 1.0,
    })
}
