#!/usr/bin/env bash
# Fuzz each target for a fixed budget, starting from the committed seeds (fuzz/seeds/<target>).
# New inputs go to a scratch corpus outside the clone; a crash is written to
# fuzz/artifacts/<target>/ and makes this script exit 1 (turn it into a regression test).
#
#   fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]      default: 120 s each, every target
#
# Needs the nightly toolchain (rustup) and cargo-fuzz (installed here if missing). The first
# build compiles Polars and candle instrumented: ~25 min on 2 cores, then incremental.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-120}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(ingest_csv ingest_ndjson email pipeline)
export CARGO_TARGET_DIR=${SLUICE_FUZZ_TARGET_DIR:-$HOME/.cache/sluice/fuzz-target}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
# no sanitizer: the code is safe Rust (unsafe_code = "forbid"); what is looked for is panics,
# aborts, runaway memory and hangs, and uninstrumented runs are several times faster
cargo +nightly fuzz build --sanitizer none
status=0
for t in "${targets[@]}"; do
    corpus="$CARGO_TARGET_DIR/corpus/$t"
    mkdir -p "$corpus" "artifacts/$t"
    log="$CARGO_TARGET_DIR/fuzz-$t.log"
    if cargo +nightly fuzz run --sanitizer none "$t" "$corpus" "seeds/$t" -- \
        -max_total_time="$secs" -rss_limit_mb=4096 -timeout=20 -print_final_stats=1 >"$log" 2>&1; then
        result=ok
    else
        result=CRASH
        status=1
    fi
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 || true)
    echo "$t: $result, $execs executions in ${secs}s, $cov, corpus $(ls "$corpus" | wc -l) inputs, crashes: $(ls "artifacts/$t" | wc -l) (log: $log)"
done
exit $status
