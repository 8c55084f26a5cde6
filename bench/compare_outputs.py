#!/usr/bin/env python3
"""Check that two flight-scoring outputs agree: per date, the same rows (as multisets: rows
sorted on every column but the score), every column equal, `delay_prob` within TOL.

    python compare_outputs.py SLUICE_SUMMARY.json PEER_OUT_DIR [TOL]

Other float columns may differ in the last bits (a mean summed in another order): within 1e-9
relative. SLUICE_SUMMARY.json: the last line of `sluice run` (lists each partition's files); PEER_OUT_DIR:
date=D/part.parquet per date. Needs polars. Exits 1 on the first difference.
"""
import glob
import json
import sys

import polars as pl

summary, peer, tol = sys.argv[1], sys.argv[2], float(sys.argv[3]) if len(sys.argv) > 3 else 1.8e-7
parts = json.loads(open(summary).read().splitlines()[-1])["partitions"]
ours = {p["partition"].split("=", 1)[1]: p["files"] for p in parts}
theirs = {f.split("date=")[1].split("/")[0]: f for f in glob.glob(f"{peer}/date=*/*.parquet")}
if set(ours) != set(theirs):
    sys.exit(f"dates differ: {len(ours)} from sluice, {len(theirs)} from {peer}")
worst, rows = 0.0, 0
for date in sorted(ours):
    a = pl.concat([pl.read_parquet(f) for f in ours[date]])
    b = pl.read_parquet(theirs[date]).select(a.columns)
    b = b.with_columns(b["day_of_week"].cast(a["day_of_week"].dtype))
    floats = [c for c in a.columns if a[c].dtype == pl.Float64]
    exact = [c for c in a.columns if c not in floats and c != "delay_prob"]
    a, b = a.sort(exact + floats, nulls_last=True), b.sort(exact + floats, nulls_last=True)
    if a.height != b.height or not a.select(exact).equals(b.select(exact), null_equal=True):
        sys.exit(f"{date}: rows differ ({a.height} vs {b.height})")
    for c in floats:
        if not ((a[c] - b[c]).abs() <= 1e-9 * a[c].abs().clip(lower_bound=1.0)).fill_null(True).all() or a[c].null_count() != b[c].null_count():
            sys.exit(f"{date}: column {c} differs")
    diff = (a["delay_prob"].cast(pl.Float64) - b["delay_prob"].cast(pl.Float64)).abs().max() or 0.0
    worst, rows = max(worst, diff), rows + a.height
    if diff > tol:
        sys.exit(f"{date}: delay_prob differs by {diff:.3g} (> {tol})")
print(f"agree: {len(ours)} dates, {rows} rows, delay_prob within {worst:.2g}")
