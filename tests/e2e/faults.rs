//! Real faults, not injected ones: an unreadable input in the middle of a range, a read-only
//! dataset folder, a truncated model, inputs that change while a run reads them, and a stage
//! failing after files were written. Each gets its exit code and a message naming the
//! object; nothing is published; nothing of other runs is touched.
//!
//! Permissions do not stop root, and CI runs as root: there the runs that need a
//! permission to fail run as `nobody`, from world-readable copies of the binary, the
//! pipeline, the model and the landing zone (the repository may sit in a folder only root
//! can enter).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::sync::OnceLock;

use super::*;

const NOBODY: u32 = 65534;

fn is_root() -> bool {
    std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
}

static SHARED_BIN: OnceLock<PathBuf> = OnceLock::new();

/// The binary, where any user can run it.
fn shared_binary() -> &'static Path {
    SHARED_BIN.get_or_init(|| {
        if !is_root() {
            return PathBuf::from(SLUICE);
        }
        let bin = temp_dir("bin").join("sluice");
        // a hard link is free; a copy where the temp folder is on another file system
        if std::fs::hard_link(SLUICE, &bin).is_err() {
            std::fs::copy(SLUICE, &bin).unwrap();
        }
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        // SAFETY: registers a function that takes nothing and only removes files.
        #[allow(unsafe_code)]
        unsafe {
            libc::atexit(remove_shared_binary);
        }
        bin
    })
}

/// At the test binary's exit, its link to the binary goes: left behind, each one kept a
/// whole build alive once cargo wrote the next (400 MB apiece in /tmp).
extern "C" fn remove_shared_binary() {
    if let Some(dir) = SHARED_BIN.get().and_then(|bin| bin.parent()) {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// A flight job anyone can read: the pipeline, the model and the landing zone, copied.
struct Job {
    pipeline: PathBuf,
    landing: PathBuf,
    model: PathBuf,
}

fn job(tag: &str) -> Job {
    let landing = landing_copy(tag);
    let dir = landing.parent().unwrap().to_path_buf();
    let model = dir.join("model");
    std::fs::create_dir_all(&model).unwrap();
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(repo().join("data/models/flight_delay").join(f), model.join(f)).unwrap();
    }
    let text = std::fs::read_to_string(pipeline())
        .unwrap()
        .replace("landing = \"../data/sample/landing\"", "landing = \"landing\"")
        .replace("path = \"../data/models/flight_delay\"", "path = \"model\"");
    let p = dir.join("flight_delays.toml");
    std::fs::write(&p, text).unwrap();
    Job { pipeline: p, landing, model }
}

impl Job {
    /// A dataset folder the unprivileged runs may write to.
    fn dataset(&self, name: &str) -> PathBuf {
        let ds = self.landing.parent().unwrap().join(name);
        std::fs::create_dir_all(&ds).unwrap();
        if is_root() {
            std::os::unix::fs::chown(&ds, Some(NOBODY), Some(NOBODY)).unwrap();
        }
        ds
    }

    /// A dataset as [`Job::dataset`], holding one published version (of 2013-01-13).
    fn published_dataset(&self) -> PathBuf {
        let ds = self.dataset("ds");
        let out = self.run(&ds, &["--date", "2013-01-13"]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        ds
    }

    /// `sluice run` as a user that permissions apply to.
    fn run(&self, ds: &Path, extra: &[&str]) -> Out {
        finish(self.command(ds, extra).spawn().expect("starting sluice"))
    }

    fn command(&self, ds: &Path, extra: &[&str]) -> Command {
        let mut cmd = Command::new(shared_binary());
        cmd.args(["run", self.pipeline.to_str().unwrap(), "--output", ds.to_str().unwrap()])
            .args(extra)
            .current_dir(self.landing.parent().unwrap())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if is_root() {
            cmd.uid(NOBODY).gid(NOBODY);
        }
        cmd
    }
}

/// Every file under a folder with its bytes: to show that a failed run touched nothing.
fn contents(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    files_under(dir).into_iter().map(|f| (f.clone(), std::fs::read(&f).unwrap())).collect()
}

#[test]
fn an_unreadable_input_in_the_middle_of_a_week_fails_naming_it_and_touches_nothing() {
    let job = job("unreadable");
    let ds = job.published_dataset();
    let before = contents(&ds);
    let bad = job.landing.join("flights/2013-01-16.csv");
    std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(0o000)).unwrap();
    let out = job.run(&ds, &["--from", "2013-01-13", "--to", "2013-01-19"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let s = out.summary();
    assert!(s["error"].as_str().unwrap().contains("2013-01-16.csv"), "{s}");
    assert_eq!(contents(&ds), before, "nothing published, nothing left, nothing removed");
}

#[test]
fn a_read_only_dataset_folder_fails_naming_the_file_and_changes_nothing() {
    let job = job("readonly");
    let ds = job.published_dataset();
    let before = contents(&ds);
    let mut dirs = vec![ds.clone()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.path().is_dir() {
                dirs.push(e.path());
            }
        }
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o555)).unwrap();
    }
    let out = job.run(&ds, &["--date", DATE]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let s = out.summary();
    assert!(s["error"].as_str().unwrap().contains(ds.to_str().unwrap()), "names the object it could not write: {s}");
    assert_eq!(contents(&ds), before);
}

#[test]
fn a_truncated_model_fails_naming_the_file_with_exit_2_and_changes_nothing() {
    let job = job("truncated");
    let ds = job.published_dataset();
    let before = contents(&ds);
    let weights = job.model.join("model.safetensors");
    let bytes = std::fs::read(&weights).unwrap();
    std::fs::write(&weights, &bytes[..bytes.len() / 2]).unwrap();
    let out = job.run(&ds, &["--date", DATE]);
    assert_eq!(out.code, 2, "a broken model is not fixed by retrying: {}", out.stderr);
    let s = out.summary();
    assert!(s["error"].as_str().unwrap().contains("model.safetensors"), "{s}");
    assert_eq!(contents(&ds), before);
}

#[test]
fn an_input_or_dimension_that_changes_mid_run_is_a_retryable_error_naming_it() {
    for (file, edit) in [("flights/2013-01-15.csv", "append"), ("dims/weather.csv", "append"), ("flights/2013-01-15.csv", "replace")] {
        let landing = landing_copy("changed");
        let ds = temp_dir("changed-ds");
        let p = pipeline();
        let param = format!("landing={}", landing.display());
        let args = ["run", p.to_str().unwrap(), "--param", &param, "--output", ds.to_str().unwrap(), "--date", DATE];
        // the dimension tables are read while the Delta log is, before the plan
        let point = if file.starts_with("dims/") { "dimensions" } else { "planned" };
        let mut run = Running::start(&args, &[("SLUICE_HOLD_AT", point)]);
        run.wait_for(&format!("holding at {point}"));
        let path = landing.join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        match edit {
            // a late upstream write into the same object
            "append" => std::fs::write(&path, format!("{text}{}\n", text.lines().last().unwrap())).unwrap(),
            // a new object of the same size put in its place
            _ => {
                let tmp = path.with_extension("tmp");
                std::fs::write(&tmp, text.replacen("2013", "2014", 1)).unwrap();
                std::fs::rename(&tmp, &path).unwrap();
            }
        }
        run.release();
        let out = run.finish();
        assert_eq!(out.code, 4, "{file} ({edit}): {}", out.stderr);
        let s = out.summary();
        assert!(s["error"].as_str().unwrap().contains(file.rsplit('/').next().unwrap()), "{s}");
        assert!(s["error"].as_str().unwrap().contains("changed"), "{s}");
        assert_eq!(commits(&ds), 0);
        assert_eq!(files_under(&ds), Vec::<PathBuf>::new());
        // a retry processes the new version
        let retry = sluice(&args);
        assert_eq!(retry.code, 0, "{}", retry.stderr);
    }
}

#[test]
fn a_stage_failing_after_files_were_written_removes_them_and_touches_nothing_else() {
    for stage in ["extract", "transform", "infer", "write"] {
        let ds = temp_dir(&format!("fail-{stage}"));
        assert_eq!(run_into(&ds, &["--date", "2013-01-13"]).code, 0);
        let before = contents(&ds);
        let p = pipeline_one_partition_per_item();
        let fail = format!("{stage}:5");
        let out = sluice_env(
            &["run", p.to_str().unwrap(), "--output", ds.to_str().unwrap(), "--from", "2013-01-13", "--to", "2013-01-19"],
            &[("SLUICE_FAIL_STAGE", &fail)],
        );
        assert_eq!(out.code, 1, "{stage}: {}", out.stderr);
        let s = out.summary();
        assert!(s["error"].as_str().unwrap().contains(&format!("stage '{stage}'")), "{stage}: {s}");
        assert_eq!(contents(&ds), before, "{stage}: nothing published, nothing left, nothing removed");
        if stage == "write" {
            // four days were written before the fifth failed: the cleanup had work to do
            assert!(out.stderr.contains("removed this attempt's unpublished files"), "{}", out.stderr);
        }
    }
}

#[test]
fn a_failed_commit_write_keeps_the_files_and_a_retry_finds_out() {
    let job = job("commit-write");
    let ds = job.published_dataset();
    let before = check_published(&ds);
    // the run writes its files, then its commit cannot be written (a read-only log folder)
    let mut cmd = job.command(&ds, &["--date", DATE, "--run-id", "nightly-9"]);
    cmd.env("SLUICE_HOLD_AT", "commit");
    let mut run = Running::spawn(cmd);
    run.wait_for("holding at commit");
    let log = ds.join("_delta_log");
    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o555)).unwrap();
    run.release();
    let out = run.finish();
    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.summary()["error"].as_str().unwrap().contains("may or may not have landed"), "{}", out.stdout);
    assert_eq!(commits(&ds), 1);
    let kept = unreferenced_files(&ds);
    assert!(!kept.is_empty(), "the outcome was unknown: the attempt kept its files");
    // the retry reads the log, finds no commit of nightly-9 and publishes as a new attempt
    let retry = job.run(&ds, &["--date", DATE, "--run-id", "nightly-9"]);
    assert_eq!(retry.code, 0, "{}", retry.stderr);
    assert_eq!(retry.summary()["status"], "published");
    assert_eq!(check_show(&ds)["partitions"].as_array().unwrap().len(), 2);
    let after = check_published(&ds);
    for (file, bytes) in before {
        assert!(after[&file] == bytes, "{} changed", file.display());
    }
    assert_eq!(unreferenced_files(&ds), kept, "debris of the first attempt is left for gc, nothing else");
}
