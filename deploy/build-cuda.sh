#!/usr/bin/env bash
# Build the `cuda` feature on a machine with no GPU and no CUDA toolkit, and produce the
# embed_bench binary to carry to a GPU machine.
#
# nvcc, the CUDA 13.0 headers and libraries come from NVIDIA's PyPI wheels (a venv under
# ~/.cache/sluice; 13.0 to match the GPU machines' driver 580, whose PTX JIT refuses PTX
# from a newer nvcc). libcuda belongs to the driver, which only a GPU machine has: the
# linker gets a stub with every function cudarc declares; the real one is loaded at run
# time. Its own target folder, so the CPU builds are not invalidated.
#
#   deploy/build-cuda.sh        # the last line is the embed_bench binary's path
#   # on the GPU machine (CUDA 13 libraries, e.g. PyTorch cu130's):
#   LD_LIBRARY_PATH=<dir of libcublas.so.13 ...> ./embed_bench MODEL_DIR texts.json
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${SLUICE_CACHE:-$HOME/.cache/sluice}"
VENV="$CACHE/cuda-venv"
[ -x "$VENV/bin/pip" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check "nvidia-cuda-nvcc==13.0.*" "nvidia-cuda-runtime==13.0.*" \
    "nvidia-cuda-crt==13.0.*" "nvidia-cuda-cccl==13.0.*" "nvidia-nvvm==13.0.*" "nvidia-cuda-nvrtc==13.0.*" \
    "nvidia-cublas==13.0.*" "nvidia-curand==10.4.*"
CUDA=$("$VENV/bin/python" -c 'import nvidia, os; print(os.path.join(list(nvidia.__path__)[0], "cu13"))')

# the linker wants unversioned names; libcuda is a stub (see above)
link="$CACHE/cuda-link"
mkdir -p "$link"
for lib in cudart cublas cublasLt curand nvrtc; do
    ln -sf "$(ls "$CUDA/lib/lib$lib.so."* | head -1)" "$link/lib$lib.so"
done
cargo fetch --locked >/dev/null
cudarc=$(cargo metadata --format-version 1 --locked --all-features | python3 -c '
import json, sys
print(next(p["manifest_path"] for p in json.load(sys.stdin)["packages"] if p["name"] == "cudarc").rsplit("/", 1)[0])')
grep -ohE 'pub unsafe fn cu[A-Za-z0-9_]+' "$cudarc"/src/driver/sys/*.rs | sort -u | sed 's/pub unsafe fn \(.*\)/void \1(void) {}/' >"$link/cuda_stub.c"
cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$link/libcuda.so" "$link/cuda_stub.c"

export PATH="$CUDA/bin:$PATH" CUDA_PATH="$CUDA" CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}" CUDARC_CUDA_VERSION=13000
export LIBRARY_PATH="$link${LIBRARY_PATH:+:$LIBRARY_PATH}" CARGO_TARGET_DIR="$CACHE/cuda-target"
# small enough to carry (no line tables, stripped)
export CARGO_PROFILE_RELEASE_DEBUG=false CARGO_PROFILE_RELEASE_STRIP=true
cargo build --locked --release --features cuda -p sluice-infer --example embed_bench >&2
echo "$CARGO_TARGET_DIR/release/examples/embed_bench"
