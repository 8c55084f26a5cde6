//! Pipeline-file validation: any bytes give a pipeline or a list of errors, never a panic.
#![no_main]

use std::io::Write;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Pipeline::load reads a file (relative paths resolve against its folder): one per process
    static FILE: std::sync::LazyLock<std::path::PathBuf> = std::sync::LazyLock::new(|| {
        let dir = std::env::temp_dir().join(format!("sluice-fuzz-pipeline-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        dir.join("p.toml")
    });
    let Ok(mut f) = std::fs::File::create(&*FILE) else { return };
    if f.write_all(data).is_err() {
        return;
    }
    drop(f);
    if let Err(sluice_orchestrate::SluiceError::Pipeline { errors, .. }) = sluice_orchestrate::Pipeline::load_with(&FILE, &[], false) {
        assert!(!errors.is_empty());
    }
});
