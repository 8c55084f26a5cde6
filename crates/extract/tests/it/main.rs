//! The `sluice-extract` binary on the committed sample landing zone.

// Test code: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

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

/// `sluice-extract` copies one partition from S3 (moto) to Azure (Azurite) and to a local
/// folder, configured only by the clouds' environment variables. The servers are started by
/// tests/run.sh (tests/object_stores.sh).
#[test]
fn copies_one_partition_from_s3_to_azure_and_to_a_local_folder() {
    let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} is not set: run the tests with tests/run.sh"));
    let (s3, azure) = (var("SLUICE_TEST_S3"), var("SLUICE_TEST_AZURE"));
    let env = [
        ("AWS_ENDPOINT_URL", s3.as_str()),
        ("AWS_ALLOW_HTTP", "true"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
        ("AZURE_STORAGE_USE_EMULATOR", "true"),
        ("AZURITE_BLOB_STORAGE_URL", azure.as_str()),
    ];
    let run = |args: &[&str]| {
        let out = Command::new(BIN).args(args).envs(env).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        let stdout = String::from_utf8(out.stdout).unwrap();
        stdout.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()).collect::<Vec<_>>()
    };
    let prefix = format!("extract-it-{}", std::process::id());
    // local -> S3, S3 -> Azure, Azure -> local: the bytes survive every hop
    let local = format!("{}/flights/{{date}}.csv", sample().display());
    let in_s3 = format!("s3://sluice-test/{prefix}/landing/");
    let in_az = format!("az://sluice-test/{prefix}/landing/");
    run(&[&local, &in_s3, "--date", "2013-01-15"]);
    let copied = run(&[&format!("{in_s3}{{date}}.csv"), &in_az, "--date", "2013-01-15"]);
    assert_eq!(copied[0]["source"], format!("{in_s3}2013-01-15.csv"));
    assert_eq!(copied[0]["dest"], format!("{in_az}2013-01-15.csv"));
    let dest = std::env::temp_dir().join(format!("sluice-extract-it-az-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dest);
    let back = run(&[&format!("{in_az}{{date}}.csv"), dest.to_str().unwrap(), "--date", "2013-01-15"]);
    let original = std::fs::read(sample().join("flights/2013-01-15.csv")).unwrap();
    assert_eq!(std::fs::read(dest.join("2013-01-15.csv")).unwrap(), original);
    assert_eq!(back[0]["sha256"], copied[0]["sha256"]);
    std::fs::remove_dir_all(&dest).unwrap();
}

/// A large object goes up to S3 (moto) in parts of bounded size, and reads back whole.
#[test]
fn a_large_object_goes_up_to_s3_in_parts() {
    use std::io::Write;
    let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} is not set: run the tests with tests/run.sh"));
    let opts = [("endpoint", var("SLUICE_TEST_S3")), ("allow_http", "true".into()), ("access_key_id", "test".into()), ("secret_access_key", "test".into()), ("region", "us-east-1".into())];
    sluice_extract::set_store_options("s3://sluice-test", opts.iter().map(|(k, v)| (k.to_string(), v.clone())).collect());
    let s = sluice_extract::Storage::open(&format!("s3://sluice-test/extract-it-parts-{}", std::process::id()), None).unwrap();
    let data: Vec<u8> = (0..(20u32 << 20)).map(|i| (i % 253) as u8).collect();
    let mut w = s.writer("big.bin").unwrap();
    for chunk in data.chunks(1 << 16) {
        w.write_all(chunk).unwrap();
    }
    assert_eq!(w.finish().unwrap(), sluice_extract::PutOutcome::Created);
    assert_eq!(s.get("big.bin").unwrap().as_ref(), &data[..]);
}

/// A prefix source keeps its objects' paths under the prefix (folders included).
#[test]
fn copying_a_prefix_keeps_the_folders_under_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/sample/emails");
    let dest = std::env::temp_dir().join(format!("sluice-extract-it-tree-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dest);
    let out = Command::new(BIN).args([&format!("{}/", src.display()), dest.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut n = 0;
    for folder in std::fs::read_dir(&src).unwrap() {
        let folder = folder.unwrap().path();
        for f in std::fs::read_dir(&folder).unwrap() {
            let f = f.unwrap().path();
            let rel = f.strip_prefix(&src).unwrap();
            assert_eq!(std::fs::read(dest.join(rel)).unwrap(), std::fs::read(&f).unwrap(), "{}", rel.display());
            n += 1;
        }
    }
    assert!(n > 5);
    std::fs::remove_dir_all(&dest).unwrap();
}

/// A file whose size lies (`/proc`'s report 0 bytes) fails the copy: exit 1, nothing written,
/// never an empty "copied" object.
#[test]
fn a_file_that_holds_more_than_its_listed_size_fails_instead_of_a_short_copy() {
    let dest = std::env::temp_dir().join(format!("sluice-extract-it-proc-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dest);
    let out = Command::new(BIN).args(["/proc/self/environ", dest.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let last: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(last["status"], "failed");
    assert!(!dest.join("environ").exists(), "no short copy");
}

/// A name with braces is a name, not a template, when it is copied as a location (S3 event
/// keys may hold `{` and `}`).
#[test]
fn a_location_with_braces_in_its_name_is_copied_as_it_is() {
    use sluice_extract::copy::copy_location;
    use sluice_extract::Policy;
    let dir = std::env::temp_dir().join(format!("sluice-extract-it-braces-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(dir.join("src/day {x}.csv"), b"a\n1\n").unwrap();
    let done = copy_location(dir.join("src/day {x}.csv").to_str().unwrap(), dir.join("dest").to_str().unwrap(), &Policy::open()).unwrap();
    assert_eq!((done.status, done.objects, done.bytes), ("copied", 1, 4));
    use sha2::Digest;
    assert_eq!(done.copied[0].sha256, hex::encode(sha2::Sha256::digest(b"a\n1\n")));
    assert!(done.copied[0].source.ends_with("/src/day {x}.csv"), "{}", done.copied[0].source);
    std::fs::remove_dir_all(&dir).unwrap();
}
