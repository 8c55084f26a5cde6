//! Polars columns -> the model's named feature columns (a [`TabularBatch`]).

use polars::prelude::*;
use sluice_infer::{FeatureValues, InputKind, InputSpec, TabularBatch};

use crate::SluiceError;

/// Take the model's inputs from `frame`: numeric inputs as f32 (null -> NaN, which the model
/// scores as the training mean), categorical inputs as text (null stays missing).
pub fn tabular_batch(frame: &DataFrame, inputs: &[InputSpec]) -> Result<TabularBatch, SluiceError> {
    let mut columns = Vec::with_capacity(inputs.len());
    for spec in inputs {
        let err = |e: PolarsError| SluiceError::other(format!("model input '{}'", spec.name), e);
        let column = frame.column(&spec.name).map_err(|_| {
            SluiceError::other(
                "model input",
                format!("column '{}' is not in the transformed frame (columns: {:?})", spec.name, frame.get_column_names()),
            )
        })?;
        let values = match spec.kind {
            InputKind::Numeric { .. } => {
                let c = column.cast(&DataType::Float32).map_err(err)?;
                FeatureValues::Numeric(c.f32().map_err(err)?.iter().map(|v| v.unwrap_or(f32::NAN)).collect())
            }
            InputKind::Categorical { .. } => {
                let c = column.cast(&DataType::String).map_err(err)?;
                FeatureValues::Categorical(c.str().map_err(err)?.iter().map(|v| v.map(str::to_string)).collect())
            }
        };
        columns.push((spec.name.clone(), values));
    }
    Ok(TabularBatch { columns })
}
