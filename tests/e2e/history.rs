//! `versions`, `show`, `rollback`: re-point, roll forward, time travel, refusals.

use super::*;

fn show(ds: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["show", ds.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    let out = sluice(&args);
    assert_eq!(out.code, 0, "{}", out.stderr);
    serde_json::from_str(out.stdout.lines().last().unwrap()).unwrap()
}

fn files_of(v: &Value) -> Vec<String> {
    v["partitions"][0]["files"].as_array().unwrap().iter().map(|f| f.as_str().unwrap().to_string()).collect()
}

#[test]
fn rollback_re_points_a_partition_and_rolling_forward_works() {
    let ds = temp_dir("rollback");
    let v1 = run_into(&ds, &["--date", DATE]).summary();
    let v2 = run_into(&ds, &["--date", DATE, "--force"]).summary();
    let (id1, id2) = (v1["partitions"][0]["version"].as_str().unwrap(), v2["partitions"][0]["version"].as_str().unwrap());
    assert_eq!(show(&ds, &[])["partitions"][0]["version"], id2);

    let part = format!("date={DATE}");
    let back = sluice(&["rollback", ds.to_str().unwrap(), "--partition", &part, "--to", id1]);
    assert_eq!(back.code, 0, "{}", back.stderr);
    let b = back.summary();
    assert_eq!(b["status"], "published");
    assert_eq!(b["commit"], 3);
    let now = show(&ds, &[]);
    assert_eq!(now["partitions"][0]["version"], id1);
    assert_eq!(files_of(&now), v1["partitions"][0]["files"].as_array().unwrap().iter().map(|f| f.as_str().unwrap().to_string()).collect::<Vec<_>>());
    assert_eq!(read_parquet(&files_of(&now)[0]).height() as u64, v1["partitions"][0]["rows_out"].as_u64().unwrap());

    // the history shows both publishes and the rollback
    let hist = sluice(&["versions", ds.to_str().unwrap(), "--json"]);
    let entries: Value = serde_json::from_str(hist.stdout.lines().last().unwrap()).unwrap();
    let ops: Vec<&str> = entries.as_array().unwrap().iter().map(|e| e["operation"].as_str().unwrap()).collect();
    assert_eq!(ops, vec!["publish", "publish", "rollback"]);
    assert_eq!(entries[2]["previous"], id2);
    let text = sluice(&["versions", ds.to_str().unwrap()]);
    assert!(text.stdout.contains("rollback") && text.stdout.contains(id1));

    // roll forward by commit number: the state of commit 2
    let fwd = sluice(&["rollback", ds.to_str().unwrap(), "--partition", &part, "--to-commit", "2"]);
    assert_eq!(fwd.code, 0, "{}", fwd.stderr);
    assert_eq!(show(&ds, &[])["partitions"][0]["version"], id2);
    // time travel: as of commit 1, 3 and 4
    assert_eq!(show(&ds, &["--as-of", "1"])["partitions"][0]["version"], id1);
    assert_eq!(show(&ds, &["--as-of", "3"])["partitions"][0]["version"], id1);
    assert_eq!(show(&ds, &["--as-of", "4"])["partitions"][0]["version"], id2);
    // a second identical rollback changes nothing
    let again = sluice(&["rollback", ds.to_str().unwrap(), "--partition", &part, "--to", id2]);
    assert_eq!(again.summary()["status"], "up_to_date");
    assert_eq!(commits(&ds), 4);
}

#[test]
fn rollback_of_a_run_undoes_it_and_refuses_versions_whose_files_are_gone() {
    let ds = temp_dir("rollback-run");
    let v1 = run_into(&ds, &["--date", DATE]).summary();
    let v2 = run_into(&ds, &["--date", DATE, "--force"]).summary();
    let run2 = v2["run_id"].as_str().unwrap();
    let out = sluice(&["rollback", ds.to_str().unwrap(), "--run", run2]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(show(&ds, &[])["partitions"][0]["version"], v1["partitions"][0]["version"]);

    // delete version 2's files: rolling forward to it must be refused, and change nothing
    std::fs::remove_file(v2["partitions"][0]["files"][0].as_str().unwrap()).unwrap();
    let part = format!("date={DATE}");
    let refused = sluice(&["rollback", ds.to_str().unwrap(), "--partition", &part, "--to", run2]);
    assert_ne!(refused.code, 0);
    assert!(refused.stderr.contains("missing"), "{}", refused.stderr);
    assert_eq!(commits(&ds), 3);
    // bad partition values never reach the file system
    let bad = sluice(&["rollback", ds.to_str().unwrap(), "--partition", "date=../../etc", "--to", "1"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
}
