//! `sluice-extract` as an AWS Lambda function (feature `lambda`; `deploy/build-lambda.sh`
//! packages it as `bootstrap.zip` for the `provided.al2023` runtime). Events and responses:
//! [`sluice_extract::lambda`]. Logs go to stderr (CloudWatch), secrets redacted.

use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde_json::Value;
use sluice_extract::copy::Extracted;
use sluice_extract::lambda::handle;

fn main() -> Result<(), lambda_runtime::Error> {
    tracing_subscriber::fmt()
        .with_writer(|| sluice_extract::redact::RedactedStderr)
        .with_ansi(false)
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    // the Runtime API client on a small runtime of its own; the copy runs on sluice-extract's
    // I/O runtime, driven from a blocking thread
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(lambda_runtime::run(service_fn(invoke)))
}

async fn invoke(event: LambdaEvent<Value>) -> Result<Extracted, Diagnostic> {
    let request_id = event.context.request_id.clone();
    let outcome = tokio::task::spawn_blocking(move || handle(event.payload))
        .await
        .map_err(|e| Diagnostic { error_type: "Panic".into(), error_message: e.to_string() })?;
    outcome.map_err(|e| {
        tracing::error!(request_id, error = %e, "invocation failed");
        Diagnostic { error_type: e.kind().into(), error_message: e.to_string() }
    })
}
