//! Which locations an extract may read from and write to.
//!
//! The `sluice-extract` CLI runs as its user, on that user's files: any location
//! ([`Policy::open`]). The Lambda function runs events that someone else wrote, next to the
//! function's own files (`/var/task`) and credentials (`/proc/self/environ`): it reads and
//! writes object stores only, and optionally only under listed prefixes
//! ([`Policy::from_env`]: `SLUICE_EXTRACT_SOURCES`, `SLUICE_EXTRACT_DESTS`).

use crate::{ExtractError, Location, StoreKind};

/// The environment variable listing the source prefixes a function may read (comma-separated).
pub const SOURCES_ENV: &str = "SLUICE_EXTRACT_SOURCES";
/// The environment variable listing the destination prefixes a function may write.
pub const DESTS_ENV: &str = "SLUICE_EXTRACT_DESTS";

/// What a location is used for, in a refusal's message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Source,
    Dest,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Source => "source",
            Role::Dest => "destination",
        }
    }
}

/// The locations an extract may use.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Local paths and `file://` URIs are allowed.
    local: bool,
    /// Sources must lie under one of these prefixes (each ends with `/`); empty: any store.
    sources: Vec<String>,
    /// Destinations likewise.
    dests: Vec<String>,
}

impl Policy {
    /// Any location (the CLI).
    pub fn open() -> Self {
        Policy { local: true, ..Default::default() }
    }

    /// Object stores only, under the given prefixes where a list is given (the Lambda
    /// function). A prefix names a folder: `s3://raw` and `s3://raw/` both allow
    /// `s3://raw/x.csv`, neither allows `s3://raw-private/x.csv`.
    pub fn stores_only<S: AsRef<str>>(sources: &[S], dests: &[S]) -> Result<Self, ExtractError> {
        Ok(Policy { local: false, sources: prefixes(sources, SOURCES_ENV)?, dests: prefixes(dests, DESTS_ENV)? })
    }

    /// [`Policy::stores_only`] with the prefixes from `$SLUICE_EXTRACT_SOURCES` and
    /// `$SLUICE_EXTRACT_DESTS` (comma-separated; unset or empty: any object store).
    pub fn from_env() -> Result<Self, ExtractError> {
        let var = |k: &str| std::env::var(k).unwrap_or_default();
        let (sources, dests) = (var(SOURCES_ENV), var(DESTS_ENV));
        let split = |s: &str| s.split(',').map(str::trim).filter(|p| !p.is_empty()).map(str::to_string).collect::<Vec<_>>();
        Self::stores_only(&split(&sources), &split(&dests))
    }

    /// Refuse `loc` as a `role` if the policy does not allow it.
    pub fn check(&self, loc: &Location, role: Role) -> Result<(), ExtractError> {
        let refuse = |rule: String| Err(ExtractError::Refused { uri: loc.uri.clone(), rule });
        if loc.kind == StoreKind::Local && !self.local {
            let stores = if role == Role::Source { "s3, gs, az, http(s)" } else { "s3, gs, az" };
            return refuse(format!("a {} must be an object store ({stores}), never the function's own files", role.name()));
        }
        if role == Role::Dest && !loc.is_writable() {
            return Err(ExtractError::ReadOnly { uri: loc.uri.clone() });
        }
        let (allowed, env) = match role {
            Role::Source => (&self.sources, SOURCES_ENV),
            Role::Dest => (&self.dests, DESTS_ENV),
        };
        if allowed.is_empty() || allowed.iter().any(|p| under(&loc.uri, p)) {
            return Ok(());
        }
        refuse(format!("the {} is outside the prefixes in ${env} ({})", role.name(), allowed.join(", ")))
    }
}

/// `uri` is the folder `prefix` (which ends with `/`) or lies under it.
fn under(uri: &str, prefix: &str) -> bool {
    uri.starts_with(prefix) || uri.trim_end_matches('/') == prefix.trim_end_matches('/')
}

/// Allowlist entries as folder prefixes: object store URLs, each ending with `/`.
fn prefixes<S: AsRef<str>>(entries: &[S], env: &str) -> Result<Vec<String>, ExtractError> {
    entries
        .iter()
        .map(|e| {
            let e = e.as_ref();
            let bad = |reason: &str| ExtractError::InvalidLocation { uri: format!("${env}: {e}"), reason: reason.to_string() };
            let url = url::Url::parse(e).map_err(|err| bad(&err.to_string()))?;
            if url.scheme() == "file" || url.host_str().is_none_or(str::is_empty) {
                return Err(bad("an allowed prefix is an object store URL with a bucket or container, e.g. s3://raw/"));
            }
            if url.query().is_some() || url.password().is_some() {
                return Err(bad("an allowed prefix carries no query string or credentials"));
            }
            Ok(format!("{}/", url.as_str().trim_end_matches('/')))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(uri: &str) -> Location {
        Location::parse(uri, None).unwrap()
    }

    #[test]
    fn the_cli_may_use_local_files_and_a_function_may_not() {
        let function = Policy::stores_only::<&str>(&[], &[]).unwrap();
        for uri in ["/etc/passwd", "file:///proc/self/environ", "relative/x.csv", "/var/task/"] {
            assert!(Policy::open().check(&loc(uri), Role::Source).is_ok(), "{uri}");
            let e = function.check(&loc(uri), Role::Source).unwrap_err();
            assert!(matches!(e, ExtractError::Refused { .. }), "{uri}: {e}");
            assert!(matches!(function.check(&loc(uri), Role::Dest), Err(ExtractError::Refused { .. })), "{uri}");
        }
        assert!(function.check(&loc("s3://raw/x.csv"), Role::Source).is_ok());
        assert!(function.check(&loc("https://example.com/x.csv"), Role::Source).is_ok());
        let e = function.check(&loc("https://example.com/out/"), Role::Dest).unwrap_err();
        assert!(matches!(e, ExtractError::ReadOnly { .. }), "{e}");
    }

    #[test]
    fn allowlists_are_folder_prefixes() {
        let p = Policy::stores_only(&["s3://raw", "s3://vendor/feed/"], &["s3://landing/flights/"]).unwrap();
        for (uri, ok) in [
            ("s3://raw/x.csv", true),
            ("s3://raw/", true),
            ("s3://raw", true),
            ("s3://raw-private/x.csv", false),
            ("s3://vendor/feed/2013/", true),
            ("s3://vendor/feedback.csv", false),
            ("s3://vendor/feed/../secret.csv", false),
            ("gs://raw/x.csv", false),
        ] {
            assert_eq!(p.check(&loc(uri), Role::Source).is_ok(), ok, "{uri}");
        }
        assert!(p.check(&loc("s3://landing/flights/"), Role::Dest).is_ok());
        let e = p.check(&loc("s3://landing/leak/"), Role::Dest).unwrap_err();
        assert!(e.to_string().contains(DESTS_ENV), "{e}");
        assert!(p.check(&loc("s3://raw/x.csv"), Role::Dest).is_err(), "a source prefix is not a destination");
    }

    #[test]
    fn allowlist_entries_must_be_store_urls() {
        for entry in ["/tmp/", "file:///tmp/", "raw", "s3://", "https://host/x?sig=1"] {
            assert!(Policy::stores_only(&[entry], &[]).is_err(), "{entry}");
        }
    }
}
