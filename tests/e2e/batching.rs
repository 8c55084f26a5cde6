//! Small partitions go through the transform together (`[runtime] batch_kib`), and the
//! stages run with several workers: neither may change what any partition gets.

use super::*;

/// Every partition's rows (read back from Parquet, in file order), rows accounted for, and
/// quarantined (file, line, rule) of a run's summary.
fn outcome(summary: &Value) -> BTreeMap<String, (DataFrame, String, DataFrame)> {
    summary["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let frames: Vec<DataFrame> = p["files"].as_array().unwrap().iter().map(|f| read_parquet(f.as_str().unwrap())).collect();
            let mut rows = frames[0].clone();
            for f in &frames[1..] {
                rows.vstack_mut(f).unwrap();
            }
            let q = match p["quarantine_files"].as_array().and_then(|q| q.first()) {
                Some(f) => read_parquet(f.as_str().unwrap()).select(["file", "line", "column", "rule"]).unwrap(),
                None => DataFrame::empty(),
            };
            let counts = format!("{} {} {} {}", p["rows_in"], p["rows_out"], p["rows_filtered"], p["rows_quarantined"]);
            (p["partition"].as_str().unwrap().to_string(), (rows, counts, q))
        })
        .collect()
}

/// Each run with its own empty cache: every one reads and derives its dimensions itself.
fn run_variant(pipeline: &Path, landing: &Path, out: &Path) -> Value {
    run_variant_with(pipeline, landing, out, "1")
}

/// [`run_variant`] with a Polars pool of `engine_threads`.
fn run_variant_with(pipeline: &Path, landing: &Path, out: &Path, engine_threads: &str) -> Value {
    let cache = out.with_extension("cache");
    let r = sluice_env(&[
        "run",
        pipeline.to_str().unwrap(),
        "--from",
        "2013-01-13",
        "--to",
        "2013-01-19",
        "--param",
        &format!("landing={}", landing.display()),
        "--output",
        out.to_str().unwrap(),
    ], &[("SLUICE_CACHE_DIR", cache.to_str().unwrap()), ("POLARS_MAX_THREADS", engine_threads)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    r.summary()
}

/// A copy of the sample landing zone where 2013-01-15's line 6 has month 13 (quarantined).
fn landing_with_a_bad_row(dir: &Path) -> PathBuf {
    let landing = dir.join("landing");
    let src = repo().join("data/sample/landing");
    for sub in ["flights", "dims"] {
        std::fs::create_dir_all(landing.join(sub)).unwrap();
        for e in std::fs::read_dir(src.join(sub)).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), landing.join(sub).join(e.file_name())).unwrap();
        }
    }
    let day = landing.join("flights/2013-01-15.csv");
    let text = std::fs::read_to_string(&day).unwrap();
    let lines: Vec<String> =
        text.lines().enumerate().map(|(i, l)| if i == 5 { l.replacen("2013,1,", "2013,13,", 1) } else { l.to_string() }).collect();
    std::fs::write(&day, lines.join("\n") + "\n").unwrap();
    landing
}

/// The codec of each column chunk of a Parquet file, as its footer names it.
fn page_codecs(path: &str) -> Vec<String> {
    let meta = polars_parquet::read::read_metadata(&mut std::fs::File::open(path).unwrap()).unwrap();
    meta.row_groups.iter().flat_map(|g| g.parquet_columns()).map(|c| format!("{:?}", c.compression()).to_uppercase()).collect()
}

/// The same rows in the same order, every value equal to the bit (floats included).
fn assert_same_rows(a: &DataFrame, b: &DataFrame, what: &str) {
    assert_eq!(a.get_column_names(), b.get_column_names(), "{what}");
    assert_eq!(a.height(), b.height(), "{what}");
    for (x, y) in a.columns().iter().zip(b.columns()) {
        assert!(x.equals_missing(y), "{what}: column {} differs", x.name());
    }
}

#[test]
fn outputs_are_equal_whatever_the_batching_and_the_worker_counts_and_the_engine_pool() {
    let dir = temp_dir("batching");
    let landing = landing_with_a_bad_row(&dir);
    let one_at_a_time = pipeline_variant(&dir, "batch_kib = 0\ntransform_workers = 1\ninfer_workers = 1\nwrite_workers = 1", "");
    let batched = pipeline_variant(&dir, "transform_workers = 1\ninfer_workers = 1", "");
    let small_blocks = pipeline_variant(&dir, "batch_kib = 150\ntransform_workers = 2\ninfer_workers = 2\nwrite_workers = 3", "");
    // the same rows whatever the files' codec, too
    let snappy = pipeline_variant(&dir, "transform_workers = 1\ninfer_workers = 1", "");
    let text = std::fs::read_to_string(&snappy).unwrap().replace("[output]\n", "[output]\ncompression = \"snappy\"\n");
    std::fs::write(&snappy, text).unwrap();
    let want = outcome(&run_variant(&one_at_a_time, &landing, &dir.join("a")));
    assert_eq!(want.len(), 7);
    let (_, counts, q) = &want["date=2013-01-15"];
    assert!(counts.ends_with(" 1"), "one row quarantined: {counts}");
    assert_eq!(q.column("line").unwrap().u32().unwrap().get(0), Some(6));
    for (p, out) in [(&batched, "b"), (&small_blocks, "c"), (&snappy, "d")] {
        // the small blocks on a Polars pool of 2 threads, the rest on 1
        let summary = run_variant_with(p, &landing, &dir.join(out), if out == "c" { "2" } else { "1" });
        for file in summary["partitions"].as_array().unwrap().iter().flat_map(|p| p["files"].as_array().unwrap()) {
            let codecs = page_codecs(file.as_str().unwrap());
            assert!(codecs.iter().all(|c| c == if out == "d" { "SNAPPY" } else { "ZSTD" }), "{out}: {file} has {codecs:?}");
        }
        let got = outcome(&summary);
        assert_eq!(got.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>());
        for (part, (rows, counts, q)) in &got {
            let (w_rows, w_counts, w_q) = &want[part];
            assert_eq!(counts, w_counts, "{part}: rows in, out, filtered, quarantined");
            assert_same_rows(rows, w_rows, &format!("{part} ({out})"));
            assert!(q.equals_missing(w_q), "{part}: quarantine differs ({out})");
        }
    }
}

#[test]
fn steps_that_look_across_rows_see_one_partition_at_a_time() {
    // a window over the whole input: batching partitions would count every day's rows
    let step = "[[transform]]\nname = \"day_rows\"\nsql = \"SELECT *, COUNT(*) OVER () AS day_rows FROM input\"\n";
    let dir = temp_dir("batching-window");
    let p = pipeline_variant(&dir, "transform_workers = 1\ninfer_workers = 1", step);
    let summary = run_variant(&p, &repo().join("data/sample/landing"), &dir.join("out"));
    for (part, (rows, counts, _)) in outcome(&summary) {
        let kept: u64 = counts.split(' ').nth(1).unwrap().parse().unwrap();
        let day_rows = rows.column("day_rows").unwrap().cast(&DataType::UInt64).unwrap();
        let day_rows = day_rows.u64().unwrap();
        // after the cancelled filter: each row counts its own partition's rows
        assert!(day_rows.iter().all(|n| n == Some(kept)), "{part}: {day_rows:?} for {kept} rows");
    }
}
