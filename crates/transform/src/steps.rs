//! The transform steps of one partition: SQL steps and named filter rules, in order.
//!
//! The partition's frame is the table `input`; dimensions are tables under their names.
//! Each SQL step's result becomes the next `input`. SQL steps must keep the row count (a
//! left join on a duplicated key would silently multiply rows; a `WHERE` would silently drop
//! them): rows leave only through a filter rule, whose name and count are reported.

use polars::prelude::*;
use polars::sql::{sql_expr, SQLContext};

use crate::{Dimensions, TransformError};

#[derive(Debug, Clone)]
pub enum Step {
    /// `SELECT ... FROM input ...`; must return as many rows as it was given.
    Sql { name: String, sql: String },
    /// Keep the rows where the SQL boolean expression `keep` is true; the others are counted
    /// as filtered by `name`.
    Filter { name: String, keep: String },
    /// Keep the first row of each distinct combination of `on`; the others are counted as
    /// filtered by `name`. Within one item (a partition, unless its objects are split).
    Unique { name: String, on: Vec<String> },
}

impl Step {
    pub fn name(&self) -> &str {
        match self {
            Step::Sql { name, .. } | Step::Filter { name, .. } | Step::Unique { name, .. } => name,
        }
    }

    /// Parse-check without data (used by `sluice validate`).
    pub fn check(&self) -> Result<(), String> {
        match self {
            Step::Sql { sql, .. } => {
                let lower = sql.to_ascii_lowercase();
                if !lower.contains("input") {
                    return Err("the SQL does not read the table 'input'".into());
                }
                Ok(())
            }
            Step::Filter { keep, .. } => sql_expr(keep).map(|_| ()).map_err(|e| e.to_string()),
            Step::Unique { on, .. } if on.is_empty() => Err("unique_on needs at least one column".into()),
            Step::Unique { .. } => Ok(()),
        }
    }
}

/// One partition after its steps.
#[derive(Debug, Clone)]
pub struct Transformed {
    pub frame: DataFrame,
    /// Rows dropped by each filter rule, in step order.
    pub filtered: Vec<(String, usize)>,
}

/// Applies the steps; holds the dimensions' SQL context, so build one per worker.
pub struct Transformer {
    ctx: SQLContext,
    steps: Vec<Step>,
}

impl Transformer {
    pub fn new(dims: &Dimensions, steps: Vec<Step>) -> Self {
        Transformer { ctx: dims.sql_context(), steps }
    }

    pub fn apply(&mut self, frame: DataFrame) -> Result<Transformed, TransformError> {
        let mut frame = frame;
        let mut filtered = Vec::new();
        for step in &self.steps {
            let before = frame.height();
            let err = |source| TransformError::Step { step: step.name().to_string(), source };
            match step {
                Step::Sql { name, sql } => {
                    self.ctx.register("input", frame.lazy());
                    frame = self.ctx.execute(sql).and_then(|lf| lf.collect()).map_err(err)?;
                    if frame.height() != before {
                        return Err(TransformError::RowCountChanged { step: name.clone(), before, after: frame.height() });
                    }
                }
                Step::Filter { name, keep } => {
                    let keep = sql_expr(keep).map_err(err)?;
                    // a null condition (e.g. a comparison with null) drops the row, as SQL does
                    frame = frame.lazy().filter(keep.fill_null(lit(false))).collect().map_err(err)?;
                    filtered.push((name.clone(), before - frame.height()));
                }
                Step::Unique { name, on } => {
                    frame = frame.unique_stable(Some(on.as_slice()), UniqueKeepStrategy::First, None).map_err(err)?;
                    filtered.push((name.clone(), before - frame.height()));
                }
            }
        }
        self.ctx.unregister("input");
        Ok(Transformed { frame, filtered })
    }
}
