//! Operations on a dataset's history: `versions`, `show`, `rollback`, `pin` ([`history`])
//! and `gc` ([`gc`]).

pub mod gc;
pub mod history;
