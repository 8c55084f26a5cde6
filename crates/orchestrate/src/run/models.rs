//! Models from object storage: a model URI (`s3://bucket/models/flight_delay/`) is
//! downloaded once into a local cache and loaded from there (candle memory-maps local
//! files). The cache entry is keyed by the URI and every object's path, size and ETag, so a
//! changed object is a new entry; each object is read at the listed version (If-Match) and
//! its size checked. An entry appears by an atomic rename of a completed download, so
//! racing runs never see half a model; the loser removes only its own download. The model
//! id is computed from the files' bytes, the same wherever the model came from.
//!
//! The cache lives in `$SLUICE_CACHE_DIR`, else `$XDG_CACHE_HOME/sluice`, else
//! `$HOME/.cache/sluice`.

use std::path::PathBuf;

use serde_json::json;
use sha2::{Digest, Sha256};
use sluice_extract::source::prefetch;
use sluice_extract::{Location, SourceSpec, StoreKind};

use crate::error::SluiceError;

/// The local folder holding the model at `uri`: the folder itself for a local path, the
/// cache entry (downloaded if needed) for an object store URI.
pub fn local_dir(uri: &str) -> Result<PathBuf, SluiceError> {
    let loc = Location::parse(uri, None)?;
    if loc.kind == StoreKind::Local {
        return Ok(PathBuf::from(loc.uri.trim_end_matches('/')));
    }
    let prefix = format!("{}/", loc.uri.trim_end_matches('/'));
    let objects = SourceSpec::new(prefix.clone(), None).list(&[])?;
    if objects.is_empty() {
        return Err(SluiceError::Usage(format!("model: no objects under {prefix}")));
    }
    let listing: Vec<_> = objects.iter().map(|o| json!([o.meta.uri, o.meta.size, o.meta.e_tag])).collect();
    let key = hex::encode(Sha256::digest(json!({"v": 1, "uri": prefix, "objects": listing}).to_string()));
    let dir = cache_root().join("models").join(&key[..32]);
    if dir.is_dir() {
        tracing::info!(model = %prefix, cache = %dir.display(), "model cached");
        return Ok(dir);
    }
    let parent = dir.parent().map(PathBuf::from).unwrap_or_default();
    let io = |what: &str, e: std::io::Error| SluiceError::other(format!("model cache: {what}"), e);
    std::fs::create_dir_all(&parent).map_err(|e| io(&parent.display().to_string(), e))?;
    let tmp = parent.join(format!("{}.tmp-{:016x}", &key[..32], rand::random::<u64>()));
    let downloaded = download(objects, &prefix, &tmp);
    let outcome = downloaded.and_then(|bytes| match std::fs::rename(&tmp, &dir) {
        Ok(()) => {
            tracing::info!(model = %prefix, cache = %dir.display(), bytes, "model downloaded");
            Ok(())
        }
        // another run completed the same entry first: use it
        Err(_) if dir.is_dir() => Ok(()),
        Err(e) => Err(io(&dir.display().to_string(), e)),
    });
    if tmp.exists() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    outcome.map(|()| dir)
}

/// Fetch every object (at its listed version) into `tmp`; the bytes written.
fn download(objects: Vec<sluice_extract::source::SourceObject>, prefix: &str, tmp: &std::path::Path) -> Result<u64, SluiceError> {
    let mut total = 0;
    for raw in prefetch(objects, 4, 512 << 20) {
        let raw = raw?;
        let rel = raw.object.uri.strip_prefix(prefix).unwrap_or(&raw.object.uri);
        if rel.split('/').any(|s| s.is_empty() || s == "." || s == "..") {
            return Err(SluiceError::Usage(format!("model: object name {} is not a safe file path", raw.object.uri)));
        }
        let file = tmp.join(rel);
        if let Some(p) = file.parent() {
            std::fs::create_dir_all(p).map_err(|e| SluiceError::other(format!("model cache: {}", p.display()), e))?;
        }
        std::fs::write(&file, &raw.bytes).map_err(|e| SluiceError::other(format!("model cache: {}", file.display()), e))?;
        total += raw.bytes.len() as u64;
    }
    Ok(total)
}

pub(crate) fn cache_root() -> PathBuf {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    env("SLUICE_CACHE_DIR")
        .or_else(|| env("XDG_CACHE_HOME").map(|d| d.join("sluice")))
        .or_else(|| env("HOME").map(|d| d.join(".cache").join("sluice")))
        .unwrap_or_else(|| std::env::temp_dir().join("sluice-cache"))
}
