//! Data quality: contracts on the way in, data errors in steps, compressed inputs, and
//! checks before publish (write-audit-publish).

use super::*;

/// The flight pipeline with absolute paths, edited by `edit`, written into a fresh folder.
fn pipeline_variant(tag: &str, edit: impl Fn(String) -> String) -> PathBuf {
    let text = std::fs::read_to_string(pipeline()).unwrap().replace("\"../", &format!("\"{}/", repo().display()));
    let p = temp_dir(tag).join("p.toml");
    std::fs::write(&p, edit(text)).unwrap();
    p
}

/// The pipeline without its row contracts.
fn without_contracts(text: String) -> String {
    let (a, b) = (text.find("[source.contracts]").unwrap(), text.find("[partition]").unwrap());
    let text = format!("{}{}", &text[..a], &text[b..]);
    text.replace("valid_dates = [[\"year\", \"month\", \"day\"]]", "")
}

/// A line number (1-based, header = line 1) and what to make of that line.
type Edit<'a> = (usize, &'a dyn Fn(&str) -> String);

/// The sample day with data line `n` (1-based, header = line 1) replaced.
fn landing_with(tag: &str, edits: &[Edit<'_>]) -> PathBuf {
    let landing = landing_copy(tag);
    let f = landing.join(format!("flights/{DATE}.csv"));
    let text = std::fs::read_to_string(&f).unwrap();
    let lines: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, l)| edits.iter().find(|(n, _)| *n == i + 1).map_or(l.to_string(), |(_, e)| e(l)))
        .collect();
    std::fs::write(&f, lines.join("\n") + "\n").unwrap();
    landing
}

fn month_13(l: &str) -> String {
    let mut c: Vec<&str> = l.split(',').collect();
    c[1] = "13";
    c.join(",")
}

fn feb_30(l: &str) -> String {
    let mut c: Vec<&str> = l.split(',').collect();
    (c[1], c[2]) = ("2", "30");
    c.join(",")
}

fn all_empty(l: &str) -> String {
    ",".repeat(l.split(',').count() - 1)
}

fn run_day(p: &Path, landing: &Path, ds: &Path, extra: &[&str]) -> Out {
    let param = format!("landing={}", landing.display());
    let mut args = vec!["run", p.to_str().unwrap(), "--param", &param, "--output", ds.to_str().unwrap(), "--date", DATE];
    args.extend_from_slice(extra);
    sluice(&args)
}

fn strings(df: &DataFrame, c: &str) -> Vec<Option<String>> {
    df.column(c).unwrap().str().unwrap().iter().map(|v| v.map(str::to_string)).collect()
}

fn quarantine_of(summary: &Value) -> DataFrame {
    read_parquet(summary["partitions"][0]["quarantine_files"][0].as_str().unwrap())
}

fn assert_rows_accounted(s: &Value) {
    let p = &s["partitions"][0];
    let n = |k: &str| p[k].as_u64().unwrap();
    assert_eq!(n("rows_in"), n("rows_out") + n("rows_filtered") + n("rows_quarantined"), "{p}");
    let written: usize = p["files"].as_array().unwrap().iter().map(|f| read_parquet(f.as_str().unwrap()).height()).sum();
    assert_eq!(written as u64, n("rows_out"));
}

#[test]
fn an_impossible_date_and_an_empty_row_break_contracts_and_the_rest_is_published() {
    let landing = landing_with("contracts", &[(6, &month_13), (10, &all_empty)]);
    let ds = temp_dir("contracts-ds");
    let out = run_day(&pipeline(), &landing, &ds, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let s = out.summary();
    assert_eq!(s["partitions"][0]["rows_quarantined"], 2);
    assert_eq!(s["partitions"][0]["rows_in"].as_u64().unwrap(), csv_rows(&landing.join(format!("flights/{DATE}.csv"))));
    assert_rows_accounted(&s);
    let q = quarantine_of(&s);
    let lines: Vec<u32> = q.column("line").unwrap().u32().unwrap().into_no_null_iter().collect();
    assert_eq!(lines, vec![6, 10]);
    assert_eq!(strings(&q, "rule"), vec![Some("max".into()), Some("not_null".into())]);
    assert_eq!(strings(&q, "column")[0].as_deref(), Some("month"));
    assert_eq!(strings(&q, "value")[0].as_deref(), Some("13"));
}

#[test]
fn a_day_that_does_not_exist_breaks_the_valid_date_contract() {
    let landing = landing_with("feb30", &[(4, &feb_30)]);
    let ds = temp_dir("feb30-ds");
    let out = run_day(&pipeline(), &landing, &ds, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let q = quarantine_of(&out.summary());
    assert_eq!(strings(&q, "rule"), vec![Some("valid_date".into())]);
    assert_eq!(strings(&q, "value"), vec![Some("2013-2-30".into())]);
}

#[test]
fn without_contracts_the_rows_a_step_fails_on_are_quarantined_naming_the_step() {
    // the derive step's MAKE_DATE fails on both (a row with no date at all gets a null
    // day of week, as SQL's NULL in NULL out has it, and is then cancelled: no dep_time)
    let landing = landing_with("stepdata", &[(6, &month_13), (10, &feb_30)]);
    let p = pipeline_variant("stepdata-pipe", without_contracts);
    let ds = temp_dir("stepdata-ds");
    let out = run_day(&p, &landing, &ds, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let s = out.summary();
    assert_eq!(s["partitions"][0]["rows_quarantined"], 2);
    assert_rows_accounted(&s);
    let q = quarantine_of(&s);
    let lines: Vec<u32> = q.column("line").unwrap().u32().unwrap().into_no_null_iter().collect();
    assert_eq!(lines, vec![6, 10]);
    assert_eq!(strings(&q, "rule"), vec![Some("step".into()), Some("step".into())]);
    let reasons = strings(&q, "reason");
    assert!(reasons.iter().flatten().all(|r| r.starts_with("step 'derive'") && !r.contains("strict")), "{reasons:?}");
    assert!(strings(&q, "file").iter().all(|f| f.as_deref().is_some_and(|f| f.ends_with(&format!("{DATE}.csv")))));

    // with on_bad_rows = "fail" the first such row is the error: bad input, exit 3
    let p = pipeline_variant("stepdata-fail", |t| without_contracts(t).replace("on_bad_rows = \"quarantine\"", "on_bad_rows = \"fail\""));
    let ds = temp_dir("stepdata-fail-ds");
    let out = run_day(&p, &landing, &ds, &[]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    let err = out.summary()["error"].as_str().unwrap().to_string();
    assert!(err.contains("step 'derive'") && err.contains("line 6") && !err.contains("You might want"), "{err}");
    assert_eq!(commits(&ds), 0);
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

#[test]
fn gzip_and_zstd_landing_files_give_the_same_output_as_the_plain_csv() {
    let landing = landing_copy("compressed");
    let plain = landing.join(format!("flights/{DATE}.csv"));
    let bytes = std::fs::read(&plain).unwrap();
    std::fs::write(landing.join(format!("flights/{DATE}.csv.gz")), gzip(&bytes)).unwrap();
    std::fs::write(landing.join(format!("flights/{DATE}.csv.zst")), zstd::encode_all(&bytes[..], 3).unwrap()).unwrap();
    let output = |tag: &str, input: Option<String>| -> DataFrame {
        let ds = temp_dir(tag);
        let mut extra = vec![];
        if let Some(i) = &input {
            extra = vec!["--input", i.as_str()];
        }
        let out = run_day(&pipeline(), &landing, &ds, &extra);
        assert_eq!(out.code, 0, "{tag}: {}", out.stderr);
        read_parquet(out.summary()["partitions"][0]["files"][0].as_str().unwrap())
    };
    let want = output("plain", None);
    for ext in ["csv.gz", "csv.zst"] {
        let got = output(ext, Some(format!("{}/flights/{{date}}.{ext}", landing.display())));
        assert!(got.equals_missing(&want), "{ext} differs");
    }
    // gzip data under a .csv name is read by its content
    std::fs::write(&plain, gzip(&bytes)).unwrap();
    assert!(output("gz-named-csv", None).equals_missing(&want));
    // a container sluice does not read is bad input naming what it is, not a parse error
    let mut bz = b"BZh91AY&SY".to_vec();
    bz.extend_from_slice(&bytes[..200]);
    std::fs::write(&plain, bz).unwrap();
    let out = run_day(&pipeline(), &landing, &temp_dir("bzip2"), &[]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(out.summary()["error"].as_str().unwrap().contains("bzip2 data in a CSV file"));
}

/// A copy of the flight model whose weights are all zero: it scores every row 0.5.
pub(super) fn constant_model(tag: &str) -> PathBuf {
    let dir = temp_dir(tag).join("model");
    std::fs::create_dir_all(&dir).unwrap();
    let src = repo().join("data/models/flight_delay");
    std::fs::copy(src.join("config.json"), dir.join("config.json")).unwrap();
    let mut st = std::fs::read(src.join("model.safetensors")).unwrap();
    let header = 8 + u64::from_le_bytes(st[..8].try_into().unwrap()) as usize;
    st[header..].fill(0);
    std::fs::write(dir.join("model.safetensors"), st).unwrap();
    dir
}

#[test]
fn a_constant_model_fails_the_drift_check_publishes_nothing_and_can_be_published_on_override() {
    let ds = temp_dir("wap");
    assert_eq!(run_into(&ds, &["--date", DATE]).code, 0);
    let before = check_show(&ds);
    let model = constant_model("wap-model");
    let out = run_into(&ds, &["--date", DATE, "--model", model.to_str().unwrap(), "--run-id", "const-1"]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    let s = out.summary();
    assert_eq!(s["status"], "failed");
    let failed = s["checks_failed"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{s}");
    assert_eq!(failed[0]["check"]["name"], "delay_prob_drift");
    assert!(failed[0]["check"]["value"].as_f64().unwrap() > 0.25);
    // nothing published; the staged version is kept for review
    assert_eq!(commits(&ds), 1);
    assert_eq!(check_show(&ds), before);
    let staged_file = s["staged_at"][0].as_str().unwrap();
    let scores = read_parquet(staged_file);
    let p = scores.column("delay_prob").unwrap().f32().unwrap();
    assert_eq!((p.min(), p.max()), (Some(0.5), Some(0.5)), "the held version is the constant model's");

    // publishing it needs an explicit override, which is recorded
    let p = pipeline();
    let publish = |extra: &[&str]| {
        let mut args = vec!["publish", p.to_str().unwrap(), "--run", "const-1", "--output", ds.to_str().unwrap()];
        args.extend_from_slice(extra);
        sluice(&args)
    };
    assert_eq!(publish(&[]).code, 3);
    assert_eq!(commits(&ds), 1);
    let out = publish(&["--override-checks", "constant scores expected during the outage"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.summary()["status"], "published");
    let log = commit_records(&ds);
    assert_eq!(log.len(), 2);
    let v = &log[1]["partitions"][format!("date={DATE}")];
    assert_eq!(v["version"], "const-1");
    assert_eq!(v["checks"]["overridden"], "constant scores expected during the outage");
    assert_eq!(v["checks"]["failed"], serde_json::json!(["delay_prob_drift"]));
    let m = manifest(&ds, &format!("date={DATE}"), "const-1");
    assert_eq!(m["override_checks"], "constant scores expected during the outage");
    assert!(m["checks"].as_array().unwrap().iter().any(|c| c["name"] == "delay_prob_drift" && c["status"] == "fail"));
    check_published(&ds);
    let versions = sluice(&["versions", ds.to_str().unwrap(), "--json"]);
    let entries: Value = serde_json::from_str(versions.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(entries[1]["checks"]["overridden"], "constant scores expected during the outage");
}

#[test]
fn a_failed_warn_check_publishes_and_is_recorded() {
    let landing = landing_copy("warn");
    let ds = temp_dir("warn-ds");
    assert_eq!(run_day(&pipeline(), &landing, &ds, &[]).code, 0);
    // a day with a third of its flights: the row count check (warn) fails, the rest pass
    let f = landing.join(format!("flights/{DATE}.csv"));
    let text = std::fs::read_to_string(&f).unwrap();
    let kept: Vec<&str> = text.lines().enumerate().filter(|(i, _)| i % 3 == 0).map(|(_, l)| l).collect();
    std::fs::write(&f, kept.join("\n") + "\n").unwrap();
    let out = run_day(&pipeline(), &landing, &ds, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let s = out.summary();
    assert_eq!(s["status"], "published");
    let checks = s["partitions"][0]["checks"].as_array().unwrap();
    let row_check = checks.iter().find(|c| c["name"] == "rows_vs_current").unwrap();
    assert_eq!((row_check["status"].as_str(), row_check["severity"].as_str()), (Some("fail"), Some("warn")));
    assert!(checks.iter().filter(|c| c["name"] != "rows_vs_current").all(|c| c["status"] == "pass"), "{checks:?}");
    let log = commit_records(&ds);
    assert_eq!(log[1]["partitions"][format!("date={DATE}")]["checks"]["warned"], serde_json::json!(["rows_vs_current"]));
    let text = sluice(&["versions", ds.to_str().unwrap()]);
    assert!(text.stdout.lines().last().unwrap().contains("warn: rows_vs_current"), "{}", text.stdout);
}

#[test]
fn contracts_and_checks_that_do_not_fit_are_pipeline_errors() {
    let p = pipeline_variant("badquality", |t| {
        t.replace("carrier = { not_null = true, regex = \"^[A-Z0-9]{2}$\" }", "carrier = { min = 1, regex = \"([\" }")
            .replace("air_time = { min = 0 }", "air_time = { min = 0 }\nnope = { not_null = true }")
            .replace("drift = \"delay_prob\"\nmax = 0.25", "drift = \"delay_prob\"\nsql = \"SELECT 1\"")
    });
    let out = sluice(&["validate", p.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    for needle in ["source.contracts.carrier: min/max", "source.contracts.carrier.regex", "source.contracts.nope", "checks[4] 'delay_prob_drift'"] {
        assert!(out.stderr.contains(needle), "missing '{needle}' in:\n{}", out.stderr);
    }
}
