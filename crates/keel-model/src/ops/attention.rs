//! Fused causal attention with grouped-query heads, f32, flash-attention style on CPU.
//!
//! Works on the projections' own layout — `q` `[b, t, h·dh]`, `k`/`v` `[b, s, kvh·dh]` —
//! so no transposes or `contiguous()` copies are needed, and `k`/`v` may be strided views of
//! a preallocated KV cache. The last `t` of the `s` key positions are the queries' own; query
//! `i` sees keys `0..=i + (s − t)`. Scores are computed per head in tiles of query rows, each
//! tile only against the keys it can see (no mask tensor, no wasted upper triangle). Forward
//! keeps only the per-row log-sum-exp; backward recomputes the probabilities from it.
//!
//! With [`Segments`] (packed documents, `s = t`), a query sees only keys of its own document:
//! tiles are cut at document boundaries and each is computed against its document's keys
//! only, so the blocks between documents are skipped, not computed and masked.

use super::kernel::{
    dot_f32, exp_shifted, sgemm, slice, softmax_prefix, with_f32, Mat, SendConst, SendPtr,
    PAR_MIN_WORK,
};
use super::segments::Segments;
use candle_core::{bail, CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;
use std::sync::{Arc, Mutex};

/// Query rows per tile: the tile's scores (`TILE × s` floats) stay in L2.
const TILE: usize = 64;

struct Attention {
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    /// Document boundaries of packed rows; `None` is plain causal attention.
    segs: Option<Arc<Segments>>,
    /// Log-sum-exp of each query row's scores, `[b, heads, t]`, saved by forward.
    lse: Mutex<Vec<f32>>,
}

/// Shape and strides of one attention call, in elements.
#[derive(Clone, Copy)]
struct Geom {
    b: usize,
    t: usize,
    s: usize,
    heads: usize,
    groups: usize,
    dh: usize,
    /// Row stride of q, the output and dq (`heads · dh`).
    qw: usize,
    k_bs: usize,
    k_rs: usize,
    v_bs: usize,
    v_rs: usize,
    scale: f32,
}

impl Geom {
    fn offset(&self) -> usize {
        self.s - self.t
    }
    fn work(&self) -> usize {
        self.b * self.heads * self.t * self.s * self.dh
    }
}

fn strides3(l: &Layout, what: &str) -> Result<(usize, usize, usize)> {
    let (dims, st) = (l.dims(), l.stride());
    if dims.len() != 3 || st[2] != 1 {
        bail!("attention: {what} must be [b, s, heads·dh] with unit last stride, got {dims:?} / {st:?}");
    }
    Ok((dims[1], st[0], st[1]))
}

/// The query tiles of batch row `bi`, as `(r0, m, lo)`: rows `r0..r0 + m` see keys
/// `lo..=row + offset`. Without segments `lo` is 0; with them a tile stays inside one document
/// and `lo` is that document's first position.
fn for_tiles(g: &Geom, segs: Option<&Segments>, bi: usize, mut f: impl FnMut(usize, usize, usize)) {
    let mut r0 = 0;
    while r0 < g.t {
        let (m, lo) = match segs {
            None => (TILE.min(g.t - r0), 0),
            Some(s) => {
                let i = bi * g.t + r0;
                (TILE.min(s.ends[i] as usize - r0), s.starts[i] as usize)
            }
        };
        f(r0, m, lo);
        r0 += m;
    }
}

fn run_tasks(n: usize, parallel: bool, f: impl Fn(usize) + Sync + Send) {
    if parallel {
        (0..n).into_par_iter().for_each(f);
    } else {
        (0..n).for_each(f);
    }
}

impl Attention {
    fn geom(&self, q: &Layout, k: &Layout, v: &Layout) -> Result<Geom> {
        let (h, kvh, dh) = (self.heads, self.kv_heads, self.head_dim);
        let qd = q.dims();
        if qd.len() != 3 || qd[2] != h * dh {
            bail!("attention: q must be [b, t, {}], got {qd:?}", h * dh);
        }
        let (s, k_bs, k_rs) = strides3(k, "k")?;
        let (sv, v_bs, v_rs) = strides3(v, "v")?;
        if k.dims()[0] != qd[0] || v.dims()[0] != qd[0] || k.dims()[2] != kvh * dh || sv != s {
            bail!(
                "attention: k {:?} / v {:?} do not match q {qd:?}",
                k.dims(),
                v.dims()
            );
        }
        if s < qd[1] {
            bail!("attention: {s} key positions for {} queries", qd[1]);
        }
        if let Some(sg) = &self.segs {
            if sg.dims() != (qd[0], qd[1]) || s != qd[1] {
                bail!(
                    "attention: segments {:?} need q and k of that [b, t], got q {qd:?}, {s} keys",
                    sg.dims()
                );
            }
        }
        Ok(Geom {
            b: qd[0],
            t: qd[1],
            s,
            heads: h,
            groups: h / kvh,
            dh,
            qw: h * dh,
            k_bs,
            k_rs,
            v_bs,
            v_rs,
            scale: 1.0 / (dh as f32).sqrt(),
        })
    }
}

#[allow(clippy::too_many_arguments)]
/// Forward for one (batch, head): output rows and log-sum-exps.
///
/// # Safety
/// Pointers must address the tensors described by `g`; `out`/`lse` regions for this
/// (batch, head) must not be written by anyone else.
unsafe fn fwd_head(
    g: &Geom,
    segs: Option<&Segments>,
    bi: usize,
    hi: usize,
    q: *const f32,
    k: *const f32,
    v: *const f32,
    out: *mut f32,
    lse: *mut f32,
    buf: &mut Vec<f32>,
) {
    let kvi = hi / g.groups;
    let q = q.add(bi * g.t * g.qw + hi * g.dh);
    let out = out.add(bi * g.t * g.qw + hi * g.dh);
    let k = k.add(bi * g.k_bs + kvi * g.dh);
    let v = v.add(bi * g.v_bs + kvi * g.dh);
    let lse = lse.add((bi * g.heads + hi) * g.t);
    for_tiles(g, segs, bi, |r0, m, lo| {
        // Keys lo..r0 + m + offset: n of them.
        let n = r0 + m + g.offset() - lo;
        buf.resize(m * n, 0.0);
        sgemm(
            m,
            n,
            g.dh,
            buf.as_mut_ptr(),
            n,
            false,
            Mat::rows(q.add(r0 * g.qw), g.qw),
            Mat::t(k.add(lo * g.k_rs), g.k_rs),
            1.0,
            false,
        );
        for (i, row) in buf.chunks_exact_mut(n).enumerate() {
            *lse.add(r0 + i) = softmax_prefix(row, r0 + i + g.offset() + 1 - lo, g.scale);
        }
        sgemm(
            m,
            g.dh,
            n,
            out.add(r0 * g.qw),
            g.qw,
            false,
            Mat::rows(buf.as_ptr(), n),
            Mat::rows(v.add(lo * g.v_rs), g.v_rs),
            1.0,
            false,
        );
    });
}

impl CustomOp3 for Attention {
    fn name(&self) -> &'static str {
        "keel-causal-attention"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = self.geom(l1, l2, l3)?;
        let q = slice(s1, l1, self.name())?;
        let (k, v) = match (s2, s3) {
            (CpuStorage::F32(k), CpuStorage::F32(v)) => (k.as_slice(), v.as_slice()),
            _ => bail!("attention: expected f32 k/v"),
        };
        let needed = |l: &Layout, bs: usize, rs: usize, len: usize| {
            l.start_offset() + (g.b - 1) * bs + (g.s - 1) * rs + g.heads / g.groups * g.dh <= len
        };
        if !needed(l2, g.k_bs, g.k_rs, k.len()) || !needed(l3, g.v_bs, g.v_rs, v.len()) {
            bail!("attention: k/v layout runs past its storage");
        }
        let mut out = vec![0f32; g.b * g.t * g.qw];
        let mut lse = vec![0f32; g.b * g.heads * g.t];
        let (qp, kp, vp) = (
            SendConst(q.as_ptr()),
            SendConst(k[l2.start_offset()..].as_ptr()),
            SendConst(v[l3.start_offset()..].as_ptr()),
        );
        let (op, lp) = (SendPtr(out.as_mut_ptr()), SendPtr(lse.as_mut_ptr()));
        let segs = self.segs.as_deref();
        run_tasks(g.b * g.heads, g.work() >= PAR_MIN_WORK, |task| {
            let (qp, kp, vp, op, lp) = (qp, kp, vp, op, lp);
            let mut buf = Vec::new();
            // SAFETY: bounds checked above; each task owns one (batch, head) of out and lse.
            unsafe {
                fwd_head(
                    &g,
                    segs,
                    task / g.heads,
                    task % g.heads,
                    qp.0,
                    kp.0,
                    vp.0,
                    op.0,
                    lp.0,
                    &mut buf,
                )
            };
        });
        *self.lse.lock().expect("lse lock") = lse;
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        out: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (k, v) = (k.contiguous()?, v.contiguous()?);
        let g = self.geom(q.layout(), k.layout(), v.layout())?;
        let lse = self.lse.lock().expect("lse lock").clone();
        if lse.len() != g.b * g.heads * g.t {
            bail!("attention backward: forward state missing");
        }
        let name = self.name();
        let mut dq = vec![0f32; g.b * g.t * g.qw];
        let mut dk = vec![0f32; k.elem_count()];
        let mut dv = vec![0f32; v.elem_count()];
        with_f32(q, name, |q| {
            with_f32(&k, name, |k| {
                with_f32(&v, name, |v| {
                    with_f32(out, name, |o| {
                        with_f32(grad, name, |d| {
                            let ptrs = BwdPtrs {
                                q: SendConst(q.as_ptr()),
                                k: SendConst(k.as_ptr()),
                                v: SendConst(v.as_ptr()),
                                o: SendConst(o.as_ptr()),
                                d: SendConst(d.as_ptr()),
                                dq: SendPtr(dq.as_mut_ptr()),
                                dk: SendPtr(dk.as_mut_ptr()),
                                dv: SendPtr(dv.as_mut_ptr()),
                            };
                            let kvh = g.heads / g.groups;
                            let segs = self.segs.as_deref();
                            run_tasks(g.b * kvh, g.work() >= PAR_MIN_WORK, |task| {
                                let (bi, kvi) = (task / kvh, task % kvh);
                                // SAFETY: contiguous inputs of the checked geometry; a task owns
                                // one (batch, kv head): its dq rows and its dk/dv columns.
                                unsafe { bwd_group(&g, segs, bi, kvi, &ptrs, &lse) };
                            });
                        })
                    })
                })
            })
        })?????;
        let dev = q.device();
        Ok((
            Some(Tensor::from_vec(dq, q.shape(), dev)?),
            Some(Tensor::from_vec(dk, k.shape(), dev)?),
            Some(Tensor::from_vec(dv, v.shape(), dev)?),
        ))
    }
}

#[derive(Clone, Copy)]
struct BwdPtrs {
    q: SendConst,
    k: SendConst,
    v: SendConst,
    o: SendConst,
    d: SendConst,
    dq: SendPtr,
    dk: SendPtr,
    dv: SendPtr,
}

/// Backward for one (batch, kv head) and all query heads sharing it:
/// `P = exp(S − lse)`, `dP = dO·Vᵀ`, `dS = P ⊙ (dP − rowsum(dO ⊙ O))`,
/// `dQ = scale·dS·K`, `dK += scale·dSᵀ·Q`, `dV += Pᵀ·dO`.
unsafe fn bwd_group(
    g: &Geom,
    segs: Option<&Segments>,
    bi: usize,
    kvi: usize,
    p: &BwdPtrs,
    lse: &[f32],
) {
    let kw = g.heads / g.groups * g.dh;
    let k = p.k.0.add(bi * g.s * kw + kvi * g.dh);
    let v = p.v.0.add(bi * g.s * kw + kvi * g.dh);
    let dk = p.dk.0.add(bi * g.s * kw + kvi * g.dh);
    let dv = p.dv.0.add(bi * g.s * kw + kvi * g.dh);
    let mut pb = Vec::new();
    let mut db = Vec::new();
    for hi in kvi * g.groups..(kvi + 1) * g.groups {
        let base = bi * g.t * g.qw + hi * g.dh;
        let (q, o, d, dq) = (
            p.q.0.add(base),
            p.o.0.add(base),
            p.d.0.add(base),
            p.dq.0.add(base),
        );
        let lse = &lse[(bi * g.heads + hi) * g.t..][..g.t];
        for_tiles(g, segs, bi, |r0, m, lo| {
            // Keys lo..r0 + m + offset: n of them.
            let n = r0 + m + g.offset() - lo;
            let (kl, vl) = (k.add(lo * kw), v.add(lo * kw));
            pb.resize(m * n, 0.0);
            db.resize(m * n, 0.0);
            let (qt, ot, dt) = (q.add(r0 * g.qw), o.add(r0 * g.qw), d.add(r0 * g.qw));
            sgemm(
                m,
                n,
                g.dh,
                pb.as_mut_ptr(),
                n,
                false,
                Mat::rows(qt, g.qw),
                Mat::t(kl, kw),
                1.0,
                false,
            );
            sgemm(
                m,
                n,
                g.dh,
                db.as_mut_ptr(),
                n,
                false,
                Mat::rows(dt, g.qw),
                Mat::t(vl, kw),
                1.0,
                false,
            );
            for i in 0..m {
                let valid = r0 + i + g.offset() + 1 - lo;
                let pr = &mut pb[i * n..(i + 1) * n];
                exp_shifted(pr, valid, g.scale, lse[r0 + i]);
                let orow = std::slice::from_raw_parts(ot.add(i * g.qw), g.dh);
                let drow = std::slice::from_raw_parts(dt.add(i * g.qw), g.dh);
                let di = dot_f32(orow, drow);
                let dr = &mut db[i * n..(i + 1) * n];
                for (ds, &pv) in dr.iter_mut().zip(pr.iter()) {
                    *ds = pv * (*ds - di);
                }
            }
            sgemm(
                m,
                g.dh,
                n,
                dq.add(r0 * g.qw),
                g.qw,
                false,
                Mat::rows(db.as_ptr(), n),
                Mat::rows(kl, kw),
                g.scale,
                false,
            );
            sgemm(
                n,
                g.dh,
                m,
                dk.add(lo * kw),
                kw,
                true,
                Mat::t(db.as_ptr(), n),
                Mat::rows(qt, g.qw),
                g.scale,
                false,
            );
            sgemm(
                n,
                g.dh,
                m,
                dv.add(lo * kw),
                kw,
                true,
                Mat::t(pb.as_ptr(), n),
                Mat::rows(dt, g.qw),
                1.0,
                false,
            );
        });
    }
}

/// Causal attention: `q` `[b, t, heads·dh]`, `k`/`v` `[b, s, kv_heads·dh]` (s ≥ t; the last
/// `t` key positions are the queries' own) → `[b, t, heads·dh]`. Differentiable in q, k, v.
pub fn causal_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    heads: usize,
    kv_heads: usize,
) -> Result<Tensor> {
    segment_attention(q, k, v, heads, kv_heads, None)
}

/// [`causal_attention`] over packed rows: with `segs` (q, k, v all `[b, t, ·]`, no cache) a
/// query attends only to earlier keys of its own document; `None` is plain causal attention.
pub fn segment_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    heads: usize,
    kv_heads: usize,
    segs: Option<&Arc<Segments>>,
) -> Result<Tensor> {
    let width = q.dim(candle_core::D::Minus1)?;
    if heads == 0
        || kv_heads == 0
        || heads / kv_heads * kv_heads != heads
        || width / heads * heads != width
    {
        bail!("attention: {heads} heads / {kv_heads} kv heads do not fit width {width}");
    }
    q.contiguous()?.apply_op3(
        k,
        v,
        Attention {
            heads,
            kv_heads,
            head_dim: width / heads,
            segs: segs.cloned(),
            lse: Mutex::new(Vec::new()),
        },
    )
}
