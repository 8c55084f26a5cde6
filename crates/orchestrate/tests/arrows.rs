//! The rooms of `src/` and the arrows allowed between them, written down once and held
//! against every `crate::` and `super::` path in the code (test modules aside):
//! - a room imports only the rooms listed for it, all of them below it;
//! - inside a room, no files import each other in a circle;
//! - and no function is longer than a screen ([`MAX_FUNCTION_LINES`]), the CLI included.
//!
//! `lib.rs` (declarations and re-exports) and `bin/` (the CLI, on top of everything) are not
//! rooms. A `mod.rs`'s `mod` and `pub use` lines declare and re-export; they are not arrows.

// Test code: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Each room and the rooms it may import, bottom up.
const ROOMS: &[(&str, &[&str])] = &[
    ("runtime", &[]),
    ("types", &["runtime"]),
    ("error", &["runtime", "types"]),
    ("store", &["error", "types"]),
    ("pipeline", &["error", "types"]),
    ("report", &["error", "types", "store"]),
    ("run", &["error", "types", "store", "pipeline", "report", "runtime"]),
    ("ops", &["error", "types", "store", "report"]),
];

/// What `lib.rs` re-exports at the crate root, and from which room.
const ROOT_REEXPORTS: &[(&str, &str)] = &[("SluiceError", "error"), ("exit", "error"), ("Pipeline", "pipeline")];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every source file of a room, as a path relative to `src/`.
fn room_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).expect("src/ is readable") {
            let path = e.expect("a directory entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|x| x == "rs") {
                out.push(path.strip_prefix(src()).expect("under src/").to_path_buf());
            }
        }
    }
    let mut out = Vec::new();
    walk(&src(), &mut out);
    out.retain(|p| p != Path::new("lib.rs") && !p.starts_with("bin"));
    out.sort();
    out
}

/// A file's room: its folder under `src/`, or its name for a file there.
fn room_of(file: &Path) -> String {
    let first = file.components().next().expect("a path").as_os_str().to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

/// The code of a file that counts: no comments, nothing from the first `#[cfg(test)]` on, and
/// in a `mod.rs` no `mod` or `pub use` lines.
fn code(file: &Path) -> String {
    let text = std::fs::read_to_string(src().join(file)).expect("a readable source file");
    let is_mod = file.file_name().is_some_and(|n| n == "mod.rs");
    text.lines()
        .take_while(|l| l.trim() != "#[cfg(test)]")
        .map(|l| l.split("//").next().unwrap_or(""))
        .filter(|l| {
            let t = l.trim_start();
            !(is_mod && (t.starts_with("mod ") || t.starts_with("pub mod ") || t.starts_with("pub use ") || t.starts_with("pub(crate) mod ")))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The paths a file names after `crate::`, `super::` and `super::super::`, as
/// (from the crate root) segment lists: `crate::store::Dataset` -> ["store", "Dataset"];
/// `use crate::{a::B, C}` gives both.
fn paths(file: &Path, code: &str) -> Vec<Vec<String>> {
    // where `super` points from this file, as segments from the root
    let mut module: Vec<String> = file.iter().map(|s| s.to_string_lossy().trim_end_matches(".rs").to_string()).collect();
    if module.last().is_some_and(|m| m == "mod") {
        module.pop();
    }
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    let mut i = 0;
    while i < code.len() {
        let rest = &code[i..];
        let (prefix, skip) = if rest.starts_with("crate::") && !ident_before(bytes, i) {
            (Vec::new(), "crate::".len())
        } else if rest.starts_with("super::super::") && !ident_before(bytes, i) {
            (module[..module.len().saturating_sub(2)].to_vec(), "super::super::".len())
        } else if rest.starts_with("super::") && !ident_before(bytes, i) {
            (module[..module.len().saturating_sub(1)].to_vec(), "super::".len())
        } else {
            i += rest.chars().next().map_or(1, char::len_utf8);
            continue;
        };
        i += skip;
        for tail in expand(&code[i..]) {
            let mut p = prefix.clone();
            p.extend(tail);
            out.push(p);
        }
    }
    out
}

fn ident_before(bytes: &[u8], i: usize) -> bool {
    i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_' || bytes[i - 1] == b':')
}

/// The segment lists a path starting at `s` names: `a::b::C` or `{a::B, c::{D, E}}`.
fn expand(s: &str) -> Vec<Vec<String>> {
    let ident: String = s.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
    if !ident.is_empty() {
        let after = &s[ident.len()..];
        let mut out: Vec<Vec<String>> = match after.strip_prefix("::") {
            Some(more) => expand(more),
            None => vec![Vec::new()],
        };
        out.iter_mut().for_each(|p| p.insert(0, ident.clone()));
        return out;
    }
    let Some(inner) = s.strip_prefix('{') else { return vec![Vec::new()] };
    // the items of a group, split at top-level commas
    let (mut depth, mut start, mut items) = (0, 0, Vec::new());
    for (k, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                items.push(&inner[start..k]);
                break;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&inner[start..k]);
                start = k + 1;
            }
            _ => {}
        }
    }
    items.into_iter().map(str::trim).filter(|i| !i.is_empty() && *i != "self").flat_map(expand).collect()
}

/// The room a root path leads to (`["SluiceError"]` -> error, `["store", ..]` -> store).
fn target_room(path: &[String]) -> Option<String> {
    let first = path.first()?;
    if let Some((_, room)) = ROOT_REEXPORTS.iter().find(|(name, _)| name == first) {
        return Some(room.to_string());
    }
    ROOMS.iter().any(|(r, _)| r == first).then(|| first.clone())
}

/// The file of a room a path inside it leads to: `["store", "dataset", ..]` ->
/// store/dataset.rs, `["store", "Dataset"]` -> store/mod.rs.
fn target_file(path: &[String], files: &BTreeSet<PathBuf>) -> Option<PathBuf> {
    let (room, next) = (path.first()?, path.get(1)?);
    let leaf = PathBuf::from(room).join(format!("{next}.rs"));
    let folder = PathBuf::from(room).join(next).join("mod.rs");
    [leaf, folder, PathBuf::from(room).join("mod.rs")].into_iter().find(|f| files.contains(f))
}

/// Every arrow between rooms that the table does not allow: "from -> to (file: path)".
fn upward_arrows(files: &[PathBuf]) -> Vec<String> {
    let allowed: BTreeMap<&str, &[&str]> = ROOMS.iter().copied().collect();
    let mut bad = Vec::new();
    for file in files {
        let room = room_of(file);
        let may = allowed.get(room.as_str()).unwrap_or_else(|| panic!("{}: room '{room}' is not in ROOMS", file.display()));
        for path in paths(file, &code(file)) {
            let Some(to) = target_room(&path) else { continue };
            if to != room && !may.contains(&to.as_str()) {
                bad.push(format!("{room} -> {to} ({}: crate::{})", file.display(), path.join("::")));
            }
        }
    }
    bad.sort();
    bad.dedup();
    bad
}

/// Circles of imports between the files of one room.
fn circles(files: &[PathBuf]) -> Vec<String> {
    let set: BTreeSet<PathBuf> = files.iter().cloned().collect();
    let mut edges: BTreeMap<PathBuf, BTreeSet<PathBuf>> = BTreeMap::new();
    for file in files {
        for path in paths(file, &code(file)) {
            if path.first().map(String::as_str) != Some(room_of(file).as_str()) {
                continue;
            }
            if let Some(to) = target_file(&path, &set).filter(|to| to != file) {
                edges.entry(file.clone()).or_default().insert(to);
            }
        }
    }
    let mut found = Vec::new();
    for (from, tos) in &edges {
        for to in tos {
            if reaches(&edges, to, from, &mut BTreeSet::new()) {
                found.push(format!("{} -> {} -> ... -> {}", from.display(), to.display(), from.display()));
            }
        }
    }
    found
}

fn reaches(edges: &BTreeMap<PathBuf, BTreeSet<PathBuf>>, from: &PathBuf, goal: &PathBuf, seen: &mut BTreeSet<PathBuf>) -> bool {
    if from == goal {
        return true;
    }
    if !seen.insert(from.clone()) {
        return false;
    }
    edges.get(from).is_some_and(|tos| tos.iter().any(|t| reaches(edges, t, goal, seen)))
}

/// The longest a function may be, signature to closing brace.
const MAX_FUNCTION_LINES: usize = 80;

/// Every function of `src/` (the CLI too) longer than [`MAX_FUNCTION_LINES`]: "file:line
/// name (n lines)". A function ends at the first `}` at its own indentation (rustfmt's
/// layout).
fn long_functions() -> Vec<String> {
    let mut files = room_files();
    files.extend(std::fs::read_dir(src().join("bin/sluice")).expect("src/bin/sluice").map(|e| {
        let path = e.expect("a directory entry").path();
        path.strip_prefix(src()).expect("under src/").to_path_buf()
    }));
    let mut long = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(src().join(&file)).expect("a readable source file");
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let trimmed = line.trim_start();
            let indent = &line[..line.len() - trimmed.len()];
            let signature = ["fn ", "pub fn ", "pub(crate) fn ", "pub(super) fn "].iter().find_map(|p| trimmed.strip_prefix(p));
            let Some(rest) = signature.filter(|_| !line.trim_end().ends_with(';')) else { continue };
            let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            let end = lines[i + 1..].iter().position(|l| *l == format!("{indent}}}")).map_or(0, |k| k + 2);
            if end > MAX_FUNCTION_LINES {
                long.push(format!("{}:{} {name} ({end} lines)", file.display(), i + 1));
            }
        }
    }
    long
}

#[test]
fn no_function_is_longer_than_a_screen() {
    let long = long_functions();
    assert!(long.is_empty(), "functions over {MAX_FUNCTION_LINES} lines:\n  {}", long.join("\n  "));
}

#[test]
fn every_room_imports_only_the_rooms_below_it() {
    let files = room_files();
    assert!(files.len() > 20, "found only {} files under {}", files.len(), src().display());
    let bad = upward_arrows(&files);
    assert!(bad.is_empty(), "imports that run up or sideways:\n  {}", bad.join("\n  "));
}

#[test]
fn no_files_of_a_room_import_each_other_in_a_circle() {
    let found = circles(&room_files());
    assert!(found.is_empty(), "circles of imports:\n  {}", found.join("\n  "));
}

#[test]
fn the_table_is_bottom_up_and_the_reader_sees_grouped_and_relative_imports() {
    for (i, (room, below)) in ROOMS.iter().enumerate() {
        for b in *below {
            let at = ROOMS.iter().position(|(r, _)| r == b).unwrap_or_else(|| panic!("{room} lists unknown room {b}"));
            assert!(at < i, "{room} may import {b}, which is not below it");
        }
    }
    let code = "use crate::{store::{Dataset, Head}, SluiceError};\nuse super::commit::Commit;\nlet x = crate::types::run::Shard::default();";
    let got = paths(Path::new("store/dataset.rs"), code);
    let want: Vec<Vec<String>> = [&["store", "Dataset"][..], &["store", "Head"], &["SluiceError"], &["store", "commit", "Commit"], &["types", "run", "Shard", "default"]]
        .iter()
        .map(|p| p.iter().map(|s| s.to_string()).collect())
        .collect();
    assert_eq!(got, want);
    assert_eq!(target_room(&got[2]).as_deref(), Some("error"));
}
