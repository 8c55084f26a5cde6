//! Where a URI points: a store and a prefix inside it.

use std::path::{Component, Path as FsPath, PathBuf};
use std::sync::Arc;

use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::ObjectStore;

use crate::ExtractError;

/// A parsed location: the object store that serves it and the path inside that store.
#[derive(Debug, Clone)]
pub struct Location {
    /// What the user wrote, normalised (absolute for local paths). Used in messages and lineage.
    pub uri: String,
    pub store: Arc<dyn ObjectStore>,
    pub path: Path,
    /// The URI ended with `/`: it names a prefix, not one object.
    pub is_prefix: bool,
}

impl Location {
    /// Parse a local path (relative paths are taken from `base`, or the current directory)
    /// or a `file://` URI.
    pub fn parse(uri: &str, base: Option<&FsPath>) -> Result<Self, ExtractError> {
        let invalid = |reason: &str| ExtractError::InvalidLocation { uri: uri.to_string(), reason: reason.to_string() };
        if uri.trim().is_empty() {
            return Err(invalid("empty"));
        }
        let raw = if let Some(rest) = uri.strip_prefix("file://") {
            rest
        } else if let Some((scheme, _)) = uri.split_once("://") {
            return Err(ExtractError::UnsupportedScheme { scheme: scheme.to_string(), uri: uri.to_string() });
        } else {
            uri
        };
        let is_prefix = raw.ends_with('/');
        let p = FsPath::new(raw);
        let abs = match base {
            Some(b) => std::path::absolute(b)?.join(p),
            None => std::path::absolute(p)?,
        };
        let abs = normalize(&abs);
        let path = Path::from_absolute_path(&abs).map_err(|e| invalid(&e.to_string()))?;
        let shown = abs.to_string_lossy().into_owned();
        Ok(Location {
            uri: if is_prefix { format!("{shown}/") } else { shown },
            store: Arc::new(LocalFileSystem::new()),
            path,
            is_prefix,
        })
    }

    /// The URI of `path` (a path in the same store), for messages and for readers.
    pub fn uri_of(&self, path: &Path) -> String {
        format!("/{path}")
    }
}

/// Lexically resolve `.` and `..` (the path may not exist yet).
fn normalize(p: &FsPath) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_resolve_against_base() {
        let l = Location::parse("../data/x.csv", Some(FsPath::new("/repo/pipelines"))).unwrap();
        assert_eq!(l.path.as_ref(), "repo/data/x.csv");
        assert_eq!(l.uri, "/repo/data/x.csv");
        assert!(!l.is_prefix);
        let l = Location::parse("file:///tmp/in/", None).unwrap();
        assert!(l.is_prefix);
        assert_eq!(l.path.as_ref(), "tmp/in");
    }

    #[test]
    fn unknown_schemes_are_refused() {
        let e = Location::parse("s3://bucket/key", None).unwrap_err();
        assert!(matches!(e, ExtractError::UnsupportedScheme { .. }), "{e}");
    }
}
