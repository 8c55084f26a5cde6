//! The measurements behind a pipeline's `[[checks]]` (write-audit-publish): each turns a
//! staged version's rows (and the current version's) into one number, vectorized. What is
//! a pass, and what a failure does, is the orchestrator's business.

use polars::prelude::*;

use crate::TransformError;

fn failed(check: &str, e: impl std::fmt::Display) -> TransformError {
    TransformError::Check { check: check.to_string(), message: crate::steps::engine_reason_text(&e.to_string()) }
}

/// The single value of a SQL query over the table `output` (the first column of the first
/// row, as a number; booleans are 0/1). `None`: the query returned no row or null.
pub fn sql_value(check: &str, output: &DataFrame, sql: &str) -> Result<Option<f64>, TransformError> {
    let mut ctx = crate::sql_functions::sql_context();
    ctx.register("output", output.clone().lazy());
    let df = ctx.execute(sql).and_then(|lf| lf.collect()).map_err(|e| failed(check, e))?;
    let Some(first) = df.columns().first() else {
        return Err(failed(check, "the query returned no column"));
    };
    if df.height() == 0 {
        return Ok(None);
    }
    let value = first.cast(&DataType::Float64).map_err(|e| failed(check, e))?;
    Ok(value.f64().map_err(|e| failed(check, e))?.get(0))
}

fn column<'a>(check: &str, frame: &'a DataFrame, name: &str) -> Result<&'a Column, TransformError> {
    frame.column(name).map_err(|_| failed(check, format!("no column '{name}' in the output")))
}

/// The fraction of null values in a column (0 for no rows).
pub fn null_fraction(check: &str, output: &DataFrame, name: &str) -> Result<f64, TransformError> {
    let c = column(check, output, name)?;
    Ok(if c.is_empty() { 0.0 } else { c.null_count() as f64 / c.len() as f64 })
}

/// Population stability index of `name` in `new` against `current`, over `bins` bins cut at
/// the current values' quantiles: Σ (new% − cur%) · ln(new% / cur%), each share floored at
/// 0.0001 so an empty bin counts without dividing by zero. Nulls and non-finite values are
/// left out. `None`: either side has no value to compare.
pub fn psi(check: &str, current: &DataFrame, new: &DataFrame, name: &str, bins: usize) -> Result<Option<f64>, TransformError> {
    let values = |frame: &DataFrame| -> Result<Float64Chunked, TransformError> {
        let c = column(check, frame, name)?.cast(&DataType::Float64).map_err(|e| failed(check, e))?;
        let ca = c.f64().map_err(|e| failed(check, e))?.clone();
        let finite = ca.is_finite() & ca.is_not_null();
        ca.filter(&finite).map_err(|e| failed(check, e))
    };
    let (cur, new) = (values(current)?, values(new)?);
    if cur.is_empty() || new.is_empty() {
        return Ok(None);
    }
    let mut edges = Vec::with_capacity(bins);
    for k in 1..bins {
        if let Some(q) = cur.quantile(k as f64 / bins as f64, QuantileMethod::Linear).map_err(|e| failed(check, e))? {
            if edges.last().is_none_or(|last| q > *last) {
                edges.push(q);
            }
        }
    }
    let shares = |ca: &Float64Chunked| -> Vec<f64> {
        let n = ca.len() as f64;
        (0..=edges.len())
            .map(|i| {
                let above = if i == 0 { ca.is_not_null() } else { ca.gt(edges[i - 1]) };
                let below = if i == edges.len() { ca.is_not_null() } else { ca.lt_eq(edges[i]) };
                ((above & below).sum().unwrap_or(0) as f64 / n).max(1e-4)
            })
            .collect()
    };
    let (c, n) = (shares(&cur), shares(&new));
    Ok(Some(c.iter().zip(&n).map(|(c, n)| (n - c) * (n / c).ln()).sum()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psi_is_zero_for_the_same_data_and_large_for_a_constant() {
        let spread: Vec<f64> = (0..1000).map(|i| (i as f64 / 1000.0).powi(2)).collect();
        let cur = df!("p" => spread.clone()).unwrap();
        let same = psi("d", &cur, &cur, "p", 10).unwrap().unwrap();
        assert!(same.abs() < 1e-9, "{same}");
        let constant = df!("p" => vec![0.5f64; 1000]).unwrap();
        let drift = psi("d", &cur, &constant, "p", 10).unwrap().unwrap();
        assert!(drift > 1.0, "{drift}");
        let shifted = df!("p" => spread.iter().map(|v| v * 0.9).collect::<Vec<_>>()).unwrap();
        let small = psi("d", &cur, &shifted, "p", 10).unwrap().unwrap();
        assert!(small > 0.0 && small < drift, "{small}");
        let empty = df!("p" => Vec::<f64>::new()).unwrap();
        assert_eq!(psi("d", &empty, &cur, "p", 10).unwrap(), None);
    }

    #[test]
    fn sql_value_and_null_fraction() {
        let df = df!("p" => [Some(0.1f64), Some(1.5), None, Some(0.2)]).unwrap();
        let v = sql_value("s", &df, "SELECT COUNT(*) FROM output WHERE p NOT BETWEEN 0 AND 1").unwrap();
        assert_eq!(v, Some(1.0));
        assert_eq!(null_fraction("n", &df, "p").unwrap(), 0.25);
        assert!(matches!(null_fraction("n", &df, "q"), Err(TransformError::Check { .. })));
        assert!(matches!(sql_value("s", &df, "SELECT nope FROM output"), Err(TransformError::Check { .. })));
    }
}
