//! Reduced precision for the CPU encoder's linear layers (`precision = "bf16"`): weights and
//! inputs rounded to bfloat16 (round to nearest, ties to even), products summed in f32.
//!
//! Where the CPU has AVX-512 BF16, [`Bf16Weight::matmul`] runs a kernel on `VDPBF16PS`: 32
//! bf16 products per instruction, twice the rate of f32 FMAs. Elsewhere the same rounded
//! values are multiplied in f32 by candle's gemm: the same products, summed in another
//! order. Attention (scores and their weighted sum) and the element-wise kernels stay f32.
//!
//! The one place in sluice with `unsafe`: the kernel is AVX-512 intrinsics on raw pointers
//! (pulp, which the f32 kernels use, has no bf16 dot product). Packed weights are only
//! made after the CPU is found to have the instructions, and the kernel's reads and writes
//! stay within the slices it is given (checked in debug builds).
#![allow(unsafe_code)]

use candle_core::Tensor;

use crate::amx;
use crate::kernels::read_in_place;

/// Rows of the output a kernel call computes (its accumulators: 8 rows x 32 columns).
const MR: usize = 8;
/// Columns of a packed weight panel.
const NR: usize = 32;
/// Rows of the input converted and kept hot in cache while every panel passes over them.
const M_BLOCK: usize = 128;

/// `x` rounded to the nearest bfloat16 (ties to even), as its 16 bits.
pub fn to_bf16(x: f32) -> u16 {
    let bits = x.to_bits();
    if x.is_nan() {
        return ((bits >> 16) | 0x40) as u16; // stays a NaN
    }
    ((bits + 0x7fff + ((bits >> 16) & 1)) >> 16) as u16
}

/// `x` rounded to bfloat16 precision, as an f32.
pub fn round_bf16(x: f32) -> f32 {
    f32::from_bits((to_bf16(x) as u32) << 16)
}

/// True when this CPU runs the bf16 kernel (AVX-512 F and BF16).
pub fn has_bf16_kernel() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512bf16")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// A `(k, n)` weight in bf16: packed for the kernel, or rounded f32 for the fallback.
pub(crate) enum Bf16Weight {
    /// Panels of [`NR`] columns; in each, for every pair of rows `(2p, 2p + 1)`, the
    /// [`NR`] columns' two values side by side (`VDPBF16PS` multiplies such pairs).
    Packed { k: usize, n: usize, panels: Vec<u16> },
    /// The rounded values as f32, `(k, n)`, for candle's matmul.
    Rounded(Tensor),
}

impl Bf16Weight {
    /// Round a `(k, n)` f32 weight; packed when `kernel` (see [`has_bf16_kernel`]).
    pub(crate) fn new(w: &Tensor, kernel: bool) -> candle_core::Result<Self> {
        let (k, n) = w.dims2()?;
        let values = w.flatten_all()?.to_vec1::<f32>()?;
        if !kernel {
            let rounded: Vec<f32> = values.iter().map(|&v| round_bf16(v)).collect();
            return Ok(Bf16Weight::Rounded(Tensor::from_vec(rounded, (k, n), w.device())?));
        }
        let (pairs, panels) = (k.div_ceil(2), n.div_ceil(NR));
        let mut packed = vec![0u16; panels * pairs * NR * 2];
        for panel in 0..panels {
            for p in 0..pairs {
                for j in 0..NR.min(n - panel * NR) {
                    let col = panel * NR + j;
                    let at = ((panel * pairs + p) * NR + j) * 2;
                    packed[at] = to_bf16(values[2 * p * n + col]);
                    if 2 * p + 1 < k {
                        packed[at + 1] = to_bf16(values[(2 * p + 1) * n + col]);
                    }
                }
            }
        }
        Ok(Bf16Weight::Packed { k, n, panels: packed })
    }

    /// `x (m, k) x w (k, n)`, `x` rounded to bf16 first.
    pub(crate) fn matmul(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Bf16Weight::Rounded(w) => {
                let rounded: Vec<f32> = x.flatten_all()?.to_vec1::<f32>()?.into_iter().map(round_bf16).collect();
                Tensor::from_vec(rounded, x.dims(), x.device())?.matmul(w)
            }
            Bf16Weight::Packed { k, n, panels } => {
                let (m, xk) = x.dims2()?;
                if xk != *k {
                    candle_core::bail!("bf16 matmul: input has {xk} columns, the weight {k} rows")
                }
                // read in place: a copy of the input cost a tenth of the kernel's time
                let x = x.contiguous()?;
                let out = read_in_place(&x, "bf16 matmul", |values| Ok(packed_matmul(values, m, *k, *n, panels, true)))?;
                Tensor::from_vec(out, (m, *n), x.device())
            }
        }
    }
}

/// Rows `x (m, k)` as bf16 pairs: element `p` of a row holds columns `2p` (low half) and
/// `2p + 1` (high half); then zero rows up to `rows`.
fn pairs_of(x: &[f32], m: usize, k: usize, rows: usize) -> Vec<u32> {
    let pairs = k.div_ceil(2);
    let mut out = vec![0u32; rows.max(m) * pairs];
    for (row, dst) in x.chunks_exact(k).zip(out.chunks_exact_mut(pairs)) {
        // SAFETY: pairs_of runs only beside the kernel, where has_bf16_kernel() said the CPU
        // has AVX-512 F and BF16; `dst` holds a row's pairs
        let done = unsafe { pairs_of_32s(row, dst) };
        for (p, d) in dst.iter_mut().enumerate().skip(done) {
            let hi = row.get(2 * p + 1).map_or(0, |&v| to_bf16(v));
            *d = (to_bf16(row[2 * p]) as u32) | ((hi as u32) << 16);
        }
    }
    out
}

/// The first `32 x (row.len() / 32)` values of `row` as bf16 pairs into `dst`, 32 at a time
/// (`VCVTNE2PS2BF16`: round to nearest even as [`to_bf16`]; it reads a subnormal input as
/// zero, which [`to_bf16`] keeps, a difference below 1e-38); the number of pairs written.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn pairs_of_32s(row: &[f32], dst: &mut [u32]) -> usize {
    use std::arch::x86_64::*;
    let chunks = row.len() / 32;
    debug_assert!(dst.len() >= chunks * 16);
    for c in 0..chunks {
        let lo = _mm512_loadu_ps(row.as_ptr().add(c * 32));
        let hi = _mm512_loadu_ps(row.as_ptr().add(c * 32 + 16));
        // the low 16 bf16 values (the low half of each pair, then the high) come from `lo`
        let both: __m512i = std::mem::transmute(_mm512_cvtne2ps_pbh(hi, lo));
        _mm512_storeu_si512(dst.as_mut_ptr().add(c * 16) as *mut __m512i, both);
    }
    chunks * 16
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn pairs_of_32s(_: &[f32], _: &mut [u32]) -> usize {
    0
}

/// `x (m, k) x packed (k, n)`, row-major f32 out; with `amx`, on AMX tiles where the process
/// has them and `k` is a multiple of [`amx::K_STEP`], else on the AVX-512 kernel.
fn packed_matmul(x: &[f32], m: usize, k: usize, n: usize, panels: &[u16], amx: bool) -> Vec<f32> {
    let (pairs, n_panels) = (k.div_ceil(2), n.div_ceil(NR));
    let padded = n_panels * NR;
    let tiles = (amx && amx::available() && k.is_multiple_of(amx::K_STEP)).then(amx::Tiles::configure);
    // AMX computes whole tiles: rows up to a multiple of its 16 (M_BLOCK is one)
    let rows_of = |rows: usize| if tiles.is_some() { rows.next_multiple_of(amx::ROWS) } else { rows };
    // not zeroed first: the kernels store every element (each row's every panel)
    let mut out: Vec<f32> = Vec::with_capacity(rows_of(m) * padded);
    for m0 in (0..m).step_by(M_BLOCK) {
        let rows = M_BLOCK.min(m - m0);
        let a = pairs_of(&x[m0 * k..(m0 + rows) * k], rows, k, rows_of(rows));
        for panel in 0..n_panels {
            let b = &panels[panel * pairs * NR * 2..(panel + 1) * pairs * NR * 2];
            if let Some(tiles) = &tiles {
                debug_assert!((m0 + rows_of(rows)) * padded <= out.capacity());
                // SAFETY: tiles exist only where amx::available(); `a` holds rows_of(rows)
                // rows of `pairs` (a multiple of 16) pairs, `b` the panel, and those rows
                // of `padded` floats from (m0, panel) lie within `out`'s capacity
                unsafe { tiles.panel(&a, rows_of(rows), pairs, b, out.as_mut_ptr().add(m0 * padded + panel * NR), padded) };
                continue;
            }
            for r0 in (0..rows).step_by(MR) {
                let at = (m0 + r0) * padded + panel * NR;
                let r = MR.min(rows - r0);
                debug_assert!(at + (r - 1) * padded + NR <= out.capacity());
                // SAFETY: Packed weights exist only where has_bf16_kernel() said the CPU
                // has AVX-512 F and BF16; `a` and `b` hold the rows the kernel reads, and
                // its `r` rows of NR values at `at`, `padded` apart, are within `out`'s capacity
                unsafe { kernel_rows(&a[r0 * pairs..], pairs, b, out.as_mut_ptr().add(at), padded, r) };
            }
        }
    }
    drop(tiles);
    // SAFETY: the loops above stored all m x padded elements (AMX's padding rows after them)
    unsafe { out.set_len(m * padded) };
    if padded == n {
        return out;
    }
    out.chunks_exact(padded).flat_map(|row| row[..n].iter().copied()).collect()
}

/// The kernel for `rows` (1 to [`MR`]) rows.
#[cfg(target_arch = "x86_64")]
unsafe fn kernel_rows(a: &[u32], pairs: usize, b: &[u16], c: *mut f32, ldc: usize, rows: usize) {
    match rows {
        8 => kernel::<8>(a, pairs, b, c, ldc),
        7 => kernel::<7>(a, pairs, b, c, ldc),
        6 => kernel::<6>(a, pairs, b, c, ldc),
        5 => kernel::<5>(a, pairs, b, c, ldc),
        4 => kernel::<4>(a, pairs, b, c, ldc),
        3 => kernel::<3>(a, pairs, b, c, ldc),
        2 => kernel::<2>(a, pairs, b, c, ldc),
        _ => kernel::<1>(a, pairs, b, c, ldc),
    }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn kernel_rows(_: &[u32], _: usize, _: &[u16], _: *mut f32, _: usize, _: usize) {
    unreachable!("packed bf16 weights exist only on x86_64 with AVX-512 BF16")
}

/// `R` rows of `a` (bf16 pairs, `pairs` per row) times one [`NR`]-column panel `b`, into
/// `c` (row stride `ldc`; stored, not read): 2 x `R` accumulators of 16 lanes, one
/// `VDPBF16PS` each per pair.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn kernel<const R: usize>(a: &[u32], pairs: usize, b: &[u16], c: *mut f32, ldc: usize) {
    use std::arch::x86_64::*;
    debug_assert!(a.len() >= (R - 1) * pairs + pairs && b.len() >= pairs * NR * 2);
    let mut acc = [[_mm512_setzero_ps(); 2]; R];
    let (a, b) = (a.as_ptr(), b.as_ptr());
    for p in 0..pairs {
        let b0: __m512bh = std::mem::transmute(_mm512_loadu_si512(b.add(p * NR * 2) as *const __m512i));
        let b1: __m512bh = std::mem::transmute(_mm512_loadu_si512(b.add(p * NR * 2 + NR) as *const __m512i));
        for (r, acc) in acc.iter_mut().enumerate() {
            let av: __m512bh = std::mem::transmute(_mm512_set1_epi32(*a.add(r * pairs + p) as i32));
            acc[0] = _mm512_dpbf16_ps(acc[0], av, b0);
            acc[1] = _mm512_dpbf16_ps(acc[1], av, b1);
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        let row = c.add(r * ldc);
        _mm512_storeu_ps(row, acc[0]);
        _mm512_storeu_ps(row.add(16), acc[1]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn matrix(rows: usize, cols: usize, seed: u32) -> Vec<f32> {
        (0..rows * cols).map(|i| (((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) >> 8) % 2001) as f32 / 1000.0 - 1.0).collect()
    }

    /// The product of the bf16-rounded values, summed in f64.
    fn reference(x: &[f32], w: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
        let mut out = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                out[i * n + j] = (0..k).map(|t| round_bf16(x[i * k + t]) as f64 * round_bf16(w[t * n + j]) as f64).sum::<f64>() as f32;
            }
        }
        out
    }

    #[test]
    fn rounding_is_to_nearest_even() {
        assert_eq!(to_bf16(1.0), 0x3f80);
        // 1 + 2^-8 is halfway between two bf16 values: ties go to the even one (1.0)
        assert_eq!(round_bf16(1.0 + 1.0 / 256.0), 1.0);
        assert_eq!(round_bf16(1.0 + 3.0 / 256.0), 1.0 + 4.0 / 256.0);
        assert!(round_bf16(f32::NAN).is_nan());
        assert_eq!(round_bf16(-2.5), -2.5);
    }

    #[test]
    fn pairs_hold_each_value_rounded_as_to_bf16_does() {
        if !has_bf16_kernel() {
            return; // pairs are made only for the kernel
        }
        // 141 columns: four runs of 32 converted at once, then an odd tail
        let (m, k) = (3, 141);
        let mut x = matrix(m, k, 5);
        // ties to even both ways, a NaN-free spread of magnitudes and signs
        for (i, v) in [1.0 + 1.0 / 256.0, 1.0 + 3.0 / 256.0, -3.0e-5, 6.5e4, 0.0, -0.0, 1.0e-30].into_iter().enumerate() {
            x[i * 19] = v;
        }
        let got = pairs_of(&x, m, k, m);
        for (row, pairs) in x.chunks_exact(k).zip(got.chunks_exact(k.div_ceil(2))) {
            for (p, pair) in pairs.iter().enumerate() {
                assert_eq!(*pair as u16, to_bf16(row[2 * p]), "column {}", 2 * p);
                assert_eq!((*pair >> 16) as u16, row.get(2 * p + 1).map_or(0, |&v| to_bf16(v)), "column {}", 2 * p + 1);
            }
        }
    }

    #[test]
    fn every_path_multiplies_the_rounded_values() {
        // odd sizes: row tails of the kernels (AMX's 16 and 32, AVX-512's 8, a second block
        // of 128 rows), a column panel cut short, an odd k and one AMX cannot take
        for (m, k, n) in [(1, 2, 32), (13, 384, 96), (130, 77, 40), (9, 1536, 64), (150, 384, 96), (40, 64, 40)] {
            let (x, w) = (matrix(m, k, 1), matrix(k, n, 7));
            let want = reference(&x, &w, m, k, n);
            let xt = Tensor::from_vec(x.clone(), (m, k), &Device::Cpu).unwrap();
            let wt = Tensor::from_vec(w, (k, n), &Device::Cpu).unwrap();
            let mut got = vec![("fallback", Bf16Weight::new(&wt, false).unwrap().matmul(&xt).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap())];
            if let Bf16Weight::Packed { panels, .. } = Bf16Weight::new(&wt, has_bf16_kernel()).unwrap() {
                got.push(("AVX-512", packed_matmul(&x, m, k, n, &panels, false)));
                if amx::available() {
                    got.push(("AMX", packed_matmul(&x, m, k, n, &panels, true)));
                }
            }
            for (path, got) in got {
                assert_eq!(got.len(), m * n);
                let worst = got.iter().zip(&want).map(|(g, w)| (g - w).abs() / (1.0 + w.abs())).fold(0f32, f32::max);
                assert!(worst < 1e-4, "m={m} k={k} n={n} {path}: off by {worst}");
            }
        }
    }
}
