//! A run's dimension tables, read at the versions the plan's refs saw (through
//! [`super::dimcache`]) on a thread of their own ([`super::pending`]). They do not depend on
//! the dataset's state, and only the transform steps need them: the transform stage waits
//! for them just before its steps.

use sluice_extract::{ObjectRef, Storage};
use sluice_transform::{DimensionSpec, Dimensions, TransformError};

use super::pending::Pending;
use super::{dimcache, hooks};
use crate::error::SluiceError;
use crate::runtime::Cancel;

/// Dimension tables that may still be loading ([`Pending`]).
pub(crate) type PendingDimensions = Pending<Dimensions>;

/// Start loading `specs` at `refs` (the hold point `dimensions` comes first).
pub(crate) fn spawn(specs: Vec<DimensionSpec>, refs: Vec<ObjectRef>, cancel: Cancel) -> PendingDimensions {
    Pending::spawn("sluice-dims", "the dimension tables", move || {
        hooks::checkpoint("dimensions", &cancel)?;
        load(&specs, &refs)
    })
}

/// Read the dimension tables at the versions `refs` saw (the plan's), and load them.
fn load(specs: &[DimensionSpec], refs: &[ObjectRef]) -> Result<Dimensions, SluiceError> {
    let mut failed = None;
    let derived = |spec: &DimensionSpec, derive: &mut dyn FnMut() -> Result<_, TransformError>| dimcache::derived(spec, specs, refs, derive);
    let dims = Dimensions::build_cached(specs, |spec| {
        let DimensionSpec::Csv { file, .. } = spec else { return Err(not_listed(spec.name())) };
        let r = refs.iter().find(|r| &r.uri == file).ok_or_else(|| not_listed(file))?;
        let read = || {
            let bytes = Storage::open(&r.uri, None)?.get_version("", r)?;
            Ok(spec.read(&bytes)?)
        };
        dimcache::table(spec, r, read).map_err(|e| {
            let reason = e.to_string();
            failed = Some(e);
            TransformError::BadRow { file: file.clone(), line: 0, reason }
        })
    }, derived);
    match (dims, failed) {
        (Ok(d), _) => Ok(d),
        (Err(_), Some(e)) => Err(e),
        (Err(e), None) => Err(e.into()),
    }
}

fn not_listed(file: &str) -> TransformError {
    TransformError::BadRow { file: file.to_string(), line: 0, reason: "not among the dimension objects the plan listed".into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_load_on_its_thread_is_waited_for_and_its_failure_kept() {
        let dims = spawn(Vec::new(), Vec::new(), Cancel::default());
        assert_eq!(dims.wait().unwrap().tables.len(), 0);
        let spec = DimensionSpec::Sql { name: "means".into(), sql: "SELECT origin FROM weather".into() };
        let dims = spawn(vec![spec], Vec::new(), Cancel::default());
        assert!(dims.wait().is_err(), "a dimension over a table that was never loaded");
        assert!(dims.take_error().is_some());
    }
}
