# sentence-transformers on a GPU (fp32 at batch 64 and 256; fp16 for scale), timed like
# ../shared/peers/embed_st.py, then parity with the vectors sluice wrote from the same model.
#   python3 bench/embed_gpu_st.py MODEL_DIR TEXTS.json SLUICE_OUT.f32
import json, sys, time
import numpy as np, torch
from sentence_transformers import SentenceTransformer
model_dir, texts_path, sluice_out = sys.argv[1:4]
texts = json.load(open(texts_path))
m = SentenceTransformer(model_dir, device="cuda")
for bs in (64, 256):
    m.encode(texts[:64], batch_size=bs)
    torch.cuda.synchronize(); t = time.time()
    e = m.encode(texts, batch_size=bs, convert_to_numpy=True, normalize_embeddings=False)
    dt = time.time() - t
    print(f"st_fp32 bs={bs} {len(texts)} texts in {dt:.2f}s -> {len(texts)/dt:.1f} texts/s", flush=True)
m.half()
m.encode(texts[:64], batch_size=256)
torch.cuda.synchronize(); t = time.time()
m.encode(texts, batch_size=256, convert_to_numpy=True, normalize_embeddings=False)
dt = time.time() - t
print(f"st_fp16 bs=256 {len(texts)} texts in {dt:.2f}s -> {len(texts)/dt:.1f} texts/s", flush=True)
s = np.fromfile(sluice_out, dtype="<f4").reshape(-1, e.shape[1])
cos = (s * e).sum(1) / np.linalg.norm(s, axis=1) / np.linalg.norm(e, axis=1)
print(f"parity sluice-cuda vs st-cuda fp32: max|diff| {np.abs(s - e).max():.2e}, min cosine {cos.min():.7f}")
