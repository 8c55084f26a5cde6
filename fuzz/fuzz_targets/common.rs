//! The flight pipeline's declared source schema and contracts, loaded once.

use std::path::Path;
use std::sync::LazyLock;

use sluice_orchestrate::Pipeline;
use sluice_transform::CsvSpec;

pub static SPEC: LazyLock<CsvSpec> = LazyLock::new(|| {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../pipelines/flight_delays.toml");
    match Pipeline::load_with(&path, &[], false) {
        Ok(p) => p.csv,
        Err(e) => panic!("the fuzz targets need {}: {e}", path.display()),
    }
});
