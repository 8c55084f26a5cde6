"""Read a sluice dataset the way downstream engines do, without sluice: Python `deltalake`
(delta-rs), Polars `scan_delta` and the Databricks kernel's Python wrapper
(`delta-kernel-rust-sharing-wrapper`). Prints one JSON object:

  latest      the table's latest version (deltalake)
  versions    {N: {"files": sorted file URIs, "rows": rows read, or null if reading failed,
                   "error": the exception's type when it did}} for every version 0..latest
  history     [[version, operation], ...] from deltalake's history()
  polars      {"rows": N, "partitions": sorted partition values} of the current table
  kernel      {"version": N, "rows": N} of the current table
  vacuum      what deltalake's vacuum(dry_run=True) would delete, with --vacuum-hours H

Usage: read_delta.py URI [--s3 ENDPOINT SECRET] [--vacuum-hours H]
"""
import argparse
import json
import os

import polars as pl
from deltalake import DeltaTable

ap = argparse.ArgumentParser()
ap.add_argument("uri")
ap.add_argument("--s3", nargs=2, metavar=("ENDPOINT", "SECRET"))
ap.add_argument("--vacuum-hours", type=int)
ap.add_argument("--partition-key", default="date")
args = ap.parse_args()

opts = {}
if args.s3:
    opts = {"AWS_ENDPOINT_URL": args.s3[0], "AWS_ALLOW_HTTP": "true", "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": args.s3[1], "AWS_REGION": "us-east-1"}

dt = DeltaTable(args.uri, storage_options=opts)
out = {"latest": dt.version(), "versions": {}}
for v in range(dt.version() + 1):
    d = DeltaTable(args.uri, version=v, storage_options=opts)
    entry = {"files": sorted(d.file_uris()), "rows": None}
    try:
        entry["rows"] = d.to_pyarrow_table().num_rows
    except Exception as e:  # a collected version: its files are gone
        entry["error"] = type(e).__name__
    out["versions"][v] = entry
out["history"] = sorted([h.get("version"), h.get("operation")] for h in dt.history())

frame = pl.scan_delta(args.uri, storage_options=opts or None).collect()
out["polars"] = {"rows": frame.height, "partitions": sorted(frame[args.partition_key].unique().to_list())}

if not args.s3:  # the wrapper builds its own object store client; it is given a local table here
    from delta_kernel_rust_sharing_wrapper import PythonInterface, ScanBuilder, Table
    url = "file://" + os.path.abspath(args.uri) + "/"
    engine = PythonInterface(url)
    snap = Table(url).snapshot(engine)
    out["kernel"] = {"version": snap.version(), "rows": ScanBuilder(snap).build().execute(engine).read_all().num_rows}

if args.vacuum_hours is not None:
    out["vacuum"] = sorted(dt.vacuum(retention_hours=args.vacuum_hours, dry_run=True, enforce_retention_duration=False))
print(json.dumps(out))
