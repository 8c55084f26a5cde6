//! Polars columns <-> model inputs and outputs: feature columns for the tabular model
//! ([`tabular_batch`]), a text column to an embedding column ([`embedding_column`]).


use polars::prelude::*;
use sluice_infer::{BatchPolicy, EmbeddingModel, FeatureValues, InferError, InputKind, InputSpec, TabularBatch};

use crate::runtime::Cancel;
use crate::error::SluiceError;

/// A categorical input's vocabulary, looked up by text and, where every entry is an
/// integer, by number (an integer column is then read without making text of it).
#[derive(Debug, Clone)]
pub struct Vocabulary {
    by_text: PlHashMap<String, u32>,
    by_number: Option<PlHashMap<i64, u32>>,
    missing: u32,
}

impl Vocabulary {
    fn new(vocab: &[String]) -> Self {
        let by_text = vocab.iter().enumerate().map(|(i, v)| (v.clone(), i as u32)).collect();
        let by_number = vocab.iter().enumerate().map(|(i, v)| v.parse::<i64>().ok().map(|n| (n, i as u32))).collect();
        Vocabulary { by_text, by_number, missing: vocab.len() as u32 }
    }

    /// Each value's index (missing or unknown: the vocabulary's length).
    fn codes(&self, column: &Column) -> Result<Vec<u32>, PolarsError> {
        if let (Some(numbers), true) = (&self.by_number, column.dtype().is_integer()) {
            let c = column.cast(&DataType::Int64)?;
            return Ok(by_chunk(c.i64()?, self.missing, |v| numbers.get(&v).copied().unwrap_or(self.missing)));
        }
        let c = column.cast(&DataType::String)?;
        Ok(c.str()?.iter().map(|v| v.and_then(|v| self.by_text.get(v).copied()).unwrap_or(self.missing)).collect())
    }
}

/// `f` of each present value of `c`, `null` for each missing one, chunk by chunk (a chunk
/// without nulls is read without looking at its validity).
fn by_chunk<T: PolarsNumericType, R: Copy>(c: &ChunkedArray<T>, null: R, f: impl Fn(T::Native) -> R) -> Vec<R> {
    let mut out = Vec::with_capacity(c.len());
    for array in c.downcast_iter() {
        match array.validity().filter(|v| v.unset_bits() > 0) {
            None => out.extend(array.values().iter().map(|v| f(*v))),
            Some(valid) => out.extend(array.values().iter().zip(valid.iter()).map(|(v, ok)| if ok { f(*v) } else { null })),
        }
    }
    out
}

/// The lookups of a model's categorical inputs, built once per run (`None` for numeric ones).
pub fn vocabularies(inputs: &[InputSpec]) -> Vec<Option<Vocabulary>> {
    inputs
        .iter()
        .map(|i| match &i.kind {
            InputKind::Categorical { vocab } => Some(Vocabulary::new(vocab)),
            InputKind::Numeric { .. } => None,
        })
        .collect()
}

/// Take the model's inputs from `frame`: numeric inputs as f32 (null -> NaN, which the model
/// scores as the training mean), categorical inputs as vocabulary indices where
/// `vocabularies` has the input's, else as text (null stays missing; for training).
pub fn tabular_batch(frame: &DataFrame, inputs: &[InputSpec], vocabularies: &[Option<Vocabulary>]) -> Result<TabularBatch, SluiceError> {
    let mut columns = Vec::with_capacity(inputs.len());
    for (i, spec) in inputs.iter().enumerate() {
        let err = |e: PolarsError| SluiceError::other(format!("model input '{}'", spec.name), e);
        let column = frame.column(&spec.name).map_err(|_| {
            SluiceError::other(
                "model input",
                format!("column '{}' is not in the transformed frame (columns: {:?})", spec.name, frame.get_column_names()),
            )
        })?;
        let values = match (&spec.kind, vocabularies.get(i).and_then(Option::as_ref)) {
            (InputKind::Numeric { .. }, _) => {
                let c = column.cast(&DataType::Float32).map_err(err)?;
                FeatureValues::Numeric(by_chunk(c.f32().map_err(err)?, f32::NAN, |v| v))
            }
            (InputKind::Categorical { .. }, Some(v)) => FeatureValues::Codes(v.codes(column).map_err(err)?),
            (InputKind::Categorical { .. }, None) => {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categorical_values_become_vocabulary_indices_by_number_or_by_text() {
        let spec = |name: &str, vocab: &[&str]| InputSpec {
            name: name.into(),
            kind: InputKind::Categorical { vocab: vocab.iter().map(|v| v.to_string()).collect() },
        };
        let inputs = [spec("hour", &["10", "5", "9"]), spec("carrier", &["AA", "UA"])];
        let frame = df!("hour" => [Some(5i32), Some(10), None, Some(7)], "carrier" => [Some("UA"), None, Some("AA"), Some("ZZ")]).unwrap();
        let batch = tabular_batch(&frame, &inputs, &vocabularies(&inputs)).unwrap();
        let codes = |i: usize| match &batch.columns[i].1 {
            FeatureValues::Codes(c) => c.clone(),
            other => panic!("{other:?}"),
        };
        // missing and unknown values get the slot after the vocabulary
        assert_eq!(codes(0), vec![1, 0, 3, 3]);
        assert_eq!(codes(1), vec![1, 2, 0, 2]);
        // the same one-hot rows as looking the values up as text
        let text = tabular_batch(&frame, &inputs, &[]).unwrap();
        assert_eq!(batch.encode(&inputs).unwrap(), text.encode(&inputs).unwrap());
    }

    #[test]
    fn numeric_values_are_read_chunk_by_chunk_with_nulls_as_nan() {
        let input = [InputSpec { name: "x".into(), kind: InputKind::Numeric { mean: 0.0, std: 1.0 } }];
        let mut frame = df!("x" => [Some(1.5f64), None, Some(-2.0)]).unwrap();
        frame.vstack_mut_owned(df!("x" => [4.0f64, 8.0]).unwrap()).unwrap(); // a chunk without nulls
        frame.vstack_mut_owned(df!("x" => [None::<f64>, Some(0.25)]).unwrap()).unwrap();
        assert_eq!(frame.column("x").unwrap().n_chunks(), 3);
        let batch = tabular_batch(&frame, &input, &vocabularies(&input)).unwrap();
        let FeatureValues::Numeric(values) = &batch.columns[0].1 else { panic!("{:?}", batch.columns[0].1) };
        let bits: Vec<u32> = values.iter().map(|v| v.to_bits()).collect();
        let want: Vec<u32> = [1.5, f32::NAN, -2.0, 4.0, 8.0, f32::NAN, 0.25].iter().map(|v: &f32| v.to_bits()).collect();
        assert_eq!(bits, want);
    }
}
