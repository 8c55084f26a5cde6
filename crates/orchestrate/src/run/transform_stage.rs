//! The transform stage: raw objects of one or more partitions -> typed, checked,
//! transformed rows.
//!
//! Small partitions travel in blocks (consecutive partitions of the plan, up to
//! `[runtime] batch_kib` of input): their objects are typed and checked in one pass and the
//! steps run once over all their rows, each row keeping its object (`__sluice_obj`) and so
//! its partition. That is only done when the steps are row-wise in their input
//! ([`Transformer::row_wise`], decided on the engine's plan); otherwise, or when anything in
//! the block fails, each partition goes through on its own, exactly as a block of one.

use polars::prelude::*;
use sluice_extract::RawObject;
use sluice_transform::ingest::{first_bad_row, with_object, LINE};
use sluice_transform::steps::OBJECT;
use sluice_transform::ingest::{parse_csvs, RawCsv};
use sluice_transform::{parse_csv, read_emails, read_ndjson, read_parquet, type_rows, CsvSpec, Isolated, Step, Transformer};

use super::dimensions::PendingDimensions;
use crate::pipeline::SourceFormat;
use crate::runtime::{Measure, Stage};
use crate::types::{InputRecord, Partition};
use crate::error::SluiceError;

type StageResult<T> = Result<T, (Option<String>, SluiceError)>;

/// Input objects of one or more consecutive partitions, with their bytes.
pub struct RawItem {
    pub parts: Vec<RawPart>,
}

/// One partition's objects (or a group of them, when a partition is split into items).
pub struct RawPart {
    pub partition: Partition,
    pub objects: Vec<RawObject>,
}

impl Measure for RawItem {
    fn rows(&self) -> usize {
        0
    }
    fn bytes(&self) -> usize {
        self.parts.iter().flat_map(|p| &p.objects).map(|o| o.bytes.len()).sum()
    }
}

/// Transformed rows of one item: one segment per group of parts that went through together.
pub struct Batch {
    pub segments: Vec<Segment>,
}

/// Rows of one or more parts, part after part, and what each part accounts for.
pub struct Segment {
    pub frame: DataFrame,
    pub parts: Vec<PartRows>,
}

/// One part's share of a segment: its rows are the next `rows` of the frame.
pub struct PartRows {
    pub partition: String,
    pub inputs: Vec<InputRecord>,
    pub rows: usize,
    pub quarantine: DataFrame,
    pub rows_read: usize,
    pub filtered: Vec<(String, usize)>,
}

impl Measure for Batch {
    fn rows(&self) -> usize {
        self.segments.iter().map(|s| s.frame.height()).sum()
    }
    fn bytes(&self) -> usize {
        self.segments.iter().map(|s| s.frame.estimated_size()).sum()
    }
}

pub struct TransformStage {
    pub format: SourceFormat,
    pub csv: CsvSpec,
    pub steps: Steps,
    pub fail_on_bad_rows: bool,
}

/// The pipeline's steps, made into a [`Transformer`] once the dimension tables they join
/// are loaded: the stage reads and types its first item while they load.
pub struct Steps {
    dims: PendingDimensions,
    /// Until the transformer is made (it takes them).
    steps: Vec<Step>,
    /// `on_bad_rows = "quarantine"`'s `max_bad_fraction`.
    isolate: Option<f64>,
    ready: Option<Transformer>,
}

impl Steps {
    pub(crate) fn new(dims: PendingDimensions, steps: Vec<Step>, isolate: Option<f64>) -> Self {
        Steps { dims, steps, isolate, ready: None }
    }

    /// The transformer, after waiting for the dimension tables the first time.
    fn transformer(&mut self) -> Result<&mut Transformer, SluiceError> {
        let t = match self.ready.take() {
            Some(t) => t,
            None => {
                let t = Transformer::new(self.dims.wait()?, std::mem::take(&mut self.steps));
                match self.isolate {
                    Some(fraction) => t.isolating(fraction),
                    None => t,
                }
            }
        };
        Ok(self.ready.insert(t))
    }
}

/// The item's objects read into one frame (with `__sluice_line`, `__sluice_obj` and the
/// partition column) and one quarantine (with `__sluice_obj`).
struct Read {
    frame: DataFrame,
    quarantine: DataFrame,
    rows_read: Vec<usize>,
}

impl Stage for TransformStage {
    type In = RawItem;
    type Out = Batch;
    type Error = SluiceError;
    fn process(&mut self, item: RawItem) -> StageResult<Batch> {
        if item.parts.len() > 1 {
            if let Ok(Some(segment)) = self.segment(&item.parts) {
                return Ok(Batch { segments: vec![segment] });
            }
        }
        let mut segments = Vec::with_capacity(item.parts.len());
        for part in &item.parts {
            let at = Some(part.partition.to_string());
            let segment = self.segment(std::slice::from_ref(part)).map_err(|e| (at.clone(), e))?;
            segments.push(segment.ok_or_else(|| (at, SluiceError::other("transforming", "a partition alone cannot be split")))?);
        }
        Ok(Batch { segments })
    }
}

impl TransformStage {
    /// Run `parts` through together; `None` when several parts cannot (the steps are not
    /// row-wise, or they drop `__sluice_obj`).
    fn segment(&mut self, parts: &[RawPart]) -> Result<Option<Segment>, SluiceError> {
        let objects: Vec<(usize, &RawObject)> = parts.iter().enumerate().flat_map(|(p, part)| part.objects.iter().map(move |o| (p, o))).collect();
        let part_of: Vec<usize> = objects.iter().map(|(p, _)| *p).collect();
        let names: Vec<&str> = objects.iter().map(|(_, o)| o.object.uri.as_str()).collect();
        let started = std::time::Instant::now();
        let read = self.read(parts, &objects)?;
        let read_s = started.elapsed().as_secs_f64();
        if parts.len() > 1 && !self.steps.transformer()?.row_wise(read.frame.schema()) {
            return Ok(None);
        }
        if self.fail_on_bad_rows {
            if let Some(e) = first_bad_row(&read.quarantine) {
                return Err(e.into());
            }
        }
        let rows = read.frame.height();
        let t = self.steps.transformer()?.apply(read.frame, &names)?;
        tracing::debug!(parts = parts.len(), rows, read_s, steps_s = started.elapsed().as_secs_f64() - read_s, "transformed");
        let mut frame = t.frame;
        if frame.column(OBJECT).is_ok() && frame.column(LINE).is_ok() && !in_input_order(&frame) {
            // input order (a join need not keep it, and may not keep it the same twice):
            // the same rows in the same order whatever the threads did
            frame = frame
                .sort([OBJECT, LINE], SortMultipleOptions::default().with_maintain_order(true))
                .map_err(|e| SluiceError::other("ordering rows as read", e))?;
        }
        let rows_of_part = match frame.column(OBJECT).ok().and_then(|c| c.u32().ok().cloned()) {
            Some(objs) => {
                let part_idx: Vec<u32> = objs.iter().map(|o| part_of.get(o.unwrap_or(0) as usize).copied().unwrap_or(0) as u32).collect();
                if !part_idx.is_sorted() {
                    let order = UInt32Chunked::from_vec("part".into(), part_idx.clone()).arg_sort(SortOptions::default().with_maintain_order(true));
                    frame = frame.take(&order).map_err(|e| SluiceError::other("ordering rows by partition", e))?;
                }
                let mut rows = vec![0; parts.len()];
                part_idx.iter().for_each(|p| rows[*p as usize] += 1);
                rows
            }
            None if parts.len() == 1 => vec![frame.height()],
            None => return Ok(None),
        };
        let mut quarantine = with_isolated(read.quarantine, &t.isolated)?;
        let mut out = Vec::with_capacity(parts.len());
        for (p, part) in parts.iter().enumerate() {
            let mine = |o: usize| part_of.get(o).is_some_and(|q| *q == p);
            let filtered = t.filtered.iter().map(|(name, by)| (name.clone(), by.iter().enumerate().filter(|(o, _)| mine(*o)).map(|(_, n)| n).sum())).collect();
            let (q, rest) = split_quarantine(quarantine, &part_of, p)?;
            quarantine = rest;
            out.push(PartRows {
                partition: part.partition.to_string(),
                inputs: part.objects.iter().map(|o| InputRecord { object: o.object.clone(), sha256: o.sha256.clone() }).collect(),
                rows: rows_of_part[p],
                quarantine: q,
                rows_read: read.rows_read.iter().enumerate().filter(|(o, _)| mine(*o)).map(|(_, n)| n).sum(),
                filtered,
            });
        }
        Ok(Some(Segment { frame: frame.drop_many([LINE, OBJECT]), parts: out }))
    }

    fn format_of(&self, uri: &str) -> Result<SourceFormat, SluiceError> {
        match self.format {
            SourceFormat::Auto => SourceFormat::of_extension(uri).ok_or_else(|| {
                SluiceError::BadInput(format!("{uri}: cannot tell the format from the extension (.csv, .ndjson, .jsonl, .parquet)"))
            }),
            f => Ok(f),
        }
    }

    /// Type the item's CSV objects parsed as one ([`parse_csvs`]), adding the partition
    /// column.
    fn type_csv(&self, parts: &[RawPart], objects: &[(usize, &RawObject)], raw: RawCsv) -> Result<Read, SluiceError> {
        let names: Vec<&str> = objects.iter().map(|(_, o)| o.object.uri.as_str()).collect();
        let mut rows_read = vec![0; objects.len()];
        let objs = raw.frame.column(OBJECT).and_then(|c| c.u32().cloned()).map_err(|e| SluiceError::other("numbering objects", e))?;
        objs.into_no_null_iter().for_each(|o| rows_read[o as usize] += 1);
        if let Ok(bad) = raw.structural.column(OBJECT).and_then(|c| c.u32().cloned()) {
            bad.into_no_null_iter().for_each(|o| rows_read[o as usize] += 1);
        }
        let mut frame = raw.frame;
        let key = parts[0].partition.key();
        if frame.column(key).is_err() {
            // the partition's value of each row, through its object
            let values: Vec<&str> = parts.iter().map(|p| p.partition.value()).collect();
            let part_idx = IdxCa::from_vec("part".into(), objs.into_no_null_iter().map(|o| objects[o as usize].0 as IdxSize).collect());
            let column = Series::new(key.into(), values).take(&part_idx).map_err(|e| SluiceError::other("adding the partition column", e))?;
            frame.with_column(column.into_column()).map_err(|e| SluiceError::other("adding the partition column", e))?;
        }
        let t0 = std::time::Instant::now();
        let (frame, q) = type_rows(frame, &names, &self.csv)?;
        tracing::debug!(typing_s = t0.elapsed().as_secs_f64(), "typed");
        // each is in (object, line) order already: merged only when both have rows
        let quarantine = match (raw.structural.height(), q.height()) {
            (_, 0) => raw.structural,
            (0, _) => q,
            _ => stack(vec![raw.structural, q], "quarantines")?
                .sort([OBJECT, "line"], SortMultipleOptions::default().with_maintain_order(true))
                .map_err(|e| SluiceError::other("ordering the quarantine", e))?,
        };
        Ok(Read { frame, quarantine, rows_read })
    }

    /// Parse and type every object; CSV objects with the same header are typed in one pass.
    fn read(&self, parts: &[RawPart], objects: &[(usize, &RawObject)]) -> Result<Read, SluiceError> {
        let names: Vec<&str> = objects.iter().map(|(_, o)| o.object.uri.as_str()).collect();
        if self.format == SourceFormat::Email {
            let objs: Vec<(&str, &[u8])> = objects.iter().map(|(_, o)| (o.object.uri.as_str(), &o.bytes[..])).collect();
            let ing = read_emails(&objs)?;
            let frame = with_partition(ing.frame, &parts[0].partition)?;
            let quarantine = with_object("", ing.quarantine, 0)?;
            return Ok(Read { frame, quarantine, rows_read: vec![ing.rows_read] });
        }
        let formats = objects.iter().map(|(_, o)| self.format_of(&o.object.uri)).collect::<Result<Vec<_>, _>>()?;
        if formats.iter().all(|f| *f == SourceFormat::Csv) {
            // one CSV parse for the whole item, when the headers agree
            let objs: Vec<(&str, &[u8])> = objects.iter().map(|(_, o)| (o.object.uri.as_str(), &o.bytes[..])).collect();
            if let Some(raw) = parse_csvs(&objs, &self.csv)? {
                return self.type_csv(parts, objects, raw);
            }
        }
        let (mut raw, mut typed, mut quarantine, mut rows_read) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (i, ((p, o), format)) in objects.iter().zip(formats).enumerate() {
            let (uri, bytes) = (o.object.uri.as_str(), &o.bytes[..]);
            let tag = |f: DataFrame| with_partition(with_object(uri, f, i as u32)?, &parts[*p].partition);
            match format {
                SourceFormat::Ndjson | SourceFormat::Parquet => {
                    let ing = if format == SourceFormat::Ndjson { read_ndjson(uri, bytes, &self.csv)? } else { read_parquet(uri, bytes, &self.csv)? };
                    rows_read.push(ing.rows_read);
                    typed.push(tag(ing.frame)?);
                    quarantine.push(with_object(uri, ing.quarantine, i as u32)?);
                }
                _ => {
                    let r = parse_csv(uri, bytes, &self.csv)?;
                    rows_read.push(r.records());
                    raw.push(tag(r.frame)?);
                    quarantine.push(with_object(uri, r.structural, i as u32)?);
                }
            }
        }
        if !raw.is_empty() {
            // one typing pass for objects with the same header; else one per object
            let same = raw.windows(2).all(|w| w[0].schema() == w[1].schema());
            let groups = if same { vec![stack(raw, "objects")?] } else { raw };
            for g in groups {
                let (frame, q) = type_rows(g, &names, &self.csv)?;
                typed.push(frame);
                quarantine.push(q);
            }
        }
        let frame = stack(typed, "the item's objects (do their schemas differ?)")?;
        let quarantine = stack(quarantine, "quarantines")?
            .sort([OBJECT, "line"], SortMultipleOptions::default().with_maintain_order(true))
            .map_err(|e| SluiceError::other("ordering the quarantine", e))?;
        Ok(Read { frame, quarantine, rows_read })
    }
}

/// True when the rows are in (`__sluice_obj`, `__sluice_line`) order already, as the usual
/// left joins leave them: then sorting (a copy of every column) would change nothing.
fn in_input_order(frame: &DataFrame) -> bool {
    let u32s = |name: &str| frame.column(name).ok().and_then(|c| c.u32().ok().cloned()).filter(|c| c.null_count() == 0);
    let (Some(objects), Some(lines)) = (u32s(OBJECT), u32s(LINE)) else { return false };
    objects.into_no_null_iter().zip(lines.into_no_null_iter()).is_sorted()
}

fn stack(frames: Vec<DataFrame>, what: &str) -> Result<DataFrame, SluiceError> {
    if frames.len() == 1 {
        return Ok(frames.into_iter().next().unwrap_or_default());
    }
    concat(frames.into_iter().map(IntoLazy::lazy).collect::<Vec<_>>(), UnionArgs { rechunk: false, ..Default::default() })
        .and_then(|lf| lf.collect())
        .map_err(|e| SluiceError::other(format!("stacking {what}"), e))
}

/// The partition's value as a column (Hive style), unless the data has it already.
fn with_partition(mut frame: DataFrame, partition: &Partition) -> Result<DataFrame, SluiceError> {
    let (key, value) = (partition.key(), partition.value());
    if frame.column(key).is_err() {
        let n = frame.height();
        frame
            .with_column(Column::new_scalar(key.into(), Scalar::from(PlSmallStr::from(value)), n))
            .map_err(|e| SluiceError::other("adding the partition column", e))?;
    }
    Ok(frame)
}

/// Part `p`'s quarantine rows (by `__sluice_obj`, without it), and the rest.
fn split_quarantine(q: DataFrame, part_of: &[usize], p: usize) -> Result<(DataFrame, DataFrame), SluiceError> {
    let err = |e: PolarsError| SluiceError::other("splitting the quarantine by partition", e);
    let objects = q.column(OBJECT).and_then(|c| c.u32().cloned()).map_err(err)?;
    let mine: BooleanChunked = objects.iter().map(|o| Some(part_of.get(o.unwrap_or(0) as usize).is_some_and(|q| *q == p))).collect();
    let rest = q.filter(&!&mine).map_err(err)?;
    let own = q.filter(&mine).map_err(err)?;
    Ok((own.drop(OBJECT).map_err(err)?, rest))
}

/// The quarantine plus the rows a step failed on (rule `step`).
fn with_isolated(quarantine: DataFrame, isolated: &[Isolated]) -> Result<DataFrame, SluiceError> {
    if isolated.is_empty() {
        return Ok(quarantine);
    }
    let rows = df!(
        "file" => isolated.iter().map(|r| r.file.clone()).collect::<Vec<_>>(),
        "line" => isolated.iter().map(|r| r.line.unwrap_or(0)).collect::<Vec<_>>(),
        "column" => isolated.iter().map(|r| r.column.clone()).collect::<Vec<_>>(),
        "value" => isolated.iter().map(|r| r.value.clone()).collect::<Vec<_>>(),
        "rule" => vec!["step"; isolated.len()],
        "reason" => isolated.iter().map(|r| format!("step '{}': {}", r.step, r.reason)).collect::<Vec<_>>(),
        OBJECT => isolated.iter().map(|r| r.object.unwrap_or(0)).collect::<Vec<_>>(),
    )
    .map_err(|e| SluiceError::other("quarantining rows a step failed on", e))?;
    quarantine.vstack(&rows).map_err(|e| SluiceError::other("quarantining rows a step failed on", e))
}
