//! `[[alerts]]`: after a run, the events its summary line shows (failure, held, warn,
//! quarantine, published) are sent to each alert's webhook as Slack's incoming-webhook JSON
//! or as the summary line itself. The URL is read from the environment when sending and
//! never logged (reqwest's errors are shown without it). Sending is bounded: three tries,
//! 3 s each, 10 s in all per alert; a failure is a warning and never changes the exit code
//! or what was published.

use std::time::Duration;

use serde_json::{json, Value};

use crate::types::{AlertFormat, AlertOn, AlertSpec};

const TRIES: usize = 3;
const PER_TRY: Duration = Duration::from_secs(3);
const IN_ALL: Duration = Duration::from_secs(10);

/// The events of `spec` that the summary `line` shows.
pub fn events(spec: &AlertSpec, line: &Value) -> Vec<AlertOn> {
    let held = line.get("checks_failed").is_some_and(|c| c.as_array().is_some_and(|a| !a.is_empty()));
    let code = line["exit_code"].as_u64().unwrap_or(0);
    let partitions = line["partitions"].as_array().cloned().unwrap_or_default();
    let warned = partitions.iter().flat_map(|p| p["checks"].as_array().cloned().unwrap_or_default()).any(|c| c["severity"] == "warn" && c["status"] == "fail");
    let (bad, read) = (line["rows"]["quarantined"].as_f64().unwrap_or(0.0), line["rows"]["in"].as_f64().unwrap_or(0.0));
    let quarantined = spec.quarantined_above.is_some_and(|f| read > 0.0 && bad / read > f);
    spec.on
        .iter()
        .copied()
        .filter(|on| match on {
            AlertOn::Failure => code != 0 && code != 99 && !held,
            AlertOn::Held => held,
            AlertOn::Warn => warned,
            AlertOn::Quarantine => quarantined,
            AlertOn::Published => line["status"] == "published",
        })
        .collect()
}

/// The body of `event` in `format`, for the run of `pipeline` whose summary is `line`.
pub fn payload(format: AlertFormat, event: AlertOn, pipeline: &str, line: &Value) -> Value {
    if format == AlertFormat::Json {
        let mut body = line.clone();
        body["alert"] = json!(event.as_str());
        body["pipeline"] = json!(pipeline);
        return body;
    }
    let what = match event {
        AlertOn::Failure => format!(":x: *{pipeline}* failed (exit {}): {}", line["exit_code"], line["error"].as_str().unwrap_or("")),
        AlertOn::Held => format!(":warning: *{pipeline}*: checks held run `{}`; nothing was published", line["run_id"].as_str().unwrap_or("")),
        AlertOn::Warn => format!(":warning: *{pipeline}*: a warn check failed on the published version"),
        AlertOn::Quarantine => format!(":warning: *{pipeline}*: {} of {} rows quarantined", line["rows"]["quarantined"], line["rows"]["in"]),
        AlertOn::Published => format!(":white_check_mark: *{pipeline}* published commit {} ({} rows)", line["commit"], line["rows"]["out"]),
    };
    let context = format!("dataset {} · run {}", line["dataset"].as_str().unwrap_or("?"), line["run_id"].as_str().unwrap_or("?"));
    json!({"text": what, "blocks": [
        {"type": "section", "text": {"type": "mrkdwn", "text": what}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]},
    ]})
}

/// Send every alert the summary `line` calls for; what could not be sent is a warning.
pub fn send_all(specs: &[AlertSpec], pipeline: &str, line: &Value) {
    for spec in specs {
        for event in events(spec, line) {
            let name = spec.webhook_env().unwrap_or_default();
            let Ok(url) = std::env::var(name) else {
                tracing::warn!(alert = event.as_str(), variable = name, "alert not sent: the webhook's environment variable is not set");
                continue;
            };
            match send(&url, &payload(spec.format, event, pipeline, line)) {
                Ok(()) => tracing::info!(alert = event.as_str(), variable = name, "alert sent"),
                Err(e) => tracing::warn!(alert = event.as_str(), variable = name, error = %e, "alert not sent"),
            }
        }
    }
}

/// POST `body` to `url`: up to three tries, at most 10 s in all.
fn send(url: &str, body: &Value) -> Result<(), String> {
    let rt = sluice_extract::config::runtime().map_err(|e| e.to_string())?;
    let client = reqwest::Client::builder().timeout(PER_TRY).build().map_err(|e| e.without_url().to_string())?;
    let tries = async {
        let mut last = String::new();
        for attempt in 0..TRIES {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(250 << attempt)).await;
            }
            let request = client.post(url).header("content-type", "application/json").body(body.to_string());
            match request.send().await {
                Ok(r) if r.status().is_success() => return Ok(()),
                Ok(r) => last = format!("the webhook answered {}", r.status()),
                Err(e) => last = e.without_url().to_string(),
            }
        }
        Err(last)
    };
    rt.block_on(async { tokio::time::timeout(IN_ALL, tries).await.unwrap_or_else(|_| Err(format!("no answer within {IN_ALL:?}"))) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(on: &[AlertOn], quarantined_above: Option<f64>) -> AlertSpec {
        AlertSpec { on: on.to_vec(), webhook: "env:X".into(), format: AlertFormat::Json, quarantined_above }
    }

    #[test]
    fn each_event_fires_on_the_summary_lines_that_show_it_and_only_those() {
        let all = [AlertOn::Failure, AlertOn::Held, AlertOn::Warn, AlertOn::Quarantine, AlertOn::Published];
        let s = spec(&all, Some(0.01));
        let published = json!({"status": "published", "rows": {"in": 1000, "quarantined": 20},
            "partitions": [{"checks": [{"severity": "warn", "status": "fail"}, {"severity": "error", "status": "pass"}]}]});
        assert_eq!(events(&s, &published), [AlertOn::Warn, AlertOn::Quarantine, AlertOn::Published]);
        let below = json!({"status": "published", "rows": {"in": 1000, "quarantined": 10}, "partitions": []});
        assert_eq!(events(&s, &below), [AlertOn::Published], "1.0% is not above 1%");
        let held = json!({"status": "failed", "exit_code": 3, "checks_failed": [{"check": {}}]});
        assert_eq!(events(&s, &held), [AlertOn::Held], "a hold is not also a failure");
        let failed = json!({"status": "failed", "exit_code": 4});
        assert_eq!(events(&s, &failed), [AlertOn::Failure]);
        let nothing = json!({"status": "skipped", "exit_code": 99});
        assert!(events(&s, &nothing).is_empty(), "nothing to do is not a failure");
        assert!(events(&spec(&[AlertOn::Failure], None), &published).is_empty());
    }

    #[test]
    fn a_slack_payload_has_text_and_blocks_and_a_json_one_is_the_summary() {
        let line = json!({"status": "published", "commit": 7, "rows": {"out": 5}, "dataset": "s3://lake/scores", "run_id": "r1"});
        let slack = payload(AlertFormat::Slack, AlertOn::Published, "flights", &line);
        assert!(slack["text"].as_str().unwrap().contains("published commit 7"));
        assert_eq!((slack["blocks"][0]["type"].as_str(), slack["blocks"][1]["type"].as_str()), (Some("section"), Some("context")));
        let body = payload(AlertFormat::Json, AlertOn::Published, "flights", &line);
        assert_eq!((body["alert"].as_str(), body["commit"].as_u64(), body["pipeline"].as_str()), (Some("published"), Some(7), Some("flights")));
    }
}
