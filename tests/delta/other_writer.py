"""Write to a sluice dataset as another engine would, with Python `deltalake`.

Usage: other_writer.py URI vacuum|append|compact
  vacuum   vacuum(retention_hours=0, enforce_retention_duration=False): commits that add or
           remove no file (VACUUM START / VACUUM END), and deletes unreferenced files
  append   appends the first 10 rows of the current table as a new file
  compact  optimize.compact(): rewrites files
Prints the table's version afterwards.
"""
import sys

from deltalake import DeltaTable, write_deltalake

uri, action = sys.argv[1], sys.argv[2]
dt = DeltaTable(uri)
if action == "vacuum":
    dt.vacuum(retention_hours=0, dry_run=False, enforce_retention_duration=False)
elif action == "append":
    write_deltalake(uri, dt.to_pyarrow_table().slice(0, 10), mode="append")
elif action == "compact":
    dt.optimize.compact()
else:
    sys.exit(f"unknown action {action}")
print(DeltaTable(uri).version())
