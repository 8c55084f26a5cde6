#!/usr/bin/env python3
"""Reference embeddings for the parity test, made by sentence-transformers itself.

    python3 -m venv VENV && VENV/bin/pip install torch sentence-transformers safetensors
    python3 data/fetch_minilm.py
    VENV/bin/python data/make_embedding_reference.py

Encodes every text of data/sample/texts/texts.ndjson with all-MiniLM-L6-v2 on the CPU in
float32 (sentence-transformers' defaults: max_seq_length 256 from the model, mean pooling,
normalisation) and writes data/sample/texts/reference_minilm.safetensors with one tensor,
`embeddings` [n, 384], stored as float16 (cosine error from the rounding < 1e-7).
"""
import json
import os

import numpy as np
import torch
from safetensors.numpy import save_file
from sentence_transformers import SentenceTransformer

here = os.path.dirname(os.path.abspath(__file__))
texts = [json.loads(l)["text"] for l in open(os.path.join(here, "sample", "texts", "texts.ndjson"), encoding="utf-8")]
torch.manual_seed(0)
model = SentenceTransformer(os.path.join(here, "models", "all-MiniLM-L6-v2"), device="cpu")
assert model.max_seq_length == 256, model.max_seq_length
emb = model.encode(texts, batch_size=64, convert_to_numpy=True, show_progress_bar=False).astype(np.float32)
out = os.path.join(here, "sample", "texts", "reference_minilm.safetensors")
save_file({"embeddings": emb.astype(np.float16)}, out, metadata={"model": "all-MiniLM-L6-v2", "texts": "texts.ndjson"})
print(f"wrote {out}: {emb.shape}, sentence-transformers {__import__('sentence_transformers').__version__}, torch {torch.__version__}")
