//! sluice-infer: candle batch inference.
//!
//! - [`device`]: the device is chosen once ([`choose_device`]) and passed down: CPU by
//!   default, CUDA when built with the `cuda` feature and a GPU is present.
//! - [`tabular`]: a tabular MLP ([`TabularModel`]) scoring a [`TabularBatch`] of named
//!   feature columns; input normalisation and vocabularies live in the model's `config.json`.
//! - [`train`]: the seeded, reproducible trainer that produces such a model directory.
//! - [`embed`]: BERT-family sentence embeddings ([`EmbeddingModel`]) with token-budget
//!   batching ([`BatchPolicy`]); numbers as sentence-transformers'. On the CPU the encoder
//!   runs [`kernels`], fused in-place candle ops; elsewhere candle-transformers' `BertModel`.
//! - [`model_id`]: a model's identity, the sha256 of its files.
//!
//! A model is a directory: `config.json` + `model.safetensors` (+ `tokenizer.json` and the
//! sentence-transformers module configs for an embedding model).

pub mod device;
pub mod embed;
mod encoder;
pub mod kernels;
pub mod error;
pub mod tabular;
pub mod train;

pub use device::choose_device;
pub use embed::{BatchPolicy, EmbeddingModel, Kernels};
pub use error::InferError;
pub use tabular::{FeatureValues, InputKind, InputSpec, MlpConfig, TabularBatch, TabularModel};

use std::path::Path;

use sha2::{Digest, Sha256};

/// The files a model directory must hold.
pub const MODEL_FILES: [&str; 2] = ["config.json", "model.safetensors"];

/// A model directory's identity: sha256 over its files (name, length and bytes of each, in
/// a fixed order), hex. Works for both kinds of model.
pub fn model_id(dir: &Path) -> Result<String, InferError> {
    if dir.join("tokenizer.json").is_file() {
        files_id(dir, &embed::EMBEDDING_FILES)
    } else {
        files_id(dir, &MODEL_FILES)
    }
}

pub(crate) fn files_id(dir: &Path, names: &[&str]) -> Result<String, InferError> {
    let mut h = Sha256::new();
    for name in names {
        let path = dir.join(name);
        let bytes = std::fs::read(&path).map_err(|source| InferError::MissingFile { path: path.clone(), source })?;
        h.update(name.as_bytes());
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(&bytes);
    }
    Ok(hex::encode(h.finalize()))
}
