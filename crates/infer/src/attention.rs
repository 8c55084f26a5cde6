//! Scaled dot-product attention for the CPU encoder, one sequence and head at a time, read
//! in place from the fused Q/K/V projection.
//!
//! As whole-batch tensor operations, attention copied Q, K and V out of the projection (a
//! permute and three copies), allocated a `(batch, heads, len, len)` score tensor for every
//! layer (25-50 MB for a batch of 4,096 tokens of e-mails: out of cache, zeroed and
//! page-faulted afresh each time) and copied the context back. Here each head of each
//! sequence is one `(n, d) x (d, n)` product into an `n x n` block that stays in cache, its
//! softmax, and one `(n, n) x (n, d)` product written straight into the context, where `n`
//! is the sequence's own length: its padding costs nothing. The context of a padding row is
//! 0 (nothing reads it: keys stop at each sequence's length and pooling at its mask).
//!
//! `unsafe`: `gemm` takes raw pointers and strides; every call's extent is checked below.
#![allow(unsafe_code)]

use candle_core::Tensor;
use gemm::{gemm, Parallelism};

use crate::kernels::{masked_softmax_rows, read_in_place};

/// The attention context `(tokens, heads * d)` of `qkv (tokens, 3 * heads * d)` (Q, K, V
/// side by side, each head's `d` columns together), for `lengths.len()` sequences of `len`
/// rows whose first `lengths[i]` are real.
pub(crate) fn attention(qkv: &Tensor, lengths: &[u32], len: usize, heads: usize, d: usize) -> candle_core::Result<Tensor> {
    let h = heads * d;
    let qkv = qkv.contiguous()?;
    let ctx = read_in_place(&qkv, "attention", |values| {
        if values.len() != lengths.len() * len * 3 * h {
            candle_core::bail!("attention: Q/K/V has {} values, not {} sequences of {len} x {}", values.len(), lengths.len(), 3 * h)
        }
        Ok(context(values, lengths, len, heads, d))
    })?;
    Tensor::from_vec(ctx, (lengths.len() * len, h), qkv.device())
}

/// [`attention`] on the projection's values.
fn context(qkv: &[f32], lengths: &[u32], len: usize, heads: usize, d: usize) -> Vec<f32> {
    let h = heads * d;
    let scale = 1.0 / (d as f32).sqrt();
    let mut ctx = vec![0f32; lengths.len() * len * h];
    let mut scores = Vec::new();
    for (i, &n) in lengths.iter().enumerate() {
        let n = (n as usize).clamp(1, len);
        let rows = &qkv[i * len * 3 * h..(i * len + n) * 3 * h];
        let out = &mut ctx[i * len * h..(i * len + n) * h];
        scores.resize(n * n, 0f32);
        for head in 0..heads {
            let (q, k, v) = (head * d, h + head * d, 2 * h + head * d);
            // SAFETY: scores is n x n (row stride n); Q and K are n rows of d values at
            // offsets q and k of rows 3h apart, within `rows` (n rows of 3h values)
            unsafe { product(n, n, d, scores.as_mut_ptr(), n, (rows.as_ptr().add(q), 1, 3 * h), (rows.as_ptr().add(k), 3 * h, 1)) };
            masked_softmax_rows(&mut scores, n, &[n as u32], scale);
            // SAFETY: the context's n rows of h values hold this head's d columns at
            // head * d; scores is n x n; V is n rows of d values at offset v within `rows`
            unsafe { product(n, d, n, out.as_mut_ptr().add(head * d), h, (scores.as_ptr(), 1, n), (rows.as_ptr().add(v), 1, 3 * h)) };
        }
    }
    ctx
}

/// `dst (m, n) = lhs (m, k) x rhs (k, n)`, on this thread; `dst` rows `dst_rs` apart, each
/// operand given as (pointer, column stride, row stride).
///
/// # Safety
/// Every element the strides reach must be within the allocations the pointers point into.
unsafe fn product(m: usize, n: usize, k: usize, dst: *mut f32, dst_rs: usize, lhs: (*const f32, usize, usize), rhs: (*const f32, usize, usize)) {
    gemm(
        m,
        n,
        k,
        dst,
        1,
        dst_rs as isize,
        false,
        lhs.0,
        lhs.1 as isize,
        lhs.2 as isize,
        rhs.0,
        rhs.1 as isize,
        rhs.2 as isize,
        0.0,
        1.0,
        false,
        false,
        false,
        Parallelism::None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Attention as written in the paper, in f64, for the real rows of each sequence.
    fn reference(qkv: &[f32], lengths: &[u32], len: usize, heads: usize, d: usize) -> Vec<Option<f64>> {
        let h = heads * d;
        let at = |row: usize, col: usize| qkv[row * 3 * h + col] as f64;
        let mut out = vec![None; lengths.len() * len * h];
        for (i, &n) in lengths.iter().enumerate() {
            let n = n as usize;
            for head in 0..heads {
                for r in 0..n {
                    let q = i * len + r;
                    let s: Vec<f64> = (0..n).map(|c| (0..d).map(|t| at(q, head * d + t) * at(i * len + c, h + head * d + t)).sum::<f64>() / (d as f64).sqrt()).collect();
                    let max = s.iter().cloned().fold(f64::MIN, f64::max);
                    let e: Vec<f64> = s.iter().map(|v| (v - max).exp()).collect();
                    let sum: f64 = e.iter().sum();
                    for t in 0..d {
                        out[q * h + head * d + t] = Some((0..n).map(|c| e[c] / sum * at(i * len + c, 2 * h + head * d + t)).sum());
                    }
                }
            }
        }
        out
    }

    #[test]
    fn each_sequence_attends_to_its_own_real_tokens_only() {
        let (len, heads, d, lengths) = (9, 3, 8, [9u32, 4, 1]);
        let h = heads * d;
        let qkv: Vec<f32> = (0..lengths.len() * len * 3 * h).map(|i| ((i as u32).wrapping_mul(2_654_435_761) >> 20) as f32 / 2048.0 - 1.0).collect();
        let got = context(&qkv, &lengths, len, heads, d);
        for (i, (g, want)) in got.iter().zip(reference(&qkv, &lengths, len, heads, d)).enumerate() {
            match want {
                Some(w) => assert!((*g as f64 - w).abs() < 1e-5, "value {i}: {g} against {w}"),
                None => assert_eq!(*g, 0.0, "padding row value {i}"),
            }
        }
        // padding in the input changes nothing: the same sequence alone, unpadded
        let alone = context(&qkv[9 * 3 * h..(9 + 4) * 3 * h], &[4], 4, heads, d);
        assert_eq!(alone, got[9 * h..13 * h]);
    }
}
