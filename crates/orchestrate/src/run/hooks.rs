//! Test hooks at named points of a run, so tests can kill, race and break the real binary
//! at a precise moment instead of guessing with sleeps:
//!
//! - `SLUICE_HOLD_AT=<point>`: at that point the run logs `holding at <point>` and waits
//!   for a line (or the end of input) on stdin; a signal still cancels it.
//! - `SLUICE_PANIC_AT=<point>`: the run panics there (the exit-code contract for bugs).
//! - `SLUICE_FAIL_STAGE=<stage>[:N]` (in [`crate::runtime`]): a stage fails at its N-th item.
//!
//! Points: `dimensions` (the dimension objects are headed, their tables not read yet; the
//! Delta log is read meanwhile), `planned` (the plan and the up-to-date decision are made,
//! nothing read but the dimension tables, nothing written yet) and `commit` (every file is
//! written, the commit is next).

use std::io::BufRead;

use crossbeam_channel::select;

use crate::runtime::Cancel;
use crate::error::SluiceError;

pub(crate) fn checkpoint(point: &str, cancel: &Cancel) -> Result<(), SluiceError> {
    if std::env::var("SLUICE_PANIC_AT").is_ok_and(|p| p == point) {
        panic!("SLUICE_PANIC_AT={point}");
    }
    if !std::env::var("SLUICE_HOLD_AT").is_ok_and(|p| p == point) {
        return Ok(());
    }
    tracing::info!(point, "holding at {point} (SLUICE_HOLD_AT): waiting for a line on stdin");
    let (tx, rx) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::stdin().lock().read_line(&mut line);
        let _ = tx.send(());
    });
    select! {
        recv(rx) -> _ => {}
        recv(cancel.signal()) -> _ => {}
    }
    if cancel.is_cancelled() {
        return Err(SluiceError::Cancelled);
    }
    tracing::info!(point, "released");
    Ok(())
}
