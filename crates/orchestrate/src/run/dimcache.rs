//! Dimension tables cached between runs: a CSV dimension, once typed and de-duplicated, is
//! kept in `$SLUICE_CACHE_DIR/dims/<key>.arrow`, keyed by the sluice version, the dimension's
//! declaration and its object's URI, size, ETag and modification time; a SQL dimension, keyed
//! by its declaration and every CSV dimension's object. A changed object (or declaration) is
//! a new key; an object without an ETag is not cached.
//!
//! An entry appears complete or not at all (written aside, then hard-linked into place,
//! which fails if another run got there first); an unreadable entry is left alone and the
//! dimension read from its object (or derived). Cache trouble never fails a run.
//!
//! Entries are Arrow IPC files, uncompressed, mapped ([`load`]): a daily run loads them every
//! time, and the weather table (26k rows, 2.9 MB) took 11.4 ms from LZ4 Parquet (key version
//! 3) in a daily run's timeline, 1.3 ms mapped. Key version 4 is IPC; older entries are
//! simply not used (nor removed).
#![allow(unsafe_code)] // the entries are mapped, not read: see `load`

use std::io::Cursor;
use std::path::{Path, PathBuf};

use polars::prelude::*;
use polars_arrow::io::ipc::{read as ipc_read, write as ipc_write};
use serde_json::json;
use sha2::{Digest, Sha256};
use sluice_extract::ObjectRef;
use sluice_transform::DimensionSpec;

use super::models::cache_root;
use crate::error::SluiceError;

/// `spec`'s table for `object`: from the cache, else from `read()` (then cached).
pub fn table(spec: &DimensionSpec, object: &ObjectRef, read: impl FnOnce() -> Result<DataFrame, SluiceError>) -> Result<DataFrame, SluiceError> {
    let Some(e_tag) = object.e_tag.as_ref() else { return read() };
    cached(&cache_root(), spec, json!({"object": [object.uri, object.size, e_tag, object.last_modified]}), read)
}

/// A SQL dimension's table, derived from the pipeline's dimensions (`all`, read from
/// `objects`: its SQL may read any declared before it): from the cache, else from
/// `derive()` (then cached). A daily run derived the weather's means (a GROUP BY over its
/// 26k rows) every time.
pub fn derived<E>(spec: &DimensionSpec, all: &[DimensionSpec], objects: &[ObjectRef], derive: impl FnOnce() -> Result<DataFrame, E>) -> Result<DataFrame, E> {
    derived_in(&cache_root(), spec, all, objects, derive)
}

fn derived_in<E>(root: &Path, spec: &DimensionSpec, all: &[DimensionSpec], objects: &[ObjectRef], derive: impl FnOnce() -> Result<DataFrame, E>) -> Result<DataFrame, E> {
    let Some(refs) = objects.iter().map(|o| Some(json!([o.uri, o.size, o.e_tag.as_ref()?, o.last_modified]))).collect::<Option<Vec<_>>>() else {
        return derive();
    };
    let specs: Vec<String> = all.iter().map(|d| format!("{d:?}")).collect();
    cached(root, spec, json!({"dimensions": specs, "objects": refs}), derive)
}

/// `spec`'s table from its entry under `root` for `source` (what it is made from), else from
/// `make()` (then cached, when [`load`] can map it).
fn cached<E>(root: &Path, spec: &DimensionSpec, source: serde_json::Value, make: impl FnOnce() -> Result<DataFrame, E>) -> Result<DataFrame, E> {
    let path = entry(root, spec, source);
    if path.exists() {
        match load(&path) {
            Ok(frame) => {
                tracing::debug!(dimension = spec.name(), cache = %path.display(), "dimension from the cache");
                return Ok(frame);
            }
            Err(e) => tracing::warn!(dimension = spec.name(), cache = %path.display(), error = %e, "unreadable cache entry ignored (delete it to rebuild it)"),
        }
    }
    let mut frame = make()?;
    if let Some(column) = frame.columns().iter().find(|c| !mappable(&c.dtype().to_arrow(CompatLevel::oldest()))) {
        tracing::debug!(dimension = spec.name(), column = %column.name(), dtype = %column.dtype(), "not cached: a type the cache does not map");
        return Ok(frame);
    }
    if let Err(e) = store(&path, &mut frame) {
        tracing::warn!(dimension = spec.name(), cache = %path.display(), error = %e, "could not cache the dimension");
    }
    Ok(frame)
}

fn entry(root: &Path, spec: &DimensionSpec, source: serde_json::Value) -> PathBuf {
    let doc = json!({
        "v": 5,
        "sluice": env!("CARGO_PKG_VERSION"),
        "spec": format!("{spec:?}"),
        "source": source,
    });
    let key = hex::encode(Sha256::digest(doc.to_string()));
    root.join("dims").join(format!("{}.arrow", &key[..32]))
}

fn store(path: &Path, frame: &mut DataFrame) -> Result<(), Box<dyn std::error::Error>> {
    let dir = path.parent().ok_or("no cache folder")?;
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".tmp-{:016x}.arrow", rand::random::<u64>()));
    let written = std::fs::File::create(&tmp)
        .map_err(Box::<dyn std::error::Error>::from)
        .and_then(|f| save(f, frame).map_err(Into::into))
        .and_then(|()| match std::fs::hard_link(&tmp, path) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(e.into()),
            _ => Ok(()), // linked, or another run cached it first
        });
    let _ = std::fs::remove_file(&tmp); // ours alone
    written
}

/// `frame` (one chunk) as an Arrow IPC file. Strings are written as Arrow's `LargeUtf8`
/// (offsets and one buffer of bytes), not as the engine's views: the reader checks those with
/// one pass over the bytes (ASCII, or else UTF-8) and the offsets, where views take a check
/// per value (26k for the weather's `origin`: about a millisecond of a daily run).
fn save(file: std::fs::File, frame: &mut DataFrame) -> PolarsResult<()> {
    frame.rechunk_mut();
    let schema = Arc::new(frame.schema().to_arrow(CompatLevel::oldest()));
    let mut writer = ipc_write::FileWriter::try_new(std::io::BufWriter::new(file), schema, None, ipc_write::WriteOptions::default())?;
    for batch in frame.iter_chunks(CompatLevel::oldest(), false) {
        writer.write(&batch, None)?;
    }
    writer.finish()
}

/// The frame of a cache entry, its fixed-width columns mapped from the file, not copied: on
/// these VMs a page of fresh memory costs ~4 us the first time it is touched, and copying
/// the weather table's 2.9 MB into the heap was most of its load.
///
/// Only entries of fixed-width columns (numbers, booleans, dates and times) and strings
/// (`LargeUtf8`, or binary) are read. The strings are read first, through the reader that
/// checks their offsets against their bytes (and UTF-8), and copied; only then is the file mapped,
/// every buffer bounds-checked as it is, and the fixed-width columns (valid whatever their
/// bytes) are kept from the mapping. So a damaged entry is an error, never a bad read. An
/// entry is never written after it is linked into place ([`store`]); removing it does not
/// affect a mapping.
fn load(path: &Path) -> Result<DataFrame, Box<dyn std::error::Error>> {
    let file = std::fs::File::open(path)?;
    // SAFETY: the mapping is read-only, and the entry is never written once in place (above).
    let map = Arc::new(unsafe { memmap2::Mmap::map(&file)? });
    let meta = ipc_read::read_file_metadata(&mut Cursor::new(map.as_ref()))?;
    if let Some(f) = meta.schema.iter_values().find(|f| !mappable(&f.dtype)) {
        return Err(format!("column {} is of a type sluice does not map ({:?})", f.name, f.dtype).into());
    }
    if meta.dictionaries.as_ref().is_some_and(|d| !d.is_empty()) {
        return Err("an entry with dictionaries".into());
    }
    let strings: Vec<usize> = meta.schema.iter_values().enumerate().filter(|(_, f)| variable_width(&f.dtype)).map(|(i, _)| i).collect();
    let mut chunks: Vec<Vec<ArrayRef>> = vec![Vec::new(); meta.schema.len()];
    if !strings.is_empty() {
        for batch in ipc_read::FileReader::new(Cursor::new(map.as_ref()), meta.clone(), Some(strings.clone()), None) {
            for (&i, array) in strings.iter().zip(batch?.into_arrays()) {
                chunks[i].push(array);
            }
        }
    }
    for block in 0..meta.blocks.len() {
        // SAFETY: every buffer is bounds-checked as it is mapped; the strings were checked above
        // (and their mapped arrays are dropped here, unused); fixed-width values are valid
        // whatever their bytes.
        let batch = unsafe { polars_arrow::mmap::mmap_unchecked(&meta, &Default::default(), map.clone(), block)? };
        for (i, array) in batch.into_arrays().into_iter().enumerate() {
            if !strings.contains(&i) {
                chunks[i].push(array);
            }
        }
    }
    let columns = meta
        .schema
        .iter_values()
        .zip(chunks)
        .map(|(field, arrays)| match arrays.is_empty() {
            true => Ok(Series::new_empty(field.name.clone(), &DataType::from_arrow_field(field))), // no rows, no batch
            false => Series::try_from((field, arrays)),
        })
        .map(|series| series.map(Column::from))
        .collect::<PolarsResult<Vec<_>>>()?;
    let mut frame = DataFrame::new_infer_height(columns)?;
    frame.rechunk_mut(); // one chunk, as read from the object (sums come out the same)
    Ok(frame)
}

/// A type whose buffers [`load`] maps.
fn mappable(dtype: &ArrowDataType) -> bool {
    use ArrowDataType as A;
    matches!(
        dtype,
        A::Null | A::Boolean | A::Int8 | A::Int16 | A::Int32 | A::Int64 | A::UInt8 | A::UInt16 | A::UInt32 | A::UInt64 | A::Float32 | A::Float64
            | A::Date32 | A::Date64 | A::Time32(_) | A::Time64(_) | A::Timestamp(..) | A::Duration(_)
    ) || variable_width(dtype)
}

/// A type [`load`] reads through the checking reader rather than maps.
fn variable_width(dtype: &ArrowDataType) -> bool {
    matches!(dtype, ArrowDataType::LargeUtf8 | ArrowDataType::LargeBinary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(sql: &str) -> DimensionSpec {
        DimensionSpec::Sql { name: "weather".into(), sql: sql.into() }
    }

    /// An empty folder of this test's own.
    fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("sluice-dimcache-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn frame() -> DataFrame {
        let long = "a string longer than a view's twelve inline bytes";
        let mut df = df!(
            "origin" => [Some("EWR"), None, Some(long), Some("JFK"), Some("ünïcode ✓ and more than twelve bytes")],
            "hour" => [Some(5i32), Some(6), None, Some(23), Some(0)],
            "temp" => [Some(39.02f64), None, Some(f64::MIN_POSITIVE), Some(-3.5), Some(1e300)],
            "gust" => [Some(true), Some(false), None, Some(true), Some(false)],
            "seats" => [Some(1i64 << 40), None, Some(-1), Some(0), Some(7)],
        )
        .unwrap();
        let stamp = Column::new("time_hour".into(), [Some(1_357_016_400_000_000i64), None, Some(0), Some(-1), Some(42)])
            .cast(&DataType::Datetime(TimeUnit::Microseconds, None))
            .unwrap();
        df.with_column(stamp).unwrap();
        df
    }

    fn never() -> Result<DataFrame, String> {
        Err("made again: the entry was not used".into())
    }

    #[test]
    fn an_entry_maps_back_to_the_frame_it_was_made_from() {
        let root = scratch("maps");
        for (rows, source) in [(5, "all rows"), (0, "no rows")] {
            let made = frame().head(Some(rows));
            let first = cached(&root, &spec("a"), json!(source), || Ok::<_, String>(made.clone())).unwrap();
            assert!(first.equals_missing(&made));
            let again = cached(&root, &spec("a"), json!(source), never).unwrap();
            assert_eq!(again.schema(), made.schema(), "{source}");
            assert!(again.equals_missing(&made), "{source}: {again} against {made}");
        }
        assert_eq!(std::fs::read_dir(root.join("dims")).unwrap().count(), 2, "two entries, no leftovers");
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn a_damaged_entry_is_made_again_not_read() {
        let root = scratch("damaged");
        let made = frame();
        cached(&root, &spec("a"), json!(1), || Ok::<_, String>(made.clone())).unwrap();
        let path = entry(&root, &spec("a"), json!(1));
        let bytes = std::fs::read(&path).unwrap();
        // cut short, then the right length of garbage
        let garbage = vec![0xA5u8; bytes.len()];
        for damaged in [bytes[..bytes.len() / 2].to_vec(), garbage] {
            std::fs::write(&path, &damaged).unwrap();
            assert!(load(&path).is_err());
            let back = cached(&root, &spec("a"), json!(1), || Ok::<_, String>(made.clone())).unwrap();
            assert!(back.equals_missing(&made));
        }
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn a_string_outside_its_buffer_or_not_utf8_is_an_error() {
        let root = scratch("strings");
        let made = df!("s" => ["a string longer than twelve bytes"]).unwrap();
        cached(&root, &spec("a"), json!(2), || Ok::<_, String>(made.clone())).unwrap();
        let path = entry(&root, &spec("a"), json!(2));
        let bytes = std::fs::read(&path).unwrap();
        assert!(load(&path).unwrap().equals(&made), "read back as written");
        // the offsets (little-endian i64): 0, then 33; point the end far past the bytes
        let mut past = bytes.clone();
        let at = past.windows(16).position(|w| w[..8] == [0; 8] && w[8..] == [33, 0, 0, 0, 0, 0, 0, 0]).expect("the offsets");
        past[at + 8..at + 16].copy_from_slice(&1_000_000i64.to_le_bytes());
        // the string's first byte: a byte no UTF-8 text holds
        let mut garbled = bytes;
        let at = garbled.windows(8).position(|w| w == b"a string").expect("the string");
        garbled[at] = 0xFF;
        for (what, damaged) in [("an offset past the bytes", past), ("not UTF-8", garbled)] {
            std::fs::write(&path, &damaged).unwrap();
            assert!(load(&path).is_err(), "{what}");
        }
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn a_derived_table_is_made_again_when_any_dimension_or_object_changes() {
        let root = scratch("derived");
        let means = DimensionSpec::Sql { name: "means".into(), sql: "SELECT 1 AS one".into() };
        let object = |e_tag: Option<&str>| ObjectRef { uri: "file:///w.csv".into(), size: 9, e_tag: e_tag.map(Into::into), last_modified: Default::default() };
        let made = df!("one" => [1i32]).unwrap();
        let make = || Ok::<_, String>(made.clone());
        derived_in(&root, &means, &[spec("a"), means.clone()], &[object(Some("1"))], make).unwrap();
        assert!(derived_in(&root, &means, &[spec("a"), means.clone()], &[object(Some("1"))], never).unwrap().equals(&made), "cached");
        assert!(derived_in(&root, &means, &[spec("b"), means.clone()], &[object(Some("1"))], never).is_err(), "another declaration");
        assert!(derived_in(&root, &means, &[spec("a"), means.clone()], &[object(Some("2"))], never).is_err(), "another object");
        derived_in(&root, &means, &[spec("a"), means.clone()], &[object(None)], make).unwrap();
        assert!(derived_in(&root, &means, &[spec("a"), means.clone()], &[object(None)], never).is_err(), "no ETag: not cached");
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn a_frame_of_a_type_the_cache_does_not_map_is_not_cached() {
        let root = scratch("types");
        let made = df!("c" => ["x", "y"]).unwrap().lazy().select([col("c").implode(true)]).collect().unwrap();
        let first = cached(&root, &spec("a"), json!(3), || Ok::<_, String>(made.clone())).unwrap();
        assert!(first.equals_missing(&made));
        assert!(!entry(&root, &spec("a"), json!(3)).exists());
        let _ = std::fs::remove_dir_all(&root);
    }
}
