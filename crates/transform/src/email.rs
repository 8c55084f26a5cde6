//! Raw emails (RFC 5322, as in the SpamAssassin corpus) -> one row per email.
//!
//! mail-parser does the work: headers (RFC 2047 words decoded), MIME multipart, quoted-printable
//! and base64 bodies, charsets to UTF-8 (`full_encoding`: CJK too), and HTML-only bodies
//! turned into text. Parsing is per object, like CSV parsing; everything after it is Polars.
//!
//! Columns: `id` (the object's file name), `file` (its URI), `folder` (its parent folder's name), `from`, `to`
//! (addresses, comma-separated), `subject`, `date` (UTC), `body` (text), `body_html`
//! (whether the text came from HTML). An object that is not an email (empty, or none of
//! From, Subject and Date) is quarantined with its reason.

use mail_parser::decoders::html::html_to_text;
use mail_parser::{MessageParser, PartType};
use polars::prelude::*;

use crate::error::Context;
use crate::{Ingested, TransformError};

/// Parse every object; `objects` are (URI, bytes).
pub fn read_emails(objects: &[(&str, &[u8])]) -> Result<Ingested, TransformError> {
    let parser = MessageParser::default();
    let n = objects.len();
    let (mut id, mut file, mut folder) = (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut from, mut to) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut subject, mut date, mut body, mut html) = (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut q_file, mut q_reason) = (Vec::new(), Vec::new());
    for (uri, bytes) in objects {
        let reason = if bytes.iter().all(u8::is_ascii_whitespace) {
            Some("empty file")
        } else {
            None
        };
        let msg = reason.is_none().then(|| parser.parse(*bytes)).flatten();
        let Some(msg) = msg.filter(|m| m.from().is_some() || m.subject().is_some() || m.date().is_some()) else {
            q_file.push(uri.to_string());
            q_reason.push(reason.unwrap_or("not an email: no From, Subject or Date header").to_string());
            continue;
        };
        let addresses = |a: Option<&mail_parser::Address<'_>>| -> Option<String> {
            let list: Vec<&str> = a?.iter().filter_map(|x| x.address()).collect();
            (!list.is_empty()).then(|| list.join(", "))
        };
        let mut segments = uri.rsplit('/');
        id.push(segments.next().unwrap_or("").to_string());
        folder.push(segments.next().unwrap_or("").to_string());
        file.push(uri.to_string());
        from.push(addresses(msg.from()));
        to.push(addresses(msg.to()));
        subject.push(msg.subject().map(|s| s.trim().to_string()));
        date.push(msg.date().filter(|d| d.is_valid()).map(|d| d.to_timestamp() * 1_000_000));
        // the text body, from HTML when the message has only HTML, or when a text/plain part
        // is HTML in disguise (common in spam)
        let (text, from_html) = match msg.text_part(0).map(|p| &p.body) {
            Some(PartType::Html(h)) => (Some(html_to_text(h)), true),
            Some(PartType::Text(t)) if looks_like_html(t) => (Some(html_to_text(t)), true),
            Some(PartType::Text(t)) => (Some(t.to_string()), false),
            _ => (None, false),
        };
        html.push(from_html);
        body.push(text.map(|t| t.trim().to_string()).filter(|t| !t.is_empty()));
    }
    let frame = df!(
        "id" => id,
        "file" => file,
        "folder" => folder,
        "from" => from,
        "to" => to,
        "subject" => subject,
        "date" => date,
        "body" => body,
        "body_html" => html,
    )
    .and_then(|mut df| {
        let d = df.column("date")?.cast(&DataType::Datetime(TimeUnit::Microseconds, None))?;
        df.with_column(d)?;
        Ok(df)
    })
    .ctx(|| "building the email frame".to_string())?;
    let nq = q_file.len();
    let quarantine = df!(
        "file" => q_file,
        "line" => vec![0u32; nq],
        "column" => vec![None::<&str>; nq],
        "value" => vec![None::<&str>; nq],
        "rule" => vec!["email"; nq],
        "reason" => q_reason,
    )
    .ctx(|| "building the email quarantine".to_string())?;
    Ok(Ingested { rows_read: frame.height() + nq, frame, quarantine })
}

/// A text/plain body that is really an HTML document.
fn looks_like_html(text: &str) -> bool {
    let head: String = text.trim_start().chars().take(512).collect::<String>().to_ascii_lowercase();
    head.starts_with("<html") || head.starts_with("<!doctype html") || head.contains("<body")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_multipart_quoted_printable_base64_html_and_charsets() -> Result<(), Box<dyn std::error::Error>> {
        let qp = b"From: Ann <ann@example.com>\r\nTo: bob@example.com, cy@example.com\r\nSubject: =?iso-8859-1?q?Caf=E9?=\r\nDate: Thu, 22 Aug 2002 12:36:23 +0100\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nna=EFve soft=\r\nbreak\r\n";
        let html = b"From: spam@example.com\r\nSubject: Win\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=XX\r\n\r\n--XX\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\nPGh0bWw+PGJvZHk+PHA+QmlnIDxiPnByaXplPC9iPjwvcD48L2JvZHk+PC9odG1sPg==\r\n--XX--\r\n";
        let disguised = b"From: x@example.com\r\nSubject: Hi\r\nContent-Type: text/plain\r\n\r\n<HTML>\n<BODY>Cheap <B>meds</B></BODY></HTML>\n";
        let got = read_emails(&[
            ("/m/ham/1.txt", qp),
            ("/m/spam/2.txt", html),
            ("/m/spam/3.txt", b"  \n"),
            ("/m/spam/4.txt", b"\x00\x01 just bytes"),
            ("/m/spam/5.txt", disguised),
        ])?;
        assert_eq!(got.rows_read, 5);
        let f = &got.frame;
        assert_eq!(f.height(), 3, "{f}");
        let html: Vec<bool> = f.column("body_html")?.bool()?.iter().flatten().collect();
        assert_eq!(html, vec![false, true, true]);
        let disguised_body = f.column("body")?.str()?.get(2).ok_or("no body")?.to_string();
        assert!(disguised_body.contains("Cheap") && !disguised_body.contains('<'), "{disguised_body}");
        let s = |c: &str, i: usize| f.column(c).ok()?.str().ok()?.get(i).map(str::to_string);
        assert_eq!(s("subject", 0).as_deref(), Some("Café"));
        assert_eq!(s("body", 0).as_deref(), Some("naïve softbreak"));
        assert_eq!(s("to", 0).as_deref(), Some("bob@example.com, cy@example.com"));
        assert_eq!(s("folder", 1).as_deref(), Some("spam"));
        let body = s("body", 1).ok_or("no body")?;
        assert!(body.contains("Big") && body.contains("prize") && !body.contains('<'), "{body}");
        let date = f.column("date")?.cast(&DataType::Int64)?;
        assert_eq!(date.i64()?.get(0), Some(1_030_016_183_000_000)); // 2002-08-22T11:36:23Z
        assert_eq!(got.quarantine.height(), 2);
        let reasons: Vec<&str> = got.quarantine.column("reason")?.str()?.iter().flatten().collect();
        assert_eq!(reasons[0], "empty file");
        Ok(())
    }
}
