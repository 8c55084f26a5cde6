//! Concurrent writers on one dataset, as schedulers make them: many partitions at once,
//! many runs on one partition at once, two attempts of one run id at once, and shards that
//! are published after another run changed their partitions. Every run is held at its
//! commit (`SLUICE_HOLD_AT=commit`) until all have planned, then all are released at once,
//! so the race is certain rather than likely.

use super::*;

const HOLD: (&str, &str) = ("SLUICE_HOLD_AT", "commit");

/// Start every run, wait until all hold at their commit, release them all, wait for all.
fn race(runs: Vec<Vec<String>>) -> Vec<Out> {
    let mut running: Vec<Running> = runs
        .iter()
        .map(|args| Running::start(&args.iter().map(String::as_str).collect::<Vec<_>>(), &[HOLD]))
        .collect();
    for r in &running {
        r.wait_for("holding at commit");
    }
    for r in running.iter_mut() {
        r.release();
    }
    running.into_iter().map(Running::finish).collect()
}

fn run_args(ds: &Path, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = ["run", pipeline().to_str().unwrap(), "--output", ds.to_str().unwrap()].map(String::from).to_vec();
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// A landing zone with one flights file per day from 2013-02-01, copies of the sample days.
fn landing_with_days(tag: &str, days: usize) -> PathBuf {
    let landing = landing_copy(tag);
    let sample: Vec<PathBuf> = {
        let mut v: Vec<PathBuf> = std::fs::read_dir(landing.join("flights")).unwrap().map(|e| e.unwrap().path()).collect();
        v.sort();
        v
    };
    for d in 0..days {
        std::fs::copy(&sample[d % sample.len()], landing.join(format!("flights/2013-02-{:02}.csv", d + 1))).unwrap();
    }
    landing
}

#[test]
fn sixteen_runs_on_sixteen_partitions_at_once_all_commit_in_a_total_order() {
    let landing = landing_with_days("sixteen", 16);
    let ds = temp_dir("sixteen-ds");
    let param = format!("landing={}", landing.display());
    let runs = (1..=16).map(|d| run_args(&ds, &["--param", &param, "--date", &format!("2013-02-{d:02}")])).collect();
    let outs = race(runs);
    let mut numbers = Vec::new();
    for out in &outs {
        assert_eq!(out.code, 0, "{}", out.stderr);
        let s = out.summary();
        assert_eq!(s["status"], "published");
        numbers.push(s["commit"].as_u64().unwrap());
    }
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=16).collect::<Vec<u64>>(), "one commit each, numbered without gaps");
    let log = commit_records(&ds);
    assert_eq!(log.len(), 16);
    for c in &log {
        assert_eq!(c["partitions"].as_object().unwrap().len(), 1, "{c}");
    }
    let show = check_show(&ds);
    assert_eq!(show["partitions"].as_array().unwrap().len(), 16);
    assert_eq!(show["commit"], 16);
    check_published(&ds);
    assert_eq!(unreferenced_files(&ds), Vec::<PathBuf>::new());
}

#[test]
fn eight_forced_runs_on_one_partition_at_once_one_wins_and_the_losers_leave_no_files() {
    let ds = temp_dir("eight");
    assert_eq!(run_into(&ds, &["--date", DATE]).code, 0);
    let before = check_published(&ds);
    let outs = race((0..8).map(|_| run_args(&ds, &["--date", DATE, "--force"])).collect());
    let codes: Vec<i32> = outs.iter().map(|o| o.code).collect();
    assert_eq!(codes.iter().filter(|c| **c == 0).count(), 1, "exactly one winner: {codes:?}");
    assert_eq!(codes.iter().filter(|c| **c == 4).count(), 7, "the others conflict: {codes:?}");
    for out in outs.iter().filter(|o| o.code == 4) {
        let s = out.summary();
        assert_eq!(s["exit_code"], 4);
        assert!(s["error"].as_str().unwrap().contains(&format!("date={DATE}")), "{s}");
    }
    let winner = outs.iter().find(|o| o.code == 0).unwrap().summary();
    assert_eq!(commits(&ds), 2);
    assert_eq!(check_show(&ds)["partitions"][0]["version"], winner["run_id"]);
    assert_eq!(unreferenced_files(&ds), Vec::<PathBuf>::new(), "the losers removed their files");
    let after = check_published(&ds);
    for (file, bytes) in before {
        assert!(after[&file] == bytes, "{} changed", file.display());
    }
}

#[test]
fn two_attempts_of_one_run_id_at_once_publish_one_intact_version() {
    let ds = temp_dir("twice");
    for round in 0..5 {
        let run_id = format!("twice-{round}");
        let outs = race((0..2).map(|_| run_args(&ds, &["--date", DATE, "--force", "--run-id", &run_id])).collect());
        for out in &outs {
            assert_eq!(out.code, 0, "round {round}: {}", out.stderr);
        }
        let mut statuses: Vec<String> = outs.iter().map(|o| o.summary()["status"].as_str().unwrap().to_string()).collect();
        statuses.sort();
        assert_eq!(statuses, ["published", "up_to_date"], "round {round}");
        let commit = round + 1;
        for out in &outs {
            assert_eq!(out.summary()["commit"], commit, "both name the run's one commit");
        }
        assert_eq!(commits(&ds), commit as usize, "round {round}: one version per run id");
        let show = check_show(&ds);
        assert_eq!(show["partitions"][0]["version"], run_id.as_str());
        assert_eq!(unreferenced_files(&ds), Vec::<PathBuf>::new(), "round {round}: the other attempt removed only its own files");
    }
    check_published(&ds);
}

#[test]
fn publishing_shards_after_another_run_changed_their_partition_is_a_conflict() {
    let ds = temp_dir("stale-shards");
    let p = pipeline();
    let shard = |i: &str| {
        let args = ["run", p.to_str().unwrap(), "--output", ds.to_str().unwrap(), "--from", "2013-01-13", "--to", "2013-01-15", "--shard", i, "--run-id", "stale-1"];
        sluice(&args)
    };
    let publish = || sluice(&["publish", p.to_str().unwrap(), "--run", "stale-1", "--output", ds.to_str().unwrap()]);
    for i in ["0/2", "1/2"] {
        let out = shard(i);
        assert_eq!((out.code, out.summary()["status"].as_str()), (0, Some("staged")), "{}", out.stderr);
    }
    // another run publishes one of the shards' partitions after they planned
    let other = run_into(&ds, &["--date", "2013-01-14"]);
    assert_eq!(other.code, 0, "{}", other.stderr);
    let other_id = other.summary()["run_id"].as_str().unwrap().to_string();

    let stale = publish();
    assert_eq!(stale.code, 4, "{}", stale.stderr);
    assert!(stale.summary()["error"].as_str().unwrap().contains("date=2013-01-14"), "{}", stale.stdout);
    assert_eq!(commits(&ds), 1);
    assert_eq!(check_show(&ds)["partitions"][0]["version"], other_id.as_str(), "the newer version stays current");

    // the scheduler re-runs the shards: they run again on the new state, and publish works
    for i in ["0/2", "1/2"] {
        let out = shard(i);
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(out.stderr.contains("running it again"), "{}", out.stderr);
    }
    let published = publish();
    assert_eq!(published.code, 0, "{}", published.stderr);
    assert_eq!(published.summary()["status"], "published");
    assert_eq!(published.summary()["commit"], 2);
    check_published(&ds);
}
