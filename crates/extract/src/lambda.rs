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
//!
//! An event is someone else's input running next to the function's own files and
//! credentials, so sources and destinations are object stores only, never a local path or
//! `file://` (`/proc/self/environ` holds the role's session keys, `/var/task` the function);
//! `$SLUICE_EXTRACT_SOURCES` and `$SLUICE_EXTRACT_DESTS` limit them to listed prefixes
//! ([`Policy::from_env`]). A refused location is an `InvalidEvent` and nothing is written.

use std::collections::BTreeMap;

use aws_lambda_events::event::s3::S3Event;
use serde::Deserialize;
use serde_json::Value;

use crate::copy::{copy_location, extract, Extracted};
use crate::{ExtractError, Policy};

/// The environment variable naming where S3-event objects are copied to.
pub const DEST_ENV: &str = "SLUICE_EXTRACT_DEST";

/// Why an invocation failed. `kind()` is the response's `errorType`.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("invalid event: {0}")]
    Invalid(String),
    #[error("an S3 event needs the destination in $SLUICE_EXTRACT_DEST (the function's environment)")]
    NoDestination,
    /// The function's environment is wrong (e.g. an allowlist entry that is not a store URL).
    #[error("misconfigured function: {0}")]
    Misconfigured(ExtractError),
    #[error(transparent)]
    Extract(#[from] ExtractError),
}

impl EventError {
    pub fn kind(&self) -> &'static str {
        match self {
            EventError::Invalid(_) => "InvalidEvent",
            EventError::Extract(
                ExtractError::Refused { .. }
                | ExtractError::UnsupportedScheme { .. }
                | ExtractError::InvalidLocation { .. }
                | ExtractError::ReadOnly { .. }
                | ExtractError::MissingTemplateValue { .. },
            ) => "InvalidEvent",
            EventError::Misconfigured(_) | EventError::NoDestination => "Misconfigured",
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

/// Handle one invocation (blocking: call it off the async runtime), with the locations
/// the function's environment allows ([`Policy::from_env`]).
pub fn handle(event: Value) -> Result<Extracted, EventError> {
    handle_with(event, &Policy::from_env().map_err(EventError::Misconfigured)?)
}

/// Handle one invocation under `policy`.
pub fn handle_with(event: Value, policy: &Policy) -> Result<Extracted, EventError> {
    if !event.is_object() {
        return Err(EventError::Invalid("an event is a JSON object: the CLI's fields or an S3 event".into()));
    }
    if event.get("Records").is_some() {
        let s3: S3Event = serde_json::from_value(event).map_err(|e| EventError::Invalid(format!("S3 event: {e}")))?;
        return copy_notified(&s3, policy);
    }
    let req: Request = serde_json::from_value(event)
        .map_err(|e| EventError::Invalid(format!("{e} (expected {{\"source\", \"dest\", \"date\"?, \"vars\"?}} or an S3 event)")))?;
    let mut vars: Vec<(String, String)> = req.vars.into_iter().collect();
    if let Some(d) = req.date {
        vars.push(("date".into(), d.to_string()));
    }
    Ok(extract(&req.source, &req.dest, &vars, policy)?)
}

/// Copy every object an S3 notification names to `$SLUICE_EXTRACT_DEST`.
fn copy_notified(event: &S3Event, policy: &Policy) -> Result<Extracted, EventError> {
    let dest = std::env::var(DEST_ENV).ok().filter(|d| !d.is_empty()).ok_or(EventError::NoDestination)?;
    if event.records.is_empty() {
        return Err(EventError::Invalid("S3 event without records".into()));
    }
    let mut total = Extracted { status: "skipped", objects: 0, bytes: 0, copied: Vec::new() };
    for record in &event.records {
        let (Some(bucket), Some(key)) = (&record.s3.bucket.name, &record.s3.object.key) else {
            return Err(EventError::Invalid("S3 event record without bucket name or object key".into()));
        };
        let done = copy_location(&format!("s3://{bucket}/{}", decode_key(key)?), &dest, policy)?;
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
    fn the_functions_own_files_are_refused_as_source_and_destination() {
        let policy = Policy::stores_only::<&str>(&[], &[]).unwrap();
        let events = [
            json!({"source": "/etc/passwd", "dest": "s3://landing/leak/"}),
            json!({"source": "/proc/self/environ", "dest": "s3://landing/leak/"}),
            json!({"source": "file:///var/task/bootstrap", "dest": "s3://landing/leak/"}),
            json!({"source": "var/task/", "dest": "s3://landing/leak/"}),
            json!({"source": "/{d}/passwd", "dest": "s3://landing/leak/", "vars": {"d": "etc"}}),
            json!({"source": "s3://raw/{date}.csv", "dest": "/tmp/leak/", "date": "2013-01-15"}),
        ];
        for event in events {
            let e = handle_with(event.clone(), &policy).unwrap_err();
            assert_eq!(e.kind(), "InvalidEvent", "{event}: {e}");
            assert!(matches!(e, EventError::Extract(ExtractError::Refused { .. })), "{event}: {e}");
        }
    }

    #[test]
    fn keys_are_url_decoded() {
        assert_eq!(decode_key("flights/2013-01-15+copy%281%29.csv").unwrap(), "flights/2013-01-15 copy(1).csv");
    }
}
