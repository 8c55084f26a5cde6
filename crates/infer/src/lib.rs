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
//!   Opt-in bf16 linear layers ([`Precision::Bf16`]) run on AMX tiles where the CPU has them
//!   (`amx`), else [`bf16`]'s AVX-512 BF16 kernel, else f32 products of the rounded values.
//! - [`model_id`]: a model's identity, the sha256 of every file its loader reads
//!   ([`files::ModelFiles`]: read once, parsed from those bytes).
//!
//! A model is a directory: `config.json` + `model.safetensors` (+ `tokenizer.json` and the
//! sentence-transformers module configs for an embedding model).

mod amx;
mod attention;
pub mod bf16;
pub mod device;
pub mod embed;
mod dense;
mod encoder;
pub mod kernels;
mod precision;
pub mod error;
pub mod files;
pub mod tabular;
pub mod train;

pub use device::choose_device;
pub use embed::{BatchPolicy, EmbeddingModel, Kernels};
pub use precision::Precision;
pub use error::InferError;
pub use tabular::{FeatureValues, InputKind, InputSpec, MlpConfig, TabularBatch, TabularModel};

use std::path::Path;

/// The files a model directory must hold.
pub const MODEL_FILES: [&str; 2] = ["config.json", "model.safetensors"];

/// A model directory's identity: sha256 over every file its loader reads (name, length
/// and bytes of each, in a fixed order; optional files that are absent count as absent).
/// Works for both kinds of model.
/// An embedding model when the directory has a `tokenizer.json`, a tabular MLP otherwise.
pub fn model_id(dir: &Path) -> Result<String, InferError> {
    let files = if dir.join("tokenizer.json").is_file() {
        files::ModelFiles::read(dir, &embed::EMBEDDING_FILES, &embed::EMBEDDING_OPTIONAL_FILES)?
    } else {
        files::ModelFiles::read(dir, &MODEL_FILES, &[])?
    };
    Ok(files.id().to_string())
}
