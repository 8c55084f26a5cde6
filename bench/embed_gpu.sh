#!/usr/bin/env bash
# Embedding throughput on a GPU: sluice's `embed_bench` built with `--features cuda`
# (deploy/build-cuda.sh, on any machine) against sentence-transformers on the same GPU, the
# same model and texts; then the parity of the vectors. Run it on the GPU machine, which
# needs CUDA 13 libraries (PyTorch cu130's wheels have them) and sentence-transformers:
#
#   deploy/build-cuda.sh                                     # here: prints the binary's path
#   KIND=sentences bench/embed.sh 20000                      # here: writes $WORK/texts.json
#   # carry the binary, the model folder and texts.json; there:
#   BIN=./embed_bench MODEL=all-MiniLM-L6-v2 bench/embed_gpu.sh texts.json
set -euo pipefail
cd "$(dirname "$0")/.."
TEXTS=${1:?texts.json}
BIN=${BIN:-embed_bench}
MODEL=${MODEL:-data/models/all-MiniLM-L6-v2}
WORK=${WORK:-/tmp/sluice-embed-gpu}
mkdir -p "$WORK"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
# CUDA 13's libraries from the Python environment's NVIDIA wheels, unless already findable
site=$(python3 -c 'import site; print(site.getsitepackages()[0])')
libs=$(find "$site/nvidia" \( -name 'libcublas.so.13*' -o -name 'libcudart.so.13*' -o -name 'libcurand.so.10*' \) -printf '%h\n' 2>/dev/null | sort -u | tr '\n' ':')
export LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:-}"
"$BIN" "$MODEL" "$TEXTS" "$WORK/sluice.f32"                       # default token budget
"$BIN" "$MODEL" "$TEXTS" "$WORK/sluice_big.f32" --max-tokens 65536  # larger batches
python3 bench/embed_gpu_st.py "$MODEL" "$TEXTS" "$WORK/sluice.f32"
