//! Fused CPU kernels for the BERT encoder, as candle in-place ops.
//!
//! candle's CPU path runs a transformer layer as a chain of small ops, each a pass over
//! memory into a fresh tensor, with `erf` and `exp` from a scalar libm: profiled on
//! all-MiniLM-L6-v2, more than half of the time went outside the matrix products. These
//! kernels fold the elementwise work that follows each matrix product into one pass over
//! the product, in place:
//!
//! - [`AddBias`]: `x += b` (the fused QKV projection);
//! - [`BiasActivation`]: `x = act(x + b)` (the feed-forward's first half; GELU-erf, its
//!   tanh approximation or ReLU);
//! - [`ResidualLayerNorm`]: `x = LayerNorm(x + b + residual)` (after each sub-layer);
//! - [`masked_softmax_rows`]: `s = softmax(scale * s)` over the first `len` keys of each
//!   sequence, zero beyond (what BERT's additive `f32::MIN` mask gives, without the mask;
//!   [`crate::attention`] runs it on each sequence's own scores).
//!
//! The loops are plain Rust written so that LLVM vectorises them (lane accumulators for
//! reductions, branch-free polynomial `erf` and `exp`); [`pulp`] compiles them once more
//! with AVX2 or AVX-512 enabled and picks the best the CPU has at run time. No `unsafe`.

use candle_core::{bail, CpuStorage, InplaceOp2, InplaceOp3, Layout, Result, Storage, Tensor};

const LANES: usize = 16;

/// erf for f32: clamped rational approximation (the one Eigen and XLA use); absolute
/// error below 2e-7 over the whole line, branch-free so it vectorises.
#[inline(always)]
fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = x2 * -2.726_142_3e-10 + 2.770_681_4e-8;
    p = x2 * p - 2.101_024e-6;
    p = x2 * p - 5.692_506_4e-5;
    p = x2 * p - 7.349_906_3e-4;
    p = x2 * p - 2.954_600_1e-3;
    p = x2 * p - 1.609_603_3e-2;
    let mut q = x2 * -1.456_607_2e-5 - 2.133_740_6e-4;
    q = x2 * q - 1.682_827e-3;
    q = x2 * q - 7.373_329_2e-3;
    q = x2 * q - 1.426_474e-2;
    x * p / q
}

/// e^x for f32 (Cephes' polynomial after range reduction by powers of two); relative error
/// about 2e-7 for x in [-87, 88], branch-free so it vectorises.
#[inline(always)]
fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    // round to nearest by adding and removing 1.5 * 2^23 (no call to floorf on baselines
    // without SSE4.1)
    let n = (x * std::f32::consts::LOG2_E + 12_582_912.0) - 12_582_912.0;
    let r = x - n * 0.693_359_4 + n * 2.121_944_4e-4;
    let mut p = 1.987_569_1e-4_f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 5e-1; // 5.0000001e-1 in the source this follows: the same f32
    let y = p * r * r + r + 1.0;
    y * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

#[inline(always)]
fn gelu_erf(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

#[inline(always)]
fn gelu_tanh(x: f32) -> f32 {
    // 0.5 x (1 + tanh(u)) = x * sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3)
    let u = 0.797_884_6 * (x + 0.044_715 * x * x * x);
    x / (1.0 + exp(-2.0 * u))
}

/// The activation after the feed-forward's first projection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// exact GELU, `0.5 x (1 + erf(x / sqrt 2))` (BERT's `gelu`)
    GeluErf,
    /// GELU's tanh approximation (`gelu_new`, `gelu_pytorch_tanh`)
    GeluTanh,
    Relu,
}

/// Runs `body` compiled for the best instruction set the CPU has. `body` is a macro
/// argument, not a closure, so that it is expanded inside `with_simd`, which pulp inlines
/// into a function built with that instruction set enabled (a closure would be compiled
/// once, for the baseline, and called).
macro_rules! vectorized {
    ($name:ident { $($field:ident: $ty:ty),* $(,)? } => $body:block) => {{
        struct $name<'a> { $($field: $ty),*, _life: std::marker::PhantomData<&'a ()> }
        impl pulp::WithSimd for $name<'_> {
            type Output = ();
            #[inline(always)]
            fn with_simd<S: pulp::Simd>(self, _simd: S) {
                let $name { $($field),*, _life } = self;
                $body
            }
        }
        pulp::Arch::new().dispatch($name { $($field),*, _life: std::marker::PhantomData })
    }};
}

fn add_bias_rows(x: &mut [f32], bias: &[f32]) {
    vectorized!(AddBiasRows { x: &'a mut [f32], bias: &'a [f32] } => {
        for row in x.chunks_exact_mut(bias.len()) {
            for (v, b) in row.iter_mut().zip(bias) {
                *v += b;
            }
        }
    })
}

fn bias_activation_rows(x: &mut [f32], bias: &[f32], act: Activation) {
    vectorized!(BiasActivationRows { x: &'a mut [f32], bias: &'a [f32], act: Activation } => {
        for row in x.chunks_exact_mut(bias.len()) {
            match act {
                Activation::GeluErf => {
                    for (v, b) in row.iter_mut().zip(bias) {
                        *v = gelu_erf(*v + b);
                    }
                }
                Activation::GeluTanh => {
                    for (v, b) in row.iter_mut().zip(bias) {
                        *v = gelu_tanh(*v + b);
                    }
                }
                Activation::Relu => {
                    for (v, b) in row.iter_mut().zip(bias) {
                        *v = (*v + b).max(0.0);
                    }
                }
            }
        }
    })
}

/// Sum of `f` over a slice in `LANES` independent accumulators (which LLVM keeps in one
/// register; a single accumulator would serialise on the float additions).
#[inline(always)]
fn lane_sum(xs: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut acc = [0f32; LANES];
    let chunks = xs.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for (a, v) in acc.iter_mut().zip(c) {
            *a += f(*v);
        }
    }
    let mut total = 0.0;
    for a in acc {
        total += a;
    }
    for v in tail {
        total += f(*v);
    }
    total
}

#[inline(always)]
fn lane_max(xs: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let chunks = xs.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for (a, v) in acc.iter_mut().zip(c) {
            *a = a.max(*v);
        }
    }
    let mut max = f32::NEG_INFINITY;
    for v in acc.iter().chain(tail) {
        max = max.max(*v);
    }
    max
}

/// `params` is `[bias; gamma; beta]`, three rows of the hidden size.
fn residual_layer_norm_rows(x: &mut [f32], residual: &[f32], params: &[f32], eps: f32) {
    vectorized!(ResidualLayerNormRows { x: &'a mut [f32], residual: &'a [f32], params: &'a [f32], eps: f32 } => {
        let h = params.len() / 3;
        let (bias, rest) = params.split_at(h);
        let (gamma, beta) = rest.split_at(h);
        for (row, res) in x.chunks_exact_mut(h).zip(residual.chunks_exact(h)) {
            for ((v, r), b) in row.iter_mut().zip(res).zip(bias) {
                *v += r + b;
            }
            let mean = lane_sum(row, |v| v) / h as f32;
            let var = lane_sum(row, |v| (v - mean) * (v - mean)) / h as f32;
            let inv = 1.0 / (var + eps).sqrt();
            for ((v, g), b) in row.iter_mut().zip(gamma).zip(beta) {
                *v = (*v - mean) * inv * g + b;
            }
        }
    })
}

/// `scores` is `(batch, heads, len, len)`; row `q` of sequence `i` becomes the softmax of
/// `scale * scores` over the first `lengths[i]` keys, and 0 beyond them.
pub(crate) fn masked_softmax_rows(scores: &mut [f32], len: usize, lengths: &[u32], scale: f32) {
    if len == 0 || lengths.is_empty() {
        return;
    }
    vectorized!(MaskedSoftmaxRows { scores: &'a mut [f32], len: usize, lengths: &'a [u32], scale: f32 } => {
        let per_seq = scores.len() / lengths.len();
        for (seq, &n) in scores.chunks_exact_mut(per_seq).zip(lengths) {
            let n = (n as usize).clamp(1, len);
            for row in seq.chunks_exact_mut(len) {
                let (keep, drop) = row.split_at_mut(n);
                drop.fill(0.0);
                let max = lane_max(keep);
                for v in keep.iter_mut() {
                    *v = exp((*v - max) * scale);
                }
                let inv = 1.0 / lane_sum(keep, |v| v);
                for v in keep.iter_mut() {
                    *v *= inv;
                }
            }
        }
    })
}

/// `f` of the values of `x`, a contiguous f32 tensor on the CPU, read in place (no copy).
pub(crate) fn read_in_place<R>(x: &Tensor, op: &str, f: impl FnOnce(&[f32]) -> Result<R>) -> Result<R> {
    let (storage, layout) = x.storage_and_layout();
    let Storage::Cpu(cpu) = &*storage else { bail!("{op}: operand must be on the CPU") };
    f(f32_slice(cpu, layout, op)?)
}

fn f32_slice<'a>(s: &'a CpuStorage, l: &Layout, op: &str) -> Result<&'a [f32]> {
    match (s, l.contiguous_offsets()) {
        (CpuStorage::F32(v), Some((a, b))) => Ok(&v[a..b]),
        (CpuStorage::F32(_), None) => bail!("{op}: operand must be contiguous"),
        _ => bail!("{op}: operand must be f32"),
    }
}

fn f32_slice_mut<'a>(s: &'a mut CpuStorage, l: &Layout, op: &str) -> Result<&'a mut [f32]> {
    match (s, l.contiguous_offsets()) {
        (CpuStorage::F32(v), Some((a, b))) => Ok(&mut v[a..b]),
        (CpuStorage::F32(_), None) => bail!("{op}: destination must be contiguous"),
        _ => bail!("{op}: destination must be f32"),
    }
}

fn check_rows(op: &str, len: usize, width: usize) -> Result<()> {
    if width == 0 || !len.is_multiple_of(width) {
        bail!("{op}: {len} values are not rows of {width}")
    }
    Ok(())
}

/// `x += bias` row by row.
pub struct AddBias;

impl InplaceOp2 for AddBias {
    fn name(&self) -> &'static str {
        "add-bias"
    }

    fn cpu_fwd(&self, dst: &mut CpuStorage, dst_l: &Layout, b: &CpuStorage, bl: &Layout) -> Result<()> {
        let bias = f32_slice(b, bl, self.name())?;
        let x = f32_slice_mut(dst, dst_l, self.name())?;
        check_rows(self.name(), x.len(), bias.len())?;
        add_bias_rows(x, bias);
        Ok(())
    }
}

/// `x = act(x + bias)` row by row.
pub struct BiasActivation(pub Activation);

impl InplaceOp2 for BiasActivation {
    fn name(&self) -> &'static str {
        "bias-activation"
    }

    fn cpu_fwd(&self, dst: &mut CpuStorage, dst_l: &Layout, b: &CpuStorage, bl: &Layout) -> Result<()> {
        let bias = f32_slice(b, bl, self.name())?;
        let x = f32_slice_mut(dst, dst_l, self.name())?;
        check_rows(self.name(), x.len(), bias.len())?;
        bias_activation_rows(x, bias, self.0);
        Ok(())
    }
}

/// `x = LayerNorm(x + bias + residual) * gamma + beta`; the second operand is the residual,
/// the third `[bias; gamma; beta]` as a `(3, hidden)` tensor.
pub struct ResidualLayerNorm {
    pub eps: f32,
}

impl InplaceOp3 for ResidualLayerNorm {
    fn name(&self) -> &'static str {
        "residual-layer-norm"
    }

    fn cpu_fwd(
        &self,
        dst: &mut CpuStorage,
        dst_l: &Layout,
        r: &CpuStorage,
        rl: &Layout,
        p: &CpuStorage,
        pl: &Layout,
    ) -> Result<()> {
        let residual = f32_slice(r, rl, self.name())?;
        let params = f32_slice(p, pl, self.name())?;
        let x = f32_slice_mut(dst, dst_l, self.name())?;
        if residual.len() != x.len() || params.len() % 3 != 0 {
            bail!("{}: residual or parameters do not match", self.name())
        }
        check_rows(self.name(), x.len(), params.len() / 3)?;
        residual_layer_norm_rows(x, residual, params, self.eps);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid() -> impl Iterator<Item = f32> {
        (-100_000..=100_000).map(|i| i as f32 * 1e-4)
    }

    #[test]
    fn erf_matches_libm() {
        let worst = grid().map(|x| (erf(x) - libm::erff(x)).abs()).fold(0f32, f32::max);
        assert!(worst < 5e-7, "max |erf - libm::erff| = {worst}");
    }

    #[test]
    fn exp_matches_std() {
        let worst = grid().map(|x| ((exp(x) - x.exp()) / x.exp()).abs()).fold(0f32, f32::max);
        assert!(worst < 5e-7, "max relative error {worst}");
        assert_eq!(exp(-1e6), exp(-87.0));
    }

    #[test]
    fn gelu_tanh_matches_its_definition() {
        for x in grid().step_by(97) {
            let want = 0.5 * x * (1.0 + (0.797_884_6 * (x + 0.044_715 * x * x * x)).tanh());
            assert!((gelu_tanh(x) - want).abs() < 1e-5 * (1.0 + x.abs()), "{x}");
        }
    }

    #[test]
    fn softmax_ignores_keys_beyond_the_length() {
        // 2 sequences, 1 head, len 3; the first has 2 real tokens
        let mut s = vec![1.0, 2.0, 50.0, 0.5, 0.5, 50.0, 3.0, 3.0, 50.0, 1.0, 2.0, 3.0, 0.0, 0.0, 0.0, -1.0, 0.0, 1.0];
        masked_softmax_rows(&mut s, 3, &[2, 3], 1.0);
        let e = 1f32.exp();
        assert!((s[0] - 1.0 / (1.0 + e)).abs() < 1e-6 && s[2] == 0.0 && s[5] == 0.0);
        assert!((s[3] - 0.5).abs() < 1e-6);
        for row in s.chunks(3) {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        }
    }

    #[test]
    fn layer_norm_of_a_row() {
        let mut x = vec![1.0, 2.0, 3.0, 4.0];
        let residual = vec![1.0; 4];
        let params = [vec![-1.0; 4], vec![2.0; 4], vec![0.5; 4]].concat();
        residual_layer_norm_rows(&mut x, &residual, &params, 0.0);
        let sd = 1.25f32.sqrt();
        for (v, raw) in x.iter().zip([1.0, 2.0, 3.0, 4.0]) {
            assert!((v - ((raw - 2.5) / sd * 2.0 + 0.5)).abs() < 1e-5, "{x:?}");
        }
    }
}
