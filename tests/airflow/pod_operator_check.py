"""Run inside the Airflow venv by dags_test.py: the KubernetesPodOperator DAG's task keeps
sluice's exit-code contract. There is no cluster here, so the operator's own `cleanup` (which
reads the pod back from the API) cannot run; what it is configured with and the failure
mapping it calls are checked on finished pods as the Kubernetes API returns them
(kubernetes client models).

    python pod_operator_check.py DAGS_FOLDER
"""

from __future__ import annotations

import sys
from pathlib import Path

from airflow.exceptions import AirflowException, AirflowFailException
from airflow.models import DagBag
from kubernetes.client import models as k8s

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import check  # noqa: E402


def finished_pod(container: str, rc: int) -> k8s.V1Pod:
    terminated = k8s.V1ContainerStateTerminated(exit_code=rc, reason="Completed" if rc == 0 else "Error")
    statuses = [
        k8s.V1ContainerStatus(name=name, image="i", image_id="", ready=False, restart_count=0, state=k8s.V1ContainerState(terminated=t))
        for name, t in [("airflow-xcom-sidecar", k8s.V1ContainerStateTerminated(exit_code=0)), (container, terminated)]
    ]
    return k8s.V1Pod(
        metadata=k8s.V1ObjectMeta(name="sluice-flight-delays-x", namespace="default"),
        status=k8s.V1PodStatus(phase="Succeeded" if rc == 0 else "Failed", container_statuses=statuses),
    )


def failure(op, rc: int) -> str:
    """What the task does when the operator reports the pod (exit `rc`) as failed."""
    from sluice_k8s import reraise_for_pod

    try:
        reraise_for_pod(AirflowException("Pod returned a failure."), finished_pod(op.base_container_name, rc), op.base_container_name)
    except AirflowFailException:
        return "failed, not retried"
    except AirflowException:
        return "failed, retried"
    return "no failure"


def main() -> None:
    sys.path.insert(0, sys.argv[1])  # the DAGs import their helpers, as Airflow makes possible
    bag = DagBag(dag_folder=sys.argv[1], include_examples=False)
    check(not bag.import_errors, f"the DAGs import ({bag.import_errors})")
    op = bag.get_dag("sluice_flight_delays_k8s").get_task("score")
    check(list(op.skip_on_exit_code) == [99], "exit 99 skips the task")
    got = {rc: failure(op, rc) for rc in (2, 3, 4, 1)}
    check(got == {2: "failed, not retried", 3: "failed, not retried", 4: "failed, retried", 1: "failed, retried"}, f"failures: {got}")
    check(op.do_xcom_push and op.arguments[-2:] == ["--summary-file", "/airflow/xcom/return.json"], "the summary line is the XCom")
    check(op.retries == 2, "other failures are retried twice")


if __name__ == "__main__":
    main()
