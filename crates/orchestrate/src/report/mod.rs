//! What a command reports: the JSON summary line ([`summary`]) and Prometheus metrics
//! ([`metrics`]).

pub mod metrics;
pub mod summary;
