//! Seeded, reproducible training of a [`TabularModel`].
//!
//! Everything random (weight initialisation, the order of minibatches) comes from one
//! ChaCha8 generator seeded by [`TrainSpec::seed`]; candle's CPU kernels are deterministic,
//! so the same data and spec give the same `model.safetensors`, byte for byte.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use candle_core::{Device, Tensor, Var};
use candle_nn::{AdamW, Linear, Optimizer, ParamsAdamW};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::{FeatureValues, InferError, InputKind, InputSpec, MlpConfig, TabularBatch, TabularModel};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainSpec {
    pub hidden: Vec<usize>,
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub weight_decay: f64,
    pub seed: u64,
    /// Name of the output column.
    pub output: String,
}

/// Input specs fitted on the training data: mean/std for numeric columns (over present
/// values), the sorted distinct values for categorical ones.
pub fn fit_inputs(batch: &TabularBatch) -> Vec<InputSpec> {
    batch
        .columns
        .iter()
        .map(|(name, values)| {
            let kind = match values {
                FeatureValues::Numeric(v) => {
                    let present: Vec<f64> = v.iter().filter(|x| x.is_finite()).map(|&x| x as f64).collect();
                    let n = present.len().max(1) as f64;
                    let mean = present.iter().sum::<f64>() / n;
                    let var = present.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
                    InputKind::Numeric { mean: mean as f32, std: var.sqrt().max(1e-6) as f32 }
                }
                // indices carry no values to fit a vocabulary on (training passes text)
                FeatureValues::Codes(_) => InputKind::Categorical { vocab: Vec::new() },
                FeatureValues::Categorical(v) => {
                    let vocab: BTreeSet<&str> = v.iter().flatten().map(String::as_str).collect();
                    InputKind::Categorical { vocab: vocab.into_iter().map(str::to_string).collect() }
                }
            };
            InputSpec { name: name.clone(), kind }
        })
        .collect()
}

/// Numerically stable mean binary cross-entropy on logits.
fn bce_with_logits(logits: &Tensor, y: &Tensor) -> candle_core::Result<Tensor> {
    let pos = logits.relu()?;
    let log_term = (logits.abs()?.neg()?.exp()? + 1.0)?.log()?;
    ((pos - (logits * y)?)? + log_term)?.mean_all()
}

/// Train an MLP on `batch` (every column is an input) against 0/1 `labels`.
pub fn train(batch: &TabularBatch, labels: &[f32], spec: &TrainSpec, device: &Device) -> Result<TabularModel, InferError> {
    let rows = batch.rows();
    if rows == 0 || labels.len() != rows {
        return Err(InferError::Training(format!("{rows} rows but {} labels", labels.len())));
    }
    let inputs = fit_inputs(batch);
    let config = MlpConfig {
        model_type: "tabular_mlp".into(),
        inputs,
        hidden: spec.hidden.clone(),
        output: spec.output.clone(),
        training: serde_json::json!({ "spec": spec }),
    };
    let width = config.input_width();
    let x = Tensor::from_vec(batch.encode(&config.inputs)?, (rows, width), device)?;
    let y = Tensor::from_vec(labels.to_vec(), rows, device)?;

    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let dims: Vec<usize> = std::iter::once(width).chain(spec.hidden.iter().copied()).chain(std::iter::once(1)).collect();
    let mut vars = Vec::new();
    let mut layers = Vec::new();
    for pair in dims.windows(2) {
        // PyTorch's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases
        let bound = 1.0 / (pair[0] as f32).sqrt();
        let mut uniform = |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-bound..bound)).collect() };
        let w = Var::from_tensor(&Tensor::from_vec(uniform(pair[0] * pair[1]), (pair[1], pair[0]), device)?)?;
        let b = Var::from_tensor(&Tensor::from_vec(uniform(pair[1]), pair[1], device)?)?;
        layers.push(Linear::new(w.as_tensor().clone(), Some(b.as_tensor().clone())));
        vars.push(w);
        vars.push(b);
    }
    // scored through `logits` while training; the returned model is built from the final weights
    let model = TabularModel::from_parts(config, layers, device.clone())?;
    let params = ParamsAdamW { lr: spec.learning_rate, weight_decay: spec.weight_decay, ..Default::default() };
    let mut opt = AdamW::new(vars.clone(), params)?;

    let mut order: Vec<u32> = (0..rows as u32).collect();
    for epoch in 0..spec.epochs {
        order.shuffle(&mut rng);
        let mut total = 0f64;
        let mut batches = 0usize;
        for chunk in order.chunks(spec.batch_size.max(1)) {
            let idx = Tensor::from_slice(chunk, chunk.len(), device)?;
            let (xb, yb) = (x.index_select(&idx, 0)?, y.index_select(&idx, 0)?);
            let loss = bce_with_logits(&model.logits(&xb)?, &yb)?;
            opt.backward_step(&loss)?;
            total += loss.to_scalar::<f32>()? as f64;
            batches += 1;
        }
        tracing::info!(epoch, loss = total / batches.max(1) as f64, "trained one epoch");
    }
    // The trained weights are the Vars' current values.
    let mut tensors = HashMap::new();
    for (i, pair) in vars.chunks(2).enumerate() {
        tensors.insert(format!("layers.{i}.weight"), pair[0].as_tensor().detach());
        tensors.insert(format!("layers.{i}.bias"), pair[1].as_tensor().detach());
    }
    let layers = TabularModel::layers_from(model.config(), &tensors, Path::new("<trained>"))?;
    TabularModel::from_parts(model.config().clone(), layers, device.clone())
}

/// Write `config.json` and `model.safetensors` into `dir`.
pub fn save(model: &TabularModel, dir: &Path) -> Result<(), InferError> {
    std::fs::create_dir_all(dir).map_err(|source| InferError::Io { path: dir.to_path_buf(), source })?;
    let mut config = serde_json::to_string_pretty(model.config())
        .map_err(|e| InferError::Training(format!("serialising config: {e}")))?;
    config.push('\n');
    let path = dir.join("config.json");
    std::fs::write(&path, config).map_err(|source| InferError::Io { path, source })?;
    candle_core::safetensors::save(&model.tensors(), dir.join("model.safetensors"))?;
    Ok(())
}

/// Area under the ROC curve (ties get their average rank). Labels are 0/1.
pub fn roc_auc(scores: &[f32], labels: &[f32]) -> f64 {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let (mut rank_sum_pos, mut n_pos) = (0f64, 0f64);
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && scores[idx[j + 1]] == scores[idx[i]] {
            j += 1;
        }
        let avg_rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            if labels[k] > 0.5 {
                rank_sum_pos += avg_rank;
                n_pos += 1.0;
            }
        }
        i = j + 1;
    }
    let n_neg = scores.len() as f64 - n_pos;
    if n_pos == 0.0 || n_neg == 0.0 {
        return f64::NAN;
    }
    (rank_sum_pos - n_pos * (n_pos + 1.0) / 2.0) / (n_pos * n_neg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_of_perfect_random_and_inverted_scores() {
        let y = [0.0, 0.0, 1.0, 1.0];
        assert_eq!(roc_auc(&[0.1, 0.2, 0.8, 0.9], &y), 1.0);
        assert_eq!(roc_auc(&[0.9, 0.8, 0.2, 0.1], &y), 0.0);
        assert_eq!(roc_auc(&[0.5, 0.5, 0.5, 0.5], &y), 0.5);
    }

    #[test]
    fn training_is_seeded_and_learns_a_separable_rule() {
        // y = 1 when x > 0 or colour is "red": learnable, so AUC must be near 1.
        let n = 400;
        let xs: Vec<f32> = (0..n).map(|i| ((i * 37) % 100) as f32 / 50.0 - 1.0).collect();
        let colours: Vec<Option<String>> = (0..n).map(|i| Some(["red", "blue", "green"][i % 3].to_string())).collect();
        let labels: Vec<f32> = (0..n).map(|i| (xs[i] > 0.0 || i % 3 == 0) as u8 as f32).collect();
        let batch = TabularBatch {
            columns: vec![("x".into(), FeatureValues::Numeric(xs)), ("colour".into(), FeatureValues::Categorical(colours))],
        };
        let spec = TrainSpec {
            hidden: vec![8],
            epochs: 60,
            batch_size: 32,
            learning_rate: 0.02,
            weight_decay: 0.0,
            seed: 7,
            output: "p".into(),
        };
        let a = train(&batch, &labels, &spec, &Device::Cpu).unwrap();
        let b = train(&batch, &labels, &spec, &Device::Cpu).unwrap();
        let (pa, pb) = (a.predict(&batch).unwrap(), b.predict(&batch).unwrap());
        assert_eq!(pa, pb, "same seed, same model");
        assert!(roc_auc(&pa, &labels) > 0.98, "auc {}", roc_auc(&pa, &labels));
    }
}
