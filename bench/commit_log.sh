#!/usr/bin/env bash
# Opening a dataset with a long history: `sluice show --json` on 10, 10,000 and 10,099
# commits, with and without checkpoints, on local disk and on S3 (moto on loopback).
# Prints the median wall of $SHOWS runs (default 3), the commits read (from the debug log) and, on S3, the
# requests moto served. Needs release binaries:
#   cargo build --release -p sluice-orchestrate --bin sluice -p sluice-extract --bin sluice-extract
#
# The long history is pin/unpin commits: commit 1 is a real publish; Delta versions 2..9,999
# are written by this script as sluice writes a pin (commitInfo with sluice's record, and the
# table's metaData with the pins; creating them through the CLI would take hours, each pin
# reading the whole log); commit 10,000 is a real `sluice pin`, whose writer builds Delta
# checkpoint 10,000 (deltalake-core) as sluice does every 100 commits. "No checkpoint"
# removes the checkpoint and `_last_checkpoint`: the reader replays every JSON commit.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-${CARGO_TARGET_DIR:-target}/release/sluice}
EXTRACT=${EXTRACT:-${CARGO_TARGET_DIR:-target}/release/sluice-extract}
CACHE="${SLUICE_CACHE:-$HOME/.cache/sluice}"
WORK=$(mktemp -d /tmp/sluice-bench-log.XXXX)
stores=$(tests/object_stores.sh start)
eval "$stores"
trap 'tests/object_stores.sh stop' EXIT
MOTO_LOG="$CACHE/store-logs/moto.log"
export AWS_ENDPOINT_URL="$SLUICE_TEST_S3" AWS_ALLOW_HTTP=true AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1
PART=date=2013-01-15

synthetic() { # dataset first last: pin/unpin commits first..last
  python3 - "$@" "$PART" <<'PY'
import json, sys, datetime
ds, first, last, part = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
log = lambda n: f"{ds}/_delta_log/{n:020}.json"
meta = next(json.loads(l)["metaData"] for l in open(log(0)) if "metaData" in l)
add = next(json.loads(l)["add"] for l in open(log(1)) if '"add"' in l)
version = add["tags"]["sluice.version"]
t = datetime.datetime.now(datetime.timezone.utc)
for n in range(first, last + 1):
    ts = t + datetime.timedelta(milliseconds=n)
    pinned = n % 2 == 0
    rec = {"commit": n, "timestamp": ts.isoformat().replace("+00:00", "Z"), "operation": "pin", "run_id": f"pin-bench-{n}",
           "sluice_version": "0.1.0", "command": [], "pins": [{"partition": part, "version": version, "pinned": pinned}]}
    pins = [{"partition": part, "version": version, "note": None, "commit": n, "timestamp": rec["timestamp"]}] if pinned else []
    m = dict(meta, configuration=dict(meta["configuration"], **{"sluice.pins": json.dumps(pins)}))
    info = {"timestamp": int(ts.timestamp() * 1000), "operation": "sluice pin", "engineInfo": "sluice/0.1.0", "sluice": rec}
    with open(log(n), "x") as f:
        f.write(json.dumps({"commitInfo": info}) + "\n" + json.dumps({"metaData": m}))
PY
}

history() { # dataset commits
  "$BIN" run pipelines/flight_delays.toml --date 2013-01-15 --output "$1" >/dev/null 2>&1
  if [ "$2" -ge 10000 ]; then
    synthetic "$1" 2 9999
    version=$(python3 -c "import json,sys; print(next(json.loads(l)['add']['tags']['sluice.version'] for l in open(sys.argv[1]) if '\"add\"' in l))" "$1/_delta_log/$(printf %020d 1).json")
    "$BIN" pin "$1" --partition "$PART" --version "$version" >/dev/null 2>&1   # commit 10,000: writes the checkpoint
    [ "$2" -gt 10000 ] && synthetic "$1" 10001 "$2"
  else
    synthetic "$1" 2 "$2"
  fi
  return 0
}

measure() { # name dataset-uri
  python3 - "$BIN" "$@" "$MOTO_LOG" <<'PY'
import os, re, statistics, subprocess, sys, time
bin, name, ds, moto_log = sys.argv[1:5]
env = dict(os.environ, SLUICE_LOG="sluice_orchestrate::store=debug")
walls, read = [], "?"
start = sum(1 for _ in open(moto_log))
shows = int(os.environ.get("SHOWS", "3"))
for _ in range(shows):
    t = time.perf_counter()
    out = subprocess.run([bin, "show", ds, "--json"], env=env, capture_output=True, text=True, check=True)
    walls.append(time.perf_counter() - t)
    m = re.search(r"read the Delta log\W+version\W+(\d+)", re.sub(r"\x1b\[[0-9;]*m", "", out.stderr))
    read = f"version {m.group(1)}" if m else "?"
reqs = ""
if ds.startswith("s3://"):
    lines = open(moto_log).readlines()[start:]
    # moto colours the request of a non-2xx answer (a 404 probe): allow an escape sequence
    n = len([l for l in lines if re.search(r'"(\x1b\[[0-9;]*m)?(GET|HEAD) ', l)])
    reqs = f", {n // shows} requests per show"
print(f"{name:34} {statistics.median(walls) * 1000:8.1f} ms  ({read}{reqs})")
PY
}

for n in 10 10000 10099; do
  history "$WORK/d$n" "$n"
  cp -r "$WORK/d$n" "$WORK/d$n-nocp" && rm -f "$WORK/d$n-nocp"/_delta_log/*.checkpoint.parquet "$WORK/d$n-nocp/_delta_log/_last_checkpoint"
  for v in "d$n" "d$n-nocp"; do
    "$EXTRACT" "$WORK/$v/" "s3://sluice-test/bench-log/$v/" >/dev/null 2>&1
  done
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for n in 10 10000 10099; do
  measure "local, $n commits" "$WORK/d$n"
  measure "local, $n commits, no checkpoint" "$WORK/d$n-nocp"
  measure "s3, $n commits" "s3://sluice-test/bench-log/d$n"
  measure "s3, $n commits, no checkpoint" "s3://sluice-test/bench-log/d$n-nocp"
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); datasets in $WORK"
