//! The crash suite: SIGKILL (what the OOM killer and a spot reclaim do) at seeded random
//! points of a multi-partition run. After each kill the dataset reads back whole, and a
//! retry with the same run id publishes; nothing any commit ever published is lost.

use super::*;

const TRIALS: u64 = 50;
const SEED: u64 = 0x5EED_0008;
/// Debug logs of sluice's own crates: one line per planned partition, fetched object,
/// created file and commit, so a line number is a point in the run.
const LOG: (&str, &str) = ("SLUICE_LOG", "sluice_orchestrate=debug,sluice_extract=debug,warn");

/// splitmix64: a seeded sequence without a dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % n.max(1)
    }
}

fn run_args<'a>(p: &'a str, ds: &'a str, run_id: &'a str) -> Vec<&'a str> {
    vec!["run", p, "--output", ds, "--from", "2013-01-13", "--to", "2013-01-15", "--force", "--run-id", run_id]
}

/// A retry of `run_id` exits 0 and leaves it published: by this retry, or (when the killed
/// attempt's commit had landed) by that commit, which the retry names.
fn retry_publishes(ds: &Path, run_id: &str) {
    let p = pipeline();
    let out = sluice_env(&run_args(p.to_str().unwrap(), ds.to_str().unwrap(), run_id), &[]);
    assert_eq!(out.code, 0, "retry of {run_id}: {}", out.stderr);
    let s = out.summary();
    assert!(s["status"] == "published" || s["status"] == "up_to_date", "{s}");
    let by_run: Vec<u64> = commit_records(ds)
        .iter()
        .filter(|c| c["run_id"] == run_id)
        .map(|c| c["commit"].as_u64().unwrap())
        .collect();
    assert_eq!(by_run.len(), 1, "{run_id} published exactly once");
    assert_eq!(s["commit"].as_u64(), Some(by_run[0]), "the summary names the run's commit: {s}");
    assert_eq!(s["partitions"].as_array().unwrap().len(), 3, "{s}");
}

#[test]
fn sigkill_at_random_points_never_breaks_the_dataset_and_a_retry_publishes() {
    let ds = temp_dir("crash");
    let p = pipeline();
    let (p, d) = (p.to_str().unwrap(), ds.to_str().unwrap());
    // a clean run: how many log lines a run writes
    let clean = sluice_env(&run_args(p, d, "clean"), &[LOG]);
    assert_eq!(clean.code, 0, "{}", clean.stderr);
    let points = clean.stderr.lines().count() as u64;
    assert!(points >= 15, "too few points to kill at:\n{}", clean.stderr);
    let first = check_published(&ds);

    let mut rng = Rng(SEED);
    let mut killed_before_commit = 0;
    for trial in 0..TRIALS {
        let run_id = format!("crash-{trial}");
        let before = commits(&ds);
        let run = Running::start(&run_args(p, d, &run_id), &[LOG]);
        run.wait_lines(rng.below(points) as usize);
        run.signal("KILL");
        let out = run.finish();
        assert!(out.code == -1 || out.code == 0, "trial {trial}: {}", out.stderr);
        if commits(&ds) == before {
            killed_before_commit += 1;
        }
        check_show(&ds);
        retry_publishes(&ds, &run_id);
    }
    eprintln!("crash suite: {TRIALS} kills at {points} points, {killed_before_commit} before the commit landed");
    assert!(killed_before_commit >= TRIALS / 2, "most kills land before the commit ({killed_before_commit} of {TRIALS})");

    // once while the run holds its commit: every file is written, the commit is next
    let run = Running::start(&run_args(p, d, "crash-at-commit"), &[LOG, ("SLUICE_HOLD_AT", "commit")]);
    run.wait_for("holding at commit");
    let before = commits(&ds);
    run.signal("KILL");
    run.finish();
    assert_eq!(commits(&ds), before, "killed before its commit: nothing published");
    check_show(&ds);
    retry_publishes(&ds, "crash-at-commit");

    // nothing any commit published was deleted or changed along the way
    let published = check_published(&ds);
    assert!(published.len() as u64 >= 3 * (TRIALS + 2));
    for (file, bytes) in first {
        assert!(published[&file] == bytes, "{} changed", file.display());
    }
}
