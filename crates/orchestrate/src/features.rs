//! Polars columns <-> model inputs and outputs: feature columns for the tabular model
//! ([`tabular_batch`]), a text column to an embedding column ([`embedding_column`]).

use polars::prelude::*;
use sluice_infer::{BatchPolicy, EmbeddingModel, FeatureValues, InferError, InputKind, InputSpec, TabularBatch};

use crate::runtime::Cancel;
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

/// Embed `frame[text_column]` into a fixed-size list column (`Array(Float32, dim)`); a null
/// text gets a null embedding. Texts are cut at 64 characters per token of the model's
/// window before tokenizing (the tokenizer would only throw the rest away, after reading it).
pub fn embedding_column(
    model: &EmbeddingModel,
    frame: &DataFrame,
    text_column: &str,
    output: &str,
    policy: &BatchPolicy,
    cancel: &Cancel,
) -> Result<Column, SluiceError> {
    let err = |e: PolarsError| SluiceError::other(format!("embedding column '{text_column}'"), e);
    let texts = frame
        .column(text_column)
        .map_err(|_| {
            SluiceError::other("model input", format!("text column '{text_column}' is not in the frame ({:?})", frame.get_column_names()))
        })?
        .cast(&DataType::String)
        .map_err(err)?;
    let ca = texts.str().map_err(err)?;
    let max_chars = 64 * model.max_seq_length();
    let present: Vec<(usize, &str)> = ca.iter().enumerate().filter_map(|(i, t)| t.map(|t| (i, t))).collect();
    let inputs: Vec<&str> =
        present.iter().map(|(_, t)| t.char_indices().nth(max_chars).map_or(*t, |(cut, _)| &t[..cut])).collect();
    let flat = model.embed_cancellable(&inputs, policy, &|| cancel.is_cancelled()).map_err(|e| match e {
        InferError::Cancelled => SluiceError::Cancelled,
        e => e.into(),
    })?;
    let dim = model.dim();
    let mut full = vec![0f32; frame.height() * dim];
    for (k, (row, _)) in present.iter().enumerate() {
        full[row * dim..(row + 1) * dim].copy_from_slice(&flat[k * dim..(k + 1) * dim]);
    }
    let dims = [ReshapeDimension::new(-1), ReshapeDimension::new(dim as i64)];
    let array = Series::new(output.into(), full).reshape_array(&dims).map_err(err)?;
    if ca.null_count() == 0 {
        return Ok(array.into());
    }
    let nulls = Series::full_null(output.into(), frame.height(), array.dtype());
    Ok(array.zip_with(&ca.is_not_null(), &nulls).map_err(err)?.into())
}
