#!/usr/bin/env bash
# How long the README's first command takes on a fresh clone with a cold cargo cache, and
# where the time goes: clones HEAD into a temporary folder, builds with an empty CARGO_HOME
# (so every crate is downloaded) and `cargo build --timings`, then prints wall and CPU time
# and the slowest units from cargo's timing report.
#
#   bench/cold_build.sh [CARGO ARGS...]     # default: -p sluice-orchestrate --bin sluice
#
# Uses both cores for 15-35 minutes; run nothing else meanwhile. Keeps the timing report
# (the path is printed) and removes the rest.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work=$(mktemp -d "${TMPDIR:-/tmp}/sluice-cold.XXXXXX")
trap 'rm -rf "$work/clone" "$work/cargo"' EXIT
git clone -q "$repo" "$work/clone"
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(-p sluice-orchestrate --bin sluice)
cd "$work/clone"
start=$(date +%s.%N)
CARGO_HOME="$work/cargo" CARGO_TARGET_DIR="$work/clone/target" /usr/bin/time -f "%e %U %S %M" -o "$work/time" \
    cargo build --timings "${args[@]}" >"$work/build.log" 2>&1 || { tail -20 "$work/build.log"; exit 1; }
mkdir -p "$work/report" && cp target/cargo-timings/cargo-timing.html "$work/report/"
read -r wall user sys rss <"$work/time"
echo "cold build (cargo build ${args[*]}): wall ${wall}s, CPU ${user}s user + ${sys}s sys, peak RSS $((rss / 1024)) MiB, load average $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$work/report/cargo-timing.html" <<'PY'
import json, re, sys
html = open(sys.argv[1]).read()
units = json.loads(re.search(r"const UNIT_DATA = (\[.*?\]);\n", html, re.S).group(1))
total = sum(u["duration"] for u in units)
print(f"{len(units)} units, {total:.0f} unit-seconds; the slowest:")
groups = {}
for u in units:
    key = "polars-*" if u["name"].startswith("polars") else u["name"]
    groups[key] = groups.get(key, 0) + u["duration"]
for name, d in sorted(groups.items(), key=lambda kv: -kv[1])[:15]:
    print(f"  {d:7.1f}s {100 * d / total:4.1f}%  {name}")
PY
echo "timing report: $work/report/cargo-timing.html"
