#!/usr/bin/env python3
"""sluice-extract as a Lambda function, end to end: deploy/build-lambda.sh packages
bootstrap.zip; its `bootstrap` runs against cargo-lambda's local Runtime API emulator and
copies partitions between prefixes of a moto bucket.

    eval "$(tests/object_stores.sh start)"      # moto: SLUICE_TEST_S3, SLUICE_TEST_PYTHON
    $SLUICE_TEST_PYTHON tests/lambda/lambda_test.py

Checked: a CLI-shaped event copies one date's object; an S3 event notification copies the
object it names to $SLUICE_EXTRACT_DEST; a date with no object is `skipped`; bad events get
an error response naming the problem (errorType) and the function keeps serving; the
function's own files (/proc/self/environ with its keys, /etc, relative paths) are refused as
sources and destinations with nothing written; $SLUICE_EXTRACT_SOURCES/DESTS allow what is
under them and refuse the rest.
cargo-lambda (PyPI wheel, a static binary) is fetched into ~/.cache/sluice once.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import boto3

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import FLIGHTS, REPO, check  # noqa: E402

CACHE = Path(os.environ.get("SLUICE_CACHE", Path.home() / ".cache/sluice"))
CARGO_LAMBDA_VERSION = "1.9.2"
BUCKET = "sluice-lambda-test"


def cargo_lambda() -> Path:
    """cargo-lambda's binary, from its PyPI wheel."""
    binary = CACHE / f"cargo-lambda-{CARGO_LAMBDA_VERSION}/cargo-lambda"
    if not binary.exists():
        d = binary.parent
        d.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", f"cargo-lambda=={CARGO_LAMBDA_VERSION}", "-d", str(d)], check=True)
        wheel = next(d.glob("cargo_lambda-*.whl"))
        with zipfile.ZipFile(wheel) as z:
            data = z.read(f"cargo_lambda-{CARGO_LAMBDA_VERSION}.data/scripts/cargo-lambda")
        tmp = d / f"cargo-lambda.tmp.{os.getpid()}"
        tmp.write_bytes(data)
        tmp.chmod(0o755)
        tmp.replace(binary)
    return binary


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, proc: subprocess.Popen, what: str) -> None:
    """Poll until `port` accepts connections (the emulator has no readiness signal)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"FAILED: {what} exited {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"FAILED: {what} did not listen on {port}")


def invoke(port: int, event) -> tuple[int, dict]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/2015-03-31/functions/_/invocations", data=json.dumps(event).encode(), method="POST")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def s3_event(bucket: str, key: str, size: int) -> dict:
    """An S3 ObjectCreated notification as AWS delivers it (keys URL-encoded)."""
    return {"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1", "eventTime": "2013-01-16T04:00:00.000Z",
        "eventName": "ObjectCreated:Put", "userIdentity": {"principalId": "EXAMPLE"}, "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {"x-amz-request-id": "EXAMPLE", "x-amz-id-2": "EXAMPLE"},
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "new-flights", "bucket": {"name": bucket, "ownerIdentity": {"principalId": "EXAMPLE"}, "arn": f"arn:aws:s3:::{bucket}"},
               "object": {"key": key, "size": size, "eTag": "0123456789abcdef", "sequencer": "0A1B2C3D4E5F678901"}},
    }]}


class Function:
    """The packaged `bootstrap` served by its own cargo-lambda emulator, with `env` added to
    the function's environment."""

    def __init__(self, bootstrap: Path, work: Path, env: dict, name: str):
        self.port = free_port()
        self.emulator = subprocess.Popen([str(cargo_lambda()), "lambda", "watch", "--only-lambda-apis", "-A", "127.0.0.1", "-P", str(self.port)],
                                         cwd=REPO, stdout=subprocess.DEVNULL, stderr=open(work / f"emulator-{name}.log", "w"))
        self.function = None
        self.log = work / f"function-{name}.log"
        wait_listening(self.port, self.emulator, "the emulator")
        env = {**os.environ, **env, "AWS_LAMBDA_RUNTIME_API": f"http://127.0.0.1:{self.port}/.rt", "AWS_LAMBDA_FUNCTION_NAME": "_",
               "AWS_LAMBDA_FUNCTION_VERSION": "1", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128"}
        self.function = subprocess.Popen([str(bootstrap)], env=env, stdout=subprocess.DEVNULL, stderr=open(self.log, "w"))

    def invoke(self, event) -> tuple[int, dict]:
        return invoke(self.port, event)

    def serving(self) -> bool:
        return self.function.poll() is None

    def stop(self) -> None:
        for p in (self.function, self.emulator):
            if p is not None:
                p.terminate()
                p.wait()


def keys(s3) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []))


def copies(fn: Function, s3, aws_keys: tuple[str, str]) -> None:
    """The copies a function without allowlists makes, and the events it refuses."""
    status, out = fn.invoke({"source": f"s3://{BUCKET}/raw/flights/{{date}}.csv", "dest": f"s3://{BUCKET}/landing/flights/", "date": "2013-01-15"})
    copied = s3.get_object(Bucket=BUCKET, Key="landing/flights/2013-01-15.csv")["Body"].read()
    check(status == 200 and out["status"] == "copied" and out["objects"] == 1 and copied == (FLIGHTS / "2013-01-15.csv").read_bytes(),
          f"a CLI-shaped event copies the partition ({status}: {out.get('status')}, {out.get('bytes')} bytes)")
    check(out["copied"][0]["dest"] == f"s3://{BUCKET}/landing/flights/2013-01-15.csv" and len(out["copied"][0]["sha256"]) == 64, "the response lists the object with its sha256")

    size = (FLIGHTS / "2013-01-16.csv").stat().st_size
    status, out = fn.invoke(s3_event(BUCKET, "raw/flights/2013-01-16.csv", size))
    notified = s3.get_object(Bucket=BUCKET, Key="notified/2013-01-16.csv")["Body"].read()
    check(status == 200 and out["objects"] == 1 and notified == (FLIGHTS / "2013-01-16.csv").read_bytes(), "an S3 event copies the new object")

    # a key is a name, not a template: braces in it are copied, not filled
    odd = "raw/odd {name}.csv"
    s3.put_object(Bucket=BUCKET, Key=odd, Body=b"a\n1\n")
    status, out = fn.invoke(s3_event(BUCKET, "raw/odd+%7Bname%7D.csv", 4))
    check(status == 200 and out.get("objects") == 1 and out.get("bytes") == 4, f"an S3 event for a key with braces copies it ({out})")

    status, out = fn.invoke({"source": f"s3://{BUCKET}/raw/flights/{{date}}.csv", "dest": f"s3://{BUCKET}/landing/flights/", "date": "2013-03-01"})
    check(status == 200 and out == {"status": "skipped", "objects": 0, "bytes": 0}, f"no object for the date: skipped ({out})")

    for event, kind in [({"source": "s3://x/{date}.csv"}, "InvalidEvent"), ({"source": "a", "dest": "b", "date": "2013-02-30"}, "InvalidEvent"),
                        ([1, 2], "InvalidEvent"), ({"source": "ftp://x/a.csv", "dest": f"s3://{BUCKET}/leak/"}, "InvalidEvent")]:
        status, out = fn.invoke(event)
        check(status >= 400 and out.get("errorType") == kind and out.get("errorMessage"), f"bad event {json.dumps(event)}: {kind} ({out.get('errorMessage')})")

    # the function's own files: its environment (with the role's keys), the system, its code
    before = keys(s3)
    for source in ["/proc/self/environ", "file:///proc/self/environ", "/etc/passwd", "/{d}/passwd", "var/task/", "../../etc/"]:
        status, out = fn.invoke({"source": source, "dest": f"s3://{BUCKET}/leak/", "vars": {"d": "etc"}})
        check(status >= 400 and out.get("errorType") == "InvalidEvent", f"local source {source} refused ({out.get('errorMessage')})")
    local_dest = Path(tempfile.gettempdir()) / f"sluice-lambda-leak-{os.getpid()}"
    status, out = fn.invoke({"source": f"s3://{BUCKET}/raw/flights/{{date}}.csv", "dest": f"{local_dest}/", "date": "2013-01-15"})
    check(status >= 400 and out.get("errorType") == "InvalidEvent" and not local_dest.exists(), f"local destination refused ({out.get('errorMessage')})")
    check(keys(s3) == before, "no object written by a refused event")
    log = fn.log.read_text()
    check(all(k not in log for k in aws_keys), "the function's keys appear in no log line")

    status, out = fn.invoke({"source": f"s3://{BUCKET}/raw/flights/{{date}}.csv", "dest": f"s3://{BUCKET}/again/", "date": "2013-01-15"})
    check(status == 200 and out["objects"] == 1 and fn.serving(), "the function still serves after bad events")


def allowlists(fn: Function, s3) -> None:
    """A function limited to s3://BUCKET/raw/ (sources) and s3://BUCKET/landing/ (dests)."""
    status, out = fn.invoke({"source": f"s3://{BUCKET}/raw/flights/{{date}}.csv", "dest": f"s3://{BUCKET}/landing/allowed/", "date": "2013-01-16"})
    check(status == 200 and out["objects"] == 1, f"an allowed source and destination copy ({out.get('status')})")
    before = keys(s3)
    for source, dest in [(f"s3://{BUCKET}/private/secret.csv", f"s3://{BUCKET}/landing/x/"),
                         (f"s3://{BUCKET}/raw-private/secret.csv", f"s3://{BUCKET}/landing/x/"),
                         (f"s3://{BUCKET}/raw/flights/2013-01-15.csv", f"s3://{BUCKET}/leak/")]:
        status, out = fn.invoke({"source": source, "dest": dest})
        check(status >= 400 and out.get("errorType") == "InvalidEvent", f"{source} -> {dest} refused by the allowlists ({out.get('errorMessage')})")
    check(keys(s3) == before, "no object written by a refused event")


def main() -> None:
    endpoint = os.environ["SLUICE_TEST_S3"]
    # a distinct secret key: the function's role credentials, which must never leak
    secret = f"sluice-test-secret-{os.getpid()}"
    aws = {"AWS_ENDPOINT_URL": endpoint, "AWS_ALLOW_HTTP": "true", "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1",
           "AWS_SESSION_TOKEN": secret}
    s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    for d in ("2013-01-15", "2013-01-16"):
        s3.put_object(Bucket=BUCKET, Key=f"raw/flights/{d}.csv", Body=(FLIGHTS / f"{d}.csv").read_bytes())
    for key in ("private/secret.csv", "raw-private/secret.csv"):
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"a\n1\n")

    built = subprocess.run(["deploy/build-lambda.sh"], cwd=REPO, capture_output=True, text=True)
    if built.returncode != 0:
        raise SystemExit(f"FAILED: deploy/build-lambda.sh: {built.stderr[-3000:]}")
    package = Path(built.stdout.strip().splitlines()[-1])
    work = Path(tempfile.mkdtemp(prefix="sluice-lambda-"))
    with zipfile.ZipFile(package) as z:
        check(z.namelist() == ["bootstrap"], f"{package.name} holds bootstrap ({package.stat().st_size} bytes)")
        z.extractall(work)
    bootstrap = work / "bootstrap"
    bootstrap.chmod(0o755)

    fn = Function(bootstrap, work, {**aws, "SLUICE_EXTRACT_DEST": f"s3://{BUCKET}/notified/"}, "open")
    try:
        copies(fn, s3, (secret,))
    finally:
        fn.stop()
    fn = Function(bootstrap, work, {**aws, "SLUICE_EXTRACT_SOURCES": f"s3://{BUCKET}/raw/", "SLUICE_EXTRACT_DESTS": f"s3://{BUCKET}/landing/"}, "limited")
    try:
        allowlists(fn, s3)
    finally:
        fn.stop()
    print("lambda tests passed")


if __name__ == "__main__":
    main()
