#!/usr/bin/env bash
# Package sluice-extract's AWS Lambda function (feature `lambda`) as bootstrap.zip for the
# `provided.al2023` runtime (x86_64): a static musl binary named `bootstrap`, built with the
# size profile (extract-min). Installs the musl target and musl-gcc (for ring's C code) when
# missing. The last line printed is the zip's path.
#
#   deploy/build-lambda.sh
#   aws lambda create-function --function-name sluice-extract --runtime provided.al2023 \
#       --handler bootstrap --zip-file fileb://$(deploy/build-lambda.sh | tail -1) --role ARN \
#       --environment 'Variables={SLUICE_EXTRACT_DEST=s3://landing/flights/,SLUICE_EXTRACT_SOURCES=s3://raw/,SLUICE_EXTRACT_DESTS=s3://landing/}'
#
# Events may name object stores only (never the function's own files: local paths, file://).
# SLUICE_EXTRACT_SOURCES and SLUICE_EXTRACT_DESTS (comma-separated folder prefixes) limit
# the sources and destinations further; unset, any object store is allowed.
set -euo pipefail
cd "$(dirname "$0")/.."
musl=x86_64-unknown-linux-musl
rustup target list --installed | grep -qx "$musl" || rustup target add "$musl" >&2
if ! command -v musl-gcc >/dev/null; then
    [ "$(id -u)" = 0 ] || { echo "musl-gcc is missing: apt-get install musl-tools" >&2; exit 1; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q musl-tools >/dev/null ||
        { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q musl-tools >/dev/null; }
fi
target="${CARGO_TARGET_DIR:-target}"
CC_x86_64_unknown_linux_musl=musl-gcc cargo build --locked --profile extract-min --target "$musl" \
    -p sluice-extract --features lambda --bin sluice-extract-lambda >&2
out="$target/lambda/sluice-extract"
mkdir -p "$out"
python3 - "$target/$musl/extract-min/sluice-extract-lambda" "$out/bootstrap.zip" <<'PY'
import os, sys, zipfile
binary, zip_path = sys.argv[1], sys.argv[2]
tmp = f"{zip_path}.tmp.{os.getpid()}"
with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
    info = zipfile.ZipInfo("bootstrap")
    info.external_attr = 0o100755 << 16  # an executable regular file
    info.compress_type = zipfile.ZIP_DEFLATED
    with open(binary, "rb") as f:
        z.writestr(info, f.read())
os.replace(tmp, zip_path)
PY
echo "$(cd "$out" && pwd)/bootstrap.zip"
