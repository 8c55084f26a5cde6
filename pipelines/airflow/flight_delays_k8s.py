"""Nightly flight-delay scoring as a Kubernetes pod: the sluice image under
KubernetesPodOperator (`SluicePodOperator`, in sluice_k8s.py).

The task runs `sluice run pipelines/flight_delays.toml --date {{ ds }} --run-id <run id>`
in `localhost/sluice:latest` (the pipelines and the flight model are in the image), reading
the landing zone and writing the dataset in object storage. Exit 99 skips the task, 2 and 3
fail it without retries, 1 and 4 are retried; the summary line is the XCom.

Environment (of the scheduler): SLUICE_IMAGE, SLUICE_NAMESPACE, SLUICE_LANDING (the
landing zone's URI, e.g. s3://raw), SLUICE_DATASET (the dataset's URI), SLUICE_SECRET (a
Secret with the object store's credentials as AWS_* / AZURE_* variables, optional).
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow import DAG
from kubernetes.client import models as k8s

from sluice_airflow import sluice_run_id
from sluice_k8s import SluicePodOperator

PIPELINE = "pipelines/flight_delays.toml"
SECRET = os.environ.get("SLUICE_SECRET")

with DAG(
    dag_id="sluice_flight_delays_k8s",
    schedule="@daily",
    start_date=pendulum.datetime(2013, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=4,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=5)},
    user_defined_filters={"sluice_run_id": sluice_run_id},
    tags=["sluice", "kubernetes"],
):
    SluicePodOperator(
        task_id="score",
        name="sluice-flight-delays",
        namespace=os.environ.get("SLUICE_NAMESPACE", "default"),
        image=os.environ.get("SLUICE_IMAGE", "localhost/sluice:latest"),
        sluice_args=[
            "run", PIPELINE,
            "--date", "{{ ds }}",
            "--run-id", "{{ run_id | sluice_run_id }}",
            "--param", "landing=" + os.environ.get("SLUICE_LANDING", "s3://sluice-landing"),
            "--output", os.environ.get("SLUICE_DATASET", "s3://sluice-datasets/flight_delays"),
        ],
        env_from=[k8s.V1EnvFromSource(secret_ref=k8s.V1SecretEnvSource(name=SECRET))] if SECRET else None,
        container_resources=k8s.V1ResourceRequirements(requests={"cpu": "1", "memory": "256Mi"}, limits={"memory": "1Gi"}),
        security_context={"runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532},
        # the root filesystem is read-only: /tmp (the dimension cache) is an emptyDir
        volumes=[k8s.V1Volume(name="tmp", empty_dir=k8s.V1EmptyDirVolumeSource())],
        volume_mounts=[k8s.V1VolumeMount(name="tmp", mount_path="/tmp")],
        get_logs=True,
        on_finish_action="delete_succeeded_pod",
    )
