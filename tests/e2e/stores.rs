//! Object stores for real: the flight and text jobs with their landing zones, dimension
//! tables, models and datasets in a real S3 API (moto) and a real Azure Blob service
//! (Azurite), both started by tests/run.sh (tests/object_stores.sh); faults come from a
//! proxy in front of moto (tests/e2e/proxy.rs).
//!
//! sluice gets its configuration the way a scheduler gives it: the clouds' standard
//! environment variables. This test process reaches the same stores with options
//! registered for the bucket, to upload inputs and read back what sluice wrote.

use std::sync::Once;

use sluice_extract::{set_store_options, Storage};

use super::proxy::{Fault, FaultProxy};
use super::*;

/// The S3 secret key sluice is given; no artifact or log line may contain it.
const SECRET: &str = "sluice-test-secret-7d1f0c9e";
/// Azurite's well-known development account key (public, documented by Microsoft).
const AZURITE_KEY: &str = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

#[derive(Clone, Copy, PartialEq, Debug)]
enum Kind {
    S3,
    Azure,
}

fn endpoint(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: run the tests with tests/run.sh, which starts moto and Azurite (tests/object_stores.sh)")
    })
}

/// A fresh prefix in the test bucket (S3) or container (Azure), and the environment that
/// points sluice at it.
struct Cloud {
    root: String,
    env: Vec<(String, String)>,
}

impl Cloud {
    fn new(kind: Kind, tag: &str) -> Cloud {
        static REGISTER: Once = Once::new();
        REGISTER.call_once(|| {
            let s3 = endpoint("SLUICE_TEST_S3");
            let opts = [("endpoint", s3.as_str()), ("allow_http", "true"), ("access_key_id", "test"), ("secret_access_key", SECRET), ("region", "us-east-1")];
            set_store_options("s3://sluice-test", opts.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
            let az = format!("{}/devstoreaccount1", endpoint("SLUICE_TEST_AZURE"));
            let opts = [("account_name", "devstoreaccount1"), ("access_key", AZURITE_KEY), ("endpoint", az.as_str()), ("allow_http", "true")];
            set_store_options("az://sluice-test", opts.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
        });
        static N: AtomicUsize = AtomicUsize::new(0);
        let unique = format!("{tag}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst));
        let s = |a: &str, b: &str| (a.to_string(), b.to_string());
        match kind {
            Kind::S3 => Cloud {
                root: format!("s3://sluice-test/{unique}"),
                env: vec![
                    s("AWS_ENDPOINT_URL", &endpoint("SLUICE_TEST_S3")),
                    s("AWS_ALLOW_HTTP", "true"),
                    s("AWS_ACCESS_KEY_ID", "test"),
                    s("AWS_SECRET_ACCESS_KEY", SECRET),
                    s("AWS_REGION", "us-east-1"),
                ],
            },
            Kind::Azure => Cloud {
                root: format!("az://sluice-test/{unique}"),
                env: vec![s("AZURE_STORAGE_USE_EMULATOR", "true"), s("AZURITE_BLOB_STORAGE_URL", &endpoint("SLUICE_TEST_AZURE"))],
            },
        }
    }

    fn uri(&self, rel: &str) -> String {
        format!("{}/{rel}", self.root)
    }

    fn storage(&self) -> Storage {
        Storage::open(&self.root, None).unwrap()
    }

    /// Upload every file under `local` to `rel/`.
    fn upload(&self, local: &Path, rel: &str) {
        let s = self.storage();
        for f in files_under(local) {
            let name = f.strip_prefix(local).unwrap().to_str().unwrap().replace('\\', "/");
            s.put(&format!("{rel}/{name}"), std::fs::read(&f).unwrap().into()).unwrap();
        }
    }

    /// Every object under the root: (root-relative path, bytes).
    fn objects(&self) -> Vec<(String, Vec<u8>)> {
        let s = self.storage();
        s.list("").unwrap().into_iter().map(|(rel, _)| (rel.clone(), s.get(&rel).unwrap().to_vec())).collect()
    }

    fn env(&self) -> Vec<(&str, &str)> {
        self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
    }

    fn sluice(&self, args: &[&str], extra_env: &[(&str, &str)]) -> Out {
        let mut env = self.env();
        env.extend_from_slice(extra_env);
        sluice_env(args, &env)
    }

    /// `sluice run` of the flight pipeline with the landing zone and the dataset here.
    fn run_flights(&self, extra: &[&str], extra_env: &[(&str, &str)]) -> Out {
        let (p, landing, ds) = (pipeline(), format!("landing={}", self.uri("landing")), self.uri("ds"));
        let mut args = vec!["run", p.to_str().unwrap(), "--param", &landing, "--output", &ds];
        args.extend_from_slice(extra);
        self.sluice(&args, extra_env)
    }

    /// Commit records of the dataset at `ds/`, in order.
    fn commits(&self) -> Vec<Value> {
        let s = self.storage();
        let mut log: Vec<String> = s.list("ds/_delta_log/").unwrap().into_iter().map(|(rel, _)| rel).filter(|r| r.ends_with(".json")).collect();
        log.sort();
        log.iter().skip(1).map(|rel| crate::delta_commit(&s.get(rel).unwrap())).collect()
    }

    /// `show --json` (with extra args); every file it lists is read back through the store
    /// and holds the rows it says.
    fn show(&self, extra: &[&str]) -> Value {
        let ds = self.uri("ds");
        let mut args = vec!["show", ds.as_str(), "--json"];
        args.extend_from_slice(extra);
        let out = self.sluice(&args, &[]);
        assert_eq!(out.code, 0, "show: {}", out.stderr);
        let show: Value = serde_json::from_str(out.stdout.lines().last().unwrap()).unwrap();
        for p in show["partitions"].as_array().unwrap() {
            let mut rows = 0;
            for f in p["files"].as_array().unwrap() {
                let uri = f.as_str().unwrap();
                assert!(uri.starts_with(&self.root), "show lists full URIs: {uri}");
                let bytes = Storage::open(uri, None).unwrap().get("").unwrap();
                rows += ParquetReader::new(std::io::Cursor::new(bytes.to_vec())).finish().unwrap().height();
            }
            assert_eq!(rows as u64, p["rows"].as_u64().unwrap(), "{p}");
        }
        show
    }
}

fn landing() -> PathBuf {
    repo().join("data/sample/landing")
}

/// Publish, re-run (up to date), --force, rollback and time travel, all on a bucket; then
/// the same version read back through the store.
fn lifecycle(kind: Kind) -> (Cloud, Vec<Out>) {
    let cloud = Cloud::new(kind, "lifecycle");
    cloud.upload(&landing(), "landing");
    let mut outs = Vec::new();
    let first = cloud.run_flights(&["--date", DATE], &[("SLUICE_LOG", "debug")]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let s = first.summary();
    assert_eq!(s["status"], "published");
    assert_eq!(s["dataset"], cloud.uri("ds"));
    assert_eq!(s["rows"]["in"], csv_rows(&landing().join(format!("flights/{DATE}.csv"))));
    let v1 = s["partitions"][0]["version"].as_str().unwrap().to_string();
    outs.push(first);

    let again = cloud.run_flights(&["--date", DATE], &[]);
    assert_eq!((again.code, again.summary()["status"].as_str()), (0, Some("up_to_date")), "{}", again.stderr);
    let forced = cloud.run_flights(&["--date", DATE, "--force"], &[]);
    assert_eq!((forced.code, forced.summary()["commit"].as_u64()), (0, Some(2)), "{}", forced.stderr);
    let v2 = forced.summary()["partitions"][0]["version"].as_str().unwrap().to_string();
    assert_ne!(v1, v2);
    assert_eq!(cloud.show(&[])["partitions"][0]["version"], v2.as_str());

    let ds = cloud.uri("ds");
    let part = format!("date={DATE}");
    let back = cloud.sluice(&["rollback", &ds, "--partition", &part, "--to", &v1], &[]);
    assert_eq!(back.code, 0, "{}", back.stderr);
    assert_eq!(cloud.show(&[])["partitions"][0]["version"], v1.as_str());
    assert_eq!(cloud.show(&["--as-of", "2"])["partitions"][0]["version"], v2.as_str());
    assert_eq!(cloud.commits().len(), 3);
    let versions = cloud.sluice(&["versions", &ds], &[]);
    assert_eq!(versions.code, 0, "{}", versions.stderr);
    assert!(versions.stdout.contains(&v1) && versions.stdout.contains(&v2), "{}", versions.stdout);
    outs.extend([again, forced, back, versions]);
    (cloud, outs)
}

#[test]
fn the_flight_job_runs_on_s3_and_nothing_it_writes_or_logs_holds_the_secret() {
    let (cloud, outs) = lifecycle(Kind::S3);
    // a downstream reader (pyarrow, with the same credentials) opens what show lists
    let show = cloud.show(&[]);
    let files: Vec<&str> = show["partitions"][0]["files"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
    let script = "import sys, pyarrow.fs as fs, pyarrow.parquet as pq
s3 = fs.S3FileSystem(endpoint_override=sys.argv[1], scheme='http', access_key='test', secret_key=sys.argv[2], region='us-east-1')
print(sum(pq.read_table(u.removeprefix('s3://'), filesystem=s3).num_rows for u in sys.argv[3:]))";
    let py = Command::new(endpoint("SLUICE_TEST_PYTHON"))
        .args(["-c", script, &endpoint("SLUICE_TEST_S3"), SECRET])
        .args(&files)
        .output()
        .unwrap();
    assert!(py.status.success(), "{}", String::from_utf8_lossy(&py.stderr));
    assert_eq!(String::from_utf8_lossy(&py.stdout).trim(), show["partitions"][0]["rows"].to_string());

    // the secret is in no object sluice wrote (commits, manifests, Parquet metadata) and in
    // no line it printed, debug logs included
    let objects = cloud.objects();
    assert!(objects.iter().any(|(rel, _)| rel.ends_with("manifest.json")));
    for (rel, bytes) in &objects {
        assert!(!bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()), "{rel} holds the secret");
    }
    for out in &outs {
        assert!(!out.stdout.contains(SECRET) && !out.stderr.contains(SECRET), "the secret was printed");
    }
}

#[test]
fn the_flight_job_runs_on_azure_with_its_model_from_the_container() {
    let (cloud, _) = lifecycle(Kind::Azure);
    // a model in the container: downloaded into the cache, the same model id as the folder
    cloud.upload(&repo().join("data/models/flight_delay"), "models/flight_delay");
    let cache = temp_dir("model-cache");
    let model = cloud.uri("models/flight_delay/");
    let cache_env = ("SLUICE_CACHE_DIR", cache.to_str().unwrap());
    let out = cloud.run_flights(&["--date", "2013-01-16", "--model", &model], &[cache_env]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let local_id = sluice_infer::model_id(&repo().join("data/models/flight_delay")).unwrap();
    let manifest_uri = out.summary()["partitions"][0]["manifest"].as_str().unwrap().to_string();
    let manifest: Value = serde_json::from_slice(&Storage::open(&manifest_uri, None).unwrap().get("").unwrap()).unwrap();
    assert_eq!(manifest["model"]["id"], local_id.as_str(), "{manifest}");
    assert_eq!(manifest["model"]["path"], model.as_str());
    let entries = std::fs::read_dir(cache.join("models")).unwrap().count();
    assert_eq!(entries, 1, "one cache entry, no leftover downloads");
    // the next run loads it from the cache
    let again = cloud.run_flights(&["--date", "2013-01-17", "--model", &model], &[cache_env]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(again.stderr.contains("model cached"), "{}", again.stderr);
}

fn shards_then_publish(kind: Kind) {
    let cloud = Cloud::new(kind, "shards");
    cloud.upload(&landing(), "landing");
    for i in ["0/2", "1/2"] {
        let out = cloud.run_flights(&["--from", "2013-01-13", "--to", "2013-01-16", "--shard", i, "--run-id", "nightly-1"], &[]);
        assert_eq!(out.code, 0, "shard {i}: {}", out.stderr);
    }
    assert!(cloud.commits().is_empty(), "shards stage; they do not publish");
    let (p, ds) = (pipeline(), cloud.uri("ds"));
    let out = cloud.sluice(&["publish", p.to_str().unwrap(), "--run", "nightly-1", "--output", &ds], &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.summary()["partitions"].as_array().unwrap().len(), 4);
    assert_eq!(cloud.commits().len(), 1);
    assert_eq!(cloud.show(&[])["partitions"].as_array().unwrap().len(), 4);
}

#[test]
fn shards_stage_and_publish_on_s3() {
    shards_then_publish(Kind::S3);
}

#[test]
fn shards_stage_and_publish_on_azure() {
    shards_then_publish(Kind::Azure);
}

/// 16 runs on 16 dates at once all commit, one version each; two runs on one date held until
/// both planned: one publishes, the other exits 4.
fn racing_publishers(kind: Kind) {
    let cloud = Cloud::new(kind, "race");
    cloud.upload(&landing(), "landing");
    // 16 dates: the sample's 7, and copies of one day under 9 more
    let s = cloud.storage();
    let day = std::fs::read(landing().join(format!("flights/{DATE}.csv"))).unwrap();
    let dates: Vec<String> = (13..=28).map(|d| format!("2013-01-{d}")).collect();
    for d in &dates[7..] {
        s.put(&format!("landing/flights/{d}.csv"), day.clone().into()).unwrap();
    }
    let children: Vec<_> = dates
        .iter()
        .map(|d| {
            let (p, landing, ds) = (pipeline(), format!("landing={}", cloud.uri("landing")), cloud.uri("ds"));
            command(&["run", p.to_str().unwrap(), "--param", &landing, "--output", &ds, "--date", d], &cloud.env()).spawn().unwrap()
        })
        .collect();
    for out in children.into_iter().map(finish) {
        assert_eq!(out.code, 0, "{}", out.stderr);
    }
    let commits = cloud.commits();
    assert_eq!(commits.len(), 16);
    assert!(commits.iter().enumerate().all(|(i, c)| c["commit"] == i as u64 + 1));
    assert_eq!(cloud.show(&[])["partitions"].as_array().unwrap().len(), 16);

    let mut both: Vec<Running> = (0..2)
        .map(|_| {
            let (p, landing, ds) = (pipeline(), format!("landing={}", cloud.uri("landing")), cloud.uri("ds"));
            let args = ["run", p.to_str().unwrap(), "--param", &landing, "--output", &ds, "--date", DATE, "--force"];
            let mut env = cloud.env();
            env.push(("SLUICE_HOLD_AT", "commit"));
            Running::start(&args, &env)
        })
        .collect();
    both.iter().for_each(|r| r.wait_for("holding at commit"));
    both.iter_mut().for_each(Running::release);
    let mut codes: Vec<i32> = both.into_iter().map(|r| r.finish().code).collect();
    codes.sort();
    assert_eq!(codes, vec![0, 4], "one run publishes, the other is a conflict");
    assert_eq!(cloud.commits().len(), 17);
}

#[test]
fn sixteen_publishers_on_s3_all_commit_and_two_on_one_date_conflict() {
    racing_publishers(Kind::S3);
}

#[test]
fn sixteen_publishers_on_azure_all_commit_and_two_on_one_date_conflict() {
    racing_publishers(Kind::Azure);
}

#[test]
fn the_text_pipeline_runs_from_a_bucket_to_a_bucket_with_its_model_from_the_bucket() {
    let minilm = repo().join("data/models/all-MiniLM-L6-v2");
    assert!(minilm.join("model.safetensors").is_file(), "run `python3 data/fetch_minilm.py` (tests/run.sh does)");
    let cloud = Cloud::new(Kind::S3, "text");
    let texts: String = std::fs::read_to_string(repo().join("data/sample/texts/texts.ndjson")).unwrap().lines().take(64).map(|l| format!("{l}\n")).collect();
    cloud.storage().put("in/texts.ndjson", texts.clone().into_bytes().into()).unwrap();
    cloud.upload(&minilm, "models/minilm");
    let cache = temp_dir("text-cache");
    let p = repo().join("pipelines/text_embeddings.toml");
    let (input, ds, model) = (cloud.uri("in/texts.ndjson"), cloud.uri("ds"), format!("model={}", cloud.uri("models/minilm")));
    let args = ["run", p.to_str().unwrap(), "--input", &input, "--output", &ds, "--param", &model];
    let out = cloud.sluice(&args, &[("SLUICE_CACHE_DIR", cache.to_str().unwrap())]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let s = out.summary();
    assert_eq!(s["rows"]["in"], 64);
    let manifest_uri = s["partitions"][0]["manifest"].as_str().unwrap().to_string();
    let manifest: Value = serde_json::from_slice(&Storage::open(&manifest_uri, None).unwrap().get("").unwrap()).unwrap();
    assert_eq!(manifest["model"]["id"], sluice_infer::model_id(&minilm).unwrap().as_str());
    let file = s["partitions"][0]["files"][0].as_str().unwrap().to_string();
    let df = ParquetReader::new(std::io::Cursor::new(Storage::open(&file, None).unwrap().get("").unwrap().to_vec())).finish().unwrap();
    assert_eq!(df.column("embedding").unwrap().dtype(), &DataType::Array(Box::new(DataType::Float32), 384));
}

#[test]
fn transient_store_errors_and_stalls_are_retried_and_the_run_publishes() {
    for fault in [Fault::Unavailable(3), Fault::Stall(2)] {
        let cloud = Cloud::new(Kind::S3, "transient");
        cloud.upload(&landing(), "landing");
        let proxy = FaultProxy::start(&endpoint("SLUICE_TEST_S3"), fault);
        let url = proxy.url();
        let env = [("AWS_ENDPOINT_URL", url.as_str()), ("AWS_TIMEOUT", "1s")];
        let out = cloud.run_flights(&["--date", DATE], &env);
        assert_eq!(out.code, 0, "{fault:?}: {}", out.stderr);
        assert_eq!(out.summary()["status"], "published");
        assert!(proxy.faulted.load(Ordering::SeqCst) >= 2, "{fault:?}: the faults were hit");
        assert_eq!(cloud.commits().len(), 1);
        cloud.show(&[]);
    }
}

#[test]
fn a_store_that_keeps_failing_fails_the_run_and_leaves_the_dataset_as_it_was() {
    let cloud = Cloud::new(Kind::S3, "failing");
    cloud.upload(&landing(), "landing");
    let out = cloud.run_flights(&["--date", DATE], &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let before = cloud.objects();
    let proxy = FaultProxy::start(&endpoint("SLUICE_TEST_S3"), Fault::AlwaysUnavailable);
    let url = proxy.url();
    let env = [("AWS_ENDPOINT_URL", url.as_str()), ("SLUICE_STORE_MAX_RETRIES", "2")];
    let out = cloud.run_flights(&["--date", DATE, "--force"], &env);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(out.summary()["status"], "failed");
    assert!(proxy.faulted.load(Ordering::SeqCst) >= 3, "the request was tried, then retried twice");
    assert_eq!(cloud.objects(), before, "nothing was published or changed");
}

#[test]
fn a_dataset_on_plain_http_is_refused() {
    let out = run_into(Path::new("http://127.0.0.1:9/datasets/flights"), &["--date", DATE]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("read-only"), "{}", out.stderr);
    assert_eq!(out.summary()["status"], "failed");
}

#[test]
fn the_flight_job_reads_its_landing_zone_over_plain_http() {
    // Python's http.server on an ephemeral port; its first line names the port
    let mut server = Command::new("python3")
        .args(["-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory"])
        .arg(landing())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(server.stdout.take().unwrap()).read_line(&mut first).unwrap();
    let port = first.split(" port ").nth(1).and_then(|r| r.split_whitespace().next()).unwrap_or_else(|| panic!("{first}"));
    let ds = temp_dir("http-landing").join("ds");
    let landing_param = format!("landing=http://127.0.0.1:{port}");
    let out = run_into(&ds, &["--date", DATE, "--param", &landing_param]);
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let s = out.summary();
    assert_eq!(s["rows"]["in"], csv_rows(&landing().join(format!("flights/{DATE}.csv"))));
    let inputs = &manifest(&ds, &format!("date={DATE}"), s["run_id"].as_str().unwrap())["inputs"];
    assert_eq!(inputs[0]["uri"], format!("http://127.0.0.1:{port}/flights/{DATE}.csv"), "{inputs}");
}

/// gc on a bucket: the dry run deletes nothing; --apply deletes the superseded version's
/// objects and records it; the current version reads back; a rollback to the collected
/// version is refused.
fn gc_on_a_bucket(kind: Kind) {
    let cloud = Cloud::new(kind, "gc");
    cloud.upload(&landing(), "landing");
    for extra in [&[][..], &["--force"]] {
        let mut args = vec!["--date", DATE];
        args.extend_from_slice(extra);
        let out = cloud.run_flights(&args, &[]);
        assert_eq!(out.code, 0, "{}", out.stderr);
    }
    let part = format!("date={DATE}");
    let v1 = cloud.commits()[0]["partitions"][&part]["version"].as_str().unwrap().to_string();
    let v1_dir = cloud.commits()[0]["partitions"][&part]["manifest"].as_str().unwrap().rsplit_once('/').unwrap().0.to_string();
    let ds = cloud.uri("ds");
    let later = (chrono::Utc::now() + chrono::Duration::days(30)).to_rfc3339();
    let before = cloud.objects();
    let dry = cloud.sluice(&["gc", &ds], &[("SLUICE_GC_NOW", &later)]);
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert_eq!(dry.summary()["versions_collected"][0], format!("{part}@{v1}"));
    assert_eq!(cloud.objects(), before, "a dry run deletes nothing");
    let applied = cloud.sluice(&["gc", &ds, "--apply"], &[("SLUICE_GC_NOW", &later)]);
    assert_eq!(applied.code, 0, "{}", applied.stderr);
    let after = cloud.objects();
    assert!(!after.iter().any(|(rel, _)| rel.starts_with(&format!("ds/{v1_dir}"))), "v1's objects are gone");
    assert_eq!(after.len() as u64 + applied.summary()["files"].as_u64().unwrap(), before.len() as u64 + 1, "its files went, its gc commit came");
    cloud.show(&[]);
    let back = cloud.sluice(&["rollback", &ds, "--partition", &part, "--to", &v1], &[]);
    assert_eq!(back.code, 2, "{}", back.stderr);
}

#[test]
fn gc_on_s3() {
    gc_on_a_bucket(Kind::S3);
}

#[test]
fn gc_on_azure() {
    gc_on_a_bucket(Kind::Azure);
}

/// A dataset with 101 commits on a bucket: commit 100 wrote a Delta checkpoint (Parquet,
/// and `_last_checkpoint`), and `show` reads the state from it: with every JSON commit
/// before it deleted (another engine's log cleanup) the state is the same, and published run ids
/// are still known (their `txn` actions are in the checkpoint).
fn checkpointed_history(kind: Kind) {
    use sluice_orchestrate::store::{Change, CommitRequest, Dataset, PartitionVersion};
    use sluice_orchestrate::types::FileStats;
    let cloud = Cloud::new(kind, "checkpoint");
    let ds = Dataset::open(Storage::open(&cloud.uri("ds"), None).unwrap()).unwrap();
    let schema = serde_json::json!({"type": "struct", "fields": [{"name": "x", "type": "long", "nullable": true, "metadata": {}}]});
    let mut current = std::collections::BTreeMap::new();
    for i in 0..101u64 {
        let (run, part) = (format!("r{i}"), format!("date=2013-01-{:02}", i % 28 + 1));
        let files = vec![format!("{part}/{run}/0000000000000000/part-00000.parquet")];
        let file_stats = vec![FileStats { size: 1, rows: i, stats: None }];
        let v = PartitionVersion { version: run.clone(), files, file_stats, rows: i, fingerprint: String::new(), manifest: String::new(), published_in: 0, model: None, checks: None };
        let mut req = CommitRequest::new(i, Change::Publish, &run, [(part.clone(), Some(v.clone()))].into(), &[]).on(&current, None);
        req.schema = Some(schema.clone());
        ds.commit(req).unwrap();
        current.insert(part, v);
    }
    let s = cloud.storage();
    assert!(s.exists("ds/_delta_log/00000000000000000100.checkpoint.parquet").unwrap());
    let last: Value = serde_json::from_slice(&s.get("ds/_delta_log/_last_checkpoint").unwrap()).unwrap();
    assert_eq!(last["version"], 100);
    let show_json = ["show", &cloud.uri("ds"), "--json"];
    let out = cloud.sluice(&show_json, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let show: Value = serde_json::from_str(out.stdout.lines().last().unwrap()).unwrap();
    assert_eq!((show["commit"].as_u64(), show["partitions"].as_array().map(Vec::len)), (Some(101), Some(28)));
    assert_eq!(show["partitions"][0]["rows"], 84, "date=2013-01-01 was last published by r84");

    for v in 0..100 {
        s.delete(&format!("ds/_delta_log/{v:020}.json")).unwrap();
    }
    let out = cloud.sluice(&show_json, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(serde_json::from_str::<Value>(out.stdout.lines().last().unwrap()).unwrap()["partitions"], show["partitions"]);
    // a run id published in a deleted commit is still known (its txn is in the checkpoint)
    let head = ds.head().unwrap();
    assert_eq!((head.published_by("r5").unwrap(), head.published_by("r100").unwrap(), head.published_by("r101").unwrap()), (Some(6), Some(101), None));
}

#[test]
fn checkpoints_on_s3() {
    checkpointed_history(Kind::S3);
}

#[test]
fn checkpoints_on_azure() {
    checkpointed_history(Kind::Azure);
}

/// On S3 too, `deltalake` reads every version as `sluice show --as-of` shows it, and
/// Polars `scan_delta` the current one (the kernel's wrapper is given local tables only).
#[test]
fn engines_read_the_dataset_on_s3_as_sluice_shows_it() {
    let (cloud, _) = lifecycle(Kind::S3);
    let delta = super::delta::read_delta(&cloud.uri("ds"), &["--s3", &endpoint("SLUICE_TEST_S3"), SECRET], &[]);
    assert!(delta["latest"].as_u64().unwrap() >= 3, "{delta}");
    super::delta::readers_agree(&cloud.uri("ds"), &delta, &cloud.env());
}
