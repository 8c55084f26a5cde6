"""Run the `sluice` CLI from an Airflow task and map its exit code to Airflow's outcomes.

sluice's exit codes are a contract with schedulers (docs: README, "For schedulers"):

    0   published, or already up to date  -> success; the JSON summary is the return value (XCom)
    99  nothing to do (no input)          -> skipped
    2   usage, pipeline-file or model error -> failed, not retried (retrying cannot help)
    3   bad input beyond the threshold    -> failed, not retried
    4   a concurrent change               -> failed, retried (another writer got there first, or
                                             an input changed mid-run: the retry builds on the new state)
    1   anything else                     -> failed, retried

A retry reuses Airflow's run id, and sluice treats a run id as one logical run: a retry of a
run that died resumes it, a retry of a run that already published is `up_to_date` (exit 0).

Airflow is only a client of the CLI: nothing here is imported by sluice.

Environment:
    SLUICE_BIN   the sluice binary (default: `sluice` on PATH)
    SLUICE_HOME  the folder pipeline paths are relative to (default: this repository)
    SLUICE_OUTPUT  if set, publish to this dataset URI instead of the pipeline's output
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import threading
from pathlib import Path

from airflow.exceptions import AirflowFailException, AirflowSkipException

log = logging.getLogger(__name__)

NOT_RETRYABLE = {2: "usage, pipeline-file or model error", 3: "bad input beyond the allowed threshold"}


def sluice_run_id(airflow_run_id: str) -> str:
    """Airflow's run id (e.g. `scheduled__2013-01-15T00:00:00+00:00`) as a sluice run id
    (letters, digits, '-', '_', '.'). The same Airflow run always maps to the same id, so
    the shards of one run, its retries and its publish task agree."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", airflow_run_id)


def output_args() -> list[str]:
    out = os.environ.get("SLUICE_OUTPUT")
    return ["--output", out] if out else []


def run_sluice(args: list[str]) -> dict:
    """Run `sluice ARGS`, stream its log (stderr) into the task log, and return the JSON
    summary (its last stdout line); raise the Airflow exception its exit code calls for."""
    binary = os.environ.get("SLUICE_BIN", "sluice")
    home = os.environ.get("SLUICE_HOME", str(Path(__file__).resolve().parents[2]))
    cmd = [binary, *args]
    log.info("running %s (in %s)", " ".join(cmd), home)
    proc = subprocess.Popen(cmd, cwd=home, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def forward() -> None:
        for line in proc.stderr:
            log.info("sluice: %s", line.rstrip())

    t = threading.Thread(target=forward, daemon=True)
    t.start()
    stdout = proc.stdout.read()
    rc = proc.wait()
    t.join()
    lines = [l for l in stdout.splitlines() if l.strip()]
    try:
        summary = json.loads(lines[-1]) if lines else {}
    except json.JSONDecodeError:
        summary = {"output": lines[-1]}
    if rc == 0:
        log.info("sluice: %s", summary.get("status"))
        return summary
    raise_for_exit_code(rc, summary.get("error", f"exit code {rc}"))
    raise AssertionError("unreachable")


def raise_for_exit_code(rc: int, error: str) -> None:
    """Raise what sluice's exit code `rc` (not 0) means to Airflow: skip on 99, fail without
    retries on 2 and 3, a retryable failure otherwise."""
    if rc == 99:
        raise AirflowSkipException(f"nothing to do: {error}")
    if rc in NOT_RETRYABLE:
        raise AirflowFailException(f"{NOT_RETRYABLE[rc]} (exit {rc}), not retried: {error}")
    raise RuntimeError(f"sluice failed (exit {rc}), retryable: {error}")
