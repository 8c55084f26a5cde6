//! Good CSV in the shapes Windows tools and hand edits give it (CRLF line ends, no final line
//! end, blank lines, a byte order mark, a `\r` inside a quoted field) publishes the same rows
//! as the clean LF file: the committed sample day, converted here.

use super::*;

/// Publish `text` as the sample day's flights: the published rows and the summary's
/// partition. (The files' bytes differ only in their lineage: run id and input checksums.)
fn publish(tag: &str, text: &str) -> (DataFrame, Value) {
    let landing = landing_copy(tag);
    std::fs::write(landing.join(format!("flights/{DATE}.csv")), text).unwrap();
    let ds = temp_dir(&format!("{tag}-ds"));
    let (p, param) = (pipeline(), format!("landing={}", landing.display()));
    let out = sluice(&["run", p.to_str().unwrap(), "--param", &param, "--output", ds.to_str().unwrap(), "--date", DATE]);
    assert_eq!(out.code, 0, "{tag}: {}", out.stderr);
    let part = out.summary()["partitions"][0].clone();
    let files: Vec<&str> = part["files"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
    let mut frame = read_parquet(files[0]);
    for f in &files[1..] {
        frame.vstack_mut(&read_parquet(f)).unwrap();
    }
    (frame, part)
}

fn sample_day() -> String {
    let lf = std::fs::read_to_string(repo().join(format!("data/sample/landing/flights/{DATE}.csv"))).unwrap();
    assert!(!lf.contains('\r') && lf.ends_with('\n'), "the sample is a clean LF file");
    lf
}

/// A blank line (`eol` alone) after every 100th line.
fn with_blank_lines(text: &str, eol: &str) -> String {
    text.lines().enumerate().map(|(i, l)| if i % 100 == 99 { format!("{l}{eol}{eol}") } else { format!("{l}{eol}") }).collect()
}

#[test]
fn windows_line_ends_blank_lines_and_a_byte_order_mark_publish_the_same_rows() {
    let lf = sample_day();
    let (clean, part) = publish("lf", &lf);
    assert!(part["rows_out"].as_u64().unwrap() > 0);
    let crlf = lf.replace('\n', "\r\n");
    let variants = [
        ("crlf", crlf.clone()),
        ("crlf-no-final-eol", crlf.trim_end().to_string()),
        ("lf-no-final-eol", lf.trim_end().to_string()),
        ("bom-crlf", format!("\u{feff}{crlf}")),
        ("blank-lines-lf", with_blank_lines(&lf, "\n")),
        ("blank-lines-crlf", with_blank_lines(&lf, "\r\n")),
    ];
    for (tag, text) in variants {
        let (got, p) = publish(tag, &text);
        assert_eq!(got.schema(), clean.schema(), "{tag}");
        assert!(got.equals_missing(&clean), "{tag}: the published rows differ");
        for k in ["rows_in", "rows_out", "rows_quarantined", "rows_filtered"] {
            assert_eq!(p[k], part[k], "{tag}: {k}");
        }
    }
}

#[test]
fn a_carriage_return_inside_a_quoted_field_is_data_with_either_line_end() {
    // the first flight's `dest` (column 14) quoted, with a `\r` inside
    let lf = sample_day();
    let mut lines: Vec<String> = lf.lines().map(str::to_string).collect();
    let mut fields: Vec<String> = lines[1].split(',').map(str::to_string).collect();
    let dest = fields[13].clone();
    fields[13] = format!("\"{}\r{}\"", &dest[..1], &dest[1..]);
    lines[1] = fields.join(",");
    let lf = lines.join("\n") + "\n";
    let (a, _) = publish("cr-in-quotes-lf", &lf);
    let (b, _) = publish("cr-in-quotes-crlf", &lf.replace('\n', "\r\n"));
    assert!(a.schema() == b.schema() && a.equals_missing(&b), "LF and CRLF twins differ");
    let with_cr = a.column("dest").unwrap().str().unwrap().iter().flatten().filter(|d| d.contains('\r')).count();
    assert_eq!(with_cr, 1, "the quoted \\r is kept as data");
}
