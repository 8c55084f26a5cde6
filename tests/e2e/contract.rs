//! The exit-code contract holds for every failure: retries of a run id, bugs (panics), a
//! reader that goes away, and run ids that look like commit numbers.

use super::*;

#[test]
fn a_retry_of_a_published_run_id_is_up_to_date_naming_its_commit() {
    let ds = temp_dir("retry-published");
    let first = run_into(&ds, &["--from", "2013-01-13", "--to", "2013-01-14", "--run-id", "nightly-1"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    // the scheduler never heard of the success and retries; with --force too
    for extra in [&[][..], &["--force"][..]] {
        let mut args = vec!["--from", "2013-01-13", "--to", "2013-01-14", "--run-id", "nightly-1"];
        args.extend_from_slice(extra);
        let again = run_into(&ds, &args);
        assert_eq!(again.code, 0, "{extra:?}: {}", again.stderr);
        let s = again.summary();
        assert_eq!(s["status"], "up_to_date", "{s}");
        assert_eq!(s["commit"], 1);
        assert_eq!(s["run_id"], "nightly-1");
        assert_eq!(s["partitions"].as_array().unwrap().len(), 2);
    }
    assert_eq!(commits(&ds), 1);
}

#[test]
fn a_retry_of_a_run_that_died_before_its_commit_publishes() {
    let ds = temp_dir("retry-died");
    let p = pipeline();
    let args = ["run", p.to_str().unwrap(), "--output", ds.to_str().unwrap(), "--date", DATE, "--run-id", "nightly-2"];
    let first = Running::start(&args, &[("SLUICE_HOLD_AT", "commit")]);
    first.wait_for("holding at commit");
    first.signal("KILL");
    first.finish();
    assert_eq!(commits(&ds), 0);
    assert!(!files_under(&ds).is_empty(), "the killed attempt left its files behind");
    let retry = sluice(&args);
    assert_eq!(retry.code, 0, "{}", retry.stderr);
    assert_eq!(retry.summary()["status"], "published");
    assert_eq!(check_show(&ds)["partitions"][0]["version"], "nightly-2");
}

#[test]
fn a_panic_in_the_main_thread_prints_the_summary_line_and_exits_1() {
    let ds = temp_dir("panic");
    let p = pipeline();
    let out = sluice_env(
        &["run", p.to_str().unwrap(), "--output", ds.to_str().unwrap(), "--date", DATE],
        &[("SLUICE_PANIC_AT", "planned")],
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    let s = out.summary();
    assert_eq!(s["status"], "failed");
    assert_eq!(s["exit_code"], 1);
    assert!(s["error"].as_str().unwrap().contains("SLUICE_PANIC_AT=planned"), "{s}");
    assert_eq!(commits(&ds), 0);
}

#[test]
fn a_closed_stdout_ends_the_output_quietly() {
    let ds = temp_dir("closed-stdout");
    assert_eq!(run_into(&ds, &["--date", DATE]).code, 0);
    for args in [vec!["versions", ds.to_str().unwrap()], vec!["show", ds.to_str().unwrap()], vec!["versions", ds.to_str().unwrap(), "--json"]] {
        // the reading end is closed before sluice starts: its first write meets a closed pipe
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let mut cmd = command(&args, &[]);
        cmd.stdout(writer);
        let out = finish(cmd.spawn().unwrap());
        assert_eq!(out.code, 0, "{args:?}: {}", out.stderr);
        assert!(!out.stderr.contains("panicked"), "{args:?}: {}", out.stderr);
    }
}

#[test]
fn an_all_digit_run_id_is_a_version_and_never_a_commit_number() {
    let ds = temp_dir("digits");
    // version "2" is published in commit 1, version "1" in commit 2
    for id in ["2", "1", "x"] {
        let out = run_into(&ds, &["--date", DATE, "--force", "--run-id", id]);
        assert_eq!(out.code, 0, "{}", out.stderr);
    }
    let part = format!("date={DATE}");
    let d = ds.to_str().unwrap();
    let to_version = sluice(&["rollback", d, "--partition", &part, "--to", "1"]);
    assert_eq!(to_version.code, 0, "{}", to_version.stderr);
    assert_eq!(check_show(&ds)["partitions"][0]["version"], "1", "--to names a version");
    let to_commit = sluice(&["rollback", d, "--partition", &part, "--to-commit", "1"]);
    assert_eq!(to_commit.code, 0, "{}", to_commit.stderr);
    assert_eq!(check_show(&ds)["partitions"][0]["version"], "2", "--to-commit names a commit");
    let both = sluice(&["rollback", d, "--partition", &part, "--to", "1", "--to-commit", "1"]);
    assert_eq!(both.code, 2, "{}", both.stderr);
}

/// `--summary-file` (KubernetesPodOperator's XCom) holds the summary line, whatever the outcome.
#[test]
fn the_summary_file_holds_the_summary_line_for_success_and_failure() {
    let ds = temp_dir("summary-file");
    let file = ds.with_extension("summary.json");
    let f = file.to_str().unwrap();
    for (date, code) in [(DATE, 0), ("2013-03-01", 99)] {
        let out = run_into(&ds, &["--date", date, "--summary-file", f]);
        assert_eq!(out.code, code, "{}", out.stderr);
        let written: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        assert_eq!(written, out.summary(), "{date}");
    }
    assert_eq!(commits(&ds), 1);
}
