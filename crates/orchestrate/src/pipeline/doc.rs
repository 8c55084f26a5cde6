//! The parsed pipeline file, with the position of every value, so that errors say where.

use serde::de::DeserializeOwned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

/// The parsed file, with the position of every value, so that errors say where.
pub(super) struct Doc<'a> {
    text: &'a str,
    pub(super) table: toml::Spanned<DeTable<'a>>,
}

impl<'a> Doc<'a> {
    pub(super) fn parse(text: &'a str) -> Result<Self, String> {
        let table = DeTable::parse(text).map_err(|e| format!("invalid TOML: {}", located(text, e.span(), e.message())))?;
        Ok(Doc { text, table })
    }

    /// `line L, column C: message` for a span of the file.
    pub(super) fn at(&self, span: std::ops::Range<usize>, message: &str) -> String {
        located(self.text, Some(span), message)
    }

    fn value(&self, key: &str) -> Option<&toml::Spanned<DeValue<'a>>> {
        self.table.get_ref().get(key)
    }

    /// Deserialise one top-level value; an error is pushed with its position.
    pub(super) fn section<T: DeserializeOwned>(&self, key: &str, errors: &mut Vec<String>, required: bool) -> Option<T> {
        let Some(v) = self.value(key) else {
            if required {
                errors.push(format!("missing [{key}]"));
            }
            return None;
        };
        T::deserialize(ValueDeserializer::from(v.clone()))
            .map_err(|e| errors.push(format!("[{key}] {}", located(self.text, e.span().or(Some(v.span())), e.message()))))
            .ok()
    }

    /// Deserialise each element of an array of tables on its own, so one bad element does
    /// not hide the errors in the others.
    pub(super) fn array<T: DeserializeOwned>(&self, key: &str, errors: &mut Vec<String>) -> Vec<T> {
        let Some(v) = self.value(key) else { return Vec::new() };
        let DeValue::Array(items) = v.get_ref() else {
            errors.push(self.at(v.span(), &format!("'{key}' must be an array of tables ([[{key}]])")));
            return Vec::new();
        };
        items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| {
                T::deserialize(ValueDeserializer::from(item.clone()))
                    .map_err(|e| errors.push(format!("[[{key}]] #{i} {}", located(self.text, e.span().or(Some(item.span())), e.message()))))
                    .ok()
            })
            .collect()
    }
}

/// `line L, column C: message` (1-based; the column counts characters).
fn located(text: &str, span: Option<std::ops::Range<usize>>, message: &str) -> String {
    let Some(span) = span else { return message.to_string() };
    let before = &text[..span.start.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    format!("line {line}, column {column}: {message}")
}
