//! Tests of the strided GEMM behind every fused kernel ([`super::kernel::sgemm`]): Keel's
//! AVX2+FMA kernel where the CPU has it, and the `gemm`-crate fallback, both against an f64
//! triple loop over ragged shapes, every operand layout, accumulate and alpha, serial and
//! parallel; and the bit-for-bit determinism training resumes rely on.

use super::kernel::{self, Mat};
use keel_core::rng::rng_for;
use rand::Rng;

/// Operand layouts: row-major, transposed (column-major), and a view with both strides
/// non-unit (every other column of a wider matrix).
#[derive(Clone, Copy, Debug)]
enum Lay {
    Rows,
    T,
    Gapped,
}

/// A `rows × cols` matrix in layout `lay`: its backing data and view.
fn mat(rows: usize, cols: usize, lay: Lay, seed: u64) -> (Vec<f32>, Mat) {
    let mut rng = rng_for(seed, "sgemm-test");
    let len = match lay {
        Lay::Rows | Lay::T => rows * cols,
        Lay::Gapped => rows * cols * 2 + 1,
    };
    let data: Vec<f32> = (0..len.max(1))
        .map(|_| rng.random_range(-1.0..1.0))
        .collect();
    let p = data.as_ptr();
    let view = match lay {
        Lay::Rows => Mat::rows(p, cols),
        Lay::T => Mat::t(p, rows),
        Lay::Gapped => Mat {
            ptr: p,
            rs: 2 * cols as isize,
            cs: 2,
        },
    };
    (data, view)
}

fn at(m: Mat, i: usize, j: usize) -> f64 {
    // SAFETY: tests only index inside the matrices `mat` built.
    unsafe { *m.ptr.offset(i as isize * m.rs + j as isize * m.cs) as f64 }
}

type Gemm = unsafe fn(usize, usize, usize, *mut f32, usize, bool, Mat, Mat, f32, bool);

/// Runs `f` on one case and checks it against an f64 triple loop, within the worst-case
/// f32 summation bound; returns the result for bit-comparisons.
#[allow(clippy::too_many_arguments)]
fn check(
    f: Gemm,
    (m, n, k): (usize, usize, usize),
    (la, lb): (Lay, Lay),
    pad: usize,
    accumulate: bool,
    alpha: f32,
    parallel: bool,
    seed: u64,
) -> Vec<f32> {
    let (_ad, a) = mat(m, k, la, seed);
    let (_bd, b) = mat(k, n, lb, seed + 1);
    let rs = n + pad;
    let init = mat(m, rs, Lay::Rows, seed + 2).0;
    // Without `accumulate` the old contents must not be read: NaN would leak through.
    let mut dst: Vec<f32> = if accumulate {
        init.clone()
    } else {
        vec![f32::NAN; m * rs]
    };
    // SAFETY: every view spans the data `mat` allocated; `dst` is m × rs.
    unsafe {
        f(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            rs,
            accumulate,
            a,
            b,
            alpha,
            parallel,
        )
    };
    let eps = f32::EPSILON as f64;
    for i in 0..m {
        for j in 0..rs {
            let got = dst[i * rs + j];
            if j >= n {
                let keep = if accumulate {
                    init[i * rs + j]
                } else {
                    f32::NAN
                };
                assert!(
                    got.to_bits() == keep.to_bits(),
                    "padding written at {i},{j}"
                );
                continue;
            }
            let (mut want, mut mag) = (0f64, 0f64);
            for p in 0..k {
                want += at(a, i, p) * at(b, p, j);
                mag += (at(a, i, p) * at(b, p, j)).abs();
            }
            let c0 = if accumulate {
                init[i * rs + j] as f64
            } else {
                0.0
            };
            let want = c0 + alpha as f64 * want;
            let tol = 2.0 * (k + 2) as f64 * eps * (alpha.abs() as f64 * mag + c0.abs());
            assert!(
                (got as f64 - want).abs() <= tol + 1e-30,
                "{m}x{n}x{k} {la:?}/{lb:?} pad {pad} acc {accumulate} alpha {alpha} \
                 par {parallel}: [{i},{j}] {got} vs {want}"
            );
        }
    }
    dst
}

const LAYS: [(Lay, Lay); 5] = [
    (Lay::Rows, Lay::Rows),
    (Lay::Rows, Lay::T),
    (Lay::T, Lay::Rows),
    (Lay::T, Lay::T),
    (Lay::Gapped, Lay::Gapped),
];

/// Both kernels: the dispatching entry point (ours on AVX2+FMA machines) and the
/// `gemm`-crate fallback, which must keep working where it is the one that runs.
fn kernels() -> Vec<Gemm> {
    vec![kernel::sgemm, kernel::sgemm_gemm_crate]
}

#[test]
fn small_and_ragged_shapes_match_naive() {
    let dims = [1, 2, 3, 5, 6, 7, 13, 16, 17, 31];
    let mut seed = 0;
    for f in kernels() {
        for &m in &dims {
            for &n in &dims {
                for &k in &[1, 4, 17, 33] {
                    for (case, &lays) in LAYS.iter().enumerate() {
                        seed += 3;
                        let (pad, acc) = (case % 2 * 3, case % 3 == 0);
                        let alpha = [1.0, -0.5, 2.0][case % 3];
                        check(f, (m, n, k), lays, pad, acc, alpha, seed % 2 == 0, seed);
                    }
                }
            }
        }
    }
}

#[test]
fn zero_depth_scales_or_clears() {
    for f in kernels() {
        for acc in [false, true] {
            check(f, (5, 19, 0), LAYS[0], 2, acc, 1.5, true, 1);
            check(f, (1, 7, 0), LAYS[1], 0, acc, 1.5, false, 2);
        }
    }
}

#[test]
fn blocked_shapes_match_naive() {
    // Cross every blocking boundary: m > MC, n > NC, k > KC (k = 4096: sixteen slices);
    // uneven splits across threads; tiny m (the unpacked decode path).
    let shapes = [
        (151, 1043, 300),
        (97, 61, 4096),
        (1, 1043, 300),
        (2, 257, 129),
        (3, 200, 4096),
        (300, 7, 64),
        (11, 300, 2),
    ];
    for (s, &shape) in shapes.iter().enumerate() {
        for (c, &lays) in LAYS.iter().enumerate() {
            let seed = (s * 10 + c) as u64;
            check(
                kernel::sgemm,
                shape,
                lays,
                c % 2,
                c % 2 == 1,
                0.75,
                true,
                seed,
            );
            check(
                kernel::sgemm,
                shape,
                lays,
                0,
                c % 2 == 0,
                1.0,
                false,
                seed + 5,
            );
        }
    }
}

#[test]
fn result_is_independent_of_threads() {
    // Training resumes bit-identically only if the kernel is deterministic: the same bits
    // serial, on 2 and 3 threads (uneven shares), and on every repeat.
    for (shape, lays) in [
        ((129, 77, 300), LAYS[0]),
        ((40, 515, 257), LAYS[1]),
        ((1, 1000, 64), LAYS[1]),
        ((2, 999, 64), LAYS[2]),
    ] {
        let run = |threads: usize, par: bool| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| check(kernel::sgemm, shape, lays, 1, true, 0.5, par, 42))
        };
        let base = run(1, false);
        for (t, par) in [(2, true), (3, true), (3, false), (2, true)] {
            let got = run(t, par);
            let same = base
                .iter()
                .zip(&got)
                .all(|(x, y)| x.to_bits() == y.to_bits());
            assert!(same, "{shape:?}: {t} threads par {par} differs from serial");
        }
    }
}
