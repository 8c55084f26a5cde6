#!/usr/bin/env bash
# Full-year backfill (365 dates, one commit) with the landing zone and the dataset in a real
# S3 API (moto, on loopback), against the same run on local disk. Prints wall, rows/s, peak
# RSS and, for S3, the requests moto served (by method). Needs the fetched year
# (python3 data/fetch_nycflights13.py) and release binaries:
#   cargo build --release -p sluice-orchestrate --bin sluice -p sluice-extract --bin sluice-extract
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-${CARGO_TARGET_DIR:-target}/release/sluice}
EXTRACT=${EXTRACT:-${CARGO_TARGET_DIR:-target}/release/sluice-extract}
CACHE="${SLUICE_CACHE:-$HOME/.cache/sluice}"
WORK=$(mktemp -d /tmp/sluice-bench-s3.XXXX)
stores=$(tests/object_stores.sh start)   # (an assignment, so a failed start stops the script)
eval "$stores"
trap 'tests/object_stores.sh stop' EXIT
MOTO_LOG="$CACHE/store-logs/moto.log"
export AWS_ENDPOINT_URL="$SLUICE_TEST_S3" AWS_ALLOW_HTTP=true AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1
RANGE=(--from 2013-01-01 --to 2013-12-31)
timed() { /usr/bin/time -f "%e %M" -o "$1" "${@:2}"; }
report() { # name time-file summary-file [requests]
  python3 - "$@" <<'PY'
import json, sys
name, tf, sf = sys.argv[1:4]
wall, peak = map(float, open(tf).read().split())
rows = json.loads(open(sf).read().splitlines()[-1])["rows"]["out"]
extra = f", {sys.argv[4]}" if len(sys.argv) > 4 else ""
print(f"{name:6} {rows} rows out, {wall:.2f} s, {rows / wall:,.0f} rows/s, peak RSS {peak / 1024:.0f} MiB{extra}")
PY
}
requests_since() { # line number -> "N requests (GET a, PUT b, ...)"
  # moto colours the request of a non-2xx answer: drop escape sequences first
  tail -n +"$1" "$MOTO_LOG" | sed 's/\x1b\[[0-9;]*m//g' | grep -oE '"(GET|PUT|HEAD|POST|DELETE) ' | sort | uniq -c |
    awk '{ n += $1; s = s sprintf("%s%s %d", (s ? ", " : ""), substr($2, 2), $1) } END { printf "%d requests (%s)", n, s }'
}

"$EXTRACT" data/full/landing/flights/ s3://sluice-test/bench/landing/flights/ >/dev/null 2>"$WORK/upload.log"
"$EXTRACT" data/full/landing/dims/ s3://sluice-test/bench/landing/dims/ >/dev/null 2>>"$WORK/upload.log"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"

timed "$WORK/local.time" "$BIN" run pipelines/flight_delays.toml "${RANGE[@]}" --param landing=data/full/landing \
  --output "$WORK/local" >"$WORK/local.json" 2>"$WORK/local.log"
report local "$WORK/local.time" "$WORK/local.json"

start_line=$(( $(wc -l <"$MOTO_LOG") + 1 ))
timed "$WORK/s3.time" "$BIN" run pipelines/flight_delays.toml "${RANGE[@]}" --param landing=s3://sluice-test/bench/landing \
  --output s3://sluice-test/bench/ds >"$WORK/s3.json" 2>"$WORK/s3.log"
report s3 "$WORK/s3.time" "$WORK/s3.json" "$(requests_since "$start_line")"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); logs in $WORK"
