//! The binary's allocator and glibc's settings.
//!
//! - Default: the system allocator (glibc), with [`Pages`] in front for large page-aligned
//!   blocks, and one malloc arena per two cores ([`limit_malloc_arenas`]).
//! - With the `mimalloc` feature: mimalloc. candle allocates a tensor per op, and mimalloc
//!   reuses freed blocks where glibc would map fresh ones (the sample email pipeline 3.9 s
//!   against 4.2 s with glibc and one arena). The system allocator holds less memory on
//!   the tabular job (211–269 MiB against 279–391, before the arenas were limited).
#![allow(unsafe_code)]

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[cfg(all(unix, not(feature = "mimalloc")))]
#[global_allocator]
static GLOBAL: Pages = Pages;

/// The system allocator, except for page-aligned blocks of at least [`Pages::MIN`] bytes:
/// those are fresh anonymous pages (`mmap`), unmapped when freed.
///
/// Why: std's `System` zeroes an over-aligned block with a `memset` (glibc has no aligned
/// `calloc`), which touches every page. Polars keeps an 8 MiB block of zeroes, aligned to a
/// page, for its all-zero and all-null columns: the first one a run makes wrote all 8 MiB,
/// 2,000 page faults (a third of a daily run's) and 8 MiB of resident memory, on the
/// transform stage's thread. Mapped pages are zero already, and read as zeroes they stay
/// unbacked. Only page alignment takes this route: gemm's packing buffers (aligned to 64 or
/// 128, allocated per product) and Arrow's stay with glibc, which reuses warm pages.
#[cfg(unix)]
pub struct Pages;

#[cfg(unix)]
impl Pages {
    const MIN: usize = 1 << 20;
    const PAGE: usize = 4096;

    fn mapped(layout: std::alloc::Layout) -> bool {
        layout.size() >= Self::MIN && layout.align() == Self::PAGE
    }

    fn map(size: usize) -> *mut u8 {
        // SAFETY: a new private anonymous mapping; nothing else refers to its address.
        let p = unsafe { libc::mmap(std::ptr::null_mut(), size, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0) };
        if p == libc::MAP_FAILED {
            std::ptr::null_mut()
        } else {
            p.cast()
        }
    }
}

// SAFETY: every block is either the system allocator's or a mapping of exactly
// `layout.size()` bytes, told apart by its layout alone ([`Pages::mapped`]), which
// `dealloc` and `realloc` receive unchanged; mappings are page-aligned, the alignment
// routed to them.
#[cfg(unix)]
unsafe impl std::alloc::GlobalAlloc for Pages {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        if Self::mapped(layout) {
            Self::map(layout.size())
        } else {
            unsafe { std::alloc::System.alloc(layout) }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        if Self::mapped(layout) {
            Self::map(layout.size())
        } else {
            unsafe { std::alloc::System.alloc_zeroed(layout) }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        if Self::mapped(layout) {
            unsafe { libc::munmap(ptr.cast(), layout.size()) };
        } else {
            unsafe { std::alloc::System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees `new_size`, rounded up to the alignment, fits isize.
        let new = unsafe { std::alloc::Layout::from_size_align_unchecked(new_size, layout.align()) };
        if !Self::mapped(layout) && !Self::mapped(new) {
            return unsafe { std::alloc::System.realloc(ptr, layout, new_size) };
        }
        let moved = unsafe { self.alloc(new) };
        if !moved.is_null() {
            unsafe {
                std::ptr::copy_nonoverlapping(ptr, moved, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        moved
    }
}

/// glibc gives each thread that meets a locked arena a new one, up to 8 per core, and keeps
/// what is freed into an arena for that arena: the stages, Polars' pool and the I/O threads
/// spread a run's churn over 16 arenas on 2 cores. One arena per two cores (at least one)
/// took the full year's peak from 175–214 to 133–143 MiB at 1x and from 206–211 to 141–150
/// at 30x, for 13–20% more wall at 10x (threads queue on the one arena's lock; see
/// docs/ARCHITECTURE.md, "Blocks"). A
/// `MALLOC_ARENA_MAX` or `glibc.malloc.arena_max` tunable set by the user wins.
#[cfg(all(target_os = "linux", target_env = "gnu", not(feature = "mimalloc")))]
pub fn limit_malloc_arenas() {
    let tunables = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() || tunables.contains("arena_max") {
        return;
    }
    let arenas = std::thread::available_parallelism().map_or(1, |n| n.get() / 2).max(1);
    // SAFETY: mallopt sets one allocator parameter; no other thread exists yet to race it.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, i32::try_from(arenas).unwrap_or(i32::MAX));
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu", not(feature = "mimalloc"))))]
pub fn limit_malloc_arenas() {}

#[cfg(all(test, unix))]
mod tests {
    use std::alloc::{GlobalAlloc, Layout};

    use super::Pages;

    /// Polars' block of zeroes: 8 MiB aligned to a page, mapped, zero, writable, freed.
    #[test]
    fn a_large_over_aligned_block_is_zeroed_pages() {
        let layout = Layout::from_size_align(8 << 20, 4096).unwrap();
        assert!(Pages::mapped(layout));
        unsafe {
            let p = Pages.alloc_zeroed(layout);
            assert!(!p.is_null());
            assert_eq!(p as usize % 4096, 0);
            let block = std::slice::from_raw_parts_mut(p, layout.size());
            assert!(block.iter().step_by(4096).chain(block.last()).all(|b| *b == 0));
            block[12345] = 7;
            assert_eq!(block[12345], 7);
            Pages.dealloc(p, layout);
        }
    }

    /// Growing across the threshold and shrinking back keeps the contents, whichever side
    /// of it each block is on; small blocks and other alignments stay the system's.
    #[test]
    fn realloc_across_the_threshold_keeps_the_contents() {
        assert!(!Pages::mapped(Layout::from_size_align(4 << 20, 16).unwrap()));
        assert!(!Pages::mapped(Layout::from_size_align(4 << 20, 128).unwrap()));
        assert!(!Pages::mapped(Layout::from_size_align(Pages::MIN - 4096, 4096).unwrap()));
        assert!(!Pages::mapped(Layout::from_size_align(4 << 20, 8192).unwrap()));
        let small = Layout::from_size_align(1000, 4096).unwrap();
        unsafe {
            let p = Pages.alloc(small);
            (0..1000).for_each(|i| *p.add(i) = (i % 251) as u8);
            let big = Pages.realloc(p, small, 3 << 20);
            assert!(Pages::mapped(Layout::from_size_align(3 << 20, 4096).unwrap()));
            assert!((0..1000).all(|i| *big.add(i) == (i % 251) as u8));
            *big.add((3 << 20) - 1) = 9;
            let bigger = Pages.realloc(big, Layout::from_size_align(3 << 20, 4096).unwrap(), 5 << 20);
            assert!((0..1000).all(|i| *bigger.add(i) == (i % 251) as u8));
            assert_eq!(*bigger.add((3 << 20) - 1), 9);
            let back = Pages.realloc(bigger, Layout::from_size_align(5 << 20, 4096).unwrap(), 500);
            assert!((0..500).all(|i| *back.add(i) == (i % 251) as u8));
            Pages.dealloc(back, Layout::from_size_align(500, 4096).unwrap());
        }
    }
}
