#!/usr/bin/env python3
"""The images as a scheduler runs them: build both with deploy/build-images.sh (from the
test build's binaries), then with podman, offline and read-only:

- the flight job on the committed sample, the dataset on a mounted volume: the summary line,
  the published partition read back on the host; exit codes pass through (99, 2);
- SIGTERM to the container (PID 1 is sluice, no init) mid-run: exit 1, nothing published;
- `podman kube play` of pipelines/k8s/flight-delays-pod.yaml;
- the Indexed Job of pipelines/k8s: each index's pod as the Job controller makes it, then the
  publish Job's pod: one commit with the week;
- the sluice-extract image copying one partition.

    python tests/containers/containers_test.py     # tests/run.sh runs it with a PyYAML venv

Skips (exit 0, saying so) only where podman cannot be installed. Needs root (rootful podman).
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import REPO, SLUICE, TARGET, check, csv_rows, sluice_json  # noqa: E402

EXTRACT = Path(os.environ.get("SLUICE_EXTRACT_BIN", TARGET / "debug/sluice-extract"))
SAMPLE = REPO / "data/sample/landing"
IMAGE = "localhost/sluice:latest"
NONROOT = 65532


def podman_env() -> dict | None:
    """The environment with CONTAINERS_CONF set by deploy/podman-env.sh; None if podman cannot be had."""
    p = subprocess.run(["bash", "-c", "source deploy/podman-env.sh && sluice_podman_env && echo $CONTAINERS_CONF"],
                       cwd=REPO, capture_output=True, text=True)
    if p.returncode == 77:
        print(f"SKIPPED: container tests: {p.stderr.strip()}")
        return None
    if p.returncode != 0:
        raise SystemExit(f"FAILED: podman setup: {p.stderr}")
    return {**os.environ, "CONTAINERS_CONF": p.stdout.strip().splitlines()[-1]}


class Podman:
    def __init__(self, env: dict, work: Path) -> None:
        self.env, self.work = env, work

    def run(self, *args: str, check_rc: bool = False) -> subprocess.CompletedProcess:
        p = subprocess.run(["podman", *args], env=self.env, capture_output=True, text=True)
        if check_rc and p.returncode != 0:
            raise SystemExit(f"FAILED: podman {' '.join(args)}: {p.stderr[-3000:]}")
        return p

    def sluice(self, *args: str, mounts: list[str], extra: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
        """`podman run` of the sluice image as a scheduler would: read-only, no network."""
        vols = [a for m in mounts for a in ("-v", m)]
        return self.run("run", "--rm", "--read-only", "--network", "none", *extra, *vols, IMAGE, *args)

    def play(self, pod: dict) -> str:
        """`podman kube play` a Pod spec; returns its container's name."""
        path = self.work / f"{pod['metadata']['name']}.yaml"
        path.write_text(yaml.safe_dump(pod))
        self.run("kube", "play", "--network", "none", str(path), check_rc=True)
        return f"{pod['metadata']['name']}-{pod['spec']['containers'][0]['name']}"

    def finish(self, container: str) -> tuple[int, str]:
        """Wait for a played pod's container; its exit code and last stdout line; remove the pod."""
        rc = int(self.run("wait", container, check_rc=True).stdout.strip())
        out = self.run("logs", container).stdout.strip().splitlines()
        self.run("pod", "rm", "-f", container.rsplit("-", 1)[0])
        return rc, out[-1] if out else ""


def owned_dir(path: Path) -> Path:
    """A folder the image's non-root user can write (what fsGroup does on a cluster)."""
    path.mkdir(parents=True)
    os.chown(path, NONROOT, NONROOT)
    return path


def published(dataset: Path) -> dict:
    """Partition -> rows, as the host's sluice reads the dataset back."""
    return {p["partition"]: p["rows"] for p in sluice_json("show", str(dataset), "--json")["partitions"]}


def with_host_paths(spec: dict, paths: dict[str, Path]) -> dict:
    """A pod spec whose hostPath volumes point at this test's folders."""
    spec = copy.deepcopy(spec)
    for v in spec["volumes"]:
        if "hostPath" in v:
            v["hostPath"]["path"] = str(paths[v["name"]])
    return spec


def job_pod(job: dict, name: str, index: int | None, paths: dict[str, Path]) -> dict:
    """The pod a Job controller makes for `index`, with the kubelet's `$(VAR)` expansion
    (podman does not expand it): JOB_COMPLETION_INDEX is the index."""
    spec = with_host_paths(job["spec"]["template"]["spec"], paths)
    c = spec["containers"][0]
    env = {}
    for e in c.get("env", []):
        if e["name"] == "JOB_COMPLETION_INDEX":
            e.pop("valueFrom", None)
            e["value"] = str(index)
        env[e["name"]] = e["value"]
    c["args"] = [re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], a) for a in c["args"]]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def test_run(pm: Podman, work: Path) -> None:
    ds = owned_dir(work / "run/ds")
    mounts = [f"{SAMPLE}:/landing:ro", f"{ds}:/data/ds"]
    job = ("run", "pipelines/flight_delays.toml", "--param", "landing=/landing", "--output", "/data/ds")
    p = pm.sluice(*job, "--date", "2013-01-15", mounts=mounts)
    summary = json.loads(p.stdout.strip().splitlines()[-1])
    check(p.returncode == 0 and summary["status"] == "published", f"read-only container publishes a day (exit {p.returncode})")
    rows = published(ds)
    check(list(rows) == ["date=2013-01-15"] and 0 < rows["date=2013-01-15"] <= csv_rows("2013-01-15"), f"the partition reads back on the host ({rows})")
    p = pm.sluice(*job, "--date", "2013-01-15", mounts=mounts)
    check(p.returncode == 0 and json.loads(p.stdout.splitlines()[-1])["status"] == "up_to_date", "run again: up to date")
    p = pm.sluice(*job, "--date", "2013-03-01", mounts=mounts)
    check(p.returncode == 99 and json.loads(p.stdout.splitlines()[-1])["status"] == "skipped", f"no input: exit 99 ({p.returncode})")
    p = pm.sluice("run", "pipelines/missing.toml", "--date", "2013-01-15", mounts=mounts)
    check(p.returncode == 2, f"a missing pipeline file: exit 2 ({p.returncode})")


def test_sigterm(pm: Podman, work: Path) -> None:
    """SIGTERM to the container while the run holds before its commit (SLUICE_HOLD_AT)."""
    ds = owned_dir(work / "sigterm/ds")
    name = "sluice-sigterm-test"
    cmd = ["podman", "run", "--rm", "-i", "--name", name, "--read-only", "--network", "none", "-e", "SLUICE_HOLD_AT=commit",
           "-v", f"{SAMPLE}:/landing:ro", "-v", f"{ds}:/data/ds", IMAGE,
           "run", "pipelines/flight_delays.toml", "--date", "2013-01-15", "--param", "landing=/landing", "--output", "/data/ds"]
    proc = subprocess.Popen(cmd, env=pm.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None and proc.stdout is not None
    for line in proc.stderr:
        if "holding at commit" in line:
            break
    else:
        raise SystemExit(f"FAILED: the run ended before its commit (exit {proc.wait()})")
    pm.run("kill", "--signal", "TERM", name, check_rc=True)
    out, _ = proc.communicate()
    summary = json.loads(out.strip().splitlines()[-1])
    check(proc.returncode == 1 and summary.get("signal") == "SIGTERM", f"SIGTERM reaches PID 1: exit {proc.returncode}, {summary}")
    check(sluice_json("versions", str(ds), "--json") == [], "nothing published")


def test_kube_play(pm: Podman, work: Path) -> None:
    spec = yaml.safe_load((REPO / "pipelines/k8s/flight-delays-pod.yaml").read_text())
    datasets = owned_dir(work / "kube/datasets")
    spec["spec"] = with_host_paths(spec["spec"], {"landing": SAMPLE, "datasets": datasets})
    rc, last = pm.finish(pm.play(spec))
    check(rc == 0 and json.loads(last)["status"] == "published", f"kube play of the Pod spec publishes (exit {rc})")
    check(list(published(datasets / "flight_delays")) == ["date=2013-01-15"], "its partition reads back")


def test_indexed_job(pm: Podman, work: Path) -> None:
    shards = yaml.safe_load((REPO / "pipelines/k8s/flight-delays-shards-job.yaml").read_text())
    publish = yaml.safe_load((REPO / "pipelines/k8s/flight-delays-publish-job.yaml").read_text())
    datasets = owned_dir(work / "job/datasets")
    paths = {"landing": SAMPLE, "datasets": datasets}
    n = shards["spec"]["completions"]
    check(shards["spec"]["completionMode"] == "Indexed", "the shards Job is Indexed")
    running = [pm.play(job_pod(shards, f"sluice-shard-{i}", i, paths)) for i in range(n)]
    results = [pm.finish(c) for c in running]
    check(all(rc == 0 and json.loads(last)["status"] == "staged" for rc, last in results), f"{n} shard pods staged ({[rc for rc, _ in results]})")
    check(sluice_json("versions", str(datasets / "flight_delays"), "--json") == [], "shards publish nothing")
    rc, last = pm.finish(pm.play(job_pod(publish, "sluice-publish", None, paths)))
    check(rc == 0 and json.loads(last)["status"] == "published", f"the publish Job's pod publishes (exit {rc}: {last[:300]})")
    versions = sluice_json("versions", str(datasets / "flight_delays"), "--json")
    rows = published(datasets / "flight_delays")
    dates = [f"2013-01-{d}" for d in range(13, 20)]
    check({v["commit"] for v in versions} == {1} and list(rows) == [f"date={d}" for d in dates], f"one commit, the week ({list(rows)})")


def test_extract(pm: Podman, work: Path) -> None:
    dest = owned_dir(work / "extract/dest")
    run = ("run", "--rm", "--read-only", "--network", "none", "-v", f"{SAMPLE}:/src:ro", "-v", f"{dest}:/dest", "localhost/sluice-extract:latest",
           "/src/flights/{date}.csv", "/dest/flights/")
    p = pm.run(*run, "--date", "2013-01-15")
    summary = json.loads(p.stdout.strip().splitlines()[-1])
    same = (dest / "flights/2013-01-15.csv").read_bytes() == (SAMPLE / "flights/2013-01-15.csv").read_bytes()
    check(p.returncode == 0 and summary["objects"] == 1 and same, f"sluice-extract image copies a partition (exit {p.returncode})")
    check(pm.run(*run, "--date", "2013-03-01").returncode == 99, "no input: exit 99")


def main() -> None:
    for b in (SLUICE, EXTRACT):
        if not b.exists():
            raise SystemExit(f"{b} not found: build it (cargo build) or set SLUICE_BIN / SLUICE_EXTRACT_BIN")
    env = podman_env()
    if env is None:
        return
    build = subprocess.run(["deploy/build-images.sh"], cwd=REPO, env={**env, "SLUICE_BIN": str(SLUICE), "SLUICE_EXTRACT_BIN": str(EXTRACT)},
                           capture_output=True, text=True)
    if build.returncode != 0:
        raise SystemExit(f"FAILED: deploy/build-images.sh: {build.stderr[-3000:]}")
    sizes = json.loads(build.stdout.strip().splitlines()[-1])
    check(set(sizes) == {"sluice", "sluice-extract"}, f"both images built ({sizes})")
    work = Path(tempfile.mkdtemp(prefix="sluice-containers-"))
    pm = Podman(env, work)
    for test in (test_run, test_sigterm, test_kube_play, test_indexed_job, test_extract):
        test(pm, work)
    shutil.rmtree(work)
    print("container tests passed")


if __name__ == "__main__":
    main()
