//! Retries, timeouts and the I/O runtime: one place, set deliberately.
//!
//! - Retries (object_store's [`RetryConfig`]): up to 10 retries with exponential backoff from
//!   100 ms to 15 s, for at most 3 minutes per request; 5xx answers, throttling and
//!   connection errors are retried, and timeouts too for idempotent requests (a
//!   create-if-absent PUT is not retried on a timeout: its outcome is unknown). Override with
//!   `SLUICE_STORE_MAX_RETRIES` and `SLUICE_STORE_RETRY_TIMEOUT_S`.
//! - Timeouts (object_store's `ClientOptions`): 5 s to connect, 60 s per request, unless the
//!   cloud's environment sets them (`AWS_TIMEOUT`, `AZURE_CONNECT_TIMEOUT`, ...) or the
//!   pipeline's `[storage."<url>"]` options do.
//! - One multi-threaded tokio runtime per process (two I/O threads) drives every store.

use std::sync::OnceLock;
use std::time::Duration;

use object_store::{BackoffConfig, RetryConfig};
use tokio::runtime::Runtime;

use crate::ExtractError;

/// The retry policy of every client.
pub fn retry() -> RetryConfig {
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
    RetryConfig {
        backoff: BackoffConfig { init_backoff: Duration::from_millis(100), max_backoff: Duration::from_secs(15), base: 2.0 },
        max_retries: env("SLUICE_STORE_MAX_RETRIES").unwrap_or(10) as usize,
        retry_timeout: Duration::from_secs(env("SLUICE_STORE_RETRY_TIMEOUT_S").unwrap_or(180)),
    }
}

/// Client options sluice sets unless `<env_prefix>TIMEOUT` / `<env_prefix>CONNECT_TIMEOUT`
/// are in the environment (object_store's `from_env` reads those).
pub fn client_defaults(env_prefix: &str) -> Vec<(String, String)> {
    [("connect_timeout", "5s"), ("timeout", "60s")]
        .into_iter()
        .filter(|(k, _)| std::env::var(format!("{env_prefix}{}", k.to_ascii_uppercase())).is_err())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The process's I/O runtime.
pub fn runtime() -> Result<&'static Runtime, ExtractError> {
    static RT: OnceLock<Result<Runtime, String>> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            // local files are read on blocking threads: a few keep up with the disk (a
            // year-long run had started 29)
            .max_blocking_threads(8)
            .thread_name("sluice-io")
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|e| ExtractError::Runtime(std::io::Error::other(e.clone())))
}
