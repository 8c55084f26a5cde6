//! The bf16 linear layers on Intel AMX (Sapphire Rapids and later): `TDPBF16PS` multiplies a
//! 16 x 32 tile of bf16 inputs by a 32 x 16 tile of bf16 weights into 16 x 16 f32 sums, 16
//! times the products of an AVX-512 `VDPBF16PS` per instruction. Where present it replaces
//! [`crate::bf16`]'s AVX-512 kernel, which on these cores runs `VDPBF16PS` at one per cycle
//! and so no faster than two f32 FMAs.
//!
//! It reads the same operands as that kernel: the input rows as bf16 pairs (a tile row is 16
//! pairs of one row) and the weight panels of 32 columns packed pair by pair (a tile row is
//! one pair of rows, 16 columns, 128 bytes apart). Only the tile instructions are assembly
//! (`asm!`; Rust's AMX intrinsics are unstable); the loops are Rust.
//!
//! Linux hands a process the tiles' 8 KiB of register state only when asked
//! (`arch_prctl(ARCH_REQ_XCOMP_PERM)`): [`available`] asks once, and says no where the CPU,
//! the kernel or the hypervisor does not offer it.
#![allow(unsafe_code)]

/// Rows of a tile, and of the input rows a kernel call takes at a time (padded to it).
pub(crate) const ROWS: usize = 16;
/// Input columns (bf16 values) a tile holds: the weight's rows must be a multiple of it.
pub(crate) const K_STEP: usize = 32;

/// True when this process may run AMX bf16 tiles: the CPU has AMX-TILE and AMX-BF16, and
/// Linux granted the tile state (asked on the first call).
pub(crate) fn available() -> bool {
    static GRANTED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *GRANTED.get_or_init(|| {
        let granted = request_tiles();
        tracing::debug!(granted, "AMX bf16 tiles");
        granted
    })
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn request_tiles() -> bool {
    use std::arch::x86_64::{__cpuid_count, __get_cpuid_max};
    const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
    const XFEATURE_XTILEDATA: libc::c_long = 18;
    #[allow(unused_unsafe)] // cpuid is safe to call in newer Rust
    let (max_leaf, leaf7) = unsafe { (__get_cpuid_max(0).0, __cpuid_count(7, 0)) };
    // CPUID.(EAX=7,ECX=0):EDX bit 22 AMX-BF16, bit 24 AMX-TILE
    let cpu = max_leaf >= 7 && leaf7.edx & (1 << 22) != 0 && leaf7.edx & (1 << 24) != 0;
    // SAFETY: arch_prctl with these arguments only changes which register state the kernel
    // lets this process use; it reads and writes no memory of ours
    cpu && unsafe { libc::syscall(libc::SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) } == 0
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
fn request_tiles() -> bool {
    false
}

/// This thread's tiles, configured as eight 16 x 64-byte tiles while it lives, released
/// on drop (so a context switch need not save them). Made only where [`available`].
pub(crate) struct Tiles(std::marker::PhantomData<*const ()>);

#[cfg(target_arch = "x86_64")]
impl Tiles {
    pub(crate) fn configure() -> Tiles {
        debug_assert!(available());
        /// `LDTILECFG`'s operand: palette 1, then each tile's bytes per row and rows.
        #[repr(C, align(64))]
        struct Config {
            palette: u8,
            start_row: u8,
            reserved: [u8; 14],
            bytes_per_row: [u16; 16],
            rows: [u8; 16],
        }
        let mut config = Config { palette: 1, start_row: 0, reserved: [0; 14], bytes_per_row: [0; 16], rows: [0; 16] };
        config.bytes_per_row[..8].fill(64);
        config.rows[..8].fill(ROWS as u8);
        // SAFETY: available() said this process may use the tiles; the operand is 64 bytes
        unsafe { std::arch::asm!("ldtilecfg [{0}]", in(reg) &config, options(nostack, readonly, preserves_flags)) };
        Tiles(std::marker::PhantomData)
    }

    /// `C (rows, 32) = A (rows, 2 x pairs) x B (2 x pairs, 32)` for one 32-column weight
    /// panel: `a` holds `rows` (a multiple of [`ROWS`]) input rows of `pairs` bf16 pairs,
    /// `b` the panel's `pairs` rows of 32 column pairs; `c` points at the output's first
    /// row and column, `ldc` floats a row, and the kernel stores (not adds) all `rows x 32`.
    ///
    /// # Safety
    /// `pairs` is a multiple of 16, `a` and `b` hold what is said above, and `c` has room
    /// for `rows` rows of `ldc` floats, the last less `ldc - 32`.
    pub(crate) unsafe fn panel(&self, a: &[u32], rows: usize, pairs: usize, b: &[u16], c: *mut f32, ldc: usize) {
        debug_assert!(rows.is_multiple_of(ROWS) && pairs.is_multiple_of(K_STEP / 2) && a.len() >= rows * pairs && b.len() >= pairs * 64);
        let mut r0 = 0;
        while r0 < rows {
            let two = rows - r0 >= 2 * ROWS;
            self.block(a.as_ptr().add(r0 * pairs), pairs, b.as_ptr(), c.add(r0 * ldc), ldc, two);
            r0 += if two { 2 * ROWS } else { ROWS };
        }
    }

    /// 16 or (`two`) 32 rows of `a` times the panel: C tiles 0 and 1 (and 2 and 3) hold
    /// the panel's two 16-column halves, A tiles 4 (and 5), B tiles 6 and 7.
    unsafe fn block(&self, a: *const u32, pairs: usize, b: *const u16, c: *mut f32, ldc: usize, two: bool) {
        use std::arch::asm;
        let (a_stride, b_stride) = (pairs * 4, 128usize);
        asm!("tilezero tmm0", "tilezero tmm1", "tilezero tmm2", "tilezero tmm3", options(nostack, nomem, preserves_flags));
        for step in 0..pairs / 16 {
            // 16 pairs (32 bf16 values) of each row, and the weight's 32 rows those pairs meet
            let (a0, b0) = (a.add(step * 16), b.add(step * 16 * 64));
            asm!(
                "tileloadd tmm4, [{a0} + {sa}*1]",
                "tileloadd tmm6, [{b0} + {sb}*1]",
                "tileloadd tmm7, [{b1} + {sb}*1]",
                "tdpbf16ps tmm0, tmm4, tmm6",
                "tdpbf16ps tmm1, tmm4, tmm7",
                a0 = in(reg) a0, sa = in(reg) a_stride, b0 = in(reg) b0, b1 = in(reg) b0.add(32), sb = in(reg) b_stride,
                options(nostack, readonly, preserves_flags),
            );
            if two {
                asm!(
                    "tileloadd tmm5, [{a1} + {sa}*1]",
                    "tdpbf16ps tmm2, tmm5, tmm6",
                    "tdpbf16ps tmm3, tmm5, tmm7",
                    a1 = in(reg) a0.add(ROWS * pairs), sa = in(reg) a_stride,
                    options(nostack, readonly, preserves_flags),
                );
            }
        }
        let sc = ldc * 4;
        asm!("tilestored [{c} + {sc}*1], tmm0", "tilestored [{c1} + {sc}*1], tmm1", c = in(reg) c, c1 = in(reg) c.add(16), sc = in(reg) sc, options(nostack, preserves_flags));
        if two {
            let c = c.add(ROWS * ldc);
            asm!("tilestored [{c} + {sc}*1], tmm2", "tilestored [{c1} + {sc}*1], tmm3", c = in(reg) c, c1 = in(reg) c.add(16), sc = in(reg) sc, options(nostack, preserves_flags));
        }
    }
}

#[cfg(target_arch = "x86_64")]
impl Drop for Tiles {
    fn drop(&mut self) {
        // SAFETY: the tiles were configured by this value's constructor on this thread
        unsafe { std::arch::asm!("tilerelease", options(nostack, nomem, preserves_flags)) };
    }
}

#[cfg(not(target_arch = "x86_64"))]
impl Tiles {
    pub(crate) fn configure() -> Tiles {
        unreachable!("AMX is never available off x86_64")
    }
    pub(crate) unsafe fn panel(&self, _: &[u32], _: usize, _: usize, _: &[u16], _: *mut f32, _: usize) {
        unreachable!("AMX is never available off x86_64")
    }
}
