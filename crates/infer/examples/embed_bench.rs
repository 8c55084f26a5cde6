//! Embedding throughput, measured like the peers (../shared/peers/embed_*.py): load, warm up
//! on 64 texts, then time `embed` over all texts.
//!
//!     cargo run --release -p sluice-infer --example embed_bench -- MODEL_DIR TEXTS.json [OUT.f32] [--max-tokens N] [--kernels fused|candle] [--precision f32|bf16]
//!
//! TEXTS.json is a JSON list of strings. OUT.f32 (optional) gets the embeddings as raw
//! little-endian float32, row-major, for comparison with the peers' outputs. The device is
//! CUDA when built with `--features cuda` and a GPU is present. Threads: RAYON_NUM_THREADS.

// A program: its output is on stdout.
#![allow(clippy::print_stdout)]

use std::time::Instant;

use sluice_infer::{choose_device, BatchPolicy, EmbeddingModel, Kernels, Precision};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut policy = BatchPolicy::default();
    if let Some(i) = args.iter().position(|a| a == "--max-tokens") {
        policy.max_tokens = args.get(i + 1).ok_or("--max-tokens N")?.parse()?;
        args.drain(i..i + 2);
    }
    let mut kernels = None;
    if let Some(i) = args.iter().position(|a| a == "--kernels") {
        kernels = match args.get(i + 1).map(String::as_str) {
            Some("fused") => Some(Kernels::Fused),
            Some("candle") => Some(Kernels::Candle),
            _ => return Err("--kernels fused|candle".into()),
        };
        args.drain(i..i + 2);
    }
    let mut precision = Precision::F32;
    if let Some(i) = args.iter().position(|a| a == "--precision") {
        precision = args.get(i + 1).and_then(|p| Precision::parse(p)).ok_or("--precision f32|bf16")?;
        args.drain(i..i + 2);
    }
    let (dir, texts_path) = (args.first().ok_or("MODEL_DIR")?, args.get(1).ok_or("TEXTS.json")?);
    let t0 = Instant::now();
    let device = choose_device(true)?;
    let dir = std::path::Path::new(dir);
    let model = match (kernels, precision) {
        (Some(k), p) => EmbeddingModel::load_in(dir, &device, k, p)?,
        (None, Precision::F32) => EmbeddingModel::load(dir, &device)?,
        (None, p) => EmbeddingModel::load_in(dir, &device, Kernels::Fused, p)?,
    };
    let texts: Vec<String> = serde_json::from_str(&std::fs::read_to_string(texts_path)?)?;
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let load_s = t0.elapsed().as_secs_f64();
    model.embed(&refs[..refs.len().min(64)], &policy)?; // warm-up, as the peers do
    let t = Instant::now();
    let emb = model.embed(&refs, &policy)?;
    let dt = t.elapsed().as_secs_f64();
    println!(
        "sluice device={device:?} kernels={kernels:?} precision={} threads={} max_tokens={} load_s={load_s:.2} {} texts in {dt:.2}s -> {:.1} texts/s dim={}",
        precision.as_str(),
        std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "auto".into()),
        policy.max_tokens,
        texts.len(),
        texts.len() as f64 / dt,
        model.dim()
    );
    if let Some(out) = args.get(2) {
        let bytes: Vec<u8> = emb.iter().flat_map(|x| x.to_le_bytes()).collect();
        std::fs::write(out, bytes)?;
    }
    Ok(())
}
