//! Each run's metrics as StatsD lines with DogStatsD tags, over UDP (`--statsd HOST:PORT` or
//! `[runtime] statsd`): Datadog's agent and CloudWatch's agent both take them. One datagram
//! per line; UDP never blocks the run, and a failure is a warning.

use std::net::UdpSocket;

use serde_json::Value;

/// The lines for the run of `pipeline` whose summary is `line`, which took `duration_s`.
pub fn lines(pipeline: &str, line: &Value, duration_s: f64) -> Vec<String> {
    let status = line["status"].as_str().unwrap_or("unknown");
    let tags = format!("#pipeline:{},status:{status}", tag(pipeline));
    let count = |k: &str| line["rows"][k].as_u64().unwrap_or(0);
    let checks_failed = line["checks_failed"].as_array().map_or(0, Vec::len);
    vec![
        format!("sluice.run:1|c|{tags}"),
        format!("sluice.rows.in:{}|g|{tags}", count("in")),
        format!("sluice.rows.out:{}|g|{tags}", count("out")),
        format!("sluice.rows.quarantined:{}|g|{tags}", count("quarantined")),
        format!("sluice.checks.failed:{checks_failed}|g|{tags}"),
        format!("sluice.duration:{}|ms|{tags}", (duration_s * 1000.0).round() as u64),
    ]
}

/// A tag value: DogStatsD tags may not hold `,`, `|`, `#` or `:` in values.
fn tag(v: &str) -> String {
    v.chars().map(|c| if ",|#: ".contains(c) { '_' } else { c }).collect()
}

/// Send the lines to `addr`.
pub fn send(addr: &str, pipeline: &str, line: &Value, duration_s: f64) {
    let sent = UdpSocket::bind("0.0.0.0:0").and_then(|s| lines(pipeline, line, duration_s).iter().try_for_each(|l| s.send_to(l.as_bytes(), addr).map(|_| ())));
    if let Err(e) = sent {
        tracing::warn!(statsd = addr, error = %e, "metrics not sent to StatsD");
    }
}
