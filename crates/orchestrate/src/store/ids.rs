//! Run-id validation (run ids name folders) and new run ids. Partitions name folders too:
//! they are validated as they are parsed ([`crate::types::Partition`]).

use chrono::Utc;

use crate::error::SluiceError;

/// Run ids name folders: letters, digits, '-', '_' and '.', not '.' or '..'.
pub fn validate_run_id(id: &str) -> Result<(), SluiceError> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id != "."
        && id != ".."
        && id.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(SluiceError::Usage(format!("invalid run id '{id}': letters, digits, '-', '_', '.' only")))
    }
}

/// A new run id: UTC time plus 32 random bits, sortable by start time.
pub fn new_run_id() -> String {
    format!("{}-{:08x}", Utc::now().format("%Y%m%dT%H%M%S%.3fZ").to_string().replace('.', ""), rand::random::<u32>())
}

