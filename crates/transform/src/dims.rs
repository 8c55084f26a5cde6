//! Dimension tables: small reference frames loaded once per run and registered for the
//! transform's SQL under their names. A dimension is either read from a CSV object (typed,
//! optionally de-duplicated on a key, keeping the first row) or derived by SQL from the
//! dimensions declared before it.

use polars::prelude::*;
use polars::sql::SQLContext;

use crate::error::Context;
use crate::ingest::{first_bad_row, read_csv, CsvSpec, LINE};
use crate::TransformError;

/// Where a dimension's rows come from.
#[derive(Debug, Clone)]
pub enum DimensionSpec {
    Csv {
        name: String,
        /// Names the object in errors.
        file: String,
        spec: CsvSpec,
        /// Keep the first row of each key (e.g. weather's duplicated hours).
        unique_on: Vec<String>,
    },
    Sql { name: String, sql: String },
}

impl DimensionSpec {
    pub fn name(&self) -> &str {
        match self {
            DimensionSpec::Csv { name, .. } | DimensionSpec::Sql { name, .. } => name,
        }
    }
}

/// Loaded dimension tables, by name, in declaration order.
#[derive(Debug, Clone, Default)]
pub struct Dimensions {
    pub tables: Vec<(String, DataFrame)>,
}

impl DimensionSpec {
    /// A CSV dimension's table from its object's bytes: typed, de-duplicated, one chunk.
    /// Dimensions are reference data: a bad row is an error, never a quarantine.
    pub fn read(&self, bytes: &[u8]) -> Result<DataFrame, TransformError> {
        let wrap = |e: TransformError| TransformError::Dimension { name: self.name().to_string(), source: Box::new(e) };
        let DimensionSpec::Csv { file, spec: csv, unique_on, .. } = self else {
            return Err(wrap(TransformError::EmptyFile { file: "(a SQL dimension has no object)".into() }));
        };
        let ing = read_csv(file, bytes, csv).map_err(wrap)?;
        if let Some(e) = first_bad_row(&ing.quarantine) {
            return Err(wrap(e));
        }
        let mut frame = ing.frame.drop(LINE).ctx(|| "dropping line numbers".to_string()).map_err(wrap)?;
        if !unique_on.is_empty() {
            frame = frame
                .unique_stable(Some(unique_on.as_slice()), UniqueKeepStrategy::First, None)
                .ctx(|| format!("de-duplicating on {unique_on:?}"))
                .map_err(wrap)?;
        }
        // one chunk, whatever the reader's threads: sums over it (an AVG in a derived
        // dimension) come out the same on every machine
        frame.rechunk_mut();
        Ok(frame)
    }
}

impl Dimensions {
    /// Load every dimension. `bytes_of(file)` supplies a CSV dimension's bytes.
    pub fn load(
        specs: &[DimensionSpec],
        mut bytes_of: impl FnMut(&str) -> Result<Vec<u8>, TransformError>,
    ) -> Result<Self, TransformError> {
        Self::build(specs, |spec| match spec {
            DimensionSpec::Csv { file, .. } => spec.read(&bytes_of(file)?),
            DimensionSpec::Sql { .. } => Err(TransformError::EmptyFile { file: spec.name().to_string() }),
        })
    }

    /// Build every dimension: `table_of(spec)` gives a CSV dimension's table (read, or from a
    /// cache); SQL dimensions are derived here, in declaration order.
    pub fn build(specs: &[DimensionSpec], table_of: impl FnMut(&DimensionSpec) -> Result<DataFrame, TransformError>) -> Result<Self, TransformError> {
        Self::build_cached(specs, table_of, |_, derive| derive())
    }

    /// [`Dimensions::build`], a SQL dimension's table given by `derived(spec, derive)`: from
    /// `derive()` (its SQL over the dimensions before it), or from a cache.
    pub fn build_cached(
        specs: &[DimensionSpec],
        mut table_of: impl FnMut(&DimensionSpec) -> Result<DataFrame, TransformError>,
        mut derived: impl FnMut(&DimensionSpec, &mut dyn FnMut() -> Result<DataFrame, TransformError>) -> Result<DataFrame, TransformError>,
    ) -> Result<Self, TransformError> {
        let ctx = crate::sql_functions::sql_context();
        let mut tables = Vec::new();
        for spec in specs {
            let frame = match spec {
                DimensionSpec::Csv { .. } => table_of(spec)?,
                DimensionSpec::Sql { sql, .. } => derived(spec, &mut || {
                    let mut ctx = ctx.clone();
                    ctx.execute(sql).and_then(|lf| lf.collect()).ctx(|| "SQL".to_string()).map_err(|e| TransformError::Dimension {
                        name: spec.name().to_string(),
                        source: Box::new(e),
                    })
                })?,
            };
            tracing::debug!(dimension = spec.name(), rows = frame.height(), "dimension loaded");
            ctx.register(spec.name(), frame.clone().lazy());
            tables.push((spec.name().to_string(), frame));
        }
        Ok(Dimensions { tables })
    }

    /// A SQL context with every dimension registered.
    pub fn sql_context(&self) -> SQLContext {
        let ctx = crate::sql_functions::sql_context();
        for (name, frame) in &self.tables {
            ctx.register(name, frame.clone().lazy());
        }
        ctx
    }

    pub fn get(&self, name: &str) -> Option<&DataFrame> {
        self.tables.iter().find(|(n, _)| n == name).map(|(_, f)| f)
    }
}
