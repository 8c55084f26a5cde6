//! The `sluice-extract` binary on the committed sample landing zone.

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_sluice-extract");

fn sample() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/sample/landing")
}

#[test]
fn copies_one_partition_with_sizes_and_checksums() {
    let dest = std::env::temp_dir().join(format!("sluice-extract-it-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dest);
    let template = format!("{}/flights/{{date}}.csv", sample().display());
    let out = Command::new(BIN).args([&template, dest.to_str().unwrap(), "--date", "2013-01-15"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let original = std::fs::read(sample().join("flights/2013-01-15.csv")).unwrap();
    let copied = std::fs::read(dest.join("2013-01-15.csv")).unwrap();
    assert_eq!(original, copied);
    assert_eq!(lines[0]["size"], original.len() as u64);
    assert_eq!(lines[0]["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(lines.last().unwrap()["status"], "copied");
    std::fs::remove_dir_all(&dest).unwrap();
}

#[test]
fn a_partition_without_objects_exits_99() {
    let template = format!("{}/flights/{{date}}.csv", sample().display());
    let out = Command::new(BIN).args([&template, "/tmp/unused-sluice-dest", "--date", "2014-01-01"]).output().unwrap();
    assert_eq!(out.status.code(), Some(99));
}
