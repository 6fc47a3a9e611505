"""Retrieval options at engine level, with thresholds chosen WITHOUT the test labels (issue 10).

For each set (benchmarks/kb_sets.py: BANKING77 with 10 intents left out, Bitext with 5 left out,
Northwind held-out) and each entry-scoring option, this script

1. ranks the entries for every test question (top-1 in-scope accuracy, no threshold);
2. self-calibrates a threshold on the knowledge base alone (knowledge/selfcalibration.py's rule:
   the score 90 % of its rightly ranked held-out paraphrases reach, never below refusing 95 % of
   Tandem's off-topic set), with the SAME option used for the held-out queries, then
3. reports at that threshold: in-scope answered right, out-of-scope refused, answer precision.

Options: best cosine per entry (shipped before), mean of the entry's top-3 texts, mean of all
its texts ("centroid"), max/centroid blend, kNN vote (top-10 texts vote, weighted), dense+BM25
reciprocal-rank fusion, and (Northwind, the only set with answers) scoring the answer text too.

    $VENV/bin/python benchmarks/retrieval_options.py [--sets banking77,bitext,northwind] [--no-docs]

Embeddings are cached in /tmp/tandem-cache/embeddings (benchmarks/embed_cache.py).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import kb_sets  # noqa: E402
from embed_cache import embed  # noqa: E402
from bm25 import Bm25  # noqa: E402

from knowledge.selfcalibration import GRID, offtopic_questions  # noqa: E402

TOKEN = re.compile(r"[a-z0-9]+")
RESULTS = Path("/tmp/tandem-cache/retrieval_options.json")


@dataclass
class Kb:
    """A knowledge base as matrices: text vectors, owners, groups per entry."""

    ids: list[str]
    vectors: np.ndarray
    owner: np.ndarray  # entry column of each text row
    groups: list[np.ndarray]
    texts: list[str]
    answers: np.ndarray  # one vector per entry


def build(kbset: kb_sets.KbSet) -> Kb:
    ids = [e.id for e in kbset.entries]
    texts, owner = [], []
    for j, e in enumerate(kbset.entries):
        for t in e.texts():
            texts.append(t)
            owner.append(j)
    vectors = embed(texts)
    owner_arr = np.array(owner)
    groups = [np.flatnonzero(owner_arr == j) for j in range(len(ids))]
    return Kb(ids, vectors, owner_arr, groups, texts, embed([e.answer for e in kbset.entries]))


# -- entry scoring options: (query x text sims, masked with -2) -> (query x entry) -------------
def agg_max(s: np.ndarray, kb: Kb) -> np.ndarray:
    return np.stack([s[:, g].max(1) for g in kb.groups], 1)


def agg_top3(s: np.ndarray, kb: Kb) -> np.ndarray:
    cols = []
    for g in kb.groups:
        part = s[:, g]
        k = min(3, part.shape[1])
        top = -np.sort(-part, axis=1)[:, :k]
        valid = top > -1.5
        cols.append(np.where(valid, top, 0).sum(1) / np.maximum(valid.sum(1), 1))
    return np.stack(cols, 1)


def agg_mean(s: np.ndarray, kb: Kb) -> np.ndarray:
    cols = []
    for g in kb.groups:
        part = s[:, g]
        valid = part > -1.5
        cols.append(np.where(valid, part, 0).sum(1) / np.maximum(valid.sum(1), 1))
    return np.stack(cols, 1)


def agg_blend(s: np.ndarray, kb: Kb) -> np.ndarray:
    return 0.5 * agg_max(s, kb) + 0.5 * agg_top3(s, kb)


def agg_max_centroid(s: np.ndarray, kb: Kb) -> np.ndarray:
    return 0.7 * agg_max(s, kb) + 0.3 * agg_mean(s, kb)


def agg_knn(s: np.ndarray, kb: Kb, k: int = 10) -> np.ndarray:
    """Top-k texts vote with their similarity; the score shown is the winner's best cosine, so the
    ranking changes but the threshold scale stays a cosine."""
    top = np.argpartition(-s, kth=min(k, s.shape[1] - 1), axis=1)[:, :k]
    votes = np.zeros((s.shape[0], len(kb.ids)), dtype=np.float32)
    rows = np.repeat(np.arange(s.shape[0]), top.shape[1])
    np.add.at(votes, (rows, kb.owner[top.ravel()]), np.maximum(s[rows, top.ravel()], 0))
    best = agg_max(s, kb)
    # rank by votes, break ties by max; score = max cosine + tiny vote term (keeps the order)
    order_score = votes + 1e-3 * best
    winner = order_score.argmax(1)
    out = best - 1.0  # everyone else pushed below the winner
    out[np.arange(len(winner)), winner] = best[np.arange(len(winner)), winner]
    return out


OPTIONS: dict[str, Callable[[np.ndarray, Kb], np.ndarray]] = {
    "max (shipped before)": agg_max,
    "top-3 mean": agg_top3,
    "max + top-3 blend": agg_blend,
    "0.7 max + 0.3 centroid": agg_max_centroid,
    "centroid (mean sim)": agg_mean,
    "kNN vote (k=10)": agg_knn,
}


_BM25: dict[int, Bm25] = {}


def bm25_matrix(kb: Kb, queries: list[str]) -> np.ndarray:
    if id(kb) not in _BM25:
        _BM25[id(kb)] = Bm25(kb.texts)
    return _BM25[id(kb)].scores(queries)


def rrf_fusion(dense: np.ndarray, bm25: np.ndarray, kb: Kb) -> np.ndarray:
    """Reciprocal-rank fusion of dense max and BM25 max per entry; score = winner's dense max."""
    d = agg_max(dense, kb)
    b = agg_max(bm25, kb)
    rd = np.argsort(np.argsort(-d, 1), 1)
    rb = np.argsort(np.argsort(-b, 1), 1)
    fused = 1 / (60 + rd) + 1 / (60 + rb)
    winner = fused.argmax(1)
    out = d - 1.0
    out[np.arange(len(winner)), winner] = d[np.arange(len(winner)), winner]
    return out


# -- calibration and evaluation ----------------------------------------------------------------
def self_threshold(kb: Kb, score_fn: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray], off: np.ndarray,
                   sample: int = 1500, seed: int = 0, target: float = 0.95) -> tuple[float, dict]:
    """The knowledge base's own threshold for this option (same rule as knowledge/selfcalibration.py)."""
    rng = np.random.default_rng(seed)
    multi = np.array([i for i in range(len(kb.texts)) if len(kb.groups[kb.owner[i]]) >= 2])
    held = rng.choice(multi, size=min(sample, len(multi)), replace=False)
    firsts = np.array([g[0] for g in kb.groups])
    sib = rng.choice(firsts, size=min(sample, len(firsts)), replace=False)
    s = kb.vectors[held] @ kb.vectors.T
    s[np.arange(len(held)), held] = -2.0
    hs = score_fn(s, held, np.zeros(0))
    h_top, h_right = hs.max(1), hs.argmax(1) == kb.owner[held]
    s2 = kb.vectors[sib] @ kb.vectors.T
    for r, i in enumerate(sib):
        s2[r, kb.groups[kb.owner[i]]] = -2.0
    ss = score_fn(s2, sib, np.zeros(0))
    for r, i in enumerate(sib):
        ss[r, kb.owner[i]] = -2.0
    s_top = ss.max(1)
    o_top = score_fn(off @ kb.vectors.T, np.zeros(0, dtype=int), np.zeros(0)).max(1)
    allowed = [float(t) for t in GRID if (o_top < t).mean() >= target]
    off_floor = allowed[0] if allowed else float(GRID[-1])
    own = float(np.floor(np.quantile(h_top[h_right], 0.10) * 100) / 100)
    best_t = max(off_floor, own)
    return best_t, {"heldout_top1": float(h_right.mean()), "heldout_answered": float((h_right & (h_top >= best_t)).mean()),
                    "siblings_refused": float((s_top < best_t).mean()), "offtopic_refused": float((o_top < best_t).mean())}


def evaluate(scores: np.ndarray, labels: list[int | None], t: float) -> dict:
    top, win = scores.max(1), scores.argmax(1)
    ins = [i for i, l in enumerate(labels) if l is not None]
    oos = [i for i, l in enumerate(labels) if l is None]
    right = np.array([win[i] == labels[i] for i in ins])
    answered_right = np.array([win[i] == labels[i] and top[i] >= t for i in ins])
    answered = int((top >= t).sum())
    correct = int(answered_right.sum())
    return {
        "top1": float(right.mean()) if ins else 0.0,
        "threshold": t,
        "in_scope_answered_right": float(answered_right.mean()) if ins else 0.0,
        "oos_refused": float(np.mean([top[i] < t for i in oos])) if oos else float("nan"),
        "precision": correct / answered if answered else 1.0,
        "answered": answered / len(labels),
    }


def run_set(kbset: kb_sets.KbSet, off: np.ndarray, progress: Callable[[str], None]) -> dict[str, dict]:
    kb = build(kbset)
    col = {faq_id: j for j, faq_id in enumerate(kb.ids)}
    labels = [col[q.label] if q.label is not None else None for q in kbset.questions]
    qv = embed([q.text for q in kbset.questions])
    sims = qv @ kb.vectors.T
    results: dict[str, dict] = {}
    for name, agg in OPTIONS.items():
        started = time.perf_counter()
        t, cal = self_threshold(kb, lambda s, _rows, _x, agg=agg: agg(s, kb), off)
        results[name] = {**evaluate(agg(sims, kb), labels, t), "calibration": cal}
        progress(f"{kbset.name}: {name} done in {time.perf_counter() - started:.1f}s -> {results[name]['top1']:.3f} top-1")
    # BM25 alone and fused: the self-threshold for fusion uses the dense max of the fused winner.
    bq = bm25_matrix(kb, [q.text for q in kbset.questions])
    bm_alone = agg_max(bq, kb)
    results["BM25 alone (per-text max)"] = {**evaluate(bm_alone, labels, float("-inf")), "calibration": {}}
    results["BM25 alone (per-text max)"].update({"threshold": None, "oos_refused": 0.0})

    def fusion_fn(s: np.ndarray, rows: np.ndarray, _x: np.ndarray) -> np.ndarray:
        texts = [kb.texts[i] for i in rows] if len(rows) else None
        if texts is None:  # off-topic queries
            b = bm25_matrix(kb, offtopic_questions())
        else:
            b = bm25_matrix(kb, texts)
            b[s <= -1.5] = -1.0  # the same texts/entries masked as the dense side
        return rrf_fusion(s, b, kb)

    started = time.perf_counter()
    t, cal = self_threshold(kb, fusion_fn, off, sample=600)
    results["dense + BM25 RRF"] = {**evaluate(rrf_fusion(sims, bq, kb), labels, t), "calibration": cal}
    progress(f"{kbset.name}: dense + BM25 RRF done in {time.perf_counter() - started:.1f}s")
    if kbset.name == "Northwind":
        def with_answer(s: np.ndarray, rows: np.ndarray, _x: np.ndarray, qvecs: np.ndarray | None = None) -> np.ndarray:
            base = agg_max(s, kb)
            q = kb.vectors[rows] if len(rows) else off
            return np.maximum(base, 0.9 * (q @ kb.answers.T))

        t, cal = self_threshold(kb, with_answer, off)
        scores = np.maximum(agg_max(sims, kb), 0.9 * (qv @ kb.answers.T))
        results["max over texts and 0.9 x answer"] = {**evaluate(scores, labels, t), "calibration": cal}
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default="banking77,bitext,northwind")
    args = parser.parse_args(argv)
    off = embed(offtopic_questions())
    everything: dict[str, dict] = {}
    for name in args.sets.split(","):
        kbset = kb_sets.SETS[name]()
        print(f"{kbset.name}: {len(kbset.entries)} entries, {len(kbset.in_scope)} in-scope + {len(kbset.out_of_scope)} "
              f"out-of-scope questions; left out: {', '.join(kbset.left_out) or '-'}", flush=True)
        everything[kbset.name] = run_set(kbset, off, lambda m: print("  " + m, flush=True))
    RESULTS.write_text(json.dumps(everything, indent=1))
    print()
    print("| set | option | top-1 in-scope | self-calibrated t | in-scope answered right | OOS refused | precision |")
    print("|---|---|---|---|---|---|---|")
    for set_name, rows in everything.items():
        for option, r in rows.items():
            t = "-" if r["threshold"] is None else f"{r['threshold']:.2f}"
            print(f"| {set_name} | {option} | {r['top1']:.3f} | {t} | {r['in_scope_answered_right']:.3f} | "
                  f"{r['oos_refused']:.3f} | {r['precision']:.3f} |")
    print(f"\nraw: {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
