//! `[[alerts]]` and StatsD against receivers started here on 127.0.0.1: a publish, a hold
//! and a failure each send one payload of the right shape; a webhook that fails or never
//! answers changes nothing but the run's wall (bounded); the URL is a secret that no file
//! or log line holds; StatsD lines parse as DogStatsD.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::quality::constant_model;
use super::*;

/// How the receiver answers.
#[derive(Clone, Copy, PartialEq)]
enum Answer {
    Ok,
    Fail,
    Never,
}

/// A webhook on 127.0.0.1: every body it receives, parsed.
struct Receiver {
    url: String,
    bodies: Arc<Mutex<Vec<Value>>>,
}

impl Receiver {
    fn start(answer: Answer) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hooks/T0-secret-token-{}", listener.local_addr().unwrap(), std::process::id());
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let seen = bodies.clone();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream);
                let mut length = 0;
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                        break;
                    }
                    if let Some(v) = header.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                seen.lock().unwrap().push(serde_json::from_slice(&body).unwrap_or(Value::Null));
                let status = match answer {
                    Answer::Ok => "200 OK",
                    Answer::Fail => "500 Internal Server Error",
                    Answer::Never => {
                        held.push(reader); // keep the connection open, say nothing
                        continue;
                    }
                };
                let _ = reader.get_mut().write_all(format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").as_bytes());
            }
        });
        Receiver { url, bodies }
    }

    fn bodies(&self) -> Vec<Value> {
        self.bodies.lock().unwrap().clone()
    }
}

/// The flight pipeline with `alerts` (TOML) appended, written into `dir`.
fn with_alerts(dir: &Path, alerts: &str) -> PathBuf {
    let text = std::fs::read_to_string(pipeline()).unwrap().replace("\"../", &format!("\"{}/", repo().display()));
    let path = dir.join("alerting.toml");
    std::fs::write(&path, format!("{text}\n{alerts}\n")).unwrap();
    path
}

const ALERTS: &str = r#"
[[alerts]]
on = ["published", "failure", "held"]
webhook = "env:SLUICE_TEST_WEBHOOK"
format = "slack"

[[alerts]]
on = ["published"]
webhook = "env:SLUICE_TEST_WEBHOOK"
format = "json"
"#;

fn run_with(p: &Path, ds: &Path, url: &str, extra: &[&str]) -> Out {
    let mut args = vec!["run", p.to_str().unwrap(), "--output", ds.to_str().unwrap()];
    args.extend_from_slice(extra);
    sluice_env(&args, &[("SLUICE_TEST_WEBHOOK", url)])
}

#[test]
fn a_publish_a_hold_and_a_failure_each_send_their_payload_and_the_url_stays_secret() {
    let dir = temp_dir("alerts");
    let (p, ds) = (with_alerts(&dir, ALERTS), dir.join("ds"));
    let hook = Receiver::start(Answer::Ok);
    let published = run_with(&p, &ds, &hook.url, &["--date", DATE]);
    assert_eq!(published.code, 0, "{}", published.stderr);
    let bodies = hook.bodies();
    assert_eq!(bodies.len(), 2, "one slack, one json: {bodies:?}");
    let slack = bodies.iter().find(|b| b.get("blocks").is_some()).unwrap();
    assert!(slack["text"].as_str().unwrap().contains("published commit 1"), "{slack}");
    assert_eq!(slack["blocks"][0]["type"], "section");
    let json = bodies.iter().find(|b| b.get("alert").is_some()).unwrap();
    assert_eq!((json["alert"].as_str(), json["status"].as_str(), &json["run_id"]), (Some("published"), Some("published"), &published.summary()["run_id"]));

    let bad = constant_model("alerts-bad");
    let held = run_with(&p, &ds, &hook.url, &["--date", DATE, "--model", bad.to_str().unwrap()]);
    assert_eq!(held.code, 3, "{}", held.stderr);
    let bodies = hook.bodies();
    assert_eq!(bodies.len(), 3);
    assert!(bodies[2]["text"].as_str().unwrap().contains("checks held run"), "{}", bodies[2]);

    let failed = run_with(&p, &ds, &hook.url, &["--date", DATE, "--model", dir.join("no-model").to_str().unwrap()]);
    assert_eq!(failed.code, 2, "{}", failed.stderr);
    let bodies = hook.bodies();
    assert_eq!(bodies.len(), 4);
    assert!(bodies[3]["text"].as_str().unwrap().contains("failed (exit 2)"), "{}", bodies[3]);

    let secret = hook.url.rsplit('/').next().unwrap();
    for out in [&published, &held, &failed] {
        assert!(!out.stdout.contains(secret) && !out.stderr.contains(secret), "the webhook URL was printed");
    }
    for f in files_under(&ds) {
        let bytes = std::fs::read(&f).unwrap();
        assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()), "{} holds the webhook URL", f.display());
    }
}

#[test]
fn a_webhook_that_fails_or_never_answers_changes_nothing_but_a_bounded_wait() {
    let dir = temp_dir("alerts-down");
    let p = with_alerts(&dir, "[[alerts]]\non = [\"published\"]\nwebhook = \"env:SLUICE_TEST_WEBHOOK\"\n");
    let failing = Receiver::start(Answer::Fail);
    let out = run_with(&p, &dir.join("ds1"), &failing.url, &["--date", DATE]);
    assert_eq!((out.code, out.summary()["status"].as_str()), (0, Some("published")), "{}", out.stderr);
    assert_eq!(failing.bodies().len(), 3, "three tries");
    assert!(out.stderr.contains("alert not sent"), "{}", out.stderr);

    let silent = Receiver::start(Answer::Never);
    let started = Instant::now();
    let out = run_with(&p, &dir.join("ds2"), &silent.url, &["--date", DATE]);
    assert_eq!((out.code, out.summary()["status"].as_str()), (0, Some("published")), "{}", out.stderr);
    assert!(started.elapsed() < Duration::from_secs(25), "the bound is 10 s of sending: {:?}", started.elapsed());
    assert!(out.stderr.contains("alert not sent"), "{}", out.stderr);
}

#[test]
fn statsd_lines_parse_as_dogstatsd_and_count_the_rows() {
    let ds = temp_dir("statsd");
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap().to_string();
    let out = run_into(&ds, &["--date", DATE, "--statsd", &addr]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    socket.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut lines = Vec::new();
    let mut buf = [0u8; 1500];
    while lines.len() < 6 {
        let n = socket.recv(&mut buf).expect("a StatsD datagram");
        lines.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    let mut gauges = BTreeMap::new();
    for l in &lines {
        // name:value|type|#tag:value,tag:value
        let (metric, rest) = l.split_once('|').unwrap_or_else(|| panic!("{l}"));
        let (name, value) = metric.split_once(':').unwrap();
        let (kind, tags) = rest.split_once("|#").unwrap_or_else(|| panic!("{l}"));
        assert!(["c", "g", "ms"].contains(&kind), "{l}");
        assert!(tags.split(',').all(|t| t.split_once(':').is_some()), "{l}");
        assert!(tags.contains("status:published") && tags.contains("pipeline:flight_delays"), "{l}");
        gauges.insert(name.to_string(), value.parse::<u64>().unwrap());
    }
    let rows = &out.summary()["rows"];
    assert_eq!(gauges["sluice.rows.in"], rows["in"].as_u64().unwrap());
    assert_eq!(gauges["sluice.rows.out"], rows["out"].as_u64().unwrap());
}

#[test]
fn a_webhook_written_in_the_file_or_a_quarantine_alert_without_a_threshold_is_refused() {
    let dir = temp_dir("alerts-invalid");
    let p = with_alerts(&dir, "[[alerts]]\non = [\"quarantine\"]\nwebhook = \"https://hooks.example.com/T0/secret\"\n");
    let out = sluice(&["validate", p.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("env:NAME") && out.stderr.contains("quarantined_above"), "{}", out.stderr);
}
