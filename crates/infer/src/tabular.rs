//! A tabular MLP: named numeric and categorical inputs -> one probability.
//!
//! `config.json` declares the inputs in order, each numeric input with its training mean and
//! standard deviation (missing values score as the mean), each categorical input with its
//! vocabulary (one-hot, plus one slot for unknown or missing values). `model.safetensors`
//! holds `layers.{i}.weight` / `layers.{i}.bias`; ReLU between layers, sigmoid at the end.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::Linear;
use serde::{Deserialize, Serialize};

use crate::dense::DenseMlp;
use crate::InferError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum InputKind {
    Numeric { mean: f32, std: f32 },
    Categorical { vocab: Vec<String> },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputSpec {
    pub name: String,
    #[serde(flatten)]
    pub kind: InputKind,
}

impl InputSpec {
    /// Width of this input in the encoded vector.
    pub fn width(&self) -> usize {
        match &self.kind {
            InputKind::Numeric { .. } => 1,
            InputKind::Categorical { vocab } => vocab.len() + 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MlpConfig {
    /// Always `tabular_mlp`.
    pub model_type: String,
    pub inputs: Vec<InputSpec>,
    /// Hidden layer widths.
    pub hidden: Vec<usize>,
    /// Name of the output column the model produces.
    pub output: String,
    /// Free-form facts about how the model was made (data, seed, metrics).
    #[serde(default)]
    pub training: serde_json::Value,
}

impl MlpConfig {
    pub fn input_width(&self) -> usize {
        self.inputs.iter().map(InputSpec::width).sum()
    }
}

/// The values of one input column. Numeric: NaN means missing. Categorical: `None` is
/// missing; numbers are given as their decimal text.
#[derive(Debug, Clone)]
pub enum FeatureValues {
    Numeric(Vec<f32>),
    Categorical(Vec<Option<String>>),
    /// Categorical values already looked up: the vocabulary index, or the vocabulary's
    /// length for a missing or unknown value.
    Codes(Vec<u32>),
}

impl FeatureValues {
    pub fn len(&self) -> usize {
        match self {
            FeatureValues::Numeric(v) => v.len(),
            FeatureValues::Categorical(v) => v.len(),
            FeatureValues::Codes(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Named feature columns of equal length.
#[derive(Debug, Clone, Default)]
pub struct TabularBatch {
    pub columns: Vec<(String, FeatureValues)>,
}

impl TabularBatch {
    pub fn rows(&self) -> usize {
        self.columns.first().map_or(0, |(_, v)| v.len())
    }

    fn get(&self, name: &str) -> Result<&FeatureValues, InferError> {
        self.columns
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
            .ok_or_else(|| InferError::BadInput { name: name.to_string(), reason: "column not in the batch".into() })
    }

    /// Each of `specs`' columns, checked against its spec and placed at its slot; text
    /// categories become vocabulary indices.
    pub(crate) fn inputs(&self, specs: &[InputSpec]) -> Result<Vec<Input<'_>>, InferError> {
        let rows = self.rows();
        let mut slot = 0;
        let mut out = Vec::with_capacity(specs.len());
        for spec in specs {
            let values = self.get(&spec.name)?;
            if values.len() != rows {
                return Err(InferError::BadInput {
                    name: spec.name.clone(),
                    reason: format!("{} values for {rows} rows", values.len()),
                });
            }
            out.push(match (&spec.kind, values) {
                (InputKind::Numeric { mean, std }, FeatureValues::Numeric(v)) => {
                    Input::Numeric { values: v, mean: *mean, scale: if *std > 0.0 { 1.0 / std } else { 1.0 }, slot }
                }
                (InputKind::Categorical { vocab }, FeatureValues::Codes(v)) => {
                    Input::Codes { codes: Cow::Borrowed(v), slot, missing: vocab.len() }
                }
                (InputKind::Categorical { vocab }, FeatureValues::Categorical(v)) => {
                    let index: HashMap<&str, u32> = vocab.iter().enumerate().map(|(i, s)| (s.as_str(), i as u32)).collect();
                    let missing = vocab.len() as u32;
                    let codes = v.iter().map(|x| x.as_deref().and_then(|s| index.get(s).copied()).unwrap_or(missing)).collect();
                    Input::Codes { codes: Cow::Owned(codes), slot, missing: vocab.len() }
                }
                (kind, _) => {
                    return Err(InferError::BadInput {
                        name: spec.name.clone(),
                        reason: format!(
                            "expected {} values",
                            if matches!(kind, InputKind::Numeric { .. }) { "numeric" } else { "categorical" }
                        ),
                    })
                }
            });
            slot += spec.width();
        }
        Ok(out)
    }

    /// Encode into a row-major `rows x input_width` matrix as the model expects.
    pub fn encode(&self, specs: &[InputSpec]) -> Result<Vec<f32>, InferError> {
        let rows = self.rows();
        let width: usize = specs.iter().map(InputSpec::width).sum();
        let mut out = vec![0f32; rows * width];
        for input in self.inputs(specs)? {
            match input {
                Input::Numeric { values, mean, scale, slot } => {
                    for (r, x) in values.iter().enumerate() {
                        out[r * width + slot] = if x.is_finite() { (x - mean) * scale } else { 0.0 };
                    }
                }
                Input::Codes { codes, slot, missing } => {
                    for (r, code) in codes.iter().enumerate() {
                        out[r * width + slot + (*code as usize).min(missing)] = 1.0;
                    }
                }
            }
        }
        Ok(out)
    }
}

/// One model input of a batch, checked against its spec: where its slots start in the
/// encoded vector, and its values.
pub(crate) enum Input<'a> {
    /// Normalised as `(x - mean) * scale`; NaN (missing) counts as 0, the training mean.
    Numeric { values: &'a [f32], mean: f32, scale: f32, slot: usize },
    /// Vocabulary indices; `missing` (the vocabulary's length) and above: the extra slot.
    Codes { codes: Cow<'a, [u32]>, slot: usize, missing: usize },
}

/// A loaded MLP, ready to score batches on its device.
#[derive(Debug, Clone)]
pub struct TabularModel {
    config: MlpConfig,
    layers: Vec<Linear>,
    /// The same layers for the CPU's forward pass (`None` on other devices).
    dense: Option<DenseMlp>,
    device: Device,
    id: String,
}

impl TabularModel {
    pub fn load(dir: &Path, device: &Device) -> Result<Self, InferError> {
        let files = crate::files::ModelFiles::read(dir, &crate::MODEL_FILES, &[])?;
        let config_path = files.path("config.json");
        let config: MlpConfig = files.required_json("config.json")?;
        if config.model_type != "tabular_mlp" {
            return Err(InferError::BadConfig {
                path: config_path,
                reason: format!("model_type is '{}', expected 'tabular_mlp'", config.model_type),
            });
        }
        let weights_path = files.path("model.safetensors");
        let tensors = files.tensors("model.safetensors", device)?;
        let layers = Self::layers_from(&config, &tensors, &weights_path)?;
        Ok(TabularModel::from_parts(config, layers, device.clone())?.with_id(files.id().to_string()))
    }

    pub(crate) fn layers_from(
        config: &MlpConfig,
        tensors: &HashMap<String, Tensor>,
        path: &Path,
    ) -> Result<Vec<Linear>, InferError> {
        let dims: Vec<usize> =
            std::iter::once(config.input_width()).chain(config.hidden.iter().copied()).chain(std::iter::once(1)).collect();
        let mut layers = Vec::new();
        for (i, pair) in dims.windows(2).enumerate() {
            let get = |suffix: &str| -> Result<Tensor, InferError> {
                let name = format!("layers.{i}.{suffix}");
                let t = tensors.get(&name).ok_or_else(|| InferError::BadConfig {
                    path: PathBuf::from(path),
                    reason: format!("tensor '{name}' missing"),
                })?;
                Ok(t.to_dtype(DType::F32)?)
            };
            let (w, b) = (get("weight")?, get("bias")?);
            if w.dims() != [pair[1], pair[0]] {
                return Err(InferError::BadConfig {
                    path: PathBuf::from(path),
                    reason: format!("layers.{i}.weight has shape {:?}, config implies [{}, {}]", w.dims(), pair[1], pair[0]),
                });
            }
            layers.push(Linear::new(w, Some(b)));
        }
        Ok(layers)
    }

    pub(crate) fn from_parts(config: MlpConfig, layers: Vec<Linear>, device: Device) -> Result<Self, InferError> {
        let dense = if device.is_cpu() { Some(DenseMlp::new(&layers)?) } else { None };
        Ok(TabularModel { config, layers, dense, device, id: String::new() })
    }

    fn with_id(mut self, id: String) -> Self {
        self.id = id;
        self
    }

    pub fn config(&self) -> &MlpConfig {
        &self.config
    }

    /// sha256 of the model's files.
    pub fn id(&self) -> &str {
        &self.id
    }

    pub(crate) fn logits(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let mut h = x.clone();
        for (i, layer) in self.layers.iter().enumerate() {
            h = layer.forward(&h)?;
            if i + 1 < self.layers.len() {
                h = h.relu()?;
            }
        }
        h.squeeze(1)
    }

    /// P(positive) for every row of the batch, in order.
    pub fn predict(&self, batch: &TabularBatch) -> Result<Vec<f32>, InferError> {
        let rows = batch.rows();
        if rows == 0 {
            return Ok(Vec::new());
        }
        if let Some(dense) = &self.dense {
            return Ok(dense.predict(rows, &batch.inputs(&self.config.inputs)?));
        }
        let x = Tensor::from_vec(batch.encode(&self.config.inputs)?, (rows, self.config.input_width()), &self.device)?;
        let p = candle_nn::ops::sigmoid(&self.logits(&x)?)?;
        Ok(p.to_vec1::<f32>()?)
    }
}

impl TabularModel {
    /// Record how the model was made in its config's `training` field.
    pub fn with_training_facts(mut self, facts: serde_json::Value) -> Self {
        self.config.training = facts;
        self
    }

    /// The weights by name, as saved in `model.safetensors`.
    pub fn tensors(&self) -> HashMap<String, Tensor> {
        let mut out = HashMap::new();
        for (i, l) in self.layers.iter().enumerate() {
            out.insert(format!("layers.{i}.weight"), l.weight().clone());
            if let Some(b) = l.bias() {
                out.insert(format!("layers.{i}.bias"), b.clone());
            }
        }
        out
    }
}
