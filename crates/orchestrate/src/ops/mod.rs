//! Operations on a dataset's history: `versions`, `show`, `rollback`, `pin` ([`history`])
//! and `gc` ([`gc`]); `convert` ([`convert`]) turns an older sluice's log into a Delta log.

pub mod convert;
pub mod gc;
pub mod history;
