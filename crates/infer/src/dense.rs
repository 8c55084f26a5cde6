//! The tabular MLP's forward pass on the CPU, without tensors.
//!
//! The first layer multiplies a mostly-zero one-hot vector: instead, each categorical input
//! adds the weight row of its slot, and each numeric input adds its weight row scaled by the
//! normalised value. As in a matrix product, the
//! terms are summed in input order with fused multiply-adds, then the bias is added. The
//! hidden layers take 4 rows at a time (4 independent sums per weight row), but each row's
//! arithmetic is its own and the same whatever the batch, so a score does not depend on how
//! rows were grouped, and the loops vectorise (pulp compiles them for AVX2 or AVX-512
//! where the CPU has them; `mul_add` rounds alike with or without FMA hardware).

use candle_nn::Linear;

use crate::tabular::Input;

/// One layer: weights transposed to `inputs x outputs` (row-major) and the bias.
#[derive(Debug, Clone)]
struct Layer {
    weights: Vec<f32>,
    bias: Vec<f32>,
}

#[derive(Debug, Clone)]
pub(crate) struct DenseMlp {
    layers: Vec<Layer>,
}

impl DenseMlp {
    pub(crate) fn new(layers: &[Linear]) -> candle_core::Result<Self> {
        let layers = layers
            .iter()
            .map(|l| {
                let outputs = l.weight().dim(0)?;
                let weights = l.weight().t()?.contiguous()?.flatten_all()?.to_vec1::<f32>()?;
                let bias = match l.bias() {
                    Some(b) => b.to_vec1::<f32>()?,
                    None => vec![0.0; outputs],
                };
                Ok(Layer { weights, bias })
            })
            .collect::<candle_core::Result<_>>()?;
        Ok(DenseMlp { layers })
    }

    /// P(positive) for `rows` rows given the model's inputs in slot order.
    pub(crate) fn predict(&self, rows: usize, inputs: &[Input<'_>]) -> Vec<f32> {
        /// `predict_rows` compiled by pulp for the best instruction set the CPU has.
        struct Forward<'a> {
            mlp: &'a DenseMlp,
            rows: usize,
            inputs: &'a [Input<'a>],
        }
        impl pulp::WithSimd for Forward<'_> {
            type Output = Vec<f32>;
            #[inline(always)]
            fn with_simd<S: pulp::Simd>(self, _simd: S) -> Vec<f32> {
                self.mlp.predict_rows(self.rows, self.inputs)
            }
        }
        pulp::Arch::new().dispatch(Forward { mlp: self, rows, inputs })
    }

    /// Rows go through in blocks of [`BLOCK`]: the hidden layers multiply every row of a
    /// block by the same weight row at once (independent sums, so the CPU overlaps them),
    /// each row's sum still in input order. A short last block is padded with zero rows.
    #[inline(always)]
    fn predict_rows(&self, rows: usize, inputs: &[Input<'_>]) -> Vec<f32> {
        let stride = self.layers.iter().map(|l| l.bias.len()).max().unwrap_or(0);
        let (mut h, mut next) = (vec![0f32; BLOCK * stride], vec![0f32; BLOCK * stride]);
        let mut out = Vec::with_capacity(rows);
        let first = &self.layers[0];
        let n = first.bias.len();
        for start in (0..rows).step_by(BLOCK) {
            let block = BLOCK.min(rows - start);
            h.fill(0.0);
            for (j, r) in (start..start + block).enumerate() {
                let terms = inputs.iter().map(|input| match input {
                    Input::Numeric { values, mean, scale, slot } => {
                        let x = values[r];
                        (if x.is_finite() { (x - mean) * scale } else { 0.0 }, *slot)
                    }
                    Input::Codes { codes, slot, missing } => (1.0, slot + (codes[r] as usize).min(*missing)),
                });
                let hj = &mut h[j * stride..][..n];
                sum_rows(terms, &first.weights, hj);
                add_relu(&first.bias, hj);
            }
            let mut width = n;
            let last = self.layers.len() - 1;
            for (i, layer) in self.layers.iter().enumerate().skip(1) {
                let m = layer.bias.len();
                sum_block(&h, stride, width, &layer.weights, &mut next, m);
                for j in 0..BLOCK {
                    let nj = &mut next[j * stride..][..m];
                    if i < last {
                        add_relu(&layer.bias, nj);
                    } else {
                        add(&layer.bias, nj);
                    }
                }
                std::mem::swap(&mut h, &mut next);
                width = m;
            }
            out.extend((0..block).map(|j| 1.0 / ((-h[j * stride]).exp() + 1.0)));
        }
        out
    }
}

/// Rows scored together through the hidden layers ([`sum_block_n`] is written for 4).
const BLOCK: usize = 4;
const _: () = assert!(BLOCK == 4);

/// For each of the [`BLOCK`] rows `j` (at `h[j * stride..]`, `width` values):
/// `out[j] = Σ_k h[j][k] * weights[k]` (rows of `m` values), summed in order with one
/// rounding per term: row by row the same arithmetic as [`sum_rows`].
#[inline(always)]
fn sum_block(h: &[f32], stride: usize, width: usize, weights: &[f32], out: &mut [f32], m: usize) {
    match m {
        1 => sum_block_n::<1>(h, stride, width, weights, out),
        8 => sum_block_n::<8>(h, stride, width, weights, out),
        16 => sum_block_n::<16>(h, stride, width, weights, out),
        32 => sum_block_n::<32>(h, stride, width, weights, out),
        64 => sum_block_n::<64>(h, stride, width, weights, out),
        _ => {
            for j in 0..BLOCK {
                sum_rows(h[j * stride..][..width].iter().copied().zip(0..), weights, &mut out[j * stride..][..m]);
            }
        }
    }
}

/// [`sum_block`] for a width known when compiling: one accumulator per row ([`BLOCK`] = 4),
/// each kept in vector registers.
#[inline(always)]
fn sum_block_n<const M: usize>(h: &[f32], stride: usize, width: usize, weights: &[f32], out: &mut [f32]) {
    let (h0, h1, h2, h3) = (&h[..width], &h[stride..][..width], &h[2 * stride..][..width], &h[3 * stride..][..width]);
    let (mut a0, mut a1, mut a2, mut a3) = ([0f32; M], [0f32; M], [0f32; M], [0f32; M]);
    for k in 0..width {
        let w: &[f32; M] = weights[k * M..][..M].try_into().expect("a weight row has M values");
        let (x0, x1, x2, x3) = (h0[k], h1[k], h2[k], h3[k]);
        for i in 0..M {
            a0[i] = x0.mul_add(w[i], a0[i]);
            a1[i] = x1.mul_add(w[i], a1[i]);
            a2[i] = x2.mul_add(w[i], a2[i]);
            a3[i] = x3.mul_add(w[i], a3[i]);
        }
    }
    for (j, a) in [a0, a1, a2, a3].iter().enumerate() {
        out[j * stride..][..M].copy_from_slice(a);
    }
}

/// `out = Σ x * weights[row]` over `terms` (`(x, row)`; rows of `out.len()` values), summed
/// in order with one rounding per term, as a matrix product does.
#[inline(always)]
fn sum_rows(terms: impl Iterator<Item = (f32, usize)>, weights: &[f32], out: &mut [f32]) {
    match out.len() {
        1 => sum_rows_n::<1>(terms, weights, out),
        8 => sum_rows_n::<8>(terms, weights, out),
        16 => sum_rows_n::<16>(terms, weights, out),
        32 => sum_rows_n::<32>(terms, weights, out),
        64 => sum_rows_n::<64>(terms, weights, out),
        128 => sum_rows_n::<128>(terms, weights, out),
        m => {
            out.fill(0.0);
            for (x, row) in terms {
                for (a, w) in out.iter_mut().zip(&weights[row * m..][..m]) {
                    *a = x.mul_add(*w, *a);
                }
            }
        }
    }
}

/// [`sum_rows`] for a width known when compiling: the sums stay in vector registers.
#[inline(always)]
fn sum_rows_n<const M: usize>(terms: impl Iterator<Item = (f32, usize)>, weights: &[f32], out: &mut [f32]) {
    let mut acc = [0f32; M];
    for (x, row) in terms {
        let w: &[f32; M] = weights[row * M..][..M].try_into().expect("a weight row has M values");
        for i in 0..M {
            acc[i] = x.mul_add(w[i], acc[i]);
        }
    }
    out.copy_from_slice(&acc);
}

/// `acc += b`.
#[inline(always)]
fn add(b: &[f32], acc: &mut [f32]) {
    for (a, b) in acc.iter_mut().zip(b) {
        *a += b;
    }
}

/// `acc = max(acc + b, 0)`.
#[inline(always)]
fn add_relu(b: &[f32], acc: &mut [f32]) {
    for (a, b) in acc.iter_mut().zip(b) {
        *a = (*a + b).max(0.0);
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use candle_core::{Device, Tensor};

    use crate::tabular::{FeatureValues, InputKind, TabularBatch, TabularModel};

    /// Rows covering every slot: numeric values around the mean and missing (NaN), codes in
    /// the vocabulary, the missing slot and beyond it (unknown).
    fn batch(model: &TabularModel, rows: usize) -> TabularBatch {
        let columns = model
            .config()
            .inputs
            .iter()
            .enumerate()
            .map(|(j, spec)| {
                let values = match &spec.kind {
                    InputKind::Numeric { mean, std } => FeatureValues::Numeric(
                        (0..rows)
                            .map(|r| if (r + j) % 11 == 0 { f32::NAN } else { mean + std * (((r * 7 + j) % 13) as f32 - 6.0) / 3.0 })
                            .collect(),
                    ),
                    InputKind::Categorical { vocab } => {
                        FeatureValues::Codes((0..rows).map(|r| ((r + j) % (vocab.len() + 3)) as u32).collect())
                    }
                };
                (spec.name.clone(), values)
            })
            .collect();
        TabularBatch { columns }
    }

    /// The scores through candle: the one-hot matrix times each layer, as on a GPU.
    fn through_tensors(model: &TabularModel, batch: &TabularBatch) -> Vec<f32> {
        let x = Tensor::from_vec(batch.encode(&model.config().inputs).unwrap(), (batch.rows(), model.config().input_width()), &Device::Cpu)
            .unwrap();
        candle_nn::ops::sigmoid(&model.logits(&x).unwrap()).unwrap().to_vec1().unwrap()
    }

    #[test]
    fn the_flight_model_scores_as_the_matrix_product_does_whatever_the_batch() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/models/flight_delay");
        let model = TabularModel::load(&dir, &Device::Cpu).unwrap();
        let batch = batch(&model, 500);
        let dense = model.predict(&batch).unwrap();
        let tensors = through_tensors(&model, &batch);
        let worst = dense.iter().zip(&tensors).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(worst < 1e-6, "dense and tensor scores differ by {worst}");
        assert!(dense.iter().all(|p| (0.0..=1.0).contains(p)));
        // a row's score does not depend on the rows scored with it
        for r in [0, 1, 137, 499] {
            let one = TabularBatch {
                columns: batch
                    .columns
                    .iter()
                    .map(|(n, v)| {
                        let v = match v {
                            FeatureValues::Numeric(x) => FeatureValues::Numeric(vec![x[r]]),
                            FeatureValues::Codes(c) => FeatureValues::Codes(vec![c[r]]),
                            FeatureValues::Categorical(t) => FeatureValues::Categorical(vec![t[r].clone()]),
                        };
                        (n.clone(), v)
                    })
                    .collect(),
            };
            assert_eq!(model.predict(&one).unwrap()[0].to_bits(), dense[r].to_bits(), "row {r}");
        }
    }

    #[test]
    fn other_widths_and_text_categories_score_as_the_matrix_product_does() {
        use crate::train::{train, TrainSpec};
        let n = 64;
        let xs: Vec<f32> = (0..n).map(|i| if i % 9 == 0 { f32::NAN } else { (i % 10) as f32 / 5.0 - 1.0 }).collect();
        let colours: Vec<Option<String>> =
            (0..n).map(|i| [Some("red"), Some("blue"), None, Some("mauve")][i % 4].map(str::to_string)).collect();
        let labels: Vec<f32> = (0..n).map(|i| (i % 3 == 0) as u8 as f32).collect();
        let batch = TabularBatch {
            columns: vec![("x".into(), FeatureValues::Numeric(xs)), ("colour".into(), FeatureValues::Categorical(colours))],
        };
        let spec = TrainSpec { hidden: vec![5, 3], epochs: 2, batch_size: 16, learning_rate: 0.05, weight_decay: 0.0, seed: 1, output: "p".into() };
        let model = train(&batch, &labels, &spec, &Device::Cpu).unwrap();
        let (dense, tensors) = (model.predict(&batch).unwrap(), through_tensors(&model, &batch));
        let worst = dense.iter().zip(&tensors).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(worst < 1e-6, "dense and tensor scores differ by {worst}");
    }
}
