//! Sentence embeddings with a BERT-family sentence-transformers model.
//!
//! A model directory holds `config.json`, `tokenizer.json` and `model.safetensors`, and,
//! as sentence-transformers writes them, `modules.json` (is there a `Normalize` module?),
//! `1_Pooling/config.json` (mean, CLS or max pooling) and `sentence_bert_config.json`
//! (`max_seq_length`). The embedding is the pooled last hidden state over the attention
//! mask, L2-normalised when the model says so — the same numbers as sentence-transformers.
//!
//! Batching ([`BatchPolicy`]): texts are tokenized once (truncated at `max_seq_length`, not
//! padded), sorted by length inside a window, cut into batches by a token budget
//! (batch size x longest text <= `max_tokens`), padded to the longest text of their batch,
//! and the results are put back in input order. Padding is masked, so a text's embedding
//! does not depend on its neighbours.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use rayon::prelude::*;
use candle_transformers::models::bert::{BertModel, Config as BertConfig, DTYPE};
use serde::Deserialize;
use tokenizers::{Tokenizer, TruncationParams};

use crate::encoder::CpuBert;
use crate::files::ModelFiles;
use crate::InferError;
use crate::precision::Precision;

/// The files an embedding model directory must hold.
pub const EMBEDDING_FILES: [&str; 3] = ["config.json", "tokenizer.json", "model.safetensors"];
/// The files the loader reads when they are there: they set the pooling, the
/// normalisation and the sequence length, so they are part of the model id.
pub const EMBEDDING_OPTIONAL_FILES: [&str; 3] = ["modules.json", "1_Pooling/config.json", "sentence_bert_config.json"];

/// How token embeddings become one vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    Mean,
    Cls,
    Max,
}

/// How texts are grouped into forward passes.
#[derive(Debug, Clone, Copy)]
pub struct BatchPolicy {
    /// Most padded tokens in one forward pass (batch size x longest text).
    pub max_tokens: usize,
    /// Most texts in one forward pass.
    pub max_batch: usize,
    /// Texts are sorted by length within windows of this many.
    pub window: usize,
}

impl Default for BatchPolicy {
    fn default() -> Self {
        BatchPolicy { max_tokens: 4_096, max_batch: 256, window: 4_096 }
    }
}

#[derive(Deserialize)]
struct PoolingConfig {
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_max_tokens: bool,
}

#[derive(Deserialize)]
struct Module {
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct SentenceBertConfig {
    max_seq_length: Option<usize>,
}

/// Which implementation runs the BERT encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernels {
    /// [`crate::encoder`]: fused CPU kernels, whole batches in parallel (CPU only).
    Fused,
    /// `candle_transformers`' `BertModel`: any device; the reference the fused path is
    /// checked against.
    Candle,
}

enum Encoder {
    Fused(CpuBert),
    Candle(BertModel),
}

pub struct EmbeddingModel {
    encoder: Encoder,
    tokenizer: Tokenizer,
    device: Device,
    pooling: Pooling,
    normalize: bool,
    max_seq_length: usize,
    dim: usize,
    id: String,
}

impl EmbeddingModel {
    /// Load a model directory onto `device`: the fused kernels on the CPU, candle's
    /// `BertModel` elsewhere. A missing required file is an error naming it.
    pub fn load(dir: &Path, device: &Device) -> Result<Self, InferError> {
        Self::load_with(dir, device, if device.is_cpu() { Kernels::Fused } else { Kernels::Candle })
    }

    /// [`EmbeddingModel::load`] with a chosen encoder implementation.
    pub fn load_with(dir: &Path, device: &Device, kernels: Kernels) -> Result<Self, InferError> {
        Self::load_in(dir, device, kernels, Precision::F32)
    }

    /// [`EmbeddingModel::load_with`] in a chosen precision (bf16: the fused CPU kernels only).
    pub fn load_in(dir: &Path, device: &Device, kernels: Kernels, precision: Precision) -> Result<Self, InferError> {
        let files = ModelFiles::read(dir, &EMBEDDING_FILES, &EMBEDDING_OPTIONAL_FILES)?;
        let config: BertConfig = files.required_json("config.json")?;
        let bad = |path: PathBuf, reason: String| InferError::BadConfig { path, reason };

        let pooling = match files.json::<PoolingConfig>("1_Pooling/config.json")? {
            None => Pooling::Mean,
            Some(p) if p.pooling_mode_mean_tokens => Pooling::Mean,
            Some(p) if p.pooling_mode_cls_token => Pooling::Cls,
            Some(p) if p.pooling_mode_max_tokens => Pooling::Max,
            Some(_) => return Err(bad(dir.join("1_Pooling/config.json"), "no supported pooling mode (mean, cls, max)".into())),
        };
        let normalize =
            files.json::<Vec<Module>>("modules.json")?.is_some_and(|m| m.iter().any(|m| m.kind.ends_with("Normalize")));
        let max_seq_length = files
            .json::<SentenceBertConfig>("sentence_bert_config.json")?
            .and_then(|c| c.max_seq_length)
            .unwrap_or(config.max_position_embeddings)
            .min(config.max_position_embeddings);

        let tok_path = dir.join("tokenizer.json");
        let mut tokenizer =
            Tokenizer::from_bytes(files.required("tokenizer.json")?).map_err(|e| bad(tok_path.clone(), e.to_string()))?;
        // the shipped tokenizer.json may fix truncation and padding (all-MiniLM-L6-v2: 128
        // tokens, padded to 128); sentence-transformers truncates at max_seq_length and pads
        // per batch, which is what we do
        tokenizer
            .with_truncation(Some(TruncationParams { max_length: max_seq_length, ..Default::default() }))
            .map_err(|e| bad(tok_path.clone(), e.to_string()))?;
        tokenizer.with_padding(None);

        let tensors = files.tensors("model.safetensors", device)?;
        let vb = VarBuilder::from_tensors(tensors, DTYPE, device);
        let not_bert = |e: candle_core::Error| InferError::BadModel {
            path: dir.join("model.safetensors"),
            reason: format!("not a BERT checkpoint matching config.json: {e}"),
        };
        let encoder = match kernels {
            Kernels::Fused if !device.is_cpu() => {
                return Err(bad(dir.to_path_buf(), "the fused kernels run on the CPU only".into()))
            }
            Kernels::Fused => {
                // whole batches run in parallel, one per thread (see `embed`), so gemm's
                // own threading inside each product would only add synchronisation
                gemm::set_threading_threshold(usize::MAX);
                Encoder::Fused(CpuBert::load(vb, &config, precision).map_err(not_bert)?)
            }
            Kernels::Candle if precision != Precision::F32 => {
                return Err(bad(dir.to_path_buf(), format!("precision {} needs the fused CPU kernels", precision.as_str())))
            }
            Kernels::Candle => Encoder::Candle(BertModel::load(vb, &config).map_err(not_bert)?),
        };
        let bf16_kernel = precision == Precision::Bf16 && crate::bf16::has_bf16_kernel();
        if precision == Precision::Bf16 && !bf16_kernel {
            tracing::warn!("this CPU has no AVX-512 BF16: bf16 products are rounded in software and multiplied in f32 (slower than f32)");
        }
        // AMX tiles where the CPU has them (asked for once per process), else AVX-512 BF16
        let amx = bf16_kernel && crate::amx::available();
        tracing::info!(model = %dir.display(), dim = config.hidden_size, max_seq_length, ?pooling, normalize, ?kernels, precision = precision.as_str(), bf16_kernel, amx, "embedding model loaded");
        Ok(EmbeddingModel {
            encoder,
            tokenizer,
            device: device.clone(),
            pooling,
            normalize,
            max_seq_length,
            dim: config.hidden_size,
            id: precision.model_id(files.id()),
        })
    }

    /// Length of every embedding.
    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn max_seq_length(&self) -> usize {
        self.max_seq_length
    }

    /// sha256 of the model's files, with `+bf16` after it in that precision
    /// ([`Precision::model_id`]).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Embed `texts`; the result is `texts.len() x dim`, row-major, in input order.
    ///
    /// With the fused kernels, batches run in parallel on rayon's pool (one batch per
    /// thread: `RAYON_NUM_THREADS`); with candle's encoder, one after another, each product
    /// threaded inside.
    pub fn embed(&self, texts: &[&str], policy: &BatchPolicy) -> Result<Vec<f32>, InferError> {
        self.embed_cancellable(texts, policy, &|| false)
    }

    /// [`EmbeddingModel::embed`] that checks `cancelled` before each batch and stops with
    /// [`InferError::Cancelled`] once it says so.
    pub fn embed_cancellable(
        &self,
        texts: &[&str],
        policy: &BatchPolicy,
        cancelled: &(dyn Fn() -> bool + Sync),
    ) -> Result<Vec<f32>, InferError> {
        let tok_err = |e: Box<dyn std::error::Error + Send + Sync>| InferError::Tokenizer(e.to_string());
        let encodings = self.tokenizer.encode_batch_fast(texts.to_vec(), true).map_err(tok_err)?;
        let lengths: Vec<usize> = encodings.iter().map(|e| e.get_ids().len()).collect();
        let batches = plan_batches(&lengths, policy);
        let run = |batch: &Vec<usize>| {
            if cancelled() {
                return Err(InferError::Cancelled);
            }
            self.embed_batch(batch.iter().map(|&i| &encodings[i]))
        };
        let results: Vec<Result<Vec<f32>, InferError>> = match self.encoder {
            Encoder::Fused(_) => batches.par_iter().map(run).collect(),
            Encoder::Candle(_) => batches.iter().map(run).collect(),
        };
        let mut out = vec![0f32; texts.len() * self.dim];
        for (batch, rows) in batches.iter().zip(results) {
            for (row, &i) in rows?.chunks_exact(self.dim).zip(batch) {
                out[i * self.dim..(i + 1) * self.dim].copy_from_slice(row);
            }
        }
        Ok(out)
    }

    /// One forward pass: the batch's rows of embeddings, flattened.
    fn embed_batch<'a>(&self, batch: impl ExactSizeIterator<Item = &'a tokenizers::Encoding> + Clone) -> Result<Vec<f32>, InferError> {
        let n = batch.len();
        let longest = batch.clone().map(|e| e.get_ids().len()).max().unwrap_or(0).max(1);
        let (mut ids, mut mask, mut lengths) = (vec![0u32; n * longest], vec![0u32; n * longest], Vec::with_capacity(n));
        for (row, e) in batch.enumerate() {
            let len = e.get_ids().len();
            ids[row * longest..row * longest + len].copy_from_slice(e.get_ids());
            mask[row * longest..row * longest + len].copy_from_slice(e.get_attention_mask());
            lengths.push(len as u32);
        }
        let ids = Tensor::from_vec(ids, (n, longest), &self.device)?;
        let mask = Tensor::from_vec(mask, (n, longest), &self.device)?;
        let hidden = match &self.encoder {
            Encoder::Fused(bert) => bert.forward(&ids, &lengths)?,
            Encoder::Candle(bert) => bert.forward(&ids, &ids.zeros_like()?, Some(&mask))?,
        };
        let pooled = self.pool(&hidden, &mask)?;
        Ok(pooled.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?)
    }

    fn pool(&self, hidden: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
        let m = mask.to_dtype(hidden.dtype())?.unsqueeze(2)?; // (b, l, 1)
        let pooled = match self.pooling {
            Pooling::Mean => {
                let summed = hidden.broadcast_mul(&m)?.sum(1)?;
                let counts = m.sum(1)?.maximum(1e-9)?;
                summed.broadcast_div(&counts)?
            }
            Pooling::Cls => hidden.narrow(1, 0, 1)?.squeeze(1)?,
            Pooling::Max => {
                // masked positions must not win the max
                let neg = ((m.ones_like()? - &m)? * -1e9)?;
                hidden.broadcast_add(&neg)?.max(1)?
            }
        };
        if !self.normalize {
            return Ok(pooled);
        }
        let norm = pooled.sqr()?.sum_keepdim(1)?.sqrt()?.maximum(1e-12)?;
        pooled.broadcast_div(&norm)
    }
}

/// Cut texts (by their token counts) into batches: sorted by length inside each window,
/// each batch within the token budget. Every index appears in exactly one batch.
pub fn plan_batches(lengths: &[usize], policy: &BatchPolicy) -> Vec<Vec<usize>> {
    let mut batches = Vec::new();
    let window = policy.window.max(1);
    for start in (0..lengths.len()).step_by(window) {
        let mut idx: Vec<usize> = (start..(start + window).min(lengths.len())).collect();
        idx.sort_by_key(|&i| lengths[i]); // stable: equal lengths keep input order
        let mut batch: Vec<usize> = Vec::new();
        for i in idx {
            let longest = lengths[i].max(1); // ascending, so the newest is the longest
            if !batch.is_empty() && ((batch.len() + 1) * longest > policy.max_tokens || batch.len() >= policy.max_batch) {
                batches.push(std::mem::take(&mut batch));
            }
            batch.push(i);
        }
        if !batch.is_empty() {
            batches.push(batch);
        }
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_respect_the_token_budget_and_cover_every_text_once() {
        let lengths: Vec<usize> = (0..1000).map(|i| 3 + (i * 7919) % 250).collect();
        let policy = BatchPolicy { max_tokens: 2048, max_batch: 64, window: 300 };
        let batches = plan_batches(&lengths, &policy);
        let mut seen: Vec<usize> = batches.iter().flatten().copied().collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..1000).collect::<Vec<_>>());
        for b in &batches {
            let longest = b.iter().map(|&i| lengths[i]).max().unwrap();
            assert!(b.len() <= 64);
            assert!(b.len() == 1 || b.len() * longest <= 2048, "{} x {longest}", b.len());
            // a batch never mixes windows
            assert_eq!(b.iter().map(|&i| i / 300).min(), b.iter().map(|&i| i / 300).max());
        }
    }
}
