//! [`Partition`]: `key=value`, parsed once where it enters (the CLI, a plan) and carried
//! typed; its text form is what commits, paths and summaries hold.

use std::fmt;
use std::str::FromStr;

/// A partition: a key that is a name, and a value that is safe as one path segment.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Partition {
    key: String,
    value: String,
}

/// Not a `key=value` partition sluice can name folders after.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid partition '{0}': expected KEY=VALUE, letters, digits, '_', '-', '.', ':' only")]
pub struct InvalidPartition(pub String);

impl Partition {
    /// `key=value`: the key letters, digits and `_`; the value letters, digits, `_-.:` and
    /// neither `.` nor `..`.
    pub fn parse(s: &str) -> Result<Self, InvalidPartition> {
        let bad = || InvalidPartition(s.to_string());
        let (key, value) = s.split_once('=').ok_or_else(bad)?;
        let ok_key = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        let ok_value =
            !value.is_empty() && value != "." && value != ".." && value.chars().all(|c| c.is_ascii_alphanumeric() || "_-.:".contains(c));
        match ok_key && ok_value {
            true => Ok(Partition { key: key.to_string(), value: value.to_string() }),
            false => Err(bad()),
        }
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn value(&self) -> &str {
        &self.value
    }

    /// The template variables it fills: `{key}` is the value.
    pub fn vars(&self) -> Vec<(String, String)> {
        vec![(self.key.clone(), self.value.clone())]
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.key, self.value)
    }
}

impl FromStr for Partition {
    type Err = InvalidPartition;
    fn from_str(s: &str) -> Result<Self, InvalidPartition> {
        Partition::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_parse_and_refuse_path_escapes() {
        let p = Partition::parse("date=2013-01-15").unwrap();
        assert_eq!((p.key(), p.value(), p.to_string().as_str()), ("date", "2013-01-15", "date=2013-01-15"));
        for bad in ["date=..", "date=../x", "=1", "date", "date=a/b", "da te=1", "date="] {
            assert_eq!(Partition::parse(bad), Err(InvalidPartition(bad.to_string())), "{bad}");
        }
    }
}
