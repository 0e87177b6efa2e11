//! Keel's own f32 GEMM for x86-64 with AVX2 and FMA: BLIS-style cache blocking around a 6×16
//! register-blocked microkernel.
//!
//! `dst[m, n] = (accumulate ? dst : 0) + alpha · a[m, k] · b[k, n]`, the contract of
//! [`super::kernel::sgemm`], which dispatches here when the CPU has the features.
//!
//! Loop nest (Goto/BLIS): for each `NC`-wide column block of `b` and each `KC`-deep slice of
//! the shared dimension, `b`'s block is packed into `NR`-wide panels (each `KC × NR`, 16 KiB,
//! sized for L1); for each `MC`-tall row block, `a` is packed into `MR`-tall panels (the
//! whole `MC × KC` block, 144 KiB, sized for L2); then the microkernel runs every `MR × NR`
//! tile of the block, streaming one `a` panel against one `b` panel. Packing turns every
//! strided or transposed view into unit-stride reads, and zero-pads the last partial panel so
//! the microkernel always computes a full tile (edge tiles go through a scratch tile).
//!
//! Determinism: each output element is computed by exactly one thread, as a sum over the same
//! `KC` slices in the same order, with the same instructions wherever the tile grid puts it.
//! Threads split the output on tile boundaries of the global grid, so the result is
//! bit-identical whatever the thread count or timing.
//!
//! Tests (against an f64 triple loop, for this kernel and the `gemm`-crate fallback) are in
//! `sgemm_tests.rs`.

use std::arch::x86_64::*;
use std::cell::RefCell;

use super::kernel::{Mat, PAR_MIN_WORK};
use rayon::prelude::*;

/// Microkernel tile: 6 rows × 16 columns = 12 ymm accumulators, plus 2 for the `b` row and 1
/// for the broadcast `a` value, of the 16 ymm registers. 12 independent FMA chains cover Zen 3's
/// two FMA pipes × 4-cycle latency with room to spare.
const MR: usize = 6;
const NR: usize = 16;
/// Depth of one packed slice: a `KC × NR` `b` panel is 16 KiB and stays in the 32 KiB L1d
/// while every `a` panel of the block streams past it.
const KC: usize = 256;
/// Rows of `a` packed at once: `MC × KC` floats = 144 KiB, resident in L2 (512 KiB-1 MiB).
const MC: usize = 144;
/// Columns of `b` packed at once: `KC × NC` floats = 1 MiB, from L2/L3.
const NC: usize = 1024;
/// At most this many rows of `a`, the product skips packing (decode steps: `m` = 1): packing
/// `b` would read and write all of it to use each value `m` times.
const SMALL_M: usize = 2;

/// Whether this CPU runs the AVX2+FMA kernel.
pub(crate) fn available() -> bool {
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The operands of one call, shareable across rayon tasks: each task writes its own disjoint
/// rectangle of `dst` and only reads `a` and `b`.
#[derive(Clone, Copy)]
struct Job {
    dst: *mut f32,
    dst_rs: usize,
    accumulate: bool,
    a: Mat,
    b: Mat,
    alpha: f32,
    k: usize,
}
// SAFETY: the caller of `sgemm` guarantees the pointers are valid for the call, `a` and `b` are
// read-only, and the tasks write disjoint parts of `dst`.
unsafe impl Send for Job {}
unsafe impl Sync for Job {}

impl Job {
    /// The same product restricted to rows `r0..` and columns `c0..` of `dst`.
    fn sub(mut self, r0: usize, c0: usize) -> Job {
        // SAFETY (pointer arithmetic only, `wrapping_offset` never dereferences): the offsets
        // stay inside the extents the caller vouched for.
        self.dst = self.dst.wrapping_add(r0 * self.dst_rs + c0);
        self.a.ptr = self.a.ptr.wrapping_offset(r0 as isize * self.a.rs);
        self.b.ptr = self.b.ptr.wrapping_offset(c0 as isize * self.b.cs);
        self
    }
}

/// See [`super::kernel::sgemm`].
///
/// # Safety
/// As there, and the CPU must support AVX2 and FMA ([`available`]).
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn sgemm(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut f32,
    dst_rs: usize,
    accumulate: bool,
    a: Mat,
    b: Mat,
    alpha: f32,
    parallel: bool,
) {
    debug_assert!(a.rs >= 0 && a.cs >= 0 && b.rs >= 0 && b.cs >= 0);
    if m == 0 || n == 0 {
        return;
    }
    let job = Job {
        dst,
        dst_rs,
        accumulate,
        a,
        b,
        alpha,
        k,
    };
    let threads = rayon::current_num_threads();
    let parts = if parallel && m * n * k >= PAR_MIN_WORK * 4 {
        threads
    } else {
        1
    };
    let small = m <= SMALL_M && (b.rs == 1 || b.cs == 1);
    // Split the output along its longer side, on tile boundaries (see the module comment);
    // splitting rows duplicates packing `b` in every task, splitting columns packing `a`, so
    // the longer side duplicates the smaller operand.
    let by_rows = !small && m >= n;
    let (len, unit) = if by_rows { (m, MR) } else { (n, NR) };
    let tiles = len.div_ceil(unit);
    let parts = parts.min(tiles);
    let run = |t: usize| {
        let (lo, hi) = ((tiles * t / parts) * unit, (tiles * (t + 1) / parts) * unit);
        let hi = hi.min(len);
        let (r0, c0, rows, cols) = if by_rows {
            (lo, 0, hi - lo, n)
        } else {
            (0, lo, m, hi - lo)
        };
        let job = job.sub(r0, c0);
        // SAFETY: AVX2+FMA are present (our caller checked); `job` covers a sub-rectangle
        // of the caller's valid extents, disjoint from every other task's.
        unsafe {
            if small {
                small_m(rows, cols, job)
            } else {
                blocked(rows, cols, job)
            }
        }
    };
    if parts <= 1 {
        run(0)
    } else {
        (0..parts).into_par_iter().for_each(run)
    }
}

thread_local! {
    /// Per-thread packing buffers (`a` block, `b` block), kept between calls: a decode step
    /// makes hundreds of small products and should not allocate for each.
    static PACK: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// A 32-byte aligned region of `len` floats inside `v`, growing it if needed.
fn aligned(v: &mut Vec<f32>, len: usize) -> *mut f32 {
    if v.len() < len + 8 {
        v.resize(len + 8, 0.0);
    }
    let p = v.as_mut_ptr();
    p.wrapping_add(p.align_offset(32))
}

/// The whole product on this thread, packed and blocked.
#[target_feature(enable = "avx2,fma")]
unsafe fn blocked(m: usize, n: usize, job: Job) {
    let k = job.k;
    if k == 0 {
        if !job.accumulate {
            for i in 0..m {
                std::ptr::write_bytes(job.dst.add(i * job.dst_rs), 0, n);
            }
        }
        return;
    }
    // Equal `KC` slices (k = 300 runs as 150 + 150, not 256 + 44): fewer short, slow slices.
    let kc_max = k.div_ceil(k.div_ceil(KC));
    let nc_max = NC.min(n.div_ceil(NR) * NR);
    let mc_max = MC.min(m.div_ceil(MR) * MR);
    PACK.with(|cell| {
        // A nested call on this thread cannot happen (nothing below yields to rayon); if it
        // ever did, it gets fresh buffers instead of a panic.
        let mut fresh = (Vec::new(), Vec::new());
        let mut guard = cell.try_borrow_mut();
        let (abuf, bbuf) = match guard.as_deref_mut() {
            Ok(bufs) => (&mut bufs.0, &mut bufs.1),
            Err(_) => (&mut fresh.0, &mut fresh.1),
        };
        let pa = aligned(abuf, mc_max * kc_max);
        let pb = aligned(bbuf, nc_max * kc_max);
        let (a, b) = (job.a, job.b);
        for jc in (0..n).step_by(NC) {
            let nc = NC.min(n - jc);
            for pc in (0..k).step_by(kc_max) {
                let kc = kc_max.min(k - pc);
                let bsrc = b.ptr.offset(pc as isize * b.rs + jc as isize * b.cs);
                pack_b(kc, nc, bsrc, b.rs, b.cs, pb);
                // The first slice overwrites `dst` unless the caller accumulates.
                let load = job.accumulate || pc > 0;
                for ic in (0..m).step_by(MC) {
                    let mc = MC.min(m - ic);
                    let asrc = a.ptr.offset(ic as isize * a.rs + pc as isize * a.cs);
                    pack_a(mc, kc, asrc, a.rs, a.cs, pa);
                    for jr in (0..nc).step_by(NR) {
                        let bp = pb.add(jr * kc);
                        let w = NR.min(nc - jr);
                        for ir in (0..mc).step_by(MR) {
                            let ap = pa.add(ir * kc);
                            let h = MR.min(mc - ir);
                            let c = job.dst.add((ic + ir) * job.dst_rs + jc + jr);
                            if h == MR && w == NR {
                                kernel(kc, ap, bp, c, job.dst_rs, job.alpha, load);
                            } else {
                                edge(kc, ap, bp, c, job.dst_rs, job.alpha, load, h, w);
                            }
                        }
                    }
                }
            }
        }
    })
}

/// Packs `kc × nc` of `b` into `NR`-wide panels, each `kc` rows of `NR` consecutive floats;
/// columns past `nc` are zero.
#[target_feature(enable = "avx2,fma")]
unsafe fn pack_b(kc: usize, nc: usize, b: *const f32, rs: isize, cs: isize, out: *mut f32) {
    let full = nc / NR;
    if cs == 1 {
        // Row-major `b`: walk it row by row, dealing each row's 16-float pieces out to the
        // panels. Going down one panel at a time instead reads a new cache line every row at
        // a large stride, which the prefetchers do not follow across pages: memory-latency
        // bound, 30% of the whole product for a weight gradient.
        for p in 0..kc {
            let s = b.offset(p as isize * rs);
            let d = out.add(p * NR);
            for q in 0..full {
                let (s, d) = (s.add(q * NR), d.add(q * NR * kc));
                _mm256_store_ps(d, ld(s));
                _mm256_store_ps(d.add(8), ld(s.add(8)));
            }
            let w = nc - full * NR;
            if w > 0 {
                let d = d.add(full * NR * kc);
                std::ptr::copy_nonoverlapping(s.add(full * NR), d, w);
                std::ptr::write_bytes(d.add(w), 0, NR - w);
            }
        }
        return;
    }
    for jr in (0..nc).step_by(NR) {
        let w = NR.min(nc - jr);
        let src = b.offset(jr as isize * cs);
        let dst = out.add(jr * kc);
        let mut p = 0;
        if w == NR && rs == 1 {
            // Transposed `b` (a weight `[n, k]` read as `wᵀ`): 8×8 blocks transposed in
            // registers, sixteen weight rows each read contiguously.
            while p + 8 <= kc {
                for half in 0..2 {
                    let s = src.offset(half * 8 * cs + p as isize);
                    let r = std::array::from_fn(|j| ld(s.offset(j as isize * cs)));
                    for (q, v) in transpose8(r).into_iter().enumerate() {
                        _mm256_store_ps(dst.add((p + q) * NR + half as usize * 8), v);
                    }
                }
                p += 8;
            }
        }
        // The rest (a partial panel, the last < 8 rows, other strides) element by element.
        for p in p..kc {
            for j in 0..NR {
                *dst.add(p * NR + j) = if j < w {
                    *src.offset(p as isize * rs + j as isize * cs)
                } else {
                    0.0
                };
            }
        }
    }
}

/// Packs `mc × kc` of `a` into `MR`-tall panels, each `kc` columns of `MR` consecutive floats;
/// rows past `mc` are zero.
#[target_feature(enable = "avx2,fma")]
unsafe fn pack_a(mc: usize, kc: usize, a: *const f32, rs: isize, cs: isize, out: *mut f32) {
    if rs == 1 {
        // Transposed `a` (a weight gradient's `dyᵀ`): each column of `a` is a contiguous row in
        // memory; walk them in order, dealing six floats to each panel (see `pack_b`).
        let full = mc / MR;
        for p in 0..kc {
            let s = a.offset(p as isize * cs);
            let d = out.add(p * MR);
            for r in 0..full {
                *(d.add(r * MR * kc) as *mut [f32; MR]) = *(s.add(r * MR) as *const [f32; MR]);
            }
            let h = mc - full * MR;
            if h > 0 {
                let d = d.add(full * MR * kc);
                std::ptr::copy_nonoverlapping(s.add(full * MR), d, h);
                std::ptr::write_bytes(d.add(h), 0, MR - h);
            }
        }
        return;
    }
    for ir in (0..mc).step_by(MR) {
        let h = MR.min(mc - ir);
        let src = a.offset(ir as isize * rs);
        let dst = out.add(ir * kc);
        let mut p = 0;
        if h == MR && cs == 1 {
            // Row-major `a`: eight columns of the six rows at a time, transposed in registers
            // (two zero rows pad the 8×8), each output column stored as 4 + 2 floats.
            while p + 8 <= kc {
                let r = std::array::from_fn(|i| {
                    if i < MR {
                        ld(src.offset(i as isize * rs).add(p))
                    } else {
                        _mm256_setzero_ps()
                    }
                });
                for (q, v) in transpose8(r).into_iter().enumerate() {
                    let d = dst.add((p + q) * MR);
                    st4(d, _mm256_castps256_ps128(v));
                    // `d + 4` is 8-byte aligned: `dst` is 32-byte aligned and MR·4 = 24.
                    _mm_store_sd(
                        d.add(4) as *mut f64,
                        _mm_castps_pd(_mm256_extractf128_ps::<1>(v)),
                    );
                }
                p += 8;
            }
        }
        for p in p..kc {
            for i in 0..MR {
                *dst.add(p * MR + i) = if i < h {
                    *src.offset(i as isize * rs + p as isize * cs)
                } else {
                    0.0
                };
            }
        }
    }
}

/// An unaligned 8-float vector. `_mm256_loadu_ps` and `_mm256_storeu_ps` are built on
/// `copy_nonoverlapping`, which under debug assertions (this workspace's dev profile, where the
/// CLI, tests and benches run) adds an overlap check and a round trip through the stack: twice
/// the time of a memory-bound loop. A field of a packed struct is a plain unaligned access.
#[repr(C, packed)]
struct Unaligned<T>(T);

/// Unaligned load of 8 floats from `p`.
#[inline(always)]
unsafe fn ld(p: *const f32) -> __m256 {
    (*(p as *const Unaligned<__m256>)).0
}

/// Unaligned store of 8 floats to `p`.
#[inline(always)]
unsafe fn st(p: *mut f32, v: __m256) {
    *(p as *mut Unaligned<__m256>) = Unaligned(v);
}

/// Unaligned store of 4 floats to `p`.
#[inline(always)]
unsafe fn st4(p: *mut f32, v: __m128) {
    *(p as *mut Unaligned<__m128>) = Unaligned(v);
}

/// The transpose of an 8×8 block held as eight rows: out row `q` = column `q`.
#[target_feature(enable = "avx2,fma")]
#[inline]
fn transpose8(r: [__m256; 8]) -> [__m256; 8] {
    // Interleave pairs, then quads, then swap 128-bit halves: the textbook 8×8 transpose.
    let t0 = _mm256_unpacklo_ps(r[0], r[1]);
    let t1 = _mm256_unpackhi_ps(r[0], r[1]);
    let t2 = _mm256_unpacklo_ps(r[2], r[3]);
    let t3 = _mm256_unpackhi_ps(r[2], r[3]);
    let t4 = _mm256_unpacklo_ps(r[4], r[5]);
    let t5 = _mm256_unpackhi_ps(r[4], r[5]);
    let t6 = _mm256_unpacklo_ps(r[6], r[7]);
    let t7 = _mm256_unpackhi_ps(r[6], r[7]);
    let s0 = _mm256_shuffle_ps::<0x44>(t0, t2);
    let s1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
    let s2 = _mm256_shuffle_ps::<0x44>(t1, t3);
    let s3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
    let s4 = _mm256_shuffle_ps::<0x44>(t4, t6);
    let s5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
    let s6 = _mm256_shuffle_ps::<0x44>(t5, t7);
    let s7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
    [
        _mm256_permute2f128_ps::<0x20>(s0, s4),
        _mm256_permute2f128_ps::<0x20>(s1, s5),
        _mm256_permute2f128_ps::<0x20>(s2, s6),
        _mm256_permute2f128_ps::<0x20>(s3, s7),
        _mm256_permute2f128_ps::<0x31>(s0, s4),
        _mm256_permute2f128_ps::<0x31>(s1, s5),
        _mm256_permute2f128_ps::<0x31>(s2, s6),
        _mm256_permute2f128_ps::<0x31>(s3, s7),
    ]
}

/// The 6×16 microkernel: `c[6, 16] (row stride rs) = (load ? c : 0) + alpha · ap · bp`, with
/// `ap` a packed `kc × 6` panel and `bp` a packed, 32-byte aligned `kc × 16` panel.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn kernel(
    kc: usize,
    ap: *const f32,
    bp: *const f32,
    c: *mut f32,
    rs: usize,
    alpha: f32,
    load: bool,
) {
    for i in 0..MR {
        _mm_prefetch::<_MM_HINT_T0>(c.add(i * rs) as *const i8);
        _mm_prefetch::<_MM_HINT_T0>(c.add(i * rs + NR - 1) as *const i8);
    }
    let mut acc = [[_mm256_setzero_ps(); 2]; MR];
    // Per step: two aligned `b` loads, six broadcasts from `a`, twelve FMAs into registers
    // (the row loop has a constant trip count and is unrolled; unrolling `p` too measured no
    // faster on Zen 3).
    for p in 0..kc {
        let b0 = _mm256_load_ps(bp.add(p * NR));
        let b1 = _mm256_load_ps(bp.add(p * NR + 8));
        for (i, row) in acc.iter_mut().enumerate() {
            let av = _mm256_broadcast_ss(&*ap.add(p * MR + i));
            row[0] = _mm256_fmadd_ps(av, b0, row[0]);
            row[1] = _mm256_fmadd_ps(av, b1, row[1]);
        }
    }
    let al = _mm256_set1_ps(alpha);
    for (i, row) in acc.iter().enumerate() {
        let d = c.add(i * rs);
        for (h, &v) in row.iter().enumerate() {
            let out = if load {
                _mm256_fmadd_ps(al, v, ld(d.add(h * 8)))
            } else {
                _mm256_mul_ps(al, v)
            };
            st(d.add(h * 8), out);
        }
    }
}

/// A partial `h × w` tile at the matrix edge: the full tile into scratch, then the valid part
/// with the same arithmetic as [`kernel`]'s store (a fused `alpha · v + c`).
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn edge(
    kc: usize,
    ap: *const f32,
    bp: *const f32,
    c: *mut f32,
    rs: usize,
    alpha: f32,
    load: bool,
    h: usize,
    w: usize,
) {
    let mut tile = [0f32; MR * NR];
    kernel(kc, ap, bp, tile.as_mut_ptr(), NR, 1.0, false);
    for i in 0..h {
        for j in 0..w {
            let d = c.add(i * rs + j);
            let v = tile[i * NR + j];
            *d = if load {
                alpha.mul_add(v, *d)
            } else {
                alpha * v
            };
        }
    }
}

/// `m ≤ SMALL_M` rows without packing, reading `b` in place: dot products down `b`'s columns
/// when they are contiguous (`b` = a transposed weight), else `a`-weighted sums of `b`'s
/// contiguous rows.
#[target_feature(enable = "avx2,fma")]
unsafe fn small_m(m: usize, n: usize, job: Job) {
    let (a, b, k) = (job.a, job.b, job.k);
    let store = |d: *mut f32, v: f32| {
        // SAFETY: `d` is an element of this task's part of `dst`.
        unsafe {
            *d = if job.accumulate {
                job.alpha.mul_add(v, *d)
            } else {
                job.alpha * v
            }
        }
    };
    // `a`'s row gathered once into a contiguous buffer (it is short: `k` floats).
    let mut arow = vec![0f32; k];
    for i in 0..m {
        for (p, x) in arow.iter_mut().enumerate() {
            *x = *a.ptr.offset(i as isize * a.rs + p as isize * a.cs);
        }
        let drow = job.dst.add(i * job.dst_rs);
        if b.rs == 1 {
            for j in 0..n {
                let col = std::slice::from_raw_parts(b.ptr.offset(j as isize * b.cs), k);
                store(drow.add(j), dot(&arow, col));
            }
        } else {
            // 64 columns at a time in 8 accumulators, walking down `b`'s rows.
            for j0 in (0..n).step_by(64) {
                let w = 64.min(n - j0);
                let mut acc = [0f32; 64];
                for (p, &x) in arow.iter().enumerate() {
                    let row =
                        std::slice::from_raw_parts(b.ptr.offset(p as isize * b.rs).add(j0), w);
                    for (o, &y) in acc.iter_mut().zip(row) {
                        *o = x.mul_add(y, *o);
                    }
                }
                for (j, &v) in acc[..w].iter().enumerate() {
                    store(drow.add(j0 + j), v);
                }
            }
        }
    }
}

/// Dot product in four 8-lane accumulators (FMA latency), fixed summation order.
#[target_feature(enable = "avx2,fma")]
unsafe fn dot(x: &[f32], y: &[f32]) -> f32 {
    let n = x.len().min(y.len());
    let (xp, yp) = (x.as_ptr(), y.as_ptr());
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut p = 0;
    while p + 32 <= n {
        for (q, s) in acc.iter_mut().enumerate() {
            let o = p + q * 8;
            *s = _mm256_fmadd_ps(ld(xp.add(o)), ld(yp.add(o)), *s);
        }
        p += 32;
    }
    while p + 8 <= n {
        acc[0] = _mm256_fmadd_ps(ld(xp.add(p)), ld(yp.add(p)), acc[0]);
        p += 8;
    }
    let s = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
    let mut lanes = [0f32; 8];
    st(lanes.as_mut_ptr(), s);
    let mut total = lanes.iter().sum::<f32>();
    for q in p..n {
        total = x[q].mul_add(y[q], total);
    }
    total
}
