"""Nightly flight-delay scoring: `sluice run pipelines/flight_delays.toml --date {{ ds }}`.

One task per day. Exit 99 (no flights landed for that date) skips the task; a bad
pipeline file or bad input (exit 2, 3) fails it without retries; anything else (exit 1, 4)
is retried. Re-running a day that is already published is a no-op ("up to date");
`airflow tasks clear` followed by a run with `--force` in the command republishes it.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.decorators import dag, task

from sluice_airflow import output_args, run_sluice, sluice_run_id

PIPELINE = "pipelines/flight_delays.toml"


@dag(
    dag_id="sluice_flight_delays_daily",
    schedule="@daily",
    start_date=pendulum.datetime(2013, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=4,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=5)},
    tags=["sluice"],
)
def sluice_flight_delays_daily():
    @task(task_id="score")
    def score(date: str, airflow_run_id: str) -> dict:
        return run_sluice(["run", PIPELINE, "--date", date, "--run-id", sluice_run_id(airflow_run_id), *output_args()])

    # TaskFlow arguments are Jinja-templated: the run's logical date and run id
    score(date="{{ ds }}", airflow_run_id="{{ run_id }}")


sluice_flight_delays_daily()
