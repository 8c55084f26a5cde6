//! When a model goes bad: the versions it scored (`versions --model`), rolling back
//! everything it scored in one commit (`rollback --model`, `--dry-run`), and re-scoring
//! exactly those partitions with another model (`run --rescore-model`).

use super::quality::constant_model;
use super::*;

fn model_of(ds: &Path, commit: usize, partition: &str) -> String {
    commit_records(ds)[commit - 1]["partitions"][partition]["model"].as_str().unwrap().to_string()
}

#[test]
fn a_bad_models_versions_are_rolled_back_everywhere_in_one_commit_and_rescored() {
    let ds = temp_dir("by-model");
    let uri = ds.to_str().unwrap();
    assert_eq!(run_into(&ds, &["--from", "2013-01-13", "--to", "2013-01-19"]).code, 0, "a week with the shipped model");
    let bad = constant_model("by-model-bad");
    let bad_days = ["date=2013-01-15", "date=2013-01-16", "date=2013-01-17"];
    let out = run_into(&ds, &["--from", "2013-01-15", "--to", "2013-01-17", "--model", bad.to_str().unwrap(), "--override-checks", "testing"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let (good_id, bad_id) = (model_of(&ds, 1, bad_days[0]), model_of(&ds, 2, bad_days[0]));
    assert_ne!(good_id, bad_id);
    let good_files: Vec<Value> = bad_days.iter().map(|p| commit_records(&ds)[0]["partitions"][*p]["files"].clone()).collect();

    let listed = sluice(&["versions", uri, "--model", &bad_id[..12], "--json"]);
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    let entries: Vec<Value> = serde_json::from_str(listed.stdout.lines().last().unwrap()).unwrap();
    let parts: Vec<&str> = entries.iter().map(|e| e["partition"].as_str().unwrap()).collect();
    assert_eq!(parts, bad_days);
    let ambiguous = sluice(&["rollback", uri, "--model", ""]);
    assert_eq!(ambiguous.code, 2, "an empty prefix names both models: {}", ambiguous.stderr);

    let dry = sluice(&["rollback", uri, "--model", &bad_id[..12], "--dry-run"]);
    assert_eq!((dry.code, dry.summary()["status"].as_str()), (0, Some("dry_run")), "{}", dry.stderr);
    assert_eq!(dry.summary()["partitions"].as_array().map(Vec::len), Some(3));
    assert_eq!(commits(&ds), 2, "a dry run commits nothing");
    let back = sluice(&["rollback", uri, "--model", &bad_id[..12]]);
    assert_eq!((back.code, back.summary()["commit"].as_u64()), (0, Some(3)), "{}", back.stderr);
    let c3 = &commit_records(&ds)[2];
    assert_eq!(c3["operation"], "rollback");
    for (p, files) in bad_days.iter().zip(&good_files) {
        assert_eq!(&c3["partitions"][*p]["files"], files, "{p}: the good model's files again");
        assert_eq!(c3["partitions"][*p]["model"], good_id.as_str());
    }
    assert_eq!(c3["partitions"].as_object().unwrap().len(), 3, "only the bad model's partitions moved");
    check_published(&ds);

    // the bad model again, then re-scored with the shipped one: exactly its partitions
    assert_eq!(run_into(&ds, &["--from", "2013-01-15", "--to", "2013-01-17", "--model", bad.to_str().unwrap(), "--override-checks", "testing"]).code, 0);
    let model = repo().join("data/models/flight_delay");
    let re = run_into(&ds, &["--model", model.to_str().unwrap(), "--rescore-model", &bad_id[..12], "--override-checks", "the drift check compares with the bad scores"]);
    assert_eq!(re.code, 0, "{}", re.stderr);
    let c5 = &commit_records(&ds)[4];
    let moved: Vec<&String> = c5["partitions"].as_object().unwrap().keys().collect();
    assert_eq!(moved, bad_days, "exactly the partitions the bad model scored, in one commit");
    assert!(bad_days.iter().all(|p| c5["partitions"][*p]["model"] == good_id.as_str()));
    let none_left = run_into(&ds, &["--model", model.to_str().unwrap(), "--rescore-model", &bad_id[..12]]);
    assert_eq!(none_left.code, 99, "nothing is current by the bad model any more: {}", none_left.stderr);
}

/// The HTML report of a week where a bad model re-scored three days, opened in headless
/// Chromium: a screenshot is taken, and the DOM holds every version and one SVG histogram
/// per numeric column of each partition; the three days show their drift (PSI) in
/// `delay_prob`.
#[test]
fn the_report_of_a_bad_model_shows_the_drifted_days() {
    let ds = temp_dir("report");
    let uri = ds.to_str().unwrap();
    assert_eq!(run_into(&ds, &["--from", "2013-01-13", "--to", "2013-01-19"]).code, 0);
    let bad = constant_model("report-bad");
    assert_eq!(run_into(&ds, &["--from", "2013-01-15", "--to", "2013-01-17", "--model", bad.to_str().unwrap(), "--override-checks", "testing"]).code, 0);
    let html = ds.join("report.html");
    let out = sluice(&["report", uri, "--html", html.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.stderr);

    let chromium = |args: &[&str]| {
        let out = std::process::Command::new("chromium")
            .args(["--headless", "--no-sandbox", "--disable-gpu", "--window-size=1280,900"])
            .args(args)
            .arg(format!("file://{}", html.display()))
            .output()
            .expect("chromium (tests/run.sh installs Debian's package)");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let shot = ds.join("report.png");
    chromium(&[&format!("--screenshot={}", shot.display())]);
    assert!(std::fs::metadata(&shot).unwrap().len() > 10_000, "a screenshot of the page");
    let dom = chromium(&["--dump-dom"]);

    let file = commit_records(&ds)[0]["partitions"]["date=2013-01-13"]["files"][0].as_str().unwrap().to_string();
    let numeric = read_parquet(ds.join(file).to_str().unwrap()).columns().iter().filter(|c| c.dtype().is_primitive_numeric()).count();
    let sections: Vec<&str> = dom.split("<section class=\"partition\">").skip(1).collect();
    assert_eq!(sections.len(), 7);
    for c in commit_records(&ds) {
        for (p, v) in c["partitions"].as_object().unwrap() {
            let section = sections.iter().find(|s| s.contains(&format!("<h2>{p}</h2>"))).unwrap();
            assert!(section.contains(v["version"].as_str().unwrap()), "{p}: its versions are listed");
        }
    }
    for s in &sections {
        assert_eq!(s.matches("<svg").count(), numeric, "one histogram per numeric column");
        let drift = s.split("data-column=\"delay_prob\"").nth(1).unwrap().split("</figure>").next().unwrap().contains("class=\"drift\"");
        let bad_day = ["2013-01-15", "2013-01-16", "2013-01-17"].iter().any(|d| s.contains(&format!("<h2>date={d}</h2>")));
        assert_eq!(drift, bad_day, "delay_prob drifts on exactly the re-scored days");
    }
}
