//! Link the `sluice` binary with packed relative relocations (DT_RELR) on Linux with glibc.
//!
//! The binary is position-independent and holds about 216,000 relative relocations (Polars'
//! tables of functions); the dynamic loader applied them one by one at every start, 4-5 ms
//! of a 45 ms daily run. Packed, they are a bitmap the loader applies in a fraction of that.
//! Needs GNU ld 2.38+ (or lld 15+, mold) to link and glibc 2.36+ to run, as this machine and
//! the images built from it have.

fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
