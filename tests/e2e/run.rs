//! `sluice run`: publish, read back, idempotency, lineage, failures in each stage.

use super::*;

#[test]
fn run_publishes_a_scored_version_that_reads_back_as_parquet() {
    let ds = temp_dir("publish");
    let out = run_into(&ds, &["--date", DATE]);
    assert_eq!(out.code, 0, "stderr:\n{}", out.stderr);
    let s = out.summary();
    assert_eq!(s["status"], "published");
    assert_eq!(s["commit"], 1);
    assert!(s["duration_s"].as_f64().unwrap() > 0.0);
    let p = &s["partitions"][0];
    assert_eq!(p["partition"], format!("date={DATE}"));
    let input_rows = csv_rows(&repo().join(format!("data/sample/landing/flights/{DATE}.csv")));
    let (rows_in, rows_out, filtered, quarantined) = (
        p["rows_in"].as_u64().unwrap(),
        p["rows_out"].as_u64().unwrap(),
        p["rows_filtered"].as_u64().unwrap(),
        p["rows_quarantined"].as_u64().unwrap(),
    );
    assert_eq!(rows_in, input_rows);
    assert_eq!(rows_in, rows_out + filtered + quarantined);
    assert!(filtered > 0, "the sample day has cancelled flights");
    assert_eq!(quarantined, 0);

    let files: Vec<&str> = p["files"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
    assert!(!files.is_empty());
    let frames: Vec<DataFrame> = files.iter().map(|f| read_parquet(f)).collect();
    let total: usize = frames.iter().map(DataFrame::height).sum();
    assert_eq!(total as u64, rows_out);
    let df = &frames[0];
    for c in ["delay_prob", "temp", "plane_age", "day_of_week", "distance_bucket", "airline", "carrier"] {
        assert!(df.column(c).is_ok(), "missing column {c}: {:?}", df.get_column_names());
    }
    let prob = df.column("delay_prob").unwrap().f32().unwrap();
    assert_eq!(prob.null_count(), 0);
    assert!(prob.min().unwrap() >= 0.0 && prob.max().unwrap() <= 1.0);
    assert!(prob.max().unwrap() - prob.min().unwrap() > 0.05, "scores vary with the features");
    // 2013-01-15 was a Tuesday: isodow 2 -> day_of_week 1 (Monday = 0)
    let dow = df.column("day_of_week").unwrap().cast(&DataType::Int64).unwrap();
    assert_eq!(dow.i64().unwrap().unique().unwrap().len(), 1);
    assert_eq!(dow.i64().unwrap().get(0), Some(1));
    assert_eq!(df.column("dep_time").unwrap().null_count(), 0, "cancelled flights were filtered");

    // lineage in the Parquet key-value metadata and in the manifest
    let kv = kv_metadata(files[0]);
    let get = |k: &str| kv.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone()).unwrap_or_default();
    assert_eq!(get("sluice.run_id"), s["run_id"].as_str().unwrap());
    assert_eq!(get("sluice.partition"), format!("date={DATE}"));
    assert_eq!(get("sluice.model_id").len(), 64);
    assert!(get("sluice.inputs").contains(&format!("{DATE}.csv")));
    let version = p["version"].as_str().unwrap();
    let manifest = manifest(&ds, &format!("date={DATE}"), version);
    assert_eq!(manifest["rows"]["in"], rows_in);
    assert_eq!(manifest["rows"]["filtered_by"]["cancelled"], filtered);
    assert_eq!(manifest["model"]["id"], get("sluice.model_id"));
    assert_eq!(manifest["inputs"][0]["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(manifest["dimensions"].as_array().unwrap().len(), 3);
    assert!(manifest["schema"].as_array().unwrap().iter().any(|c| c["name"] == "delay_prob"));
    assert_eq!(manifest["stages"]["stages"].as_array().unwrap().len(), 5, "extract, transform, infer, encode, write");
    assert!(manifest["command"].as_array().unwrap().iter().any(|a| a == "--date"));
}

#[test]
fn a_rerun_with_the_same_fingerprint_is_up_to_date_and_force_publishes_again() {
    let ds = temp_dir("idempotent");
    let first = run_into(&ds, &["--date", DATE]).summary();
    let again = run_into(&ds, &["--date", DATE]);
    assert_eq!(again.code, 0);
    let s = again.summary();
    assert_eq!(s["status"], "up_to_date");
    assert_eq!(s["commit"], 1);
    assert_eq!(s["partitions"][0]["version"], first["partitions"][0]["version"]);
    assert_eq!(commits(&ds), 1);

    let forced = run_into(&ds, &["--date", DATE, "--force"]);
    assert_eq!(forced.code, 0, "{}", forced.stderr);
    let f = forced.summary();
    assert_eq!(f["status"], "published");
    assert_eq!(f["commit"], 2);
    assert_ne!(f["partitions"][0]["version"], first["partitions"][0]["version"]);
    // the same inputs and model give the same scores
    let a = read_parquet(first["partitions"][0]["files"][0].as_str().unwrap());
    let b = read_parquet(f["partitions"][0]["files"][0].as_str().unwrap());
    assert!(a.column("delay_prob").unwrap().equals(b.column("delay_prob").unwrap()));
}

#[test]
fn a_date_without_input_exits_99_and_publishes_nothing() {
    let ds = temp_dir("noinput");
    let out = run_into(&ds, &["--date", "2014-06-01"]);
    assert_eq!(out.code, 99, "{}", out.stderr);
    assert_eq!(out.summary()["status"], "skipped");
    assert!(out.stderr.contains("2014-06-01.csv"), "{}", out.stderr);
    assert_eq!(commits(&ds), 0);
}

#[test]
fn validate_accepts_the_shipped_pipeline() {
    let p = pipeline();
    let out = sluice(&["validate", p.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("ok"));
}
