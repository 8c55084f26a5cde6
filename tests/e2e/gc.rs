//! `sluice gc`, pins and honest history: what is deleted, what is kept and why, and gc
//! racing a publishing run. Ages come from the commit records' own timestamps and
//! `SLUICE_GC_NOW` (gc's clock), so nothing waits for time to pass.

use chrono::{DateTime, Duration as Age, Utc};

use super::*;

fn commit_time(ds: &Path, n: usize) -> DateTime<Utc> {
    let c = &commit_records(ds)[n - 1];
    c["timestamp"].as_str().unwrap().parse().unwrap()
}

/// `sluice gc DATASET --retain 7d` as if it were `now`.
fn gc(ds: &Path, now: DateTime<Utc>, extra: &[&str]) -> Out {
    let mut args = vec!["gc", ds.to_str().unwrap(), "--retain", "7d"];
    args.extend_from_slice(extra);
    sluice_env(&args, &[("SLUICE_GC_NOW", &now.to_rfc3339())])
}

/// The files attempts wrote: data files, and manifests and quarantines under
/// `_sluice/versions/` (not the log, not shard records, not cached states).
fn data_files(ds: &Path) -> Vec<PathBuf> {
    let mut f: Vec<PathBuf> =
        files_under(ds).into_iter().filter(|f| !["_sluice/runs", "_sluice/heads", "_delta_log"].iter().any(|d| f.starts_with(ds.join(d)))).collect();
    f.sort();
    f
}

/// The attempt (`<run_id>.<nonce>`) that wrote the version `commit` published for
/// `partition`, from its first data file (`part-00000.<run_id>.<nonce>.parquet`).
fn version_dir(ds: &Path, commit: usize, partition: &str) -> String {
    let v = &commit_records(ds)[commit - 1]["partitions"][partition];
    let name = Path::new(v["files"][0].as_str().unwrap()).file_name().unwrap().to_str().unwrap().to_string();
    let (_, attempt) = name.strip_suffix(".parquet").unwrap().split_once('.').unwrap();
    attempt.to_string()
}

/// Whether `f` is a file of that attempt: a data file, or its manifest or quarantine
/// (under `_sluice/versions/<run_id>/<nonce>/`).
fn within(f: &Path, attempt: &str) -> bool {
    let (run, nonce) = attempt.rsplit_once('.').unwrap();
    let f = f.to_str().unwrap();
    f.ends_with(&format!(".{attempt}.parquet")) || f.contains(&format!("/_sluice/versions/{run}/{nonce}/"))
}

fn version_of(ds: &Path, commit: usize, partition: &str) -> String {
    commit_records(ds)[commit - 1]["partitions"][partition]["version"].as_str().unwrap().to_string()
}

/// Start a run held at its commit (every file written), then SIGKILL it: debris.
fn killed_run(ds: &Path) {
    let p = pipeline();
    let args = ["run", p.to_str().unwrap(), "--output", ds.to_str().unwrap(), "--date", DATE, "--force"];
    let run = Running::start(&args, &[("SLUICE_HOLD_AT", "commit")]);
    run.wait_for("holding at commit");
    run.signal("KILL");
    assert_ne!(run.finish().code, 0);
}

#[test]
fn gc_collects_exactly_what_is_out_of_the_window_and_keeps_the_rest() {
    let ds = temp_dir("gc");
    let part = format!("date={DATE}");
    for extra in [&[][..], &["--force"], &["--force"]] {
        let mut args = vec!["--date", DATE];
        args.extend_from_slice(extra);
        assert_eq!(run_into(&ds, &args).code, 0);
    }
    killed_run(&ds);
    let (t2, t3) = (commit_time(&ds, 2), commit_time(&ds, 3));
    let (v1, v2, v3) = (version_of(&ds, 1, &part), version_of(&ds, 2, &part), version_of(&ds, 3, &part));
    let (d1, d2, d3) = (version_dir(&ds, 1, &part), version_dir(&ds, 2, &part), version_dir(&ds, 3, &part));
    let before = data_files(&ds);
    let debris: Vec<&PathBuf> = before.iter().filter(|f| ![&d1, &d2, &d3].iter().any(|d| within(f, d))).collect();
    assert!(!debris.is_empty(), "the killed run left files");

    // a cutoff between commits 2 and 3: v1 was replaced before it, v2 after it (in the window)
    let now = t3 + Age::days(7) - (t3 - t2) / 2;
    let dry = gc(&ds, now, &[]);
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    let s = dry.summary();
    assert_eq!(s["status"], "dry_run");
    assert_eq!(s["versions_collected"], json_list(&[&format!("{part}@{v1}")]));
    assert_eq!(s["kept"]["current"], 1);
    assert_eq!(s["kept"]["in_window"], 1);
    assert_eq!(s["kept"]["young_attempts"], 1, "the killed run's files are younger than the cutoff");
    let group = &s["groups"][0];
    assert_eq!((group["kind"].as_str(), group["name"].as_str()), (Some("version"), Some(format!("{part}@{v1}").as_str())));
    let v1_files: Vec<&PathBuf> = before.iter().filter(|f| within(f, &d1)).collect();
    assert_eq!(group["files"], v1_files.len());
    assert_eq!(group["bytes"], v1_files.iter().map(|f| f.metadata().unwrap().len()).sum::<u64>());
    assert_eq!(data_files(&ds), before, "a dry run deletes nothing");
    assert_eq!(commits(&ds), 3);

    let applied = gc(&ds, now, &["--apply"]);
    assert_eq!(applied.code, 0, "{}", applied.stderr);
    let s = applied.summary();
    assert_eq!((s["status"].as_str(), s["commit"].as_u64()), (Some("collected"), Some(4)));
    assert_eq!(s["stale_head_caches"], 2, "the cached states after commits 1 and 2");
    let mut heads: Vec<String> = std::fs::read_dir(ds.join("_sluice/heads")).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    heads.sort();
    assert_eq!(heads, [format!("{:020}.json", 3), format!("{:020}.json", 4)], "the state gc read, and the one after its commit");
    let after = data_files(&ds);
    assert!(after.iter().all(|f| !within(f, &d1)), "v1 is gone");
    assert_eq!(after.len() as u64 + s["files"].as_u64().unwrap(), before.len() as u64, "exactly the files it reported");
    assert!(after.iter().any(|f| within(f, &d2)) && after.iter().any(|f| within(f, &d3)));
    check_show(&ds);
    assert_eq!(sluice(&["show", ds.to_str().unwrap(), "--as-of", "2", "--json"]).code, 0, "in the window: time travel works");
    let back = sluice(&["rollback", ds.to_str().unwrap(), "--partition", &part, "--to", &v2]);
    assert_eq!(back.code, 0, "{}", back.stderr);
    let forward = sluice(&["rollback", ds.to_str().unwrap(), "--partition", &part, "--to", &v3]);
    assert_eq!(forward.code, 0, "{}", forward.stderr);

    // history stays honest about what was collected
    let old = sluice(&["show", ds.to_str().unwrap(), "--as-of", "1"]);
    assert_eq!(old.code, 2, "{}", old.stderr);
    assert!(old.stderr.contains(&v1) && old.stderr.contains("collected by gc in commit 4"), "{}", old.stderr);
    let refused = sluice(&["rollback", ds.to_str().unwrap(), "--partition", &part, "--to", &v1]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(refused.stderr.contains("collected by gc in commit 4"), "{}", refused.stderr);

    // a pinned version survives a gc far in the future; the killed run's files do not
    let pin = sluice(&["pin", ds.to_str().unwrap(), "--partition", &part, "--version", &v2, "--note", "audit 2013"]);
    assert_eq!((pin.code, pin.summary()["status"].as_str()), (0, Some("pinned")), "{}", pin.stderr);
    let versions = sluice(&["versions", ds.to_str().unwrap(), "--json"]);
    let entries: Value = serde_json::from_str(versions.stdout.lines().last().unwrap()).unwrap();
    assert!(entries.as_array().unwrap().iter().any(|e| e["pinned"] == true && e["version"] == v2.as_str() && e["note"] == "audit 2013"));
    let later = gc(&ds, Utc::now() + Age::days(30), &["--apply"]);
    assert_eq!(later.code, 0, "{}", later.stderr);
    let s = later.summary();
    assert_eq!(s["kept"]["pinned"], 1);
    assert_eq!(s["debris"].as_array().unwrap().len(), 1, "{s}");
    let left = data_files(&ds);
    assert!(left.iter().all(|f| within(f, &d2) || within(f, &d3)), "only the pinned and the current version: {left:?}");

    let unpin = sluice(&["unpin", ds.to_str().unwrap(), "--partition", &part, "--version", &v2]);
    assert_eq!(unpin.code, 0, "{}", unpin.stderr);
    let last = gc(&ds, Utc::now() + Age::days(30), &["--apply"]);
    assert_eq!(last.summary()["versions_collected"], json_list(&[&format!("{part}@{v2}")]));
    assert!(data_files(&ds).iter().all(|f| within(f, &d3)));
    check_show(&ds);
    // nothing left to do
    let again = gc(&ds, Utc::now() + Age::days(30), &["--apply"]);
    assert_eq!(again.summary()["files"], 0);
    assert_eq!(commits(&ds), 10, "3 publishes, 2 rollbacks, a pin, an unpin and the 3 gcs that deleted something");
}

fn json_list(items: &[&str]) -> Value {
    Value::from(items.iter().map(|s| Value::from(*s)).collect::<Vec<_>>())
}

#[test]
fn a_retention_under_an_hour_is_refused_unless_insisted_on() {
    let ds = temp_dir("gc-short");
    assert_eq!(run_into(&ds, &["--date", DATE]).code, 0);
    let out = sluice(&["gc", ds.to_str().unwrap(), "--retain", "30m", "--apply"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert_eq!(out.summary()["status"], "failed");
    let out = sluice(&["gc", ds.to_str().unwrap(), "--retain", "30m", "--allow-short-retention", "--json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout.lines().count(), 1, "--json prints only the summary");
}

#[test]
fn gc_racing_a_run_that_staged_long_ago_never_lets_it_publish_collected_files() {
    let ds = temp_dir("gc-race");
    assert_eq!(run_into(&ds, &["--date", DATE]).code, 0);
    let before = check_show(&ds);
    // a run whose files are written, held before its commit
    let p = pipeline();
    let args = ["run", p.to_str().unwrap(), "--output", ds.to_str().unwrap(), "--date", DATE, "--force"];
    let mut run = Running::start(&args, &[("SLUICE_HOLD_AT", "commit")]);
    run.wait_for("holding at commit");
    // gc, a month later by its clock, sees that attempt's folder as a dead run's debris
    let out = gc(&ds, Utc::now() + Age::days(30), &["--apply"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.summary()["debris"].as_array().unwrap().len(), 1);
    run.release();
    let out = run.finish();
    assert_eq!(out.code, 4, "the run must not publish files gc collected: {}", out.stderr);
    assert_eq!(commits(&ds), 2, "the first publish and the gc");
    assert_eq!(check_show(&ds)["partitions"], before["partitions"], "the current version is whole");
}

/// A dataset nothing was ever published to has no Delta table, so gc has no log to record a
/// deletion in: it reports the killed run's files and deletes nothing.
#[test]
fn gc_before_the_first_publish_deletes_nothing() {
    let ds = temp_dir("gc-no-table");
    killed_run(&ds);
    let before = data_files(&ds);
    assert!(!before.is_empty());
    let out = gc(&ds, Utc::now() + Age::days(30), &["--apply"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.summary()["status"], "dry_run");
    assert_eq!(out.summary()["debris"].as_array().map(Vec::len), Some(1));
    assert_eq!(data_files(&ds), before, "nothing deleted");
    assert!(!ds.join("_delta_log").exists());
}

/// Rewrite commit 1 of `ds` (one run of one partition) into the layout sluice wrote before
/// issue 27: every version in folders of its own. The files move, and the log's paths with
/// them. Returns the old folders of the data file and of the manifest.
fn into_the_old_layout(ds: &Path, part: &str) -> (PathBuf, PathBuf) {
    let v = &commit_records(ds)[0]["partitions"][part];
    let (run, data) = (v["version"].as_str().unwrap().to_string(), v["files"][0].as_str().unwrap().to_string());
    let nonce = data.strip_suffix(".parquet").unwrap().rsplit_once('.').unwrap().1.to_string();
    let manifest = format!("_sluice/versions/{run}/{nonce}/{part}.manifest.json");
    let (old_dir, old_versions) = (format!("{part}/{run}/{nonce}"), format!("_sluice/versions/{part}/{run}/{nonce}"));
    let (old_data, old_manifest) = (format!("{old_dir}/part-00000.parquet"), format!("{old_versions}/manifest.json"));
    for (from, to) in [(&data, &old_data), (&manifest, &old_manifest)] {
        std::fs::create_dir_all(ds.join(to).parent().unwrap()).unwrap();
        std::fs::rename(ds.join(from), ds.join(to)).unwrap();
    }
    let log = ds.join("_delta_log/00000000000000000001.json");
    let text = std::fs::read_to_string(&log).unwrap().replace(&data, &old_data).replace(&manifest, &old_manifest);
    std::fs::write(&log, text).unwrap();
    (ds.join(old_dir), ds.join(old_versions))
}

#[test]
fn gc_collects_versions_and_debris_written_in_the_old_layout() {
    let ds = temp_dir("gc-old-layout");
    let part = format!("date={DATE}");
    assert_eq!(run_into(&ds, &["--date", DATE]).code, 0);
    let (old_data, old_versions) = into_the_old_layout(&ds, &part);
    let v1 = version_of(&ds, 1, &part);
    // a dead attempt's file, in the old layout
    let debris = ds.join(&part).join("killed-run/0123456789abcdef/part-00000.parquet");
    std::fs::create_dir_all(debris.parent().unwrap()).unwrap();
    std::fs::write(&debris, b"half a file").unwrap();
    assert_eq!(sluice(&["show", ds.to_str().unwrap(), "--as-of", "1"]).code, 0, "the old layout reads as before");
    assert_eq!(run_into(&ds, &["--date", DATE, "--force"]).code, 0);
    let current = version_dir(&ds, 2, &part);

    let out = gc(&ds, Utc::now() + Age::days(30), &["--apply"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let s = out.summary();
    assert_eq!(s["versions_collected"], json_list(&[&format!("{part}@{v1}")]), "{s}");
    assert_eq!(s["debris"].as_array().unwrap().len(), 1, "{s}");
    let left = data_files(&ds);
    assert!(!left.is_empty() && left.iter().all(|f| within(f, &current)), "only the current version: {left:?}");
    assert!(files_under(&old_data).is_empty() && files_under(&old_versions).is_empty() && !debris.exists());
    check_show(&ds);
}
