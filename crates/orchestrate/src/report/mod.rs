//! What a command reports: the JSON summary line ([`summary`]), Prometheus metrics
//! ([`metrics`]), StatsD metrics ([`statsd`]), the pipeline's `[[alerts]]` ([`alerts`]) and
//! the HTML page of a dataset's history ([`html`]).

pub mod alerts;
pub mod html;
pub mod metrics;
pub mod statsd;
pub mod summary;
