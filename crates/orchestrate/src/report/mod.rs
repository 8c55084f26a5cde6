//! What a command reports: the JSON summary line ([`summary`]), Prometheus metrics
//! ([`metrics`]), StatsD metrics ([`statsd`]) and the pipeline's `[[alerts]]` ([`alerts`]).

pub mod alerts;
pub mod metrics;
pub mod statsd;
pub mod summary;
