//! Operations: backfill ranges, dry runs, re-scoring with another model, shards and
//! publish, exit codes, metrics files and signals.

use super::*;

const WEEK: [&str; 7] = ["2013-01-13", "2013-01-14", "2013-01-15", "2013-01-16", "2013-01-17", "2013-01-18", "2013-01-19"];

fn sample_flights(date: &str) -> PathBuf {
    repo().join("data/sample/landing/flights").join(format!("{date}.csv"))
}

/// partition -> rows out, from a summary.
fn rows_by_partition(summary: &Value) -> BTreeMap<String, u64> {
    summary["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["partition"].as_str().unwrap().to_string(), p["rows_out"].as_u64().unwrap()))
        .collect()
}

fn metrics(path: &Path) -> BTreeMap<String, f64> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let (name, value) = l.rsplit_once(' ').unwrap();
            (name.split('{').next().unwrap().to_string(), value.parse().unwrap())
        })
        .collect()
}

#[test]
fn a_date_range_is_published_in_one_commit_and_gaps_are_skipped() {
    let ds = temp_dir("range");
    let m = temp_dir("range-metrics").join("sluice.prom");
    let out = run_into(&ds, &["--from", "2013-01-12", "--to", "2013-01-16", "--metrics-file", m.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let s = out.summary();
    assert_eq!(s["status"], "published");
    assert_eq!(s["commit"], 1);
    assert_eq!(commits(&ds), 1, "the whole range is one commit");
    assert_eq!(s["skipped"], serde_json::json!(["date=2013-01-12"]));
    let rows = rows_by_partition(&s);
    assert_eq!(rows.keys().collect::<Vec<_>>(), ["date=2013-01-13", "date=2013-01-14", "date=2013-01-15", "date=2013-01-16"]);
    for p in s["partitions"].as_array().unwrap() {
        let date = p["partition"].as_str().unwrap().trim_start_matches("date=");
        assert_eq!(p["rows_in"].as_u64().unwrap(), csv_rows(&sample_flights(date)));
        let written: usize = p["files"].as_array().unwrap().iter().map(|f| read_parquet(f.as_str().unwrap()).height()).sum();
        assert_eq!(written as u64, p["rows_out"].as_u64().unwrap());
    }
    // the metrics file: Prometheus text with the run's totals, no temporary file left
    let mm = metrics(&m);
    assert_eq!(mm["sluice_run_success"], 1.0);
    assert_eq!(mm["sluice_rows_out"], rows.values().sum::<u64>() as f64);
    assert_eq!(mm["sluice_rows_in"], s["rows"]["in"].as_f64().unwrap());
    assert_eq!(mm["sluice_last_published_commit"], 1.0);
    assert_eq!(std::fs::read_dir(m.parent().unwrap()).unwrap().count(), 1);
}

#[test]
fn a_range_without_any_input_exits_99_and_says_so_in_the_metrics() {
    let ds = temp_dir("range-empty");
    let m = temp_dir("range-empty-metrics").join("sluice.prom");
    let out = run_into(&ds, &["--from", "2013-03-01", "--to", "2013-03-03", "--metrics-file", m.to_str().unwrap()]);
    assert_eq!(out.code, 99, "{}", out.stderr);
    assert_eq!(out.summary()["status"], "skipped");
    assert_eq!(commits(&ds), 0);
    let text = std::fs::read_to_string(&m).unwrap();
    assert!(text.contains("sluice_run_exit_code{pipeline=\"flight_delays\"} 99"), "{text}");
    assert!(text.contains("status=\"skipped\"} 1"), "{text}");
}

#[test]
fn dry_run_prints_the_plan_and_writes_nothing() {
    let ds = temp_dir("dry");
    let out = run_into(&ds, &["--from", "2013-01-13", "--to", "2013-01-14", "--dry-run", "--run-id", "planned-1"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let s = out.summary();
    assert_eq!(s["status"], "dry_run");
    let plan = s["plan"].as_array().unwrap();
    assert_eq!(plan.len(), 2);
    for (p, date) in plan.iter().zip(["2013-01-13", "2013-01-14"]) {
        assert_eq!(p["partition"], format!("date={date}"));
        assert_eq!(p["up_to_date"], false);
        let size = std::fs::metadata(sample_flights(date)).unwrap().len();
        assert_eq!(p["objects"][0]["size"].as_u64().unwrap(), size);
        assert_eq!(p["bytes"].as_u64().unwrap(), size);
        assert!(p["objects"][0]["uri"].as_str().unwrap().ends_with(&format!("flights/{date}.csv")));
        assert!(p["output"].as_str().unwrap().ends_with(&format!("date={date}/")), "{p}");
    }
    assert_eq!(files_under(&ds), Vec::<PathBuf>::new(), "a dry run writes nothing");

    // after a real run, the plan says the partition is up to date
    assert_eq!(run_into(&ds, &["--date", "2013-01-13"]).code, 0);
    let again = run_into(&ds, &["--from", "2013-01-13", "--to", "2013-01-14", "--dry-run"]).summary();
    assert_eq!(again["plan"][0]["up_to_date"], true);
    assert_eq!(again["plan"][1]["up_to_date"], false);
    assert_eq!(commits(&ds), 1);
}

#[test]
fn another_model_re_scores_instead_of_being_up_to_date_and_enters_the_lineage() {
    let ds = temp_dir("model");
    let first = run_into(&ds, &["--date", DATE]).summary();
    // the same weights under another id: a copy with a re-formatted config.json
    let other = temp_dir("model-copy").join("flight_delay_v2");
    std::fs::create_dir_all(&other).unwrap();
    let src = repo().join("data/models/flight_delay");
    std::fs::copy(src.join("model.safetensors"), other.join("model.safetensors")).unwrap();
    let config: Value = serde_json::from_str(&std::fs::read_to_string(src.join("config.json")).unwrap()).unwrap();
    std::fs::write(other.join("config.json"), serde_json::to_string(&config).unwrap()).unwrap();

    let out = run_into(&ds, &["--date", DATE, "--model", other.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let s = out.summary();
    assert_eq!(s["status"], "published", "another model is never 'up to date'");
    assert_eq!(s["commit"], 2);
    let manifest = |summary: &Value| -> Value {
        let version = summary["partitions"][0]["version"].as_str().unwrap();
        manifest(&ds, &format!("date={DATE}"), version)
    };
    let (m1, m2) = (manifest(&first), manifest(&s));
    assert_ne!(m1["model"]["id"], m2["model"]["id"]);
    assert!(m2["model"]["path"].as_str().unwrap().ends_with("flight_delay_v2"));
    assert_ne!(m1["fingerprint"], m2["fingerprint"]);
    let file = s["partitions"][0]["files"][0].as_str().unwrap();
    assert!(kv_metadata(file).iter().any(|(k, v)| k == "sluice.model_id" && *v == m2["model"]["id"]));
    // same weights, same scores
    let a = read_parquet(first["partitions"][0]["files"][0].as_str().unwrap());
    assert!(a.column("delay_prob").unwrap().equals(read_parquet(file).column("delay_prob").unwrap()));
}

#[test]
fn input_override_reads_another_landing_zone() {
    let landing = landing_copy("input-override");
    std::fs::rename(landing.join("flights/2013-01-15.csv"), landing.join("flights/renamed-2013-01-15.csv")).unwrap();
    let ds = temp_dir("input-override-ds");
    let input = format!("{}/flights/renamed-{{date}}.csv", landing.display());
    let out = run_into(&ds, &["--date", DATE, "--input", &input]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let s = out.summary();
    assert_eq!(s["partitions"][0]["rows_in"].as_u64().unwrap(), csv_rows(&sample_flights(DATE)));
    let version = s["partitions"][0]["version"].as_str().unwrap();
    let manifest = manifest(&ds, &format!("date={DATE}"), version).to_string();
    assert!(manifest.contains("renamed-2013-01-15.csv"));
}

#[test]
fn usage_errors_exit_2_with_the_summary_line() {
    let ds = temp_dir("usage");
    for extra in [
        vec!["--from", "2013-01-13"],                                    // --to missing
        vec!["--from", "2013-01-19", "--to", "2013-01-13"],             // reversed range
        vec!["--date", DATE, "--shard", "4/4", "--run-id", "r1"],       // shard out of range
        vec!["--date", DATE, "--shard", "0/4"],                         // shard without a run id
        vec!["--date", DATE, "--no-such-flag"],
        vec!["--partition", "date=../../etc"],
    ] {
        let out = run_into(&ds, &extra);
        assert_eq!(out.code, 2, "{extra:?}: {}", out.stderr);
        let s = out.summary();
        assert_eq!(s["status"], "failed", "{extra:?}");
        assert_eq!(s["exit_code"], 2, "{extra:?}");
        assert!(!s["error"].as_str().unwrap().is_empty());
    }
    assert_eq!(files_under(&ds), Vec::<PathBuf>::new());
}

#[test]
fn a_commit_race_on_the_same_partition_exits_4_and_the_winner_stays() {
    let ds = temp_dir("race");
    let p = pipeline();
    // the loser plans against the empty dataset, writes its files, then holds at its commit
    let args = ["run", p.to_str().unwrap(), "--output", ds.to_str().unwrap(), "--date", DATE];
    let mut loser = Running::start(&args, &[("SLUICE_HOLD_AT", "commit")]);
    loser.wait_for("holding at commit");
    let winner = run_into(&ds, &["--date", DATE]);
    assert_eq!(winner.code, 0, "{}", winner.stderr);
    loser.release();
    let loser = loser.finish();
    assert_eq!(loser.code, 4, "{}", loser.stderr);
    let s = loser.summary();
    assert_eq!(s["status"], "failed");
    assert!(s["error"].as_str().unwrap().contains("conflict"), "{s}");
    assert_eq!(commits(&ds), 1);
    assert_eq!(check_show(&ds)["partitions"][0]["version"], winner.summary()["run_id"]);
    // the loser's files are gone: what is left is the winner's and the commit log
    assert_eq!(unreferenced_files(&ds), Vec::<PathBuf>::new());
}

#[test]
fn shards_stage_their_share_and_publish_makes_one_commit() {
    let ds = temp_dir("shards");
    let reference = temp_dir("shards-reference");
    let whole = run_into(&reference, &["--from", WEEK[0], "--to", WEEK[6]]).summary();
    // one partition per item: "write:2" below is the shard's second partition
    let shard = |i: &str, env: &[(&str, &str)]| {
        let p = pipeline_one_partition_per_item();
        let args =
            ["run", p.to_str().unwrap(), "--output", ds.to_str().unwrap(), "--from", WEEK[0], "--to", WEEK[6], "--shard", i, "--run-id", "airflow-run-7"];
        sluice_env(&args, env)
    };
    let publish =
        || sluice(&["publish", pipeline_one_partition_per_item().to_str().unwrap(), "--run", "airflow-run-7", "--output", ds.to_str().unwrap()]);

    let s0 = shard("0/3", &[]);
    assert_eq!(s0.code, 0, "{}", s0.stderr);
    assert_eq!(s0.summary()["status"], "staged");
    assert_eq!(s0.summary()["shard"], "0/3");
    assert_eq!(rows_by_partition(&s0.summary()).len(), 3, "objects 0, 3 and 6 of the week");
    assert_eq!(commits(&ds), 0, "a shard publishes nothing");

    // a shard failing after it wrote a file leaves none of its files; publish refuses
    // while shards are missing
    let staged = files_under(&ds);
    let failed = shard("1/3", &[("SLUICE_FAIL_STAGE", "write:2")]);
    assert_eq!(failed.code, 1, "{}", failed.stderr);
    assert!(failed.stderr.contains("removed this attempt's unpublished files"), "{}", failed.stderr);
    assert_eq!(files_under(&ds), staged);
    let early = publish();
    assert_eq!(early.code, 1, "{}", early.stderr);
    let err = early.summary()["error"].as_str().unwrap().to_string();
    assert!(err.contains("missing: 1/3, 2/3"), "{err}");
    assert_eq!(commits(&ds), 0);

    // resume: only the failed and the missing shard run; a finished shard does nothing
    let before = files_under(&ds);
    let again = shard("0/3", &[]);
    assert_eq!((again.code, again.summary()["status"].as_str()), (0, Some("staged")));
    assert!(again.stderr.contains("already finished"), "{}", again.stderr);
    assert_eq!(files_under(&ds), before);
    for i in ["1/3", "2/3"] {
        let out = shard(i, &[]);
        assert_eq!(out.code, 0, "{i}: {}", out.stderr);
    }

    let published = publish();
    assert_eq!(published.code, 0, "{}", published.stderr);
    let p = published.summary();
    assert_eq!(p["status"], "published");
    assert_eq!(p["run_id"], "airflow-run-7");
    assert_eq!(commits(&ds), 1, "all shards in one commit");
    assert_eq!(rows_by_partition(&p), rows_by_partition(&whole), "the same rows as one unsharded run");
    for part in p["partitions"].as_array().unwrap() {
        let date = part["partition"].as_str().unwrap().trim_start_matches("date=");
        assert_eq!(part["rows_in"].as_u64().unwrap(), csv_rows(&sample_flights(date)));
        let n: usize = part["files"].as_array().unwrap().iter().map(|f| read_parquet(f.as_str().unwrap()).height()).sum();
        assert_eq!(n as u64, part["rows_out"].as_u64().unwrap());
    }
    // publishing again is a no-op
    let twice = publish();
    assert_eq!((twice.code, twice.summary()["status"].as_str()), (0, Some("up_to_date")));
    assert_eq!(commits(&ds), 1);
}

/// Start a run, wait for `ready` in its log, send `signal`; the run must stop promptly,
/// exit 1 with the summary line, and leave the dataset as it was.
fn signal_mid_run(args: &[&str], env: &[(&str, &str)], ready: &str, signal: &str, ds: &Path) {
    let run = Running::start(args, env);
    run.wait_for(ready);
    let sent = Instant::now();
    run.signal(signal);
    let out = run.finish();
    let stopped_in = sent.elapsed();
    assert!(stopped_in < Duration::from_secs(30), "took {stopped_in:?} to stop after {signal}");
    assert_eq!(out.code, 1, "{}", out.stderr);
    let s = out.summary();
    assert_eq!(s["status"], "failed");
    assert_eq!(s["signal"], format!("SIG{signal}"));
    assert!(s["error"].as_str().unwrap().contains("cancelled"), "{s}");
    assert_eq!(commits(ds), 0, "nothing published");
    assert_eq!(files_under(ds), Vec::<PathBuf>::new(), "no files left: {}", out.stderr);
}

#[test]
fn sigterm_while_embedding_stops_every_stage_and_publishes_nothing() {
    let ds = temp_dir("sigterm");
    let p = repo().join("pipelines/text_embeddings.toml");
    let input = repo().join("data/sample/texts/texts.ndjson");
    let args = ["run", p.to_str().unwrap(), "--input", input.to_str().unwrap(), "--output", ds.to_str().unwrap()];
    signal_mid_run(&args, &[], "embedding model loaded", "TERM", &ds);
}

#[test]
fn sigint_at_the_commit_publishes_nothing() {
    let ds = temp_dir("sigint");
    let p = pipeline();
    let args = ["run", p.to_str().unwrap(), "--output", ds.to_str().unwrap(), "--from", WEEK[0], "--to", WEEK[6]];
    signal_mid_run(&args, &[("SLUICE_HOLD_AT", "commit")], "holding at commit", "INT", &ds);
}
