"""Run the sluice image as a Kubernetes pod from Airflow, with sluice's exit-code contract.

`SluicePodOperator` is KubernetesPodOperator (apache-airflow-providers-cncf-kubernetes) with:

- the same outcomes as `sluice_airflow.run_sluice`: exit 99 skips the task
  (`skip_on_exit_code`; KubernetesPodOperator does not skip unless told), 2 and 3 fail it
  without retries, 1 and 4 fail it and Airflow retries;
- the JSON summary line as the task's XCom: sluice writes it to /airflow/xcom/return.json
  (`--summary-file`), where the operator's XCom sidecar reads it (`do_xcom_push`).

Only the DAGs that run pods import this module (it needs the cncf-kubernetes provider).
"""

from __future__ import annotations

from typing import NoReturn

from airflow.exceptions import AirflowException, AirflowFailException, AirflowSkipException
from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

from sluice_airflow import NOT_RETRYABLE

XCOM_FILE = "/airflow/xcom/return.json"


def container_exit_code(pod, container: str) -> int | None:
    """The exit code of `container` in a finished pod (a kubernetes V1Pod), if it has one."""
    statuses = (pod.status.container_statuses if pod is not None and pod.status else None) or []
    for status in statuses:
        if status.name == container and status.state and status.state.terminated:
            return status.state.terminated.exit_code
    return None


class SluicePodOperator(KubernetesPodOperator):
    """`sluice ARGS` in a pod of the sluice image (the image's entrypoint is `sluice`)."""

    def __init__(self, *, sluice_args: list[str], **kwargs) -> None:
        kwargs.setdefault("skip_on_exit_code", 99)
        kwargs.setdefault("do_xcom_push", True)
        kwargs.setdefault("container_security_context", {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False})
        super().__init__(arguments=[*sluice_args, "--summary-file", XCOM_FILE], **kwargs)

    def cleanup(self, pod, remote_pod, xcom_result=None, context=None) -> None:
        try:
            super().cleanup(pod, remote_pod, xcom_result, context)
        except AirflowSkipException:
            raise
        except AirflowException as e:
            reraise_for_pod(e, remote_pod, self.base_container_name)


def reraise_for_pod(error: AirflowException, remote_pod, container: str) -> NoReturn:
    """The operator's failure for a finished pod, made final (no retries) when sluice's exit
    code says retrying cannot help."""
    rc = container_exit_code(remote_pod, container)
    if rc in NOT_RETRYABLE:
        raise AirflowFailException(f"{NOT_RETRYABLE[rc]} (exit {rc}), not retried") from error
    raise error
