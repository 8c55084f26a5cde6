//! Every dataset is a Delta table, and engines read it without sluice: Python `deltalake`,
//! Polars `scan_delta` and the Databricks kernel's wrapper (tests/delta/read_delta.py, in
//! the venv tests/object_stores.sh installs). Each version as `deltalake` reads it is the
//! state `sluice show --as-of` shows, through a range, `--force`, a rollback, a pin and gc.

use std::process::Command;

use chrono::{Duration as Age, Utc};

use super::*;

/// What the readers of tests/delta/read_delta.py see at `uri`.
pub(super) fn read_delta(uri: &str, extra: &[&str], env: &[(&str, &str)]) -> Value {
    let python = std::env::var("SLUICE_TEST_PYTHON").expect("SLUICE_TEST_PYTHON: run the tests with tests/run.sh");
    let out = Command::new(python).arg(repo().join("tests/delta/read_delta.py")).arg(uri).args(extra).envs(env.iter().copied()).output().unwrap();
    assert!(out.status.success(), "read_delta.py {uri}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Every version `deltalake` reads is the state `sluice show --as-of` shows (files and
/// rows); a version sluice refuses (gc collected it) fails in `deltalake` too, and the
/// current table read by Polars (and the kernel, where given) has the rows `show` counts.
pub(super) fn readers_agree(uri: &str, delta: &Value, env: &[(&str, &str)]) {
    let latest = delta["latest"].as_u64().unwrap();
    let mut refused = 0;
    for n in 0..=latest {
        let read = &delta["versions"][n.to_string()];
        let show = sluice_env(&["show", uri, "--as-of", &n.to_string(), "--json"], env);
        if show.code != 0 {
            assert_eq!(show.code, 2, "as of {n}: {}", show.stderr);
            assert!(read["rows"].is_null(), "as of {n}: sluice refused (collected), deltalake read {read}");
            refused += 1;
            continue;
        }
        let show: Value = serde_json::from_str(show.stdout.lines().last().unwrap()).unwrap();
        let mut files: Vec<&str> = show["partitions"].as_array().unwrap().iter().flat_map(|p| p["files"].as_array().unwrap()).map(|f| f.as_str().unwrap()).collect();
        files.sort();
        let theirs: Vec<&str> = read["files"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
        assert_eq!(files, theirs, "as of {n}: the files");
        let rows: u64 = show["partitions"].as_array().unwrap().iter().map(|p| p["rows"].as_u64().unwrap()).sum();
        assert_eq!(read["rows"].as_u64(), Some(rows), "as of {n}: the rows");
    }
    let current = &delta["versions"][latest.to_string()]["rows"];
    assert_eq!(&delta["polars"]["rows"], current, "Polars scan_delta");
    if !delta["kernel"].is_null() {
        assert_eq!((&delta["kernel"]["version"], &delta["kernel"]["rows"]), (&delta["latest"], current), "the kernel");
    }
    if refused > 0 {
        assert!(delta["history"].as_array().unwrap().iter().any(|h| h[1] == "sluice gc"));
    }
}

#[test]
fn engines_read_every_version_of_a_dataset_as_sluice_shows_it() {
    let ds = temp_dir("delta-readers");
    let uri = ds.to_str().unwrap();
    let (d14, d15) = ("date=2013-01-14", "date=2013-01-15");
    assert_eq!(run_into(&ds, &["--from", "2013-01-14", "--to", "2013-01-16"]).code, 0, "a range: commit 1");
    assert_eq!(run_into(&ds, &["--date", DATE, "--force"]).code, 0, "commit 2");
    let v1 = commit_records(&ds)[0]["partitions"][d15]["version"].as_str().unwrap().to_string();
    let back = sluice(&["rollback", uri, "--partition", d15, "--to", &v1]);
    assert_eq!(back.code, 0, "commit 3: {}", back.stderr);
    let v14 = commit_records(&ds)[0]["partitions"][d14]["version"].as_str().unwrap().to_string();
    let pin = sluice(&["pin", uri, "--partition", d14, "--version", &v14]);
    assert_eq!(pin.code, 0, "commit 4: {}", pin.stderr);
    // a month on, gc collects the forced version (replaced by the rollback): commit 5
    let now = (Utc::now() + Age::days(30)).to_rfc3339();
    let gc = sluice_env(&["gc", uri, "--retain", "7d", "--apply"], &[("SLUICE_GC_NOW", &now)]);
    assert_eq!(gc.code, 0, "{}", gc.stderr);
    assert_eq!(gc.summary()["versions_collected"].as_array().map(Vec::len), Some(1), "{}", gc.stdout);

    let delta = read_delta(uri, &[], &[]);
    assert_eq!(delta["latest"], 5);
    readers_agree(uri, &delta, &[]);
    let ops: Vec<&str> = delta["history"].as_array().unwrap().iter().map(|h| h[1].as_str().unwrap()).collect();
    assert_eq!(ops, ["CREATE TABLE", "sluice publish", "sluice publish", "sluice rollback", "sluice pin", "sluice gc"]);
    assert_eq!(delta["polars"]["partitions"], serde_json::json!(["2013-01-14", "2013-01-15", "2013-01-16"]));
}

/// Each file's Delta statistics are its rows' bounds, as the file reads back: every
/// column's null count, and the smallest and largest value of each number, string and
/// timestamp column (what engines skip files by, so a bound off by one loses rows).
#[test]
fn each_files_statistics_are_its_rows_bounds() {
    let ds = temp_dir("delta-stats");
    assert_eq!(run_into(&ds, &["--from", "2013-01-14", "--to", "2013-01-15"]).code, 0);
    let log = std::fs::read_to_string(ds.join("_delta_log/00000000000000000001.json")).unwrap();
    let adds: Vec<Value> = log.lines().filter_map(|l| serde_json::from_str::<Value>(l).unwrap().get("add").cloned()).collect();
    assert_eq!(adds.len(), 2);
    for add in &adds {
        let stats: Value = serde_json::from_str(add["stats"].as_str().unwrap()).unwrap();
        let df = read_parquet(ds.join(add["path"].as_str().unwrap()).to_str().unwrap());
        assert_eq!(stats["numRecords"].as_u64(), Some(df.height() as u64));
        let mut bounded = 0;
        for c in df.columns().iter().filter(|c| c.name().as_str() != "date") {
            let name = c.name().as_str();
            assert_eq!(stats["nullCount"][name].as_u64(), Some(c.null_count() as u64), "{name}");
            let (lo, hi) = (c.min_reduce().unwrap(), c.max_reduce().unwrap());
            let (lo, hi) = (delta_bound(lo.value(), false), delta_bound(hi.value(), true));
            assert_eq!(stats["minValues"].get(name), lo.as_ref(), "{name}: {stats}");
            assert_eq!(stats["maxValues"].get(name), hi.as_ref(), "{name}: {stats}");
            bounded += usize::from(lo.is_some());
        }
        assert!(bounded >= 25, "{bounded} columns bounded: {stats}");
    }
}

/// A value as a Delta writer records it in `minValues` (`is_max`: `maxValues`): numbers as
/// they are, strings up to 32 characters (a longer minimum cut, a longer maximum left out),
/// timestamps to the microsecond; nothing for other types.
fn delta_bound(v: &AnyValue<'_>, is_max: bool) -> Option<Value> {
    if let Some(s) = v.get_str() {
        return match s.chars().count() > 32 {
            true => (!is_max).then(|| serde_json::json!(s.chars().take(32).collect::<String>())),
            false => Some(serde_json::json!(s)),
        };
    }
    match v {
        AnyValue::Float64(x) => Some(serde_json::json!(x)),
        AnyValue::Float32(x) => Some(serde_json::json!(x)),
        AnyValue::Datetime(x, unit, tz) => Some(serde_json::json!(delta_timestamp(*x, *unit, tz.is_some())?)),
        AnyValue::DatetimeOwned(x, unit, tz) => Some(serde_json::json!(delta_timestamp(*x, *unit, tz.is_some())?)),
        v if v.dtype().is_integer() => Some(serde_json::json!(v.extract::<i64>()?)),
        _ => None,
    }
}

fn delta_timestamp(x: i64, unit: TimeUnit, zoned: bool) -> Option<String> {
    let micros = match unit {
        TimeUnit::Nanoseconds => x.div_euclid(1000),
        TimeUnit::Microseconds => x,
        TimeUnit::Milliseconds => x * 1000,
    };
    let t = chrono::DateTime::from_timestamp_micros(micros)?;
    Some(t.format(if zoned { "%Y-%m-%dT%H:%M:%S%.6fZ" } else { "%Y-%m-%dT%H:%M:%S%.6f" }).to_string())
}

/// Each commit caches the state after it (`_sluice/heads/<N>.json`) for the next run to read
/// instead of replaying the log. A cache that is truncated (a full disk, a kill) or missing
/// is passed over: the run reads the log and publishes the same, and a run id published
/// before is still found.
#[test]
fn a_damaged_or_missing_cached_state_is_read_from_the_log() {
    let ds = temp_dir("delta-head-cache");
    let cache = |n: u64| ds.join(format!("_sluice/heads/{n:020}.json"));
    assert_eq!(run_into(&ds, &["--date", DATE, "--run-id", "first"]).code, 0);
    assert_eq!(run_into(&ds, &["--date", "2013-01-16"]).code, 0);
    assert!(cache(1).exists() && cache(2).exists(), "each commit cached the state after it");
    let bytes = std::fs::read(cache(2)).unwrap();
    std::fs::write(cache(2), &bytes[..bytes.len() / 2]).unwrap();
    let run = run_into(&ds, &["--date", "2013-01-14"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.summary()["commit"], 3);
    assert!(cache(3).exists(), "the state read from the log is cached after the commit");
    let show = check_show(&ds);
    assert_eq!(show["partitions"].as_array().unwrap().len(), 3, "the state before commit 3 was read whole");

    // a retry of a published run id, with the state cached and then without it
    for damaged in [false, true] {
        if damaged {
            std::fs::remove_dir_all(ds.join("_sluice/heads")).unwrap();
        }
        let again = run_into(&ds, &["--date", DATE, "--run-id", "first"]);
        assert_eq!(again.code, 0, "{}", again.stderr);
        let s = again.summary();
        assert_eq!((s["status"].as_str(), s["commit"].as_u64()), (Some("up_to_date"), Some(1)), "{s}");
        assert_eq!(check_show(&ds), show);
    }
}

/// A commit another engine wrote: one that adds or removes no file (a vacuum's records) is
/// folded, and sluice goes on; one that adds files stops every sluice command that reads
/// the state with exit 2 naming that version, and sluice writes nothing over it.
#[test]
fn another_engines_commits_are_folded_or_refused_by_name() {
    let ds = temp_dir("delta-other-writer");
    let uri = ds.to_str().unwrap();
    assert_eq!(run_into(&ds, &["--date", DATE]).code, 0);
    assert_eq!(run_into(&ds, &["--date", "2013-01-16"]).code, 0);
    assert_eq!(run_into(&ds, &["--date", DATE, "--force"]).code, 0, "a replaced file for the vacuum");
    let other = |action: &str| {
        let python = std::env::var("SLUICE_TEST_PYTHON").expect("SLUICE_TEST_PYTHON");
        let out = Command::new(python).arg(repo().join("tests/delta/other_writer.py")).args([uri, action]).output().unwrap();
        assert!(out.status.success(), "{action}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().parse::<u64>().unwrap()
    };
    let after_vacuum = other("vacuum");
    assert!(after_vacuum > 3, "the vacuum committed its records");
    let run = run_into(&ds, &["--date", "2013-01-14"]);
    assert_eq!(run.code, 0, "a commit without file changes is folded: {}", run.stderr);
    assert_eq!(run.summary()["commit"], after_vacuum + 1);
    let versions = sluice(&["versions", uri]);
    assert_eq!(versions.code, 0, "{}", versions.stderr);

    let shown = check_show(&ds);
    let appended = other("append");
    for args in [vec!["show", uri], vec!["versions", uri]] {
        let out = sluice(&args);
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(&format!("version {appended} of the Delta log")), "{args:?} names the version: {}", out.stderr);
    }
    let run = run_into(&ds, &["--date", "2013-01-17"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(read_delta(uri, &[], &[])["latest"], appended, "sluice wrote nothing over it");
    // the data sluice published is all still there, with the other engine's rows beside it
    let rows: u64 = shown["partitions"].as_array().unwrap().iter().map(|p| p["rows"].as_u64().unwrap()).sum();
    assert_eq!(read_delta(uri, &[], &[])["versions"][appended.to_string()]["rows"], rows + 10);
}

/// New columns are added to the table's schema by the publish that brings them; a version
/// rolled back to, written before, reads with nulls in them. A pipeline that drops or
/// retypes a column the table has is refused (exit 2, naming it) and publishes nothing.
#[test]
fn the_schema_only_grows_and_older_files_read_back_with_nulls() {
    let ds = temp_dir("delta-schema");
    let uri = ds.to_str().unwrap();
    let d15 = format!("date={DATE}");
    assert_eq!(run_into(&ds, &["--date", DATE]).code, 0);
    let v1 = commit_records(&ds)[0]["partitions"][&d15]["version"].as_str().unwrap().to_string();
    let pipelines = temp_dir("delta-schema-pipelines");
    let variant = |step: &str| pipeline_variant(&pipelines, "", &format!("[[transform]]\nname = \"change\"\nsql = \"{step}\"\n"));
    let with_note = variant("SELECT *, 'new' AS note FROM input");
    let run = |p: &Path, args: &[&str]| {
        let mut a = vec!["run", p.to_str().unwrap(), "--output", uri];
        a.extend_from_slice(args);
        sluice(&a)
    };
    assert_eq!(run(&with_note, &["--date", "2013-01-16"]).code, 0);
    assert_eq!(run(&with_note, &["--date", DATE, "--force"]).code, 0);
    let back = sluice(&["rollback", uri, "--partition", &d15, "--to", &v1]);
    assert_eq!(back.code, 0, "{}", back.stderr);
    let python = std::env::var("SLUICE_TEST_PYTHON").expect("SLUICE_TEST_PYTHON");
    let script = "import sys, json, polars as pl
from deltalake import DeltaTable
t = pl.from_arrow(DeltaTable(sys.argv[1]).to_pyarrow_table())
print(json.dumps(sorted(t.group_by('date').agg(pl.col('note').null_count().alias('nulls'), pl.len()).rows())))";
    let out = Command::new(python).args(["-c", script, uri]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let by_date: Vec<(String, u64, u64)> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(by_date.len(), 2);
    assert_eq!(by_date[0].1, by_date[0].2, "2013-01-15 rolled back to a file without the column: all null");
    assert_eq!(by_date[1].1, 0, "2013-01-16 has it");

    let before = commits(&ds);
    for (step, column) in [("SELECT * EXCLUDE (airline) FROM input", "airline"), ("SELECT * EXCLUDE (air_time), CAST(air_time AS BIGINT) AS air_time FROM input", "air_time")] {
        let out = run(&variant(step), &["--date", "2013-01-14"]);
        assert_eq!(out.code, 2, "{step}: {}", out.stderr);
        assert!(out.summary()["error"].as_str().unwrap().contains(column), "{step}: {}", out.stdout);
    }
    assert_eq!(commits(&ds), before, "nothing was published");
}

/// A dataset with the log of an older sluice (`_sluice/commits`, made here from a Delta
/// table's records) is refused by name until `sluice convert` writes the same history as
/// a Delta log: every version shows as before, engines read it, and runs go on from it.
#[test]
fn an_older_log_is_refused_by_name_and_converted_with_its_history() {
    let ds = temp_dir("delta-convert");
    let uri = ds.to_str().unwrap();
    let d15 = format!("date={DATE}");
    assert_eq!(run_into(&ds, &["--from", "2013-01-14", "--to", "2013-01-15"]).code, 0);
    assert_eq!(run_into(&ds, &["--date", DATE, "--force"]).code, 0);
    let v1 = commit_records(&ds)[0]["partitions"][&d15]["version"].as_str().unwrap().to_string();
    assert_eq!(sluice(&["rollback", uri, "--partition", &d15, "--to", &v1]).code, 0);
    let shows: Vec<String> = (1..=3).map(|n| sluice(&["show", uri, "--as-of", &n.to_string(), "--json"]).stdout).collect();
    let versions = sluice(&["versions", uri]).stdout;
    // the same history in the older format
    std::fs::create_dir_all(ds.join("_sluice/commits")).unwrap();
    for (i, c) in commit_records(&ds).iter().enumerate() {
        std::fs::write(ds.join(format!("_sluice/commits/{:020}.json", i + 1)), serde_json::to_vec_pretty(c).unwrap()).unwrap();
    }
    std::fs::remove_dir_all(ds.join("_delta_log")).unwrap();

    for args in [vec!["show", uri], vec!["versions", uri]] {
        let out = sluice(&args);
        assert_eq!(out.code, 2, "{}", out.stderr);
        assert!(out.stderr.contains(&format!("sluice convert {uri}")), "{}", out.stderr);
    }
    assert_eq!(run_into(&ds, &["--date", "2013-01-16"]).code, 2);
    let converted = sluice(&["convert", uri]);
    assert_eq!(converted.code, 0, "{}", converted.stderr);
    assert_eq!(converted.summary()["written"], 3);
    assert_eq!(sluice(&["convert", uri]).summary()["status"], "up_to_date", "run twice");
    for (n, before) in (1..=3).zip(&shows) {
        assert_eq!(&sluice(&["show", uri, "--as-of", &n.to_string(), "--json"]).stdout, before, "as of {n}");
    }
    assert_eq!(sluice(&["versions", uri]).stdout, versions);
    readers_agree(uri, &read_delta(uri, &[], &[]), &[]);
    let next = run_into(&ds, &["--date", "2013-01-16"]);
    assert_eq!((next.code, next.summary()["commit"].as_u64()), (0, Some(4)), "{}", next.stderr);
}

/// `sluice gc` and Delta's vacuum agree on what is collectable: with the same retention
/// (none, here), `deltalake`'s vacuum(dry_run) lists exactly the data files `sluice gc`
/// then deletes (manifests lie under `_sluice/`, which no engine vacuums), the table says
/// gc's retention to other engines, and after gc vacuum lists nothing that still exists.
#[test]
fn gc_and_deltas_vacuum_agree_on_what_is_collectable() {
    let ds = temp_dir("delta-vacuum");
    let uri = ds.to_str().unwrap();
    assert_eq!(run_into(&ds, &["--from", "2013-01-14", "--to", "2013-01-15"]).code, 0);
    assert_eq!(run_into(&ds, &["--date", DATE, "--force"]).code, 0);
    assert_eq!(run_into(&ds, &["--date", "2013-01-14", "--force"]).code, 0);
    let vacuum = |d: &Value| -> Vec<String> { d["vacuum"].as_array().unwrap().iter().map(|f| f.as_str().unwrap().to_string()).collect() };
    let before = vacuum(&read_delta(uri, &["--vacuum-hours", "0"], &[]));
    assert_eq!(before.len(), 2, "the two replaced versions' files: {before:?}");

    let gc = sluice(&["gc", uri, "--retain", "0s", "--allow-short-retention", "--apply", "--json"]);
    assert_eq!(gc.code, 0, "{}", gc.stderr);
    let data = |dir: &Path| -> Vec<String> {
        let mut f: Vec<String> = files_under(dir).into_iter().map(|f| f.strip_prefix(&ds).unwrap().to_str().unwrap().to_string()).filter(|f| !f.starts_with('_')).collect();
        f.sort();
        f
    };
    let left = data(&ds);
    assert_eq!(gc.summary()["versions_collected"].as_array().map(Vec::len), Some(2));
    assert_eq!(gc.summary()["files"].as_u64(), Some(4), "2 data files and their manifests");
    for f in &before {
        assert!(!left.contains(f), "vacuum listed {f}: sluice gc deletes it too");
    }
    let current: Vec<String> = check_show(&ds)["partitions"].as_array().unwrap().iter().flat_map(|p| p["files"].as_array().unwrap().clone()).map(|f| Path::new(f.as_str().unwrap()).strip_prefix(&ds).unwrap().to_str().unwrap().to_string()).collect();
    assert_eq!(left, current, "what is left is what is current");
    let after = read_delta(uri, &["--vacuum-hours", "0"], &[]);
    assert!(vacuum(&after).iter().all(|f| !left.contains(f)), "vacuum lists nothing that is left: {:?}", vacuum(&after));
    let config = std::fs::read_to_string(ds.join(format!("_delta_log/{:020}.json", 4))).unwrap();
    assert!(config.contains(r#""delta.deletedFileRetentionDuration":"interval 0 seconds""#), "{config}");
    readers_agree(uri, &after, &[]);
}
