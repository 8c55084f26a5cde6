//! Secrets never reach logs, summaries or lineage: URIs are recorded without passwords and
//! query strings (SAS tokens, presigned signatures), and error texts from the HTTP stack
//! are scrubbed the same way before they are shown.

use std::io::Write;

use url::Url;

/// `uri` without a password or a query string. Local paths are returned as they are.
pub fn redact_uri(uri: &str) -> String {
    if !uri.contains("://") {
        return uri.to_string();
    }
    match Url::parse(uri) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(None);
            }
            if u.query().is_some() {
                u.set_query(Some("REDACTED"));
            }
            u.to_string()
        }
        // not a URL we can parse: keep the scheme and host only
        Err(_) => match uri.split_once("://") {
            Some((scheme, rest)) => {
                let host = rest.split(['/', '?', '@']).next().unwrap_or("");
                format!("{scheme}://{host}/REDACTED")
            }
            None => "REDACTED".into(),
        },
    }
}

/// Every URL in `text` redacted with [`redact_uri`].
pub fn redact_text(text: &str) -> String {
    if !text.contains("://") {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        // the URL starts after the last delimiter before "://"
        let start = rest[..i].rfind(|c: char| !(c.is_ascii_alphanumeric() || "+-.".contains(c))).map_or(0, |j| j + 1);
        let end = rest[i..].find(|c: char| c.is_whitespace() || "\"'<>()[]{},`".contains(c)).map_or(rest.len(), |j| i + j);
        out.push_str(&rest[..start]);
        out.push_str(&redact_uri(&rest[start..end]));
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// stderr with every URL in what is written redacted, for log output: the HTTP stack's own
/// log lines (retries, transport errors) can name request URLs, which carry a SAS token
/// when one is configured. A log line is written in one call, so a URL is never split.
pub struct RedactedStderr;

impl Write for RedactedStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        std::io::stderr().lock().write_all(redact_text(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_and_query_strings_are_removed() {
        assert_eq!(redact_uri("https://u:pw@h.example/x.csv?sig=abc&se=1"), "https://u@h.example/x.csv?REDACTED");
        assert_eq!(redact_uri("/local/path?x"), "/local/path?x");
        let t = redact_text("Error performing GET http://127.0.0.1:1/c/x?sv=1&sig=SECRET in 3s (\"https://a:SECRET@b/c\")");
        assert!(!t.contains("SECRET"), "{t}");
        assert!(t.contains("http://127.0.0.1:1/c/x?REDACTED in 3s"), "{t}");
    }
}
