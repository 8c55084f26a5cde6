//! Versions by the model that scored them: which model a version's files came from (its
//! `sluice.model` tag, or its manifest for a version converted from an older log), the one
//! model id a prefix names, and the partitions a model's versions are current in.

use std::collections::BTreeSet;

use super::commit::{versions_of, Commit, PartitionVersion, Snapshot};
use super::dataset::Dataset;
use crate::error::SluiceError;

impl Dataset {
    /// The id of the model that scored `v`.
    pub fn model_of(&self, v: &PartitionVersion) -> Result<Option<String>, SluiceError> {
        if v.model.is_some() || v.manifest.is_empty() {
            return Ok(v.model.clone());
        }
        let Some(bytes) = self.storage().get_opt(&v.manifest)? else { return Ok(None) };
        let m: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| self.err(&v.manifest, e))?;
        Ok(m["model"]["id"].as_str().map(str::to_string))
    }

    /// The model id `prefix` names among the versions of `log`: exactly one must start with
    /// it (exit 2 otherwise, listing the candidates).
    pub fn resolve_model(&self, log: &[Commit], prefix: &str) -> Result<String, SluiceError> {
        let mut ids = BTreeSet::new();
        for c in log {
            for v in c.partitions.values().flatten() {
                if let Some(m) = self.model_of(v)?.filter(|m| m.starts_with(prefix)) {
                    ids.insert(m);
                }
            }
        }
        let ids: Vec<String> = ids.into_iter().collect();
        match ids.as_slice() {
            [one] => Ok(one.clone()),
            [] => Err(SluiceError::Usage(format!("{}: no version was scored by a model whose id starts with '{prefix}'", self.uri()))),
            many => Err(SluiceError::Usage(format!("model id prefix '{prefix}' is ambiguous: {}", many.join(", ")))),
        }
    }

    /// The partitions of `snapshot` whose current version `model` scored.
    pub fn scored_by(&self, snapshot: &Snapshot, model: &str) -> Result<Vec<String>, SluiceError> {
        let mut out = Vec::new();
        for (p, v) in &snapshot.partitions {
            if self.model_of(v)?.as_deref() == Some(model) {
                out.push(p.clone());
            }
        }
        Ok(out)
    }

    /// The latest version of `partition` published before its current one `current` and
    /// scored by another model than `model`.
    pub fn before_model(&self, log: &[Commit], partition: &str, current: &PartitionVersion, model: &str) -> Result<Option<PartitionVersion>, SluiceError> {
        let versions = versions_of(log, partition);
        let earlier = versions.iter().take_while(|v| v.version != current.version);
        for v in earlier.collect::<Vec<_>>().into_iter().rev() {
            if self.model_of(v)?.as_deref() != Some(model) {
                return Ok(Some(v.clone()));
            }
        }
        Ok(None)
    }
}
