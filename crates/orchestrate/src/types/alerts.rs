//! `[[alerts]]` of a pipeline file: when to tell people, where, and in which shape.

use serde::{Deserialize, Serialize};

/// What happened to a run that an alert can be sent for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertOn {
    /// The run failed (any exit code but 0, 99 and a hold by checks).
    Failure,
    /// An `error` check held the run: nothing published, the version kept for review.
    Held,
    /// A `warn` check failed on a published version.
    Warn,
    /// Quarantined rows above `quarantined_above` of the rows read.
    Quarantine,
    /// A version was published.
    Published,
}

impl AlertOn {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertOn::Failure => "failure",
            AlertOn::Held => "held",
            AlertOn::Warn => "warn",
            AlertOn::Quarantine => "quarantine",
            AlertOn::Published => "published",
        }
    }
}

/// The payload: Slack's incoming-webhook JSON, or the run's summary line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertFormat {
    #[default]
    Json,
    Slack,
}

/// One `[[alerts]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertSpec {
    pub on: Vec<AlertOn>,
    /// `env:NAME`: the URL is a secret, read from the environment when sending.
    pub webhook: String,
    #[serde(default)]
    pub format: AlertFormat,
    /// For `quarantine`: the fraction of rows read (0 to 1) above which it fires.
    #[serde(default)]
    pub quarantined_above: Option<f64>,
}

impl AlertSpec {
    /// The environment variable that holds the webhook's URL.
    pub fn webhook_env(&self) -> Option<&str> {
        self.webhook.strip_prefix("env:").filter(|n| !n.is_empty())
    }
}
