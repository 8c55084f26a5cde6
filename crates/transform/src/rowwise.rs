//! Is a query row-wise in its `input` table? Then running it on several partitions' rows at
//! once gives each row what running it on its own partition would: the transform may batch
//! small partitions together.
//!
//! Decided on the engine's logical plan (not on the SQL text), conservatively: the parts of
//! the plan that read `input` may only project, compute element-wise expressions, filter,
//! and join `input` (kept on its side) with tables that do not read it. An aggregate, a
//! window (`OVER`), a sort, a limit, a `DISTINCT`, a union or a self-join over `input` makes
//! the query not row-wise. Anything the walk does not know is not row-wise.

use polars::polars_utils::arena::{Arena, Node};
use polars::prelude::*;
use polars_plan::plans::expr_ir::ExprIR;
use polars_plan::plans::{is_elementwise_rec, AExpr, IR};

/// A column only the probe frame has: a scan with it is a scan of `input`.
pub(crate) const PROBE: &str = "__sluice_rowwise_probe";

/// True when `lf` (built on an `input` frame that has the [`PROBE`] column) is row-wise in
/// that input.
pub(crate) fn is_row_wise(lf: LazyFrame) -> bool {
    match lf.to_alp() {
        Ok(plan) => walk(plan.lp_top, &plan.lp_arena, &plan.expr_arena) != Reads::NotRowWise,
        Err(_) => false,
    }
}

#[derive(Debug, PartialEq, Clone, Copy)]
enum Reads {
    /// The subtree does not read `input` (a dimension, a constant).
    Nothing,
    /// It reads `input`, one output row per kept input row, from that row alone.
    RowWise,
    NotRowWise,
}

fn walk(node: Node, lp: &Arena<IR>, ex: &Arena<AExpr>) -> Reads {
    let elementwise = |exprs: &[ExprIR]| exprs.iter().all(|e| is_elementwise_rec(e.node(), ex));
    // a node over one input: row-wise if its input is and its expressions are element-wise
    let over = |input: Node, ok: bool| match walk(input, lp, ex) {
        Reads::Nothing => Reads::Nothing,
        Reads::RowWise if ok => Reads::RowWise,
        _ => Reads::NotRowWise,
    };
    match lp.get(node) {
        IR::DataFrameScan { schema, .. } if schema.contains(PROBE) => Reads::RowWise,
        IR::DataFrameScan { .. } | IR::Scan { .. } => Reads::Nothing,
        IR::SimpleProjection { input, .. } => over(*input, true),
        IR::Cache { input, .. } => over(*input, true),
        IR::Select { input, expr, .. } => over(*input, elementwise(expr)),
        IR::HStack { input, exprs, .. } => over(*input, elementwise(exprs)),
        IR::Filter { input, predicate } => over(*input, elementwise(std::slice::from_ref(predicate))),
        IR::Join { input_left, input_right, left_on, right_on, options, .. } => {
            let keys = elementwise(left_on) && elementwise(right_on);
            let (l, r) = (walk(*input_left, lp, ex), walk(*input_right, lp, ex));
            let how = &options.args.how;
            match (l, r) {
                (Reads::Nothing, Reads::Nothing) => Reads::Nothing,
                (Reads::RowWise, Reads::Nothing) if keys && matches!(how, JoinType::Left | JoinType::Inner | JoinType::Cross) => {
                    Reads::RowWise
                }
                (Reads::Nothing, Reads::RowWise) if keys && matches!(how, JoinType::Right | JoinType::Inner | JoinType::Cross) => {
                    Reads::RowWise
                }
                _ => Reads::NotRowWise,
            }
        }
        // aggregates, sorts, limits, distinct, unions, ...: fine over dimensions only
        other => {
            let mut inputs = Vec::new();
            other.copy_inputs(&mut inputs);
            if inputs.iter().all(|n| walk(*n, lp, ex) == Reads::Nothing) {
                Reads::Nothing
            } else {
                Reads::NotRowWise
            }
        }
    }
}
