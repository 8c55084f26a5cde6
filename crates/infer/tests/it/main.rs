//! The embedding model on real texts: parity with sentence-transformers, independence from
//! batch neighbours, clear errors for incomplete model folders.
//!
//! Needs the model: `python3 data/fetch_minilm.py` (`.ci/run` does it).

// Test code: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use candle_core::{DType, Device};
use sluice_infer::{BatchPolicy, EmbeddingModel, InferError, Kernels, Precision};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn model() -> &'static EmbeddingModel {
    static M: OnceLock<EmbeddingModel> = OnceLock::new();
    M.get_or_init(|| {
        let dir = repo().join("data/models/all-MiniLM-L6-v2");
        EmbeddingModel::load(&dir, &Device::Cpu)
            .unwrap_or_else(|e| panic!("{e}\n(fetch the model with: python3 data/fetch_minilm.py)"))
    })
}

fn texts() -> Vec<String> {
    std::fs::read_to_string(repo().join("data/sample/texts/texts.ndjson"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["text"].as_str().unwrap().to_string())
        .collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

#[test]
fn every_embedding_matches_sentence_transformers() {
    let texts = texts();
    assert!(texts.len() >= 1000);
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let m = model();
    assert_eq!((m.dim(), m.max_seq_length()), (384, 256));
    let ours = m.embed(&refs, &BatchPolicy::default()).unwrap();
    let reference = reference();
    assert_eq!(reference.len(), texts.len());
    let mut worst = (1.0f64, 0usize);
    for (i, r) in reference.iter().enumerate() {
        let c = cosine(&ours[i * 384..(i + 1) * 384], r);
        if c < worst.0 {
            worst = (c, i);
        }
    }
    assert!(worst.0 >= 0.99999, "text {} has cosine {} to sentence-transformers: {:?}", worst.1, worst.0, &texts[worst.1]);
    // normalised, as the model's modules.json says
    let norm: f32 = ours[..384].iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-5);
}

fn reference() -> Vec<Vec<f32>> {
    candle_core::safetensors::load(repo().join("data/sample/texts/reference_minilm.safetensors"), &Device::Cpu).unwrap()["embeddings"]
        .to_dtype(DType::F32)
        .unwrap()
        .to_vec2::<f32>()
        .unwrap()
}

#[test]
fn bf16_embeddings_keep_the_direction_of_sentence_transformers_f32_ones() {
    let texts = texts();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let dir = repo().join("data/models/all-MiniLM-L6-v2");
    let m = EmbeddingModel::load_in(&dir, &Device::Cpu, Kernels::Fused, Precision::Bf16).unwrap();
    // the precision is part of the id: a bf16 version is never taken for the f32 one
    assert_eq!(m.id(), format!("{}+bf16", model().id()));
    let ours = m.embed(&refs, &BatchPolicy::default()).unwrap();
    let worst = reference().iter().enumerate().map(|(i, r)| cosine(&ours[i * 384..(i + 1) * 384], r)).fold(1.0f64, f64::min);
    assert!(worst >= 0.999, "min cosine {worst}");
    // rounded, not the f32 numbers: somewhere a vector differs
    let f32s = model().embed(&refs[..50], &BatchPolicy::default()).unwrap();
    assert!(f32s.iter().zip(&ours).any(|(a, b)| a != b));
    assert!(EmbeddingModel::load_in(&dir, &Device::Cpu, Kernels::Candle, Precision::Bf16).is_err());
}

#[test]
fn an_embedding_does_not_depend_on_its_batch() {
    let texts = texts();
    let some: Vec<&str> = texts.iter().step_by(20).map(String::as_str).collect(); // 50 texts, mixed lengths
    let m = model();
    let together = m.embed(&some, &BatchPolicy::default()).unwrap();
    let tiny = BatchPolicy { max_tokens: 600, max_batch: 3, window: 7 };
    let small_batches = m.embed(&some, &tiny).unwrap();
    let mut worst = 0f32;
    for (i, t) in some.iter().enumerate() {
        let alone = m.embed(&[t], &BatchPolicy::default()).unwrap();
        for k in 0..384 {
            worst = worst.max((alone[k] - together[i * 384 + k]).abs()).max((alone[k] - small_batches[i * 384 + k]).abs());
        }
    }
    assert!(worst <= 1e-5, "largest difference {worst}");
}

#[test]
fn the_fused_kernels_agree_with_candles_bert() {
    let texts = texts();
    let some: Vec<&str> = texts.iter().step_by(25).map(String::as_str).collect(); // 40 texts, mixed lengths
    let dir = repo().join("data/models/all-MiniLM-L6-v2");
    let reference = EmbeddingModel::load_with(&dir, &Device::Cpu, Kernels::Candle).unwrap();
    let policy = BatchPolicy { max_tokens: 1024, ..BatchPolicy::default() }; // several padded batches
    let fused = model().embed(&some, &policy).unwrap();
    let candle = reference.embed(&some, &policy).unwrap();
    let worst = fused.iter().zip(&candle).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(worst <= 1e-5, "largest difference {worst}");
    assert!(fused.iter().all(|v| v.is_finite()));
}

#[test]
fn a_missing_model_file_is_named() {
    let src = repo().join("data/models/all-MiniLM-L6-v2");
    let dir = std::env::temp_dir().join(format!("sluice-incomplete-model-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(src.join(f), dir.join(f)).unwrap();
    }
    let err = EmbeddingModel::load(&dir, &Device::Cpu).err().expect("must fail");
    assert!(matches!(err, InferError::MissingFile { .. }), "{err}");
    assert!(err.to_string().contains("tokenizer.json"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
