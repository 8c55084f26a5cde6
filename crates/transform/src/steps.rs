//! The transform steps of one partition: SQL steps and named filter rules, in order.
//!
//! The partition's frame is the table `input`; dimensions are tables under their names.
//! Each SQL step's result becomes the next `input`. SQL steps must keep the row count (a
//! left join on a duplicated key would silently multiply rows; a `WHERE` would silently drop
//! them): rows leave only through a filter rule, whose name and count are reported.

use polars::prelude::*;
use polars::sql::{sql_expr, SQLContext};

use crate::ingest::LINE;
use crate::prune::{prune, prunings, Pruning};
use crate::rowwise::{is_row_wise, PROBE};
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
    /// Rows dropped by each filter rule, in step order, per object (indexed like the
    /// `objects` given to [`Transformer::apply`]; all under the first when a step before
    /// dropped `__sluice_obj`).
    pub filtered: Vec<(String, Vec<usize>)>,
    /// Rows a step failed on, taken out of the frame (to be quarantined).
    pub isolated: Vec<Isolated>,
}

/// A row a step failed on.
#[derive(Debug, Clone, PartialEq)]
pub struct Isolated {
    pub step: String,
    /// The row's object and line (from `__sluice_obj` and `__sluice_line`), where the steps
    /// before kept those columns.
    pub file: Option<String>,
    /// Its index among the item's objects.
    pub object: Option<u32>,
    pub line: Option<u32>,
    /// The column and value the engine named, where it did.
    pub column: Option<String>,
    pub value: Option<String>,
    pub reason: String,
}

/// The object (index into the item's objects) each row came from; kept with `__sluice_line`.
pub const OBJECT: &str = "__sluice_obj";
/// Step executions one item may spend finding the rows a step fails on.
const ISOLATION_RUNS: usize = 2_000;

/// Applies the steps; holds the dimensions' SQL context, so build one per worker.
pub struct Transformer {
    ctx: SQLContext,
    steps: Vec<Step>,
    /// Quarantine at most this fraction of an item's rows that a step fails on; `None`:
    /// the first such row fails the item.
    isolate: Option<f64>,
    /// [`Transformer::row_wise`]'s answer, for the schema it was asked about.
    row_wise: Option<(Schema, bool)>,
    /// The dimension tables, to register cut ones for a step and the whole ones again after.
    dims: Dimensions,
    /// Each SQL step's (by its SQL) dimensions that may be cut to its input's key range.
    prunings: Vec<(String, Vec<Pruning>)>,
}

impl Transformer {
    pub fn new(dims: &Dimensions, steps: Vec<Step>) -> Self {
        let names: Vec<&str> = dims.tables.iter().map(|(n, _)| n.as_str()).collect();
        let prunings = steps
            .iter()
            .filter_map(|s| match s {
                Step::Sql { sql, .. } => Some((sql.clone(), prunings(sql, &names))),
                _ => None,
            })
            .filter(|(_, p)| !p.is_empty())
            .collect();
        Transformer { ctx: dims.sql_context(), steps, isolate: None, row_wise: None, dims: dims.clone(), prunings }
    }

    /// Rows a step fails on are taken out (up to `max_fraction` of an item's rows) instead
    /// of failing the item.
    pub fn isolating(mut self, max_fraction: f64) -> Self {
        self.isolate = Some(max_fraction);
        self
    }

    fn run_step(&mut self, step: &Step, frame: DataFrame) -> Result<DataFrame, PolarsError> {
        match step {
            Step::Sql { sql, .. } => {
                let cut = self.cut_dimensions(sql, &frame);
                self.ctx.register("input", frame.lazy());
                let out = self.ctx.execute(sql).and_then(|lf| lf.collect());
                for name in cut {
                    if let Some(whole) = self.dims.get(&name) {
                        self.ctx.register(&name, whole.clone().lazy());
                    }
                }
                out
            }
            Step::Filter { keep, .. } => {
                // a null condition (e.g. a comparison with null) drops the row, as SQL does
                frame.lazy().filter(sql_expr(keep)?.fill_null(lit(false))).collect()
            }
            Step::Unique { on, .. } => frame.unique_stable(Some(on.as_slice()), UniqueKeepStrategy::First, None),
        }
    }

    /// Register, for the SQL step `sql` on `input`, its prunable dimensions cut to `input`'s
    /// key ranges; the names of those registered.
    fn cut_dimensions(&self, sql: &str, input: &DataFrame) -> Vec<String> {
        let Some((_, prunings)) = self.prunings.iter().find(|(s, _)| s == sql) else { return Vec::new() };
        let mut cut = Vec::new();
        for p in prunings {
            let Some(whole) = self.dims.get(&p.dimension) else { continue };
            match prune(whole, input, &p.keys) {
                Ok(Some(part)) => {
                    tracing::trace!(dimension = p.dimension, rows = part.height(), of = whole.height(), "dimension cut to the step's keys");
                    self.ctx.register(&p.dimension, part.lazy());
                    cut.push(p.dimension.clone());
                }
                Ok(None) => {}
                // only a shortcut: the step runs on the whole table
                Err(e) => tracing::debug!(dimension = p.dimension, error = %e, "dimension not cut"),
            }
        }
        cut
    }

    /// True when the steps give every row of a frame with this schema what they would give it
    /// among its own partition's rows only ([`crate::rowwise`]): then several partitions may
    /// go through them at once. Decided once per schema.
    pub fn row_wise(&mut self, schema: &Schema) -> bool {
        if let Some((seen, answer)) = &self.row_wise {
            if seen == schema {
                return *answer;
            }
        }
        let answer = self.decide_row_wise(schema);
        self.row_wise = Some((schema.clone(), answer));
        answer
    }

    fn decide_row_wise(&mut self, schema: &Schema) -> bool {
        let mut schema = schema.clone();
        schema.with_column(PROBE.into(), DataType::Boolean);
        let steps = self.steps.clone();
        let answer = steps.iter().all(|step| {
            let lf = match step {
                Step::Sql { sql, .. } => {
                    self.ctx.register("input", DataFrame::empty_with_schema(&schema).lazy());
                    self.ctx.execute(sql)
                }
                Step::Filter { keep, .. } => sql_expr(keep).map(|e| DataFrame::empty_with_schema(&schema).lazy().filter(e)),
                Step::Unique { .. } => return false, // within one item: the partition's rows
            };
            let Ok(mut lf) = lf else { return false };
            match lf.collect_schema() {
                Ok(out) if out.contains(PROBE) && is_row_wise(lf) => {
                    schema = (*out).clone();
                    true
                }
                _ => false,
            }
        });
        self.ctx.unregister("input");
        answer
    }

    /// Run the steps on `frame`; `objects` names the objects `__sluice_obj` indexes (for
    /// the rows a step fails on).
    pub fn apply(&mut self, frame: DataFrame, objects: &[&str]) -> Result<Transformed, TransformError> {
        let mut frame = frame;
        let mut filtered = Vec::new();
        let slots = objects.len().max(1);
        let mut isolated = Vec::new();
        let steps = self.steps.clone();
        for step in &steps {
            let started = std::time::Instant::now();
            let (out, bad) = match self.run_step(step, frame.clone()) {
                Ok(out) => (out, Vec::new()),
                Err(e) => self.isolate(step, &frame, e, objects)?,
            };
            tracing::debug!(step = step.name(), rows = frame.height(), step_s = started.elapsed().as_secs_f64(), "step");
            let before = frame.height() - bad.len();
            let counts_before = matches!(step, Step::Sql { .. }).then(Vec::new).unwrap_or_else(|| per_object(&frame, slots));
            frame = out;
            match step {
                Step::Sql { name, .. } if frame.height() != before => {
                    return Err(TransformError::RowCountChanged { step: name.clone(), before, after: frame.height() });
                }
                Step::Sql { .. } => {}
                Step::Filter { name, .. } | Step::Unique { name, .. } => {
                    let mut dropped = counts_before;
                    for (d, after) in dropped.iter_mut().zip(per_object(&frame, slots)) {
                        *d -= after;
                    }
                    for r in bad.iter().filter_map(|r| r.object) {
                        dropped[r as usize % slots] -= 1; // isolated, not filtered
                    }
                    filtered.push((name.clone(), dropped))
                }
            }
            isolated.extend(bad);
        }
        self.ctx.unregister("input");
        Ok(Transformed { frame, filtered, isolated })
    }

    /// `step` failed on `frame` with `err`. If it fails on no rows too, the step itself is
    /// wrong ([`TransformError::Step`]). Otherwise some rows' values make it fail: find
    /// them by bisection, take them out and run the step on the rest. Fails
    /// ([`TransformError::StepData`], naming the first such row) when isolating is off or
    /// more rows fail than the limit.
    fn isolate(&mut self, step: &Step, frame: &DataFrame, err: PolarsError, objects: &[&str]) -> Result<(DataFrame, Vec<Isolated>), TransformError> {
        if self.run_step(step, frame.clear()).is_err() {
            return Err(TransformError::Step { step: step.name().to_string(), source: err });
        }
        // rows that may be taken out; one more is looked for, to know the limit is exceeded
        let allowed = self.isolate.map_or(0, |f| ((f * frame.height() as f64).ceil() as usize).max(1));
        let mut budget = ISOLATION_RUNS;
        let mut bad: Vec<(usize, PolarsError)> = Vec::new();
        let mut rest = frame.clone();
        let mut index: Vec<usize> = (0..frame.height()).collect(); // rest's rows in `frame`
        let mut whole = engine_reason(&err);
        let mut err = err;
        for _round in 0..3 {
            let mut found = Vec::new();
            let complete = self.find_bad(step, &rest, (0, rest.height()), err, &mut found, &mut budget, allowed + 1 - bad.len());
            let found_any = !found.is_empty();
            bad.extend(found.into_iter().map(|(i, e)| (index[i], e)));
            if !complete || !found_any || bad.len() > allowed {
                break;
            }
            let mut keep = vec![true; frame.height()];
            bad.iter().for_each(|(b, _)| keep[*b] = false);
            index = (0..frame.height()).filter(|i| keep[*i]).collect();
            let mask = BooleanChunked::from_slice("keep".into(), &keep);
            rest = frame.filter(&mask).map_err(|e| TransformError::Step { step: step.name().to_string(), source: e })?;
            match self.run_step(step, rest.clone()) {
                Ok(out) => {
                    bad.sort_by_key(|(i, _)| *i);
                    let isolated = bad.iter().map(|(i, e)| isolated_row(step.name(), frame, *i, e, objects)).collect();
                    return Ok((out, isolated));
                }
                Err(e) => {
                    whole = engine_reason(&e);
                    err = e;
                }
            }
        }
        bad.sort_by_key(|(i, _)| *i);
        let Some((i, e)) = bad.first() else {
            // the rows fail only together (e.g. an aggregate over all of them)
            let row = Isolated { step: step.name().to_string(), file: None, object: None, line: None, column: None, value: None, reason: whole };
            return Err(TransformError::StepData(Box::new(row)));
        };
        let row = isolated_row(step.name(), frame, *i, e, objects);
        let more = if self.isolate.is_some() { format!(" (and more than the {allowed} rows the pipeline's max_bad_fraction allows fail this step)") } else { String::new() };
        Err(TransformError::StepData(Box::new(Isolated { reason: format!("{}{more}", row.reason), ..row })))
    }

    /// Collect into `out` the rows of `frame[off..off + len]` the step fails on alone (by
    /// halves; the range is known to fail with `err`), at most `limit`. False when the
    /// budget ran out or `limit` rows were found (there may be more).
    #[allow(clippy::too_many_arguments)]
    fn find_bad(
        &mut self,
        step: &Step,
        frame: &DataFrame,
        (off, len): (usize, usize),
        err: PolarsError,
        out: &mut Vec<(usize, PolarsError)>,
        budget: &mut usize,
        limit: usize,
    ) -> bool {
        if len == 1 {
            out.push((off, err));
            return out.len() < limit;
        }
        let half = len / 2;
        for (o, l) in [(off, half), (off + half, len - half)] {
            if *budget == 0 || out.len() >= limit {
                return false;
            }
            *budget -= 1;
            if let Err(e) = self.run_step(step, frame.slice(o as i64, l)) {
                if !self.find_bad(step, frame, (o, l), e, out, budget, limit) {
                    return false;
                }
            }
        }
        true
    }
}

/// Rows per object (`__sluice_obj`), `slots` of them; all under the first without it.
fn per_object(frame: &DataFrame, slots: usize) -> Vec<usize> {
    let mut counts = vec![0; slots];
    match frame.column(OBJECT).ok().and_then(|c| c.u32().ok()) {
        Some(objects) => objects.iter().for_each(|o| counts[o.unwrap_or(0) as usize % slots] += 1),
        None => counts[0] = frame.height(),
    }
    counts
}

fn isolated_row(step: &str, frame: &DataFrame, i: usize, e: &PolarsError, objects: &[&str]) -> Isolated {
    let u32_at = |name: &str| frame.column(name).ok().and_then(|c| c.get(i).ok()).and_then(|v| v.extract::<u32>());
    let (column, value) = match conversion(e) {
        Some((column, value)) => (Some(column).filter(|c| frame.column(c).is_ok()), Some(value)),
        None => (None, None),
    };
    let object = u32_at(OBJECT).or((objects.len() == 1).then_some(0));
    let file = object.and_then(|o| objects.get(o as usize)).map(|f| f.to_string());
    Isolated { step: step.to_string(), file, object, line: u32_at(LINE), column, value, reason: engine_reason(e) }
}

/// The engine's message without its advice to Python users ("You might want to try …"),
/// on one line; a failed conversion is said plainly.
pub fn engine_reason(e: &PolarsError) -> String {
    engine_reason_text(&e.to_string())
}

/// [`engine_reason`] of a message.
pub fn engine_reason_text(text: &str) -> String {
    if let Some(c) = CONVERSION.captures(text) {
        return format!("cannot convert {} {} to {}", &c[1], &c[4], &c[2]);
    }
    let cut = ["You might want to try", "Hint:", "\n\n"].iter().filter_map(|m| text.find(m)).min().unwrap_or(text.len());
    text[..cut].split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The column and value of a failed conversion, as the engine reports them.
fn conversion(e: &PolarsError) -> Option<(String, String)> {
    let text = e.to_string();
    CONVERSION.captures(&text).map(|c| (c[3].to_string(), c[4].trim_matches('"').to_string()))
}

static CONVERSION: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    #[allow(clippy::unwrap_used)] // a constant pattern
    regex::Regex::new(r"conversion from `([^`]+)` to `([^`]+)` failed in column '([^']*)' for \d+ out of \d+ values: \[(.*?)\]").unwrap()
});

#[cfg(test)]
mod tests {
    use super::*;

    fn frame() -> DataFrame {
        df!(
            "s" => ["2013-01-05", "2013-13-01", "2013-01-07", "2013-01-08", "", "2013-01-10"],
            LINE => [2u32, 3, 4, 5, 6, 7],
        )
        .unwrap()
    }

    fn transformer(sql: &str) -> Transformer {
        let dims = Dimensions::load(&[], |f| Err(TransformError::EmptyFile { file: f.into() })).unwrap();
        Transformer::new(&dims, vec![Step::Sql { name: "derive".into(), sql: sql.into() }])
    }

    const DATE: &str = "SELECT *, DATE(s, '%Y-%m-%d') AS d FROM input";

    #[test]
    fn rows_a_step_fails_on_are_isolated_with_their_lines() {
        let t = transformer(DATE).isolating(0.5).apply(frame(), &["day.csv"]).unwrap();
        assert_eq!(t.frame.height(), 4);
        let lines: Vec<Option<u32>> = t.isolated.iter().map(|r| r.line).collect();
        assert_eq!(lines, vec![Some(3), Some(6)]);
        assert!(t.isolated.iter().all(|r| r.step == "derive" && r.file.as_deref() == Some("day.csv")));
        assert_eq!(t.isolated[0].value.as_deref(), Some("2013-13-01"));
    }

    #[test]
    fn without_isolation_or_over_the_limit_the_first_bad_row_is_the_error() {
        let e = transformer(DATE).apply(frame(), &["day.csv"]).unwrap_err();
        assert!(matches!(&e, TransformError::StepData(r) if r.line == Some(3) && r.step == "derive"), "{e}");
        let e = transformer(DATE).isolating(0.1).apply(frame(), &["day.csv"]).unwrap_err();
        assert!(matches!(&e, TransformError::StepData(r) if r.line == Some(3)), "{e}");
        assert!(!e.to_string().contains("You might want"), "{e}");
    }

    #[test]
    fn row_wise_is_decided_on_the_plan() {
        let dim = df!("k" => ["a", "b"], "v" => [1i32, 2]).unwrap();
        let dims = Dimensions { tables: vec![("dim".into(), dim)] };
        let schema = df!("k" => ["a"], "x" => [1.5f64], LINE => [2u32]).unwrap().schema().as_ref().clone();
        let sql = |q: &str| Step::Sql { name: "s".into(), sql: q.into() };
        let row_wise = |steps: Vec<Step>| Transformer::new(&dims, steps).row_wise(&schema);
        // joins with dimensions, expressions, filters, an aggregate over a dimension only
        assert!(row_wise(vec![sql("SELECT i.*, d.v FROM input i LEFT JOIN dim d ON i.k = d.k")]));
        assert!(row_wise(vec![sql("SELECT *, x * 2 AS y, CASE WHEN x > 1 THEN 'big' ELSE 'small' END AS size FROM input")]));
        assert!(row_wise(vec![Step::Filter { name: "f".into(), keep: "x > 1".into() }]));
        assert!(row_wise(vec![sql("SELECT i.*, m.top FROM input i CROSS JOIN (SELECT MAX(v) AS top FROM dim) m")]));
        // sluice's own SQL functions are element-wise
        assert!(row_wise(vec![sql("SELECT *, MAKE_DATE(2013, 1, CAST(x AS INT)) AS d FROM input")]));
        // anything that looks across input rows
        for q in [
            "SELECT *, COUNT(*) OVER () AS n FROM input",
            "SELECT k, SUM(x) AS x FROM input GROUP BY k",
            "SELECT * FROM input ORDER BY x",
            "SELECT * FROM input LIMIT 3",
            "SELECT DISTINCT * FROM input",
            "SELECT a.* FROM input a JOIN input b ON a.k = b.k",
            "SELECT d.k, i.x FROM dim d LEFT JOIN input i ON d.k = i.k",
        ] {
            assert!(!row_wise(vec![sql(q)]), "{q}");
        }
        assert!(!row_wise(vec![Step::Unique { name: "u".into(), on: vec!["k".into()] }]));
        // a step that drops the bookkeeping columns leaves nothing to split the rows by
        assert!(!row_wise(vec![sql("SELECT k, x FROM input")]));
    }

    #[test]
    fn a_step_given_cut_dimensions_gives_what_it_gives_with_the_whole_ones() {
        let n = 1000;
        let dim = df!(
            "k" => (0..n).collect::<Vec<i32>>(),
            "g" => (0..n).map(|i| format!("g{}", i % 7)).collect::<Vec<_>>(),
            "v" => (0..n).map(|i| f64::from(i) / 2.0).collect::<Vec<_>>(),
        )
        .unwrap();
        let dims = Dimensions { tables: vec![("dim".into(), dim)] };
        let input = df!("k" => [Some(500i32), Some(503), None, Some(502), Some(2000), Some(510)], "g" => ["g3", "g0", "g1", "g5", "g3", "g6"]).unwrap();
        for sql in [
            "SELECT i.*, d.v FROM input i LEFT JOIN dim d ON i.k = d.k AND i.g = d.g",
            "SELECT i.*, d.v, d.g AS dg FROM input i LEFT JOIN dim d ON d.k = i.k",
            "SELECT i.*, COALESCE(d.v, -1.0) AS v FROM input i LEFT OUTER JOIN dim AS d ON i.g = d.g AND i.k = d.k",
        ] {
            let mut whole = dims.sql_context();
            whole.register("input", input.clone().lazy());
            let expected = whole.execute(sql).unwrap().collect().unwrap();
            let mut t = Transformer::new(&dims, vec![Step::Sql { name: "s".into(), sql: sql.into() }]);
            assert_eq!(t.prunings.len(), 1, "{sql}");
            let got = t.apply(input.clone(), &[]).unwrap().frame;
            assert!(got.equals_missing(&expected), "{sql}:\n{got}\n{expected}");
            // and the whole table is back for the next step
            assert_eq!(t.ctx.execute("SELECT COUNT(*) AS n FROM dim").unwrap().collect().unwrap().column("n").unwrap().get(0).unwrap().extract::<usize>(), Some(n as usize));
        }
    }

    #[test]
    fn filtered_rows_are_counted_per_object() {
        let frame = df!("x" => [1i32, 5, 2, 7], LINE => [2u32, 3, 2, 3], OBJECT => [0u32, 0, 1, 1]).unwrap();
        let dims = Dimensions::default();
        let t = Transformer::new(&dims, vec![Step::Filter { name: "small".into(), keep: "x < 6".into() }])
            .apply(frame, &["a.csv", "b.csv"])
            .unwrap();
        assert_eq!(t.filtered, vec![("small".to_string(), vec![0, 1])]);
    }

    #[test]
    fn a_step_that_fails_on_no_rows_is_the_pipelines_error() {
        let e = transformer("SELECT *, nope + 1 AS x FROM input").isolating(0.5).apply(frame(), &[]).unwrap_err();
        assert!(matches!(e, TransformError::Step { .. }), "{e}");
    }
}
