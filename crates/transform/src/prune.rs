//! Dimension pruning: a SQL step that joins a dimension only by equalities with `input`'s
//! columns is given only the dimension rows that can match the rows it runs on.
//!
//! A daily run's `enrich` joins one day of flights with a year of weather; the engine's
//! left join hashes its right side, so every run hashed 26k weather rows to look up 72.
//! Before such a step runs, each prunable dimension is cut to the rows whose key columns
//! lie within the range (min to max) of the matching `input` columns. A row outside that
//! range equals no input row, so it can match none: the step's result is the same.
//!
//! Decided on the step's SQL once per run ([`prunings`]), conservatively. A dimension is
//! pruned for a step only when:
//! - the statement is one `SELECT` whose `FROM` is the table `input`, followed by joins;
//! - the dimension is named exactly once in the whole statement, as the right side of an
//!   inner or left join with an `ON` condition, with no table function, sample, or column
//!   renaming; every table the statement names is `input`, a dimension or its own CTE;
//! - the keys are the conjuncts of that `ON` (`a AND b AND ...`) of the form
//!   `<input alias>.col = <dimension alias>.col`; other conjuncts only add conditions;
//! - at run time, both columns exist with the same type: an integer, a string, a date or a
//!   datetime (not floats: the engine's joins take NaN as equal to NaN).

use std::ops::ControlFlow;

use polars::prelude::*;
use sqlparser::ast::{
    visit_relations, BinaryOperator, Expr as SqlExpr, Ident, JoinConstraint, JoinOperator, ObjectName, ObjectNamePart, SetExpr, Statement, TableFactor,
};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::Parser;

/// A dimension a step joins only by equalities with `input`'s columns.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Pruning {
    pub dimension: String,
    /// `(input column, dimension column)` pairs.
    pub keys: Vec<(String, String)>,
}

/// The dimensions (of `dimensions`) that the step `sql` may be given pruned.
pub(crate) fn prunings(sql: &str, dimensions: &[&str]) -> Vec<Pruning> {
    let Ok(statements) = Parser::parse_sql(&GenericDialect {}, sql) else { return Vec::new() };
    let [Statement::Query(query)] = statements.as_slice() else { return Vec::new() };
    let ctes: Vec<String> = query.with.iter().flat_map(|w| &w.cte_tables).map(|c| c.alias.name.value.clone()).collect();
    let mut named: Vec<String> = Vec::new();
    let unknown = visit_relations(&statements, |name| match single(name) {
        Some(n) if n == "input" || dimensions.contains(&n.as_str()) || ctes.contains(&n) => {
            named.push(n.to_ascii_lowercase());
            ControlFlow::Continue(())
        }
        _ => ControlFlow::Break(()),
    });
    let SetExpr::Select(select) = query.body.as_ref() else { return Vec::new() };
    let [from] = select.from.as_slice() else { return Vec::new() };
    let Some(input) = plain_table(&from.relation).filter(|(name, _)| name == "input").map(|(_, alias)| alias) else { return Vec::new() };
    if unknown.is_break() || dimensions.contains(&input.as_str()) {
        return Vec::new();
    }
    let once = |d: &str| !ctes.iter().any(|c| c.eq_ignore_ascii_case(d)) && named.iter().filter(|n| n.eq_ignore_ascii_case(d)).count() == 1;
    from.joins
        .iter()
        .filter_map(|join| {
            let on = match &join.join_operator {
                JoinOperator::Join(JoinConstraint::On(on))
                | JoinOperator::Inner(JoinConstraint::On(on))
                | JoinOperator::Left(JoinConstraint::On(on))
                | JoinOperator::LeftOuter(JoinConstraint::On(on)) => on,
                _ => return None,
            };
            let (dimension, alias) = plain_table(&join.relation)?;
            if !dimensions.contains(&dimension.as_str()) || !once(&dimension) || alias == input || alias == "input" || (alias != dimension && dimensions.contains(&alias.as_str())) {
                return None;
            }
            let mut keys = Vec::new();
            equalities(on, &input, &alias, &mut keys);
            (!keys.is_empty()).then_some(Pruning { dimension, keys })
        })
        .collect()
}

/// A one-part table name.
fn single(name: &ObjectName) -> Option<String> {
    match name.0.as_slice() {
        [ObjectNamePart::Identifier(Ident { value, .. })] => Some(value.clone()),
        _ => None,
    }
}

/// A plain named table (no arguments, sample, hints or renamed columns): its name and the
/// name its columns are qualified by.
fn plain_table(factor: &TableFactor) -> Option<(String, String)> {
    let TableFactor::Table { name, alias, args: None, with_hints, version: None, with_ordinality: false, partitions, json_path: None, sample: None, index_hints } = factor
    else {
        return None;
    };
    if !(with_hints.is_empty() && partitions.is_empty() && index_hints.is_empty()) || alias.as_ref().is_some_and(|a| !a.columns.is_empty()) {
        return None;
    }
    let name = single(name)?;
    let qualifier = alias.as_ref().map_or_else(|| name.clone(), |a| a.name.value.clone());
    Some((name, qualifier))
}

/// The `input.col = dimension.col` conjuncts of `on`, as `(input column, dimension column)`.
fn equalities(on: &SqlExpr, input: &str, dimension: &str, keys: &mut Vec<(String, String)>) {
    match on {
        SqlExpr::Nested(inner) => equalities(inner, input, dimension, keys),
        SqlExpr::BinaryOp { left, op: BinaryOperator::And, right } => {
            equalities(left, input, dimension, keys);
            equalities(right, input, dimension, keys);
        }
        SqlExpr::BinaryOp { left, op: BinaryOperator::Eq, right } => {
            let (Some((q1, c1)), Some((q2, c2))) = (qualified(left), qualified(right)) else { return };
            if q1 == input && q2 == dimension {
                keys.push((c1, c2));
            } else if q1 == dimension && q2 == input {
                keys.push((c2, c1));
            }
        }
        _ => {}
    }
}

/// `q.col` as `(q, col)`.
fn qualified(e: &SqlExpr) -> Option<(String, String)> {
    match e {
        SqlExpr::CompoundIdentifier(parts) => match parts.as_slice() {
            [q, c] => Some((q.value.clone(), c.value.clone())),
            _ => None,
        },
        _ => None,
    }
}

/// `dimension` cut to the rows whose key columns lie within the range of `input`'s: `None`
/// when no key applies or the cut would keep most rows (then the whole table is as good).
///
/// String keys come last, and only while the dimension keeps more rows than `input` has:
/// their range costs a string comparison per input row, and the join hashes the rows kept,
/// so cutting a table already no larger than the input costs more than it saves. (A block
/// of a 10x backfill spent 0.17 s of its transform's 4.1 s on the string ranges of its keys
/// for weather's 216 rows left by the dates, planes' 3.3k and airlines' 16, against 28k
/// input rows.)
pub(crate) fn prune(dimension: &DataFrame, input: &DataFrame, keys: &[(String, String)]) -> PolarsResult<Option<DataFrame>> {
    let mut keep: Option<BooleanChunked> = None;
    let (strings, others): (Vec<_>, Vec<_>) = keys.iter().partition(|(i, _)| input.column(i).is_ok_and(|c| c.dtype() == &DataType::String));
    for (i, d) in others.into_iter().chain(strings) {
        let (Ok(i), Ok(d)) = (input.column(i), dimension.column(d)) else { continue };
        if i.dtype() != d.dtype() || !ordered_exactly(i.dtype()) {
            continue;
        }
        let kept = keep.as_ref().map_or(dimension.height(), |k| k.num_trues());
        if i.dtype() == &DataType::String && kept <= input.height() {
            continue;
        }
        let (lo, hi) = (i.min_reduce()?, i.max_reduce()?);
        if lo.is_null() {
            // no input row has this key: none can match
            return Ok(Some(dimension.clear()));
        }
        let d = d.as_materialized_series();
        let (lo, hi) = (lo.into_series(d.name().clone()), hi.into_series(d.name().clone()));
        let within = d.gt_eq(&lo)? & d.lt_eq(&hi)?;
        keep = Some(match keep {
            Some(k) => k & within,
            None => within,
        });
    }
    let Some(keep) = keep else { return Ok(None) };
    if keep.num_trues() * 2 > dimension.height() {
        return Ok(None);
    }
    dimension.filter(&keep).map(Some)
}

/// Types whose equality the engine's joins and its comparisons agree on.
fn ordered_exactly(dtype: &DataType) -> bool {
    dtype.is_integer() || matches!(dtype, DataType::String | DataType::Date | DataType::Datetime(..))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIMS: &[&str] = &["weather", "planes", "airlines"];

    fn keys(sql: &str) -> Vec<(String, Vec<String>)> {
        prunings(sql, DIMS).into_iter().map(|p| (p.dimension, p.keys.iter().map(|(i, d)| format!("{i}={d}")).collect())).collect()
    }

    fn owned(pairs: &[&str]) -> Vec<String> {
        pairs.iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn equi_joins_with_input_are_prunable() {
        let sql = "SELECT f.*, w.temp, p.seats FROM input f
                   LEFT JOIN weather w ON f.origin = w.origin AND (w.hour = f.hour AND f.day = w.day) AND w.temp > 0
                   JOIN planes p ON f.tailnum = p.tailnum AND p.year = w.year";
        let found = keys(sql);
        assert_eq!(found, vec![
            ("weather".to_string(), owned(&["origin=origin", "hour=hour", "day=day"])),
            ("planes".to_string(), owned(&["tailnum=tailnum"])),
        ]);
        // no alias: the table names qualify
        assert_eq!(keys("SELECT * FROM input LEFT JOIN airlines ON input.carrier = airlines.carrier").len(), 1);
    }

    #[test]
    fn anything_else_is_not() {
        for sql in [
            // named twice, or elsewhere than the join
            "SELECT f.* FROM input f LEFT JOIN weather w ON f.origin = w.origin WHERE f.hour IN (SELECT hour FROM weather)",
            "SELECT f.*, w.temp FROM input f LEFT JOIN weather w ON f.origin = w.origin LEFT JOIN weather v ON f.day = v.day",
            // rows of the dimension that match nothing appear in the result
            "SELECT * FROM input f RIGHT JOIN weather w ON f.origin = w.origin",
            "SELECT * FROM input f FULL OUTER JOIN weather w ON f.origin = w.origin",
            // not a conjunction of equalities with input
            "SELECT * FROM input f LEFT JOIN weather w ON f.origin = w.origin OR f.day = w.day",
            "SELECT * FROM input f LEFT JOIN weather w ON f.day + 1 = w.day",
            "SELECT * FROM input f LEFT JOIN weather w USING (origin)",
            // the dimension not joined to input directly
            "SELECT * FROM weather w LEFT JOIN input f ON f.origin = w.origin",
            "SELECT * FROM input f, weather w WHERE f.origin = w.origin",
            "SELECT * FROM input f LEFT JOIN (SELECT * FROM weather) w ON f.origin = w.origin",
            // names that could mean another table
            "WITH weather AS (SELECT * FROM planes) SELECT * FROM input f LEFT JOIN weather w ON f.origin = w.origin",
            "SELECT * FROM input f LEFT JOIN weather w ON f.origin = w.origin LEFT JOIN w x ON f.day = x.day",
            "SELECT * FROM input planes LEFT JOIN weather w ON planes.origin = w.origin",
            "SELECT * FROM input f LEFT JOIN weather planes ON f.origin = planes.origin",
            "SELECT * FROM input f LEFT JOIN weather AS w(a, b) ON f.origin = w.a",
            "SELECT * FROM input f LEFT JOIN weather w ON f.origin = w.origin UNION ALL SELECT * FROM input",
            "not sql at all",
        ] {
            let found = prunings(sql, DIMS);
            assert!(found.iter().all(|p| p.dimension != "weather"), "{sql}: {found:?}");
        }
    }

    #[test]
    fn a_pruned_dimension_keeps_the_rows_in_range_and_its_order() {
        let dim = df!("k" => [5i32, 1, 3, 9, 2, 7], "s" => ["b", "a", "c", "z", "b", "a"], "v" => [0.5, 1.0, 3.0, 9.0, 2.0, 7.0]).unwrap();
        let input = df!("k" => [Some(3i32), None, Some(2)], "s" => ["b", "a", "c"]).unwrap();
        let ks = |pairs: &[(&str, &str)]| pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect::<Vec<_>>();
        let pruned = prune(&dim, &input, &ks(&[("k", "k")])).unwrap().unwrap();
        assert_eq!(pruned.column("k").unwrap().i32().unwrap().to_vec(), vec![Some(3), Some(2)]);
        let pruned = prune(&dim, &input, &ks(&[("k", "k"), ("s", "s")])).unwrap().unwrap();
        assert_eq!(pruned.column("v").unwrap().f64().unwrap().to_vec(), vec![Some(3.0), Some(2.0)]);
        // a float key, a type mismatch or a missing column prunes nothing
        assert!(prune(&dim, &input.clone().lazy().with_column(col("k").cast(DataType::Int64)).collect().unwrap(), &ks(&[("k", "k")])).unwrap().is_none());
        assert!(prune(&dim, &input, &ks(&[("nope", "k"), ("k", "v")])).unwrap().is_none());
        // a range that keeps most rows leaves the table whole
        assert!(prune(&dim, &input, &ks(&[("s", "s")])).unwrap().is_none());
        // no key at all in input: nothing can match
        let nulls = df!("k" => [None::<i32>, None]).unwrap();
        assert_eq!(prune(&dim, &nulls, &ks(&[("k", "k")])).unwrap().unwrap().height(), 0);
    }

    #[test]
    fn a_string_key_cuts_only_a_dimension_larger_than_the_input() {
        let dim = df!("s" => ["a", "b", "c", "d", "e", "f"], "k" => [1i32, 2, 3, 4, 5, 6]).unwrap();
        let ks = |pairs: &[(&str, &str)]| pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect::<Vec<_>>();
        let s = |rows: &[&str]| df!("s" => rows, "k" => rows.iter().map(|_| 2i32).collect::<Vec<_>>()).unwrap();
        // 6 dimension rows, 2 input rows: cut to the range b..c
        let pruned = prune(&dim, &s(&["c", "b"]), &ks(&[("s", "s")])).unwrap().unwrap();
        assert_eq!(pruned.column("k").unwrap().i32().unwrap().to_vec(), vec![Some(2), Some(3)]);
        // as many input rows as dimension rows: the string key is not worth its range
        assert!(prune(&dim, &s(&["c", "b", "b", "c", "b", "c"]), &ks(&[("s", "s")])).unwrap().is_none());
        // after the integer key (given last) leaves 1 row, fewer than the input's 2, the
        // string key is skipped: the row whose string is out of range stays
        let pruned = prune(&dim, &s(&["c", "d"]), &ks(&[("s", "s"), ("k", "k")])).unwrap().unwrap();
        assert_eq!(pruned.column("s").unwrap().str().unwrap().get(0), Some("b"));
        assert_eq!(pruned.height(), 1);
    }
}
