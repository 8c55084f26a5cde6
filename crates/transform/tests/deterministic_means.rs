//! A mean over a group comes out bit-identical on every run once the engine is pinned
//! ([`sluice_transform::pin_engine`]). Its own test binary: pinning sets an environment
//! variable, which must happen before the engine's threads start.

// Test code: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

use sluice_transform::polars::prelude::*;
use sluice_transform::{pin_engine, ColumnType, Contracts, CsvSpec, DimensionSpec, Dimensions};

#[test]
fn a_derived_dimension_is_the_same_on_every_build() {
    pin_engine();
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/sample/landing/dims/weather.csv");
    let bytes = std::fs::read(file).expect("the committed sample");
    let columns = [("origin", ColumnType::Str), ("temp", ColumnType::F64), ("pressure", ColumnType::F64), ("wind_speed", ColumnType::F64)];
    let weather = DimensionSpec::Csv {
        name: "weather".into(),
        file: file.into(),
        spec: CsvSpec {
            columns: columns.iter().map(|(c, t)| (c.to_string(), *t)).collect(),
            null_values: vec!["NA".into()],
            separator: b',',
            contracts: Contracts::default(),
        },
        unique_on: vec![],
    };
    // the flight job's weather_means
    let means = DimensionSpec::Sql {
        name: "means".into(),
        sql: "SELECT origin, AVG(temp) AS t, AVG(pressure) AS p, AVG(wind_speed) AS w FROM weather GROUP BY origin ORDER BY origin".into(),
    };
    let table = weather.read(&bytes).expect("a clean dimension");
    assert!(table.height() > 1000, "enough rows for the engine to partition the GROUP BY");
    let build = || {
        let dims = Dimensions::build(&[weather.clone(), means.clone()], |_| Ok(table.clone())).expect("the means");
        dims.get("means").expect("built").clone()
    };
    let bits = |f: &DataFrame| -> Vec<u64> {
        ["t", "p", "w"].iter().flat_map(|c| f.column(c).and_then(|c| c.f64().cloned()).expect("a float column").into_no_null_iter().map(f64::to_bits).collect::<Vec<_>>()).collect()
    };
    let first = build();
    assert_eq!(first.height(), 3, "three origins");
    // unpinned, about 4 builds in 5 differed from the first in the last bits of some mean
    for i in 1..20 {
        assert_eq!(bits(&build()), bits(&first), "build {i} differs");
    }
}
