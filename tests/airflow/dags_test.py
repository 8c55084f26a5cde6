#!/usr/bin/env python3
"""Run the Airflow DAGs of pipelines/airflow with `airflow dags test` against the committed
sample and check what they published through the sluice CLI; render the
KubernetesPodOperator DAG's task (no cluster here) and check its exit-code contract.

    python3 tests/airflow/dags_test.py            # .ci/run runs it after `cargo test`

Airflow lives in its own venv (AIRFLOW_VENV, default ~/.cache/sluice/airflow-venv; created
and installed here when missing). The sluice binary is SLUICE_BIN, default
$CARGO_TARGET_DIR/debug/sluice. Airflow is a client of the CLI: nothing here touches the
Rust build.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import REPO, SLUICE, check, csv_rows, sluice_json  # noqa: E402

AIRFLOW_VERSION = "2.10.5"
K8S_PROVIDER_VERSION = "10.10.0"
VENV = Path(os.environ.get("AIRFLOW_VENV", Path.home() / ".cache/sluice/airflow-venv"))


def ensure_airflow() -> Path:
    """Airflow and the cncf-kubernetes provider (for the KubernetesPodOperator DAG)."""
    airflow = VENV / "bin/airflow"
    if not airflow.exists():
        print(f"installing apache-airflow=={AIRFLOW_VERSION} into {VENV}", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    probe = [str(VENV / "bin/python"), "-c", "import airflow.providers.cncf.kubernetes"]
    if not airflow.exists() or subprocess.run(probe, capture_output=True).returncode != 0:
        pins = [f"apache-airflow=={AIRFLOW_VERSION}", f"apache-airflow-providers-cncf-kubernetes=={K8S_PROVIDER_VERSION}"]
        subprocess.run([str(VENV / "bin/pip"), "install", "-q", *pins], check=True)
    return airflow


def manifest(p: dict) -> dict:
    """The manifest of a partition as `sluice show --json` lists it."""
    return json.loads(Path(p["manifest"]).read_text())


def rendered_property(rendered: str, name: str):
    """One templated field from `airflow tasks render`'s output (a Python literal)."""
    blocks = rendered.split("# property: ")
    block = next(b for b in blocks if b.startswith(name + "\n"))
    value = "\n".join(l for l in block.splitlines()[1:] if not l.startswith("#")).strip()
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return value


def main() -> None:
    if not SLUICE.exists():
        raise SystemExit(f"{SLUICE} not found: build it (cargo build -p sluice-orchestrate --bin sluice) or set SLUICE_BIN")
    airflow = ensure_airflow()
    work = Path(tempfile.mkdtemp(prefix="sluice-airflow-"))
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(work / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "pipelines/airflow"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGBAG_IMPORT_ERROR_TRACEBACKS": "True",
        "SLUICE_BIN": str(SLUICE),
        "SLUICE_HOME": str(REPO),
    }

    def af(*args: str, output: Path | None = None) -> subprocess.CompletedProcess:
        e = dict(env)
        if output is not None:
            e["SLUICE_OUTPUT"] = str(output)
        p = subprocess.run([str(airflow), *args], env=e, capture_output=True, text=True)
        if p.returncode != 0:
            print(p.stdout[-5000:], p.stderr[-5000:], sep="\n", file=sys.stderr)
            raise SystemExit(f"FAILED: airflow {' '.join(args)} exited {p.returncode}")
        return p

    af("db", "migrate")
    listed = [l for l in af("dags", "list", "-o", "json").stdout.splitlines() if l.startswith("[{")]
    ids = {d["dag_id"] for d in json.loads(listed[-1])} if listed else set()
    check({"sluice_flight_delays_daily", "sluice_flight_delays_sharded", "sluice_flight_delays_k8s"} <= ids, f"the DAGs load ({sorted(ids)})")
    errors = af("dags", "list-import-errors").stdout
    check("pipelines/airflow" not in errors, "no import errors")

    # --- KubernetesPodOperator: no cluster here; the task renders the CLI's arguments for the
    # image, and keeps the exit-code contract (tests/airflow/pod_operator_check.py)
    rendered = af("tasks", "render", "sluice_flight_delays_k8s", "score", "2013-01-15").stdout
    args = rendered_property(rendered, "arguments")
    expected = ["run", "pipelines/flight_delays.toml", "--date", "2013-01-15", "--run-id", "2013-01-15",
                "--param", "landing=s3://sluice-landing", "--output", "s3://sluice-datasets/flight_delays",
                "--summary-file", "/airflow/xcom/return.json"]
    check(args == expected, f"the pod's arguments render ({args})")
    check(rendered_property(rendered, "image") == "localhost/sluice:latest", "the pod runs the sluice image")
    p = subprocess.run([str(VENV / "bin/python"), str(REPO / "tests/airflow/pod_operator_check.py"), str(REPO / "pipelines/airflow")],
                       env=env, capture_output=True, text=True)
    print(p.stdout, end="")
    if p.returncode != 0:
        print(p.stderr[-5000:], file=sys.stderr)
        raise SystemExit("FAILED: the KubernetesPodOperator task's exit-code contract")

    # --- daily: one date, its logical date passed as {{ ds }}
    daily = work / "daily"
    af("dags", "test", "sluice_flight_delays_daily", "2013-01-15", output=daily)
    show = sluice_json("show", str(daily), "--json")
    parts = {p["partition"]: p for p in show["partitions"]}
    check(list(parts) == ["date=2013-01-15"], f"daily published date=2013-01-15 ({list(parts)})")
    p = parts["date=2013-01-15"]
    m = manifest(p)
    check(m["rows"]["in"] == csv_rows("2013-01-15"), f"every input row read ({m['rows']['in']})")
    check(p["rows"] == m["rows"]["out"] > 0, f"rows published = rows out ({p['rows']})")
    check(m["rows"]["in"] == m["rows"]["out"] + m["rows"]["filtered"] + m["rows"]["quarantined"], "rows accounted for")
    check(p["version"].startswith("manual__2013-01-15T00_00_00"), f"the version is Airflow's run id ({p['version']})")
    versions = sluice_json("versions", str(daily), "--json")
    check(len(versions) == 1, "one commit")

    # a date without input: exit 99 -> the task is skipped, nothing published
    af("dags", "test", "sluice_flight_delays_daily", "2013-03-01", output=daily)
    state = af("tasks", "state", "sluice_flight_delays_daily", "score", "2013-03-01").stdout.strip().splitlines()[-1]
    check(state == "skipped", f"no input -> task skipped ({state})")
    check(len(sluice_json("versions", str(daily), "--json")) == 1, "still one commit")

    # --- sharded: the week of 2013-01-13 in 4 mapped shards, then one publish
    sharded = work / "sharded"
    af("dags", "test", "sluice_flight_delays_sharded", "2013-01-13", output=sharded)
    versions = sluice_json("versions", str(sharded), "--json")
    commits = {v["commit"] for v in versions}
    check(commits == {1}, f"the week is one commit ({sorted(commits)})")
    show = sluice_json("show", str(sharded), "--json")
    dates = [f"2013-01-{d}" for d in range(13, 20)]
    check([p["partition"] for p in show["partitions"]] == [f"date={d}" for d in dates], "seven partitions")
    for p in show["partitions"]:
        date = p["partition"].removeprefix("date=")
        m = manifest(p)
        check(m["rows"]["in"] == csv_rows(date) and p["rows"] == m["rows"]["out"] > 0, f"{date}: {m['rows']['in']} in, {p['rows']} out")
    records = sorted((sharded / "_sluice/runs").glob("*/shard-*.json"))
    check(len(records) == 4, f"four shard records ({len(records)})")
    check(all(p["version"].startswith("manual__2013-01-13") for p in show["partitions"]), "one run id for every shard")
    shutil.rmtree(work)
    print("airflow DAG tests passed")


if __name__ == "__main__":
    main()
