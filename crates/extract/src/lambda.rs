//! The AWS Lambda function's events (the `lambda` feature; the binary is
//! `sluice-extract-lambda`, packaged by `deploy/build-lambda.sh`).
//!
//! An event is either
//! - the CLI's fields as a JSON object: `{"source": "s3://raw/flights/{date}.csv",
//!   "dest": "s3://landing/flights/", "date": "2013-01-15", "vars": {"K": "V"}}` (`date` and
//!   `vars` optional; unknown fields are refused), or
//! - an S3 event notification (`{"Records": [{"s3": {"bucket": {"name": ..}, "object":
//!   {"key": ..}}}]}`): each object it names is copied to `$SLUICE_EXTRACT_DEST`.
//!
//! The response is [`Extracted`], the CLI's summary with the copied objects. A bad event is
//! an [`EventError`]; the function reports it as an error response, not a crash.

use std::collections::BTreeMap;

use aws_lambda_events::event::s3::S3Event;
use serde::Deserialize;
use serde_json::Value;

use crate::copy::{extract, Extracted};
use crate::ExtractError;

/// The environment variable naming where S3-event objects are copied to.
pub const DEST_ENV: &str = "SLUICE_EXTRACT_DEST";

/// Why an invocation failed. `kind()` is the response's `errorType`.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("invalid event: {0}")]
    Invalid(String),
    #[error("an S3 event needs the destination in $SLUICE_EXTRACT_DEST (the function's environment)")]
    NoDestination,
    #[error(transparent)]
    Extract(#[from] ExtractError),
}

impl EventError {
    pub fn kind(&self) -> &'static str {
        match self {
            EventError::Invalid(_) => "InvalidEvent",
            EventError::NoDestination => "Misconfigured",
            EventError::Extract(_) => "ExtractFailed",
        }
    }
}

/// The CLI's fields.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    source: String,
    dest: String,
    date: Option<chrono::NaiveDate>,
    #[serde(default)]
    vars: BTreeMap<String, String>,
}

/// Handle one invocation (blocking: call it off the async runtime).
pub fn handle(event: Value) -> Result<Extracted, EventError> {
    if !event.is_object() {
        return Err(EventError::Invalid("an event is a JSON object: the CLI's fields or an S3 event".into()));
    }
    if event.get("Records").is_some() {
        let s3: S3Event = serde_json::from_value(event).map_err(|e| EventError::Invalid(format!("S3 event: {e}")))?;
        return copy_notified(&s3);
    }
    let req: Request = serde_json::from_value(event)
        .map_err(|e| EventError::Invalid(format!("{e} (expected {{\"source\", \"dest\", \"date\"?, \"vars\"?}} or an S3 event)")))?;
    let mut vars: Vec<(String, String)> = req.vars.into_iter().collect();
    if let Some(d) = req.date {
        vars.push(("date".into(), d.to_string()));
    }
    Ok(extract(&req.source, &req.dest, &vars)?)
}

/// Copy every object an S3 notification names to `$SLUICE_EXTRACT_DEST`.
fn copy_notified(event: &S3Event) -> Result<Extracted, EventError> {
    let dest = std::env::var(DEST_ENV).ok().filter(|d| !d.is_empty()).ok_or(EventError::NoDestination)?;
    if event.records.is_empty() {
        return Err(EventError::Invalid("S3 event without records".into()));
    }
    let mut total = Extracted { status: "skipped", objects: 0, bytes: 0, copied: Vec::new() };
    for record in &event.records {
        let (Some(bucket), Some(key)) = (&record.s3.bucket.name, &record.s3.object.key) else {
            return Err(EventError::Invalid("S3 event record without bucket name or object key".into()));
        };
        let done = extract(&format!("s3://{bucket}/{}", decode_key(key)?), &dest, &[])?;
        total.objects += done.objects;
        total.bytes += done.bytes;
        total.copied.extend(done.copied);
    }
    if total.objects > 0 {
        total.status = "copied";
    }
    Ok(total)
}

/// S3 notifications carry keys URL-encoded, with spaces as '+'.
fn decode_key(key: &str) -> Result<String, EventError> {
    percent_encoding::percent_decode_str(&key.replace('+', " "))
        .decode_utf8()
        .map(|k| k.into_owned())
        .map_err(|_| EventError::Invalid(format!("object key '{key}' is not UTF-8 once decoded")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_fields_and_bad_dates_are_invalid_events() {
        for event in [json!({"source": "a", "dest": "b", "dat": "2013-01-01"}), json!({"source": "a", "dest": "b", "date": "2013-13-01"}), json!([1, 2]), json!({"Records": "x"})] {
            assert_eq!(handle(event.clone()).unwrap_err().kind(), "InvalidEvent", "{event}");
        }
    }

    #[test]
    fn keys_are_url_decoded() {
        assert_eq!(decode_key("flights/2013-01-15+copy%281%29.csv").unwrap(), "flights/2013-01-15 copy(1).csv");
    }
}
