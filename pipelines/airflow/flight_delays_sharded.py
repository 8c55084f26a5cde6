"""A week of flights in N shards, published as one commit.

Each mapped task (dynamic task mapping, `.expand`) runs
`sluice run ... --from {{ ds }} --to {{ ds + 6 }} --shard I/N --run-id <airflow run id>`:
a deterministic 1/N of the week's input files, staged under the run without publishing.
Then one `sluice publish --run <airflow run id>` checks that all N shards finished with the
same fingerprint and publishes the week in one commit: readers see all of it or none.

A failed shard is retried alone; re-running a finished shard does nothing, so clearing
the whole run after a failure redoes only what failed.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.decorators import dag, task

from sluice_airflow import output_args, run_sluice, sluice_run_id

PIPELINE = "pipelines/flight_delays.toml"
SHARDS = int(os.environ.get("SLUICE_SHARDS", "4"))


@dag(
    dag_id="sluice_flight_delays_sharded",
    schedule="@weekly",
    start_date=pendulum.datetime(2013, 1, 6, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=5)},
    tags=["sluice"],
)
def sluice_flight_delays_sharded():
    @task
    def shards() -> list[int]:
        return list(range(SHARDS))

    @task
    def run_shard(shard: int, start: str, end: str, airflow_run_id: str) -> dict:
        return run_sluice(
            ["run", PIPELINE, "--from", start, "--to", end, "--shard", f"{shard}/{SHARDS}", "--run-id", sluice_run_id(airflow_run_id), *output_args()]
        )

    @task
    def publish(shard_summaries: list[dict], airflow_run_id: str) -> dict:
        return run_sluice(["publish", PIPELINE, "--run", sluice_run_id(airflow_run_id), *output_args()])

    done = run_shard.partial(start="{{ ds }}", end="{{ macros.ds_add(ds, 6) }}", airflow_run_id="{{ run_id }}").expand(shard=shards())
    publish(done, airflow_run_id="{{ run_id }}")


sluice_flight_delays_sharded()
