//! Bad input: quarantine with reasons, thresholds, missing columns, bad pipeline files.

use super::*;

fn flights_file(landing: &Path) -> PathBuf {
    landing.join(format!("flights/{DATE}.csv"))
}

/// Replace data line `n` (1-based, header is line 1) of a CSV.
fn corrupt_line(path: &Path, n: usize, f: impl Fn(&str) -> String) {
    let text = std::fs::read_to_string(path).unwrap();
    let lines: Vec<String> = text.lines().enumerate().map(|(i, l)| if i + 1 == n { f(l) } else { l.to_string() }).collect();
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

fn run_landing(landing: &Path, ds: &Path) -> Out {
    let p = pipeline();
    let param = format!("landing={}", landing.display());
    sluice(&["run", p.to_str().unwrap(), "--param", &param, "--output", ds.to_str().unwrap(), "--date", DATE])
}

#[test]
fn malformed_rows_are_quarantined_with_file_line_column_and_reason() {
    let landing = landing_copy("quarantine");
    let f = flights_file(&landing);
    corrupt_line(&f, 5, |l| format!("{l},extra"));
    corrupt_line(&f, 9, |l| {
        let mut cols: Vec<&str> = l.split(',').collect();
        cols[5] = "soon"; // dep_delay
        cols.join(",")
    });
    let ds = temp_dir("quarantine-ds");
    let out = run_landing(&landing, &ds);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let s = out.summary();
    let p = &s["partitions"][0];
    assert_eq!(p["rows_quarantined"], 2);
    assert_eq!(p["rows_in"].as_u64().unwrap(), csv_rows(&f));
    assert_eq!(
        p["rows_in"].as_u64().unwrap(),
        p["rows_out"].as_u64().unwrap() + p["rows_filtered"].as_u64().unwrap() + 2
    );
    let q = read_parquet(p["quarantine_files"][0].as_str().unwrap());
    assert_eq!(q.height(), 2);
    let lines: Vec<u32> = q.column("line").unwrap().u32().unwrap().into_no_null_iter().collect();
    assert_eq!(lines, vec![5, 9]);
    let reasons: Vec<&str> = q.column("reason").unwrap().str().unwrap().iter().flatten().collect();
    assert!(reasons[0].contains("expected 19 fields, found 20"), "{reasons:?}");
    assert!(reasons[1].contains("f64"), "{reasons:?}");
    assert_eq!(q.column("column").unwrap().str().unwrap().get(1), Some("dep_delay"));
    assert_eq!(q.column("value").unwrap().str().unwrap().get(1), Some("soon"));
    assert!(q.column("file").unwrap().str().unwrap().get(0).unwrap().ends_with(&format!("{DATE}.csv")));
}

#[test]
fn too_many_bad_rows_fail_with_exit_3_and_publish_nothing() {
    let landing = landing_copy("threshold");
    let f = flights_file(&landing);
    for n in 2..40 {
        corrupt_line(&f, n, |l| l.replacen(",", ",x", 1).replace(",x", ",bad,"));
    }
    let ds = temp_dir("threshold-ds");
    let out = run_landing(&landing, &ds);
    assert_eq!(out.code, 3, "{}", out.stderr);
    let s = out.summary();
    assert_eq!(s["status"], "failed");
    let err = s["error"].as_str().unwrap();
    assert!(err.contains("38 of") && err.contains("quarantined") && err.contains("line 2"), "{s}");
    assert_eq!(commits(&ds), 0);
    // the files it had written were removed: the dataset is exactly as it was
    assert_eq!(files_under(&ds), Vec::<PathBuf>::new());
}

#[test]
fn a_missing_column_names_the_column_and_the_file_with_exit_3() {
    let landing = landing_copy("missingcol");
    let f = flights_file(&landing);
    let text = std::fs::read_to_string(&f).unwrap();
    // drop the last column (time_hour) from every line
    let cut: Vec<String> = text.lines().map(|l| l.rsplit_once(',').map(|(a, _)| a.to_string()).unwrap()).collect();
    std::fs::write(&f, cut.join("\n") + "\n").unwrap();
    let ds = temp_dir("missingcol-ds");
    let out = run_landing(&landing, &ds);
    assert_eq!(out.code, 3, "{}", out.stderr);
    let err = out.summary()["error"].as_str().unwrap().to_string();
    assert!(err.contains("missing column 'time_hour'") && err.contains(&format!("{DATE}.csv")), "{err}");
    assert_eq!(commits(&ds), 0);
}

/// A bad value in a dimension table is bad data too (exit 3), named by file, line and
/// column, and the run publishes nothing: the tables load while the input is read, and
/// their error is the run's.
#[test]
fn a_bad_dimension_row_is_exit_3_naming_file_line_and_column() {
    let landing = landing_copy("baddim");
    let weather = landing.join("dims/weather.csv");
    let header = std::fs::read_to_string(&weather).unwrap().lines().next().unwrap().to_string();
    let temp = header.split(',').position(|c| c == "temp").unwrap();
    corrupt_line(&weather, 6, |l| l.split(',').enumerate().map(|(i, v)| if i == temp { "hot" } else { v }).collect::<Vec<_>>().join(","));
    let ds = temp_dir("baddim-ds");
    let out = run_landing(&landing, &ds);
    assert_eq!(out.code, 3, "{}", out.stderr);
    let err = out.summary()["error"].as_str().unwrap().to_string();
    assert!(err.contains("weather.csv") && err.contains("line 6") && err.contains("'temp'") && err.contains("hot"), "{err}");
    assert_eq!(commits(&ds), 0);
    assert_eq!(files_under(&ds), Vec::<PathBuf>::new(), "nothing left behind");
}

#[test]
fn fail_policy_stops_at_the_first_bad_row_naming_line_and_column() {
    let landing = landing_copy("failpolicy");
    corrupt_line(&flights_file(&landing), 7, |l| l.replacen("2013,", "20x3,", 1));
    let dir = temp_dir("failpolicy-pipe");
    let text = std::fs::read_to_string(pipeline()).unwrap().replace("on_bad_rows = \"quarantine\"", "on_bad_rows = \"fail\"");
    let text = text.replace("\"../", &format!("\"{}/", repo().display()));
    let p = dir.join("p.toml");
    std::fs::write(&p, text).unwrap();
    let param = format!("landing={}", landing.display());
    let ds = temp_dir("failpolicy-ds");
    let out = sluice(&["run", p.to_str().unwrap(), "--param", &param, "--output", ds.to_str().unwrap(), "--date", DATE]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    let err = out.summary()["error"].as_str().unwrap().to_string();
    assert!(err.contains("line 7") && err.contains("'year'") && err.contains("20x3"), "{err}");
    assert_eq!(commits(&ds), 0);
}

#[test]
fn a_bad_pipeline_file_reports_every_error_at_once_with_exit_2() {
    let dir = temp_dir("badpipe");
    let text = std::fs::read_to_string(pipeline())
        .unwrap()
        .replace("\"../", &format!("\"{}/", repo().display()))
        .replace("year = \"i32\"", "year = \"int\"") // 1: a bad type
        .replace("max_rows_per_file = 1000000", "max_rows_per_file = 1000000\ncolour = \"blue\"") // 2: unknown field
        .replace("filter = \"dep_time IS NOT NULL\"", "filter = \"dep_time IS NOT\"") // 3: bad SQL
        .replace("\"seats\"]", "\"seats\", \"nonsense\"]"); // 4: features do not match the model
    let p = dir.join("bad.toml");
    std::fs::write(&p, &text).unwrap();
    let out = sluice(&["validate", p.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    for needle in ["'int'", "colour", "cancelled", "nonsense"] {
        assert!(out.stderr.contains(needle), "missing '{needle}' in:\n{}", out.stderr);
    }
    // errors in the TOML itself say where: the unknown field's line and column
    let line = text.lines().position(|l| l.starts_with("colour")).unwrap() + 1;
    assert!(out.stderr.contains(&format!("line {line}, column 1: unknown field `colour`")), "{}", out.stderr);
    let run = sluice(&["run", p.to_str().unwrap(), "--date", DATE]);
    assert_eq!(run.code, 2);
    assert_eq!(run.summary()["status"], "failed");
}
