//! Where a URI points: a store and a prefix inside it.
//!
//! Local paths and `file://` URIs map to the local file system; `s3://`, `gs://`, `az://`,
//! `abfss://` (and the other Azure forms) and `http(s)://` to object_store's cloud stores,
//! recognised by object_store's own [`ObjectStoreScheme::parse`]. Each store is built from
//! its cloud's standard environment (`from_env`: `AWS_*`, `AZURE_*`, `GOOGLE_*`), then the
//! options registered for its URL with [`set_store_options`], with sluice's retry and
//! timeout defaults ([`crate::config`]). One client per bucket (and options) per process,
//! shared by every stage.

use std::collections::HashMap;
use std::path::{Component, Path as FsPath, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::http::HttpBuilder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreScheme};
use url::Url;

use crate::config;
use crate::redact::redact_uri;
use crate::ExtractError;

/// Which kind of store serves a location.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    Local,
    S3,
    Azure,
    Gcs,
    /// Plain HTTP(S): read-only.
    Http,
}

/// A parsed location: the object store that serves it and the path inside that store.
#[derive(Debug, Clone)]
pub struct Location {
    /// What the user wrote, normalised and without secrets (absolute for local paths; no
    /// password, no query string). Used in messages and lineage.
    pub uri: String,
    pub store: Arc<dyn ObjectStore>,
    pub path: Path,
    /// The URI ended with `/`: it names a prefix, not one object.
    pub is_prefix: bool,
    pub kind: StoreKind,
    /// What precedes a store path in a full URI: `s3://bucket`, `az://container`; empty
    /// for local paths (whose URIs are the absolute path).
    base: String,
}

impl Location {
    /// Parse a local path (relative paths are taken from `base`, or the current directory),
    /// a `file://` URI, or an object store URL.
    pub fn parse(uri: &str, base: Option<&FsPath>) -> Result<Self, ExtractError> {
        if uri.trim().is_empty() {
            return Err(invalid(uri, "empty"));
        }
        match uri.strip_prefix("file://") {
            Some(rest) => local(uri, rest, base),
            None if uri.contains("://") => remote(uri),
            None => local(uri, uri, base),
        }
    }

    /// The URI of `path` (a path in the same store), for messages and for readers.
    pub fn uri_of(&self, path: &Path) -> String {
        match self.kind {
            StoreKind::Local => format!("/{path}"),
            _ if path.as_ref().is_empty() => self.base.clone(),
            _ => format!("{}/{path}", self.base),
        }
    }

    /// Whether objects can be written here (plain HTTP cannot).
    pub fn is_writable(&self) -> bool {
        self.kind != StoreKind::Http
    }

    /// This location as a folder URL whose path is its path inside [`Location::store`]
    /// (`file:///abs/dir/`, `s3://bucket/prefix/`): what a library that addresses objects
    /// by URL on this same store (the Delta log's engine) needs. A path-style HTTPS URL's
    /// bucket is not in it: the store is rooted there already.
    pub fn folder_url(&self) -> Result<Url, ExtractError> {
        let mut url = match self.kind {
            StoreKind::Local => Url::parse("file:///").map_err(|e| invalid(&self.uri, &e.to_string()))?,
            _ => Url::parse(&self.base).map_err(|e| invalid(&self.uri, &e.to_string()))?,
        };
        url.set_path(&format!("/{}/", self.path.as_ref()).replace("//", "/"));
        Ok(url)
    }
}

fn invalid(uri: &str, reason: &str) -> ExtractError {
    ExtractError::InvalidLocation { uri: redact_uri(uri), reason: reason.to_string() }
}

fn local(uri: &str, raw: &str, base: Option<&FsPath>) -> Result<Location, ExtractError> {
    let is_prefix = raw.ends_with('/');
    let p = FsPath::new(raw);
    let abs = match base {
        Some(b) => std::path::absolute(b)?.join(p),
        None => std::path::absolute(p)?,
    };
    let abs = normalize(&abs);
    let path = Path::from_absolute_path(&abs).map_err(|e| invalid(uri, &e.to_string()))?;
    let shown = abs.to_string_lossy().into_owned();
    static LOCAL: OnceLock<Arc<dyn ObjectStore>> = OnceLock::new();
    Ok(Location {
        uri: if is_prefix { format!("{shown}/") } else { shown },
        store: LOCAL.get_or_init(|| Arc::new(LocalFileSystem::new())).clone(),
        path,
        is_prefix,
        kind: StoreKind::Local,
        base: String::new(),
    })
}

fn remote(uri: &str) -> Result<Location, ExtractError> {
    let url = Url::parse(uri).map_err(|e| invalid(uri, &e.to_string()))?;
    let (scheme, path) = ObjectStoreScheme::parse(&url).map_err(|_| ExtractError::UnsupportedScheme {
        scheme: url.scheme().to_string(),
        uri: redact_uri(uri),
    })?;
    let kind = match scheme {
        ObjectStoreScheme::AmazonS3 => StoreKind::S3,
        ObjectStoreScheme::MicrosoftAzure => StoreKind::Azure,
        ObjectStoreScheme::GoogleCloudStorage => StoreKind::Gcs,
        ObjectStoreScheme::Http => StoreKind::Http,
        _ => return Err(ExtractError::UnsupportedScheme { scheme: url.scheme().to_string(), uri: redact_uri(uri) }),
    };
    if url.query().is_some() {
        return Err(invalid(
            uri,
            "query strings (SAS tokens, presigned URLs) are not accepted in URIs; give credentials through the environment",
        ));
    }
    if url.password().is_some() {
        return Err(invalid(uri, "credentials in URIs are not accepted; give them through the environment"));
    }
    // what precedes the store path: the URL minus the object path (a bucket in the path for
    // https://s3.../bucket/key, or only the authority for s3://bucket/key)
    let store_path = path.as_ref();
    let segs: Vec<&str> = url.path().split('/').filter(|s| !s.is_empty()).collect();
    let in_store = if store_path.is_empty() { 0 } else { store_path.split('/').count() };
    let mut root = url.clone();
    root.set_path(&segs[..segs.len().saturating_sub(in_store)].join("/"));
    let base = root.as_str().trim_end_matches('/').to_string();
    let store = client(kind, &url, &base)?;
    let is_prefix = uri.ends_with('/');
    let shown = if store_path.is_empty() { base.clone() } else { format!("{base}/{store_path}") };
    Ok(Location { uri: if is_prefix { format!("{shown}/") } else { shown }, store, path, is_prefix, kind, base })
}

/// Options for the stores under a URL prefix (`s3://bucket`), e.g. from the pipeline file.
/// They override the environment. Clients already built for that prefix are rebuilt.
pub fn set_store_options(prefix: &str, options: Vec<(String, String)>) {
    let prefix = prefix.trim_end_matches('/').to_string();
    if let Ok(mut all) = registered().lock() {
        all.retain(|(p, _)| *p != prefix);
        all.push((prefix.clone(), options));
    }
    if let Ok(mut c) = clients().lock() {
        c.retain(|k, _| !k.starts_with(&prefix));
    }
}

type Registered = Mutex<Vec<(String, Vec<(String, String)>)>>;

fn registered() -> &'static Registered {
    static OPTIONS: OnceLock<Registered> = OnceLock::new();
    OPTIONS.get_or_init(Default::default)
}

fn clients() -> &'static Mutex<HashMap<String, Arc<dyn ObjectStore>>> {
    static CLIENTS: OnceLock<Mutex<HashMap<String, Arc<dyn ObjectStore>>>> = OnceLock::new();
    CLIENTS.get_or_init(Default::default)
}

/// The options registered for `base` (longest matching prefix).
fn options_for(base: &str) -> Vec<(String, String)> {
    let all = registered().lock().map(|a| a.clone()).unwrap_or_default();
    all.into_iter()
        .filter(|(p, _)| base == p || base.starts_with(&format!("{p}/")))
        .max_by_key(|(p, _)| p.len())
        .map(|(_, o)| o)
        .unwrap_or_default()
}

/// The process's client for the store at `base`, built on first use.
fn client(kind: StoreKind, url: &Url, base: &str) -> Result<Arc<dyn ObjectStore>, ExtractError> {
    if let Some(c) = clients().lock().ok().and_then(|c| c.get(base).cloned()) {
        return Ok(c);
    }
    let options = options_for(base);
    // a store that cannot be configured (an unknown option, no account) is a usage error
    let bad = |e: object_store::Error| invalid(base, &crate::redact::redact_text(&e.to_string()));
    // environment (from_env), then sluice's defaults where the environment is silent, then
    // the registered options; retries are sluice's
    macro_rules! build {
        ($builder:expr, $env_prefix:expr) => {{
            let mut b = $builder.with_retry(config::retry());
            for (k, v) in config::client_defaults($env_prefix).into_iter().chain(options) {
                let key = k.to_ascii_lowercase().parse().map_err(|_| invalid(base, &format!("unknown store option '{k}'")))?;
                b = b.with_config(key, v);
            }
            Arc::new(b.build().map_err(bad)?)
        }};
    }
    let store: Arc<dyn ObjectStore> = match kind {
        StoreKind::S3 => build!(AmazonS3Builder::from_env().with_url(base), "AWS_"),
        StoreKind::Azure => build!(MicrosoftAzureBuilder::from_env().with_url(base), "AZURE_"),
        StoreKind::Gcs => build!(GoogleCloudStorageBuilder::from_env().with_url(base), "GOOGLE_"),
        // an http:// URL was written on purpose: allow it (reqwest refuses plain HTTP otherwise)
        StoreKind::Http => build!(
            HttpBuilder::new().with_url(&url[..url::Position::BeforePath]).with_client_options(
                object_store::ClientOptions::new().with_allow_http(url.scheme() == "http")
            ),
            "SLUICE_HTTP_"
        ),
        StoreKind::Local => return Err(invalid(base, "a local path is not a URL")),
    };
    if let Ok(mut c) = clients().lock() {
        return Ok(c.entry(base.to_string()).or_insert(store).clone());
    }
    Ok(store)
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
    fn cloud_urls_keep_their_form_and_name_objects_by_full_uri() {
        let cases = [
            ("s3://bucket/landing/2013-01-01.csv", StoreKind::S3, "landing/2013-01-01.csv", "s3://bucket"),
            ("gs://bucket/a/", StoreKind::Gcs, "a", "gs://bucket"),
            ("az://container/x/y", StoreKind::Azure, "x/y", "az://container"),
            ("abfss://fs@acct.dfs.core.windows.net/p/q", StoreKind::Azure, "p/q", "abfss://fs@acct.dfs.core.windows.net"),
            ("https://acct.blob.core.windows.net/container/k", StoreKind::Azure, "k", "https://acct.blob.core.windows.net/container"),
            ("https://example.com/data/x.csv", StoreKind::Http, "data/x.csv", "https://example.com"),
            ("s3://bucket", StoreKind::S3, "", "s3://bucket"),
        ];
        // Azure needs an account: from the environment, or options registered for the URL
        set_store_options("az://container", vec![("account_name".into(), "acct".into())]);
        for (uri, kind, path, base) in cases {
            let l = Location::parse(uri, None).unwrap_or_else(|e| panic!("{uri}: {e}"));
            assert_eq!((l.kind, l.path.as_ref(), l.base.as_str()), (kind, path, base), "{uri}");
            assert_eq!(l.uri_of(&l.path), uri.trim_end_matches('/'), "{uri}");
        }
        assert!(!Location::parse("https://example.com/x", None).unwrap().is_writable());
    }

    #[test]
    fn one_client_per_bucket() {
        let a = Location::parse("s3://shared-bucket/a/x", None).unwrap();
        let b = Location::parse("s3://shared-bucket/b/", None).unwrap();
        let c = Location::parse("s3://other-bucket/a", None).unwrap();
        assert!(Arc::ptr_eq(&a.store, &b.store));
        assert!(!Arc::ptr_eq(&a.store, &c.store));
    }

    #[test]
    fn unknown_schemes_and_secrets_in_uris_are_refused_without_echoing_the_secret() {
        let e = Location::parse("ftp://host/key", None).unwrap_err();
        assert!(matches!(e, ExtractError::UnsupportedScheme { .. }), "{e}");
        set_store_options("s3://optioned", vec![("no_such_option".into(), "1".into())]);
        let e = Location::parse("s3://optioned/x", None).unwrap_err();
        assert!(matches!(e, ExtractError::InvalidLocation { .. }), "{e}");
        for uri in ["https://host/x.csv?sig=SECRET123", "https://user:SECRET123@host/x.csv", "az://c/x?sv=1&sig=SECRET123"] {
            let e = Location::parse(uri, None).unwrap_err();
            assert!(matches!(e, ExtractError::InvalidLocation { .. }), "{e}");
            assert!(!e.to_string().contains("SECRET123"), "{e}");
        }
    }
}
