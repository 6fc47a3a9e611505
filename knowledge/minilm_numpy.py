"""all-MiniLM-L6-v2 in plain numpy: the same vectors as sentence-transformers, without torch.

Why (issue 13): each of Tandem's three processes loaded torch + sentence-transformers only to run
this 22M-parameter BERT (6 layers, 384 wide), several hundred MiB of resident memory per process
for a model whose weights are 87 MiB. This module runs the same forward pass (BERT embeddings,
six post-norm encoder layers with exact-erf GELU, mean pooling over the attention mask, L2
normalisation) with numpy's BLAS, tokenises with the `tokenizers` package (the model's own
tokenizer.json, truncated at the model's max_seq_length of 256 like sentence-transformers), and
reads the weights from the shipped model.safetensors with `np.memmap`: read-only pages of one file,
so every process on the machine shares one copy of the weights through the page cache.

Measured against sentence-transformers on the demo FAQ's 566 texts and the held-out questions
(max abs difference per dimension, CPU time, memory): docs/performance.md,
benchmarks/minilm_runtime.py. knowledge/models.py serves MiniLM with this class; the torch
runtime (knowledge/embedder.Embedder) stays for the benchmarks that compare the two.
"""
from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Sequence

import numpy as np

DIMENSION = 384
MAX_SEQ_LENGTH = 256  # sentence_bert_config.json of the shipped model
SHORT_ROWS = 16  # batch x tokens up to which dense() multiplies as W @ x.T (measured: docs/performance.md section 5)
NAME = "all-MiniLM-L6-v2"


def padded(encodings: Sequence[object], chosen: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Token ids and attention mask (int64, batch x longest) of the chosen tokenizer encodings."""
    length = max(len(encodings[i].ids) for i in chosen)  # type: ignore[attr-defined]
    ids = np.zeros((len(chosen), length), dtype=np.int64)
    mask = np.zeros((len(chosen), length), dtype=np.int64)
    for row, i in enumerate(chosen):
        n = len(encodings[i].ids)  # type: ignore[attr-defined]
        ids[row, :n] = encodings[i].ids  # type: ignore[attr-defined]
        mask[row, :n] = 1
    return ids, mask


def _safetensors(path: Path) -> dict[str, np.ndarray]:
    """Every tensor of a .safetensors file as a read-only memory map (no copy, shared pages)."""
    with path.open("rb") as f:
        header_len = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(header_len))
    dtypes = {"F32": "<f4", "I64": "<i8"}
    out: dict[str, np.ndarray] = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        start, end = meta["data_offsets"]
        dtype = np.dtype(dtypes[meta["dtype"]])
        count = (end - start) // dtype.itemsize
        mapped = np.memmap(path, dtype=dtype, mode="r", offset=8 + header_len + start, shape=(count,))
        out[name] = np.asarray(mapped).reshape(meta["shape"])  # a plain ndarray view of the mapped pages
    return out


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    var = (centred * centred).mean(axis=-1, keepdims=True)
    return centred / np.sqrt(var + eps) * weight + bias


_ERF = tuple(np.float32(c) for c in (1.061405429, -1.453152027, 1.421413741, -0.284496736, 0.254829592))
_ERF_P = np.float32(0.3275911)
_SQRT_HALF = np.float32(1.0 / np.sqrt(2.0))


def _gelu(x: np.ndarray) -> np.ndarray:
    """BERT's exact GELU, x * Phi(x) (erf, not the tanh approximation), with erf by Abramowitz &
    Stegun 7.1.26 (|error| <= 1.5e-7; ~5e-7 in float32) computed in place: 1.6x faster than
    scipy.special.erf, which took 30 % of an index build (docs/performance.md)."""
    z = x * _SQRT_HALF
    a = np.abs(z)
    t = a * _ERF_P
    t += np.float32(1.0)
    np.reciprocal(t, out=t)
    y = t * _ERF[0]
    for c in _ERF[1:]:
        y += c
        y *= t
    np.multiply(a, a, out=a)
    np.negative(a, out=a)
    np.exp(a, out=a)
    y *= a  # 1 - erf(|z|)
    y *= np.float32(0.5)
    np.copysign(y, z, out=y)
    np.negative(y, out=y)
    y += z >= 0  # Phi(x) = 1 - (1 - erf|z|)/2 for z >= 0, (1 - erf|z|)/2 below
    y *= x
    return y


class NumpyMiniLM:
    """Encodes texts to L2-normalised float32 vectors (knowledge.models.Encoder), like Embedder."""

    name = NAME

    def __init__(self, path: Path | None = None) -> None:
        if path is None:
            from knowledge.embedder import model_path

            path = model_path()
        self._path = Path(path)
        self._lock = threading.Lock()
        self._weights: dict[str, np.ndarray] | None = None
        self._tokenizer = None
        config = json.loads((self._path / "config.json").read_text())
        self.layers = int(config["num_hidden_layers"])
        self.heads = int(config["num_attention_heads"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))

    def _load(self) -> tuple[dict[str, np.ndarray], object]:
        with self._lock:
            if self._weights is None:
                from tokenizers import Tokenizer

                tokenizer = Tokenizer.from_file(str(self._path / "tokenizer.json"))
                tokenizer.enable_truncation(MAX_SEQ_LENGTH)
                tokenizer.no_padding()
                self._tokenizer = tokenizer
                self._weights = _safetensors(self._path / "model.safetensors")
        return self._weights, self._tokenizer

    def _forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Mean-pooled, normalised sentence vectors of a padded batch (ids, mask: batch x length)."""
        w = self._weights
        assert w is not None
        batch, length = ids.shape
        x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:length] \
            + w["embeddings.token_type_embeddings.weight"][0]
        x = _layer_norm(x.astype(np.float32), w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self.eps)
        heads, size = self.heads, x.shape[-1] // self.heads
        scale = np.float32(1.0 / np.sqrt(size))
        additive = ((1.0 - mask[:, None, None, :]) * np.finfo(np.float32).min).astype(np.float32)
        for i in range(self.layers):
            p = f"encoder.layer.{i}."

            def dense(h: np.ndarray, name: str) -> np.ndarray:
                # One BLAS sgemm on the stored weights, no copy of them. A short input (a customer's
                # message) runs as W @ x.T, which walks the weights in their stored order: 1.2-1.7x
                # faster for up to ~16 rows; longer batches (an index build) as x @ W.T.
                flat, weight = h.reshape(-1, h.shape[-1]), w[p + name + ".weight"]
                if flat.shape[0] <= SHORT_ROWS:
                    out = np.ascontiguousarray((weight @ flat.T).T)
                else:
                    out = flat @ weight.T
                out += w[p + name + ".bias"]
                return out.reshape(*h.shape[:-1], out.shape[-1])

            def split(h: np.ndarray) -> np.ndarray:
                return h.reshape(batch, length, heads, size).transpose(0, 2, 1, 3)

            q, k, v = (split(dense(x, f"attention.self.{n}")) for n in ("query", "key", "value"))
            scores = (q @ k.transpose(0, 1, 3, 2)) * scale + additive
            scores -= scores.max(axis=-1, keepdims=True)
            probs = np.exp(scores)
            probs /= probs.sum(axis=-1, keepdims=True)
            context = (probs @ v).transpose(0, 2, 1, 3).reshape(batch, length, heads * size)
            x = _layer_norm(dense(context, "attention.output.dense") + x,
                            w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"], self.eps)
            inner = _gelu(dense(x, "intermediate.dense"))
            x = _layer_norm(dense(inner, "output.dense") + x, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], self.eps)
        m = mask[:, :, None].astype(np.float32)
        pooled = (x * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
        return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)

    def encode(self, texts: Sequence[str], batch_size: int = 64, progress: bool = False, workers: int = 1) -> np.ndarray:
        """`workers` > 1: batches run in that many threads, each with one BLAS thread (numpy releases
        the GIL in its kernels), for bulk work such as an index build; a message is one batch."""
        if not texts:
            return np.zeros((0, DIMENSION), dtype=np.float32)
        _, tokenizer = self._load()
        encodings = tokenizer.encode_batch([str(t) for t in texts])  # type: ignore[attr-defined]
        order = sorted(range(len(encodings)), key=lambda i: -len(encodings[i].ids))  # similar lengths batch together
        out = np.empty((len(texts), DIMENSION), dtype=np.float32)
        batches = [order[start : start + max(1, batch_size)] for start in range(0, len(order), max(1, batch_size))]

        def run(chosen: list[int]) -> None:
            ids, mask = padded(encodings, chosen)
            out[chosen] = self._forward(ids, mask.astype(np.float32))

        if workers <= 1 or len(batches) == 1:
            for chosen in batches:
                run(chosen)
        else:
            from concurrent.futures import ThreadPoolExecutor

            from threadpoolctl import threadpool_limits

            with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(workers, thread_name_prefix="minilm") as pool:
                list(pool.map(run, batches))
        return np.ascontiguousarray(out, dtype=np.float32)
