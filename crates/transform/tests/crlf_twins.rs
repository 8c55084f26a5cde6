//! A CSV object and its CRLF twin read the same (tests/twins), over the fuzz seeds and
//! hand-made shapes: quotes with line ends inside, blank lines, a lone `\r`, bad records,
//! a byte order mark, no final line end.

// Test code: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use sluice_transform::{ColumnType, Contracts, CsvSpec};

mod twins;

fn flight_like_spec() -> CsvSpec {
    let columns = [("year", ColumnType::I32), ("dep_delay", ColumnType::F64), ("carrier", ColumnType::Str), ("time_hour", ColumnType::Datetime)];
    CsvSpec {
        columns: columns.iter().map(|(n, t)| (n.to_string(), *t)).collect(),
        null_values: vec!["NA".into(), "".into()],
        separator: b',',
        contracts: Contracts::default(),
    }
}

#[test]
fn every_shape_reads_like_its_crlf_twin() {
    let spec = flight_like_spec();
    let head = "year,dep_delay,carrier,time_hour,note\n";
    let shapes = [
        "2013,1.5,UA,2013-01-15T10:00:00Z,a\n2014,NA,AA,2013-01-15 11:00:00,b\n",
        "2013,1.5,UA,2013-01-15T10:00:00Z,\"two\nlines\"\n2014,2,AA,2013-01-15T11:00:00Z,\"c\rr\"\n",
        "2013,1.5,UA,2013-01-15T10:00:00Z,a\n\n\n2014,2,AA,2013-01-15T11:00:00Z,b\n",
        "2013,1.5,UA,2013-01-15T10:00:00Z,a\r2014,2,AA,2013-01-15T11:00:00Z,b\n",
        "2013,x,UA,2013-01-15T10:00:00Z,a\n2014,2,AA\n2015,3,DL,2013-01-15T12:00:00Z,c,extra\n\"open,quote\n",
        "2013,1.5,UA,2013-01-15T10:00:00Z,a\n2014,2,AA,2013-01-15T11:00:00Z,b",
        "2013,1.5,UA,2013-01-15T10:00:00Z,\"\"\n2014,\"\",AA,2013-01-15T11:00:00Z,\"q\"\"q\"\n",
    ];
    for body in shapes {
        let text = format!("{head}{body}");
        twins::assert_reads_like_its_crlf_twin(text.as_bytes(), &spec);
        twins::assert_reads_like_its_crlf_twin(format!("\u{feff}{text}").as_bytes(), &spec);
    }
}

#[test]
fn the_fuzz_seeds_and_the_sample_read_like_their_crlf_twins() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let spec = flight_like_spec();
    let seeds = std::fs::read_dir(repo.join("fuzz/seeds/ingest_csv")).expect("the committed fuzz seeds");
    let mut files: Vec<_> = seeds.map(|e| e.expect("a seed").path()).collect();
    files.push(repo.join("data/sample/landing/flights/2013-01-15.csv"));
    for f in files {
        twins::assert_reads_like_its_crlf_twin(&std::fs::read(&f).expect("a committed file"), &spec);
    }
}
