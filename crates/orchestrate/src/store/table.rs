//! The table's `metaData` and `protocol` as sluice keeps them: the schema (columns are only
//! ever added), the partition column, the properties that tell other engines sluice's
//! retention, and the pins in force, which are a property so that they survive checkpoints
//! and log cleanup.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use deltalake_core::kernel::Action;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::SluiceError;

/// The property holding the pins in force (JSON).
const PINS: &str = "sluice.pins";
const CHECKPOINT_INTERVAL: &str = "delta.checkpointInterval";

/// Write a checkpoint at every version that is a multiple of this (a new table's
/// `delta.checkpointInterval`, Delta's default). Replaying a JSON commit costs ~0.7 ms and
/// writing a checkpoint ~25-30 ms (a small table, local disk): at 100, a daily run read up
/// to 99 commits, 70 ms; at 10 it reads at most 9, and a checkpoint adds ~3 ms per commit.
pub const CHECKPOINT_EVERY: u64 = 10;

const RETENTION: &str = "delta.deletedFileRetentionDuration";
/// What sluice gc keeps when not told otherwise (`sluice gc --retain`'s default).
pub const DEFAULT_RETAIN_S: u64 = 7 * 24 * 3600;

/// A Delta `metaData` action, as written in the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TableMeta {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    pub format: Value,
    pub schema_string: String,
    pub partition_columns: Vec<String>,
    #[serde(default)]
    pub created_time: Option<i64>,
    #[serde(default)]
    pub configuration: BTreeMap<String, String>,
}

/// A pin set or removed by a commit: a pinned version is never garbage-collected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PinChange {
    pub partition: String,
    pub version: String,
    /// `false`: unpin.
    pub pinned: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A pin in force.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pin {
    pub partition: String,
    pub version: String,
    pub note: Option<String>,
    /// The commit that set it.
    pub commit: u64,
    pub timestamp: DateTime<Utc>,
}

fn bad_schema(e: impl std::fmt::Display) -> SluiceError {
    SluiceError::Store(format!("the table's schema: {e}"))
}

impl TableMeta {
    /// A new table of `schema` (a Delta struct type) partitioned by `partition_column`.
    /// The properties tell other engines what sluice does: a checkpoint every
    /// [`CHECKPOINT_EVERY`] commits,
    /// the log kept whole (sluice's history, pins and gc records live in it), and removed
    /// files kept for gc's retention.
    pub fn create(schema: &Value, partition_column: &str) -> Result<TableMeta, SluiceError> {
        let configuration = BTreeMap::from([
            (CHECKPOINT_INTERVAL.to_string(), CHECKPOINT_EVERY.to_string()),
            ("delta.enableExpiredLogCleanup".to_string(), "false".to_string()),
            ("delta.logRetentionDuration".to_string(), "interval 36500 days".to_string()),
            (RETENTION.to_string(), retention(DEFAULT_RETAIN_S)),
        ]);
        let mut fields = fields_of(schema)?;
        if !fields.iter().any(|f| f["name"] == partition_column) {
            fields.push(json!({"name": partition_column, "type": "string", "nullable": true, "metadata": {}}));
        }
        Ok(TableMeta {
            id: uuid::Uuid::new_v4().to_string(),
            name: None,
            description: None,
            format: json!({"provider": "parquet", "options": {}}),
            schema_string: json!({"type": "struct", "fields": fields}).to_string(),
            partition_columns: vec![partition_column.to_string()],
            created_time: Some(Utc::now().timestamp_millis()),
            configuration,
        })
    }

    pub fn fields(&self) -> Result<Vec<Value>, SluiceError> {
        fields_of(&serde_json::from_str(&self.schema_string).map_err(bad_schema)?)
    }

    /// The metaData for writing files of `schema`: `None` if this one holds them already;
    /// new columns are appended. A column the table has and `schema` lacks or types
    /// otherwise is refused (exit 2): older versions' files keep it, and a reader of the
    /// table must read every version with one schema.
    pub fn evolve(&self, schema: &Value) -> Result<Option<TableMeta>, SluiceError> {
        let mut fields = self.fields()?;
        let wanted = fields_of(schema)?;
        for f in fields.iter().filter(|f| !self.partition_columns.iter().any(|p| f["name"] == *p.as_str())) {
            match wanted.iter().find(|w| w["name"] == f["name"]) {
                None => return Err(SluiceError::Usage(format!(
                    "the output has no column {}, which the dataset's table has: sluice does not drop columns (write it as null, or publish to a new dataset)",
                    f["name"]
                ))),
                Some(w) if w["type"] != f["type"] => return Err(SluiceError::Usage(format!(
                    "column {} is {} in the output and {} in the dataset's table: sluice does not change a column's type (cast it in the pipeline, or publish to a new dataset)",
                    f["name"], w["type"], f["type"]
                ))),
                Some(_) => {}
            }
        }
        let added: Vec<Value> = wanted.into_iter().filter(|w| !fields.iter().any(|f| f["name"] == w["name"])).collect();
        if added.is_empty() {
            return Ok(None);
        }
        fields.extend(added);
        Ok(Some(TableMeta { schema_string: json!({"type": "struct", "fields": fields}).to_string(), ..self.clone() }))
    }

    /// Commits between checkpoints: the table's `delta.checkpointInterval` (tables sluice
    /// created before issue 27 say 100), else [`CHECKPOINT_EVERY`].
    pub fn checkpoint_interval(&self) -> u64 {
        self.configuration.get(CHECKPOINT_INTERVAL).and_then(|s| s.parse().ok()).filter(|n| *n > 0).unwrap_or(CHECKPOINT_EVERY)
    }

    /// The pins in force.
    pub fn pins(&self) -> Vec<Pin> {
        self.configuration.get(PINS).and_then(|s| serde_json::from_str(s).ok()).unwrap_or_default()
    }

    /// The pins after `changes`, made by commit `commit` at `timestamp`.
    pub fn with_pin_changes(&self, changes: &[PinChange], commit: u64, timestamp: DateTime<Utc>) -> TableMeta {
        let mut pins = self.pins();
        for ch in changes {
            pins.retain(|p| !(p.partition == ch.partition && p.version == ch.version));
            if ch.pinned {
                let (partition, version, note) = (ch.partition.clone(), ch.version.clone(), ch.note.clone());
                pins.push(Pin { partition, version, note, commit, timestamp });
            }
        }
        let mut t = self.clone();
        t.configuration.insert(PINS.to_string(), serde_json::to_string(&pins).unwrap_or_default());
        t
    }

    /// The retention other engines are told (`delta.deletedFileRetentionDuration`).
    pub fn with_retention(&self, retain_s: u64) -> Option<TableMeta> {
        let (mut t, new) = (self.clone(), retention(retain_s));
        let old = t.configuration.insert(RETENTION.to_string(), new.clone());
        (old.as_deref() != Some(new.as_str())).then_some(t)
    }

    /// The protocol this table needs: reader 1 / writer 2 (no table feature is used)
    /// unless a column is a timestamp without a time zone, which needs the
    /// `timestampNtz` feature (reader 3 / writer 7).
    pub fn protocol(&self) -> Value {
        match self.schema_string.contains("\"timestamp_ntz\"") {
            false => json!({"minReaderVersion": 1, "minWriterVersion": 2}),
            true => json!({"minReaderVersion": 3, "minWriterVersion": 7, "readerFeatures": ["timestampNtz"], "writerFeatures": ["timestampNtz"]}),
        }
    }

    pub fn action(&self) -> Result<Action, SluiceError> {
        let v = serde_json::to_value(self).map_err(bad_schema)?;
        Ok(Action::Metadata(serde_json::from_value(v).map_err(bad_schema)?))
    }

    pub fn protocol_action(&self) -> Result<Action, SluiceError> {
        Ok(Action::Protocol(serde_json::from_value(self.protocol()).map_err(bad_schema)?))
    }

    pub fn of_action(meta: &deltalake_core::kernel::Metadata) -> Result<TableMeta, SluiceError> {
        serde_json::from_value(serde_json::to_value(meta).map_err(bad_schema)?).map_err(bad_schema)
    }
}

fn retention(secs: u64) -> String {
    format!("interval {secs} seconds")
}

fn fields_of(schema: &Value) -> Result<Vec<Value>, SluiceError> {
    schema["fields"].as_array().cloned().ok_or_else(|| bad_schema(format!("not a struct type: {schema}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committer_checkpoints_at_the_tables_own_interval() {
        let schema = json!({"type": "struct", "fields": [{"name": "x", "type": "long", "nullable": true, "metadata": {}}]});
        let mut t = TableMeta::create(&schema, "date").unwrap();
        assert_eq!(t.checkpoint_interval(), CHECKPOINT_EVERY);
        assert_eq!(t.configuration[CHECKPOINT_INTERVAL], CHECKPOINT_EVERY.to_string(), "other engines are told the same");
        t.configuration.insert(CHECKPOINT_INTERVAL.into(), "100".into()); // a table made before
        assert_eq!(t.checkpoint_interval(), 100);
        for bad in ["0", "-3", "ten"] {
            t.configuration.insert(CHECKPOINT_INTERVAL.into(), bad.into());
            assert_eq!(t.checkpoint_interval(), CHECKPOINT_EVERY, "{bad}");
        }
    }
}
