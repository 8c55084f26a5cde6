"""What the Python test scripts share (standard library only, so every venv can import it):
the repository, the sluice binary under test, the committed sample, and the `ok:`/`FAILED:`
checks. Each script puts this folder on sys.path."""

from __future__ import annotations

import csv
import json
import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
SLUICE = Path(os.environ.get("SLUICE_BIN", TARGET / "debug/sluice"))
FLIGHTS = REPO / "data/sample/landing/flights"


def check(cond: bool, what: str) -> None:
    if not cond:
        raise SystemExit(f"FAILED: {what}")
    print(f"ok: {what}")


def sluice_json(*args: str) -> dict | list:
    """The last stdout line of `sluice ARGS` (which must succeed), parsed."""
    out = subprocess.run([str(SLUICE), *args], cwd=REPO, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def csv_rows(date: str) -> int:
    """Data rows in the sample's flights file of `date`."""
    with open(FLIGHTS / f"{date}.csv", newline="") as f:
        return sum(1 for _ in csv.reader(f)) - 1
