#!/usr/bin/env bash
# Install (once, into a cache outside the clone) and start a real S3 API (moto) and a real
# Azure Blob service (Azurite) on free loopback ports, create the test bucket and container,
# and print `export` lines for the tests:
#
#   eval "$(tests/object_stores.sh start)"   # sets SLUICE_TEST_S3 / SLUICE_TEST_AZURE / ..._PIDS
#   tests/object_stores.sh stop              # stops what `start` started (by PID)
#
# Also installs boto3, pyarrow, azure-storage-blob and the Delta Lake readers (deltalake, Polars,
# delta-kernel-rust-sharing-wrapper) into the same venv: the tests use them to read a published
# version the way a downstream reader does.
set -euo pipefail
CACHE="${SLUICE_CACHE:-$HOME/.cache/sluice}"
VENV="$CACHE/objectstore-venv"
AZURITE="$CACHE/azurite"
LOGS="${SLUICE_STORE_LOGS:-$CACHE/store-logs}"

install() {
    if [ ! -x "$VENV/bin/moto_server" ] || ! "$VENV/bin/python" -c 'import pyarrow, boto3, azure.storage.blob, deltalake, polars, delta_kernel_rust_sharing_wrapper' 2>/dev/null; then
        python3 -m venv "$VENV" >&2
        "$VENV/bin/pip" install --quiet --disable-pip-version-check 'moto[server]==5.*' boto3 pyarrow azure-storage-blob \
            'deltalake==1.*' 'polars==2.*' delta-kernel-rust-sharing-wrapper >&2
    fi
    if [ ! -x "$AZURITE/node_modules/.bin/azurite-blob" ]; then
        mkdir -p "$AZURITE"
        (cd "$AZURITE" && npm install --no-audit --no-fund --silent azurite@3 >&2)
    fi
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_for() { # url
    for _ in $(seq 1 300); do
        if python3 -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=1)" "$1" 2>/dev/null; then return 0; fi
        # Azurite answers 400 to a bare GET: any HTTP answer means it listens
        if python3 -c "import urllib.request,urllib.error,sys
try: urllib.request.urlopen(sys.argv[1], timeout=1)
except urllib.error.HTTPError: sys.exit(0)
sys.exit(1)" "$1" 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "object_stores.sh: $1 did not come up" >&2
    return 1
}

start() {
    install
    mkdir -p "$LOGS"
    local s3_port az_port
    s3_port=$(free_port)
    az_port=$(free_port)
    "$VENV/bin/moto_server" -H 127.0.0.1 -p "$s3_port" >"$LOGS/moto.log" 2>&1 &
    local moto_pid=$!
    "$AZURITE/node_modules/.bin/azurite-blob" --blobHost 127.0.0.1 --blobPort "$az_port" --inMemoryPersistence \
        --disableTelemetry --skipApiVersionCheck --loose >"$LOGS/azurite.log" 2>&1 &
    local az_pid=$!
    wait_for "http://127.0.0.1:$s3_port/moto-api/"
    wait_for "http://127.0.0.1:$az_port/"
    # the well-known Azurite development account (public, documented by Microsoft)
    local az_key="Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
    AWS_ENDPOINT_URL="http://127.0.0.1:$s3_port" AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 \
        "$VENV/bin/python" -c 'import boto3; boto3.client("s3").create_bucket(Bucket="sluice-test")'
    "$VENV/bin/python" -c "
from azure.storage.blob import BlobServiceClient
cs = 'DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$az_key;BlobEndpoint=http://127.0.0.1:$az_port/devstoreaccount1;'
BlobServiceClient.from_connection_string(cs).create_container('sluice-test')"
    echo "export SLUICE_TEST_S3=http://127.0.0.1:$s3_port"
    echo "export SLUICE_TEST_AZURE=http://127.0.0.1:$az_port"
    echo "export SLUICE_TEST_PYTHON=$VENV/bin/python"
    echo "export SLUICE_TEST_STORE_PIDS='$moto_pid $az_pid'"
}

stop() {
    for pid in ${SLUICE_TEST_STORE_PIDS:-}; do kill "$pid" 2>/dev/null || true; done
}

case "${1:-}" in
    install) install ;;
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 install|start|stop" >&2; exit 2 ;;
esac
