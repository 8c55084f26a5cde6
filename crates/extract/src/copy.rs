//! Copy the objects of one partition to a landing location, with sizes and checksums.

use serde::Serialize;

use crate::source::{prefetch, SourceObject};
use crate::{expand_template, ExtractError, Location, Policy, Role, SourceSpec, Storage};

/// The outcome of [`extract`]: the `sluice-extract` CLI prints it as its last line and the
/// Lambda function returns it.
#[derive(Debug, Clone, Serialize)]
pub struct Extracted {
    /// `copied`, or `skipped` when the source had no object for the partition
    pub status: &'static str,
    pub objects: usize,
    pub bytes: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub copied: Vec<Copied>,
}

/// Copy one partition: the objects of `source` (a URI template filled from `vars`) to `dest`.
/// Both are checked against `policy` (the filled source) before anything is read. Nothing
/// to copy is not an error: the status is `skipped` and `dest` is not touched.
pub fn extract(source: &str, dest: &str, vars: &[(String, String)], policy: &Policy) -> Result<Extracted, ExtractError> {
    copy_location(&expand_template(source, vars)?, dest, policy)
}

/// Copy the object at `source` (every object under it, for a prefix ending with `/`) to
/// `dest`: [`extract`] for a URI that is no template (an S3 key may hold `{` and `}`).
pub fn copy_location(source: &str, dest: &str, policy: &Policy) -> Result<Extracted, ExtractError> {
    let from = Location::parse(source, None)?;
    policy.check(&from, Role::Source)?;
    let to = Location::parse(dest, None)?;
    policy.check(&to, Role::Dest)?;
    let objects = SourceSpec::list_in(from)?;
    if objects.is_empty() {
        return Ok(Extracted { status: "skipped", objects: 0, bytes: 0, copied: Vec::new() });
    }
    let copied = copy_objects(&objects, &Storage::new(to)?)?;
    let bytes = copied.iter().map(|c| c.size).sum();
    Ok(Extracted { status: "copied", objects: copied.len(), bytes, copied })
}

/// What one copied object became.
#[derive(Debug, Clone, Serialize)]
pub struct Copied {
    pub source: String,
    pub dest: String,
    pub size: u64,
    pub sha256: String,
}

/// Copy `objects` under `dest`, each keeping its path under the source prefix (its file name
/// for a single object). Each put is atomic (readers of
/// `dest` never see half an object); an existing object with the same name is replaced.
/// Up to 8 objects are read at once.
pub fn copy_objects(objects: &[SourceObject], dest: &Storage) -> Result<Vec<Copied>, ExtractError> {
    let mut out = Vec::with_capacity(objects.len());
    for (raw, obj) in prefetch(objects.to_vec(), 8, 256 << 20).zip(objects) {
        let raw = raw?;
        let name = obj.name().to_string();
        let size = raw.bytes.len() as u64;
        dest.put(&name, raw.bytes)?;
        tracing::info!(source = %raw.object.uri, dest = %dest.uri_of(&name), size, "copied");
        out.push(Copied { source: raw.object.uri, dest: dest.uri_of(&name), size, sha256: raw.sha256 });
    }
    Ok(out)
}
