"""BM25 (Okapi, k1 1.5, b 0.75, rank_bm25's idf with its epsilon floor) as one sparse matrix
product, so a benchmark scores thousands of questions against thousands of texts in a second
(rank_bm25's per-document Python loop took minutes on a busy machine). Same tokens as
benchmarks/retrieval.py: lower-cased alphanumeric words, no stemming, no stop words."""
from __future__ import annotations

import re
from typing import Sequence

import numpy as np
from scipy import sparse

TOKEN = re.compile(r"[a-z0-9]+")


def tokenize(text: str) -> list[str]:
    return TOKEN.findall(text.lower())


class Bm25:
    def __init__(self, docs: Sequence[str], k1: float = 1.5, b: float = 0.75, epsilon: float = 0.25) -> None:
        tokens = [tokenize(d) for d in docs]
        self.vocab: dict[str, int] = {}
        rows, cols, vals = [], [], []
        for i, toks in enumerate(tokens):
            counts: dict[int, int] = {}
            for t in toks:
                j = self.vocab.setdefault(t, len(self.vocab))
                counts[j] = counts.get(j, 0) + 1
            for j, c in counts.items():
                rows.append(i)
                cols.append(j)
                vals.append(c)
        n = len(tokens)
        tf = sparse.csr_matrix((np.array(vals, dtype=np.float32), (rows, cols)), shape=(n, len(self.vocab)))
        lengths = np.array([len(t) for t in tokens], dtype=np.float32)
        avgdl = float(lengths.mean()) if n else 1.0
        df = np.bincount(np.array(cols, dtype=np.int64), minlength=len(self.vocab)).astype(np.float32)
        idf = np.log((n - df + 0.5) / (df + 0.5))
        floor = epsilon * float(idf.mean()) if len(idf) else 0.0
        idf = np.where(idf < 0, floor, idf)
        tf = tf.tocoo()
        denom = tf.data + k1 * (1 - b + b * lengths[tf.row] / avgdl)
        weights = idf[tf.col] * tf.data * (k1 + 1) / denom
        self.weights = sparse.csr_matrix((weights, (tf.row, tf.col)), shape=tf.shape).T.tocsr()  # vocab x docs

    def scores(self, queries: Sequence[str]) -> np.ndarray:
        """(queries x docs) BM25 scores."""
        rows, cols, vals = [], [], []
        for i, q in enumerate(queries):
            for t in tokenize(q):
                j = self.vocab.get(t)
                if j is not None:
                    rows.append(i)
                    cols.append(j)
                    vals.append(1.0)
        q = sparse.csr_matrix((np.array(vals, dtype=np.float32), (rows, cols)), shape=(len(queries), len(self.vocab)))
        return np.asarray((q @ self.weights).todense(), dtype=np.float32)
