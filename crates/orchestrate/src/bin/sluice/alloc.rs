//! The binary's allocator.
//!
//! - Default (the `jemalloc` feature): jemalloc, configured by [`MALLOC_CONF`].
//! - With the `mimalloc` feature: mimalloc (it wins over `jemalloc`). candle allocates a
//!   tensor per op, and mimalloc reuses those blocks warm: embedding-heavy images are
//!   faster with it; it holds about twice the memory on the tabular job.
//! - With neither: the system allocator.
//!
//! Why, and the figures for all three: docs/ARCHITECTURE.md, "The allocator".
#![allow(unsafe_code)]

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[cfg(all(feature = "jemalloc", not(feature = "mimalloc")))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's settings, read when it starts (the `_RJEM_MALLOC_CONF` environment variable,
/// read after them, overrides any of them):
///
/// - `narenas:1`: one arena; each thread's cache takes the small blocks without its lock,
///   and one arena keeps one set of freed pages instead of eight (four per core).
/// - `dirty_decay_ms:500`: freed pages go back to the system within half a second. With
///   glibc the full year at 30x held 40-60 MB of freed memory by its end (1.4x the 1x
///   peak); jemalloc's default (10 s) holds more.
/// - `muzzy_decay_ms:0`: given back at once (`MADV_DONTNEED`), so the resident size drops
///   then, not under memory pressure.
#[cfg(all(feature = "jemalloc", not(feature = "mimalloc")))]
#[export_name = "_rjem_malloc_conf"]
pub static MALLOC_CONF: Option<&'static std::ffi::c_char> =
    // SAFETY: a pointer to the first byte of a static, NUL-terminated string, as jemalloc's
    // `const char *malloc_conf` declares it.
    Some(unsafe { &*c"narenas:1,dirty_decay_ms:500,muzzy_decay_ms:0".as_ptr() });

#[cfg(all(test, feature = "jemalloc", not(feature = "mimalloc")))]
mod tests {
    /// One of jemalloc's `opt.*` settings, as it read them at start.
    fn opt<T: Default>(name: &std::ffi::CStr) -> T {
        let mut value = T::default();
        let mut len = std::mem::size_of::<T>();
        // SAFETY: `value` is `len` writable bytes of the setting's type; no new value is set.
        let rc = unsafe { tikv_jemalloc_sys::mallctl(name.as_ptr(), std::ptr::from_mut(&mut value).cast(), &mut len, std::ptr::null_mut(), 0) };
        assert_eq!(rc, 0, "mallctl {name:?}");
        value
    }

    /// The exported settings are the ones jemalloc runs with (a misspelt symbol or option
    /// would leave its defaults: 8 arenas on 2 cores, 10 s).
    #[test]
    fn jemalloc_reads_the_settings() {
        drop(vec![0u8; 1 << 20]);
        assert_eq!(opt::<u32>(c"opt.narenas"), 1);
        assert_eq!(opt::<isize>(c"opt.dirty_decay_ms"), 500);
        assert_eq!(opt::<isize>(c"opt.muzzy_decay_ms"), 0);
    }
}
