"""Ways to adapt retrieval to a knowledge base's own paraphrases, on the same embeddings (issue 10).

For BANKING77, Bitext and the demo's held-out set (benchmarks/kb_sets.py, cached MiniLM embeddings)
it compares: the best cosine per entry (the baseline); WCCN (within-class covariance
normalisation of the vectors); a logistic regression from vectors to entries alone, its highest
probability as the "is this covered?" gate; and the shipped fusion, cosine + WEIGHT x P(entry)
(knowledge/entry_head.py), gated on the chosen entry's own cosine. "best in-right at OOS >= 0.85"
picks the threshold WITH the test labels, so it only compares options; the product's thresholds
come from self-calibration (benchmarks/kb_eval.py).

    $VENV/bin/python benchmarks/head_options.py [--sets banking77,bitext,northwind]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import kb_sets  # noqa: E402
from embed_cache import embed  # noqa: E402

from benchmarks.common import markdown_table  # noqa: E402
from knowledge.scoring import entry_scores  # noqa: E402


def best_in_right(top: np.ndarray, gate: np.ndarray, labels: np.ndarray, ins: np.ndarray, refuse: float = 0.85) -> float:
    """The most in-scope questions answered right at any threshold refusing >= `refuse` of the OOS ones."""
    best = 0.0
    for t in np.quantile(gate, np.linspace(0, 1, 400)):
        refused = ((~ins) & (gate < t)).sum() / max((~ins).sum(), 1)
        if refused >= refuse:
            best = max(best, ((top == labels) & ins & (gate >= t)).sum() / ins.sum())
    return best


def wccn(vectors: np.ndarray, owner: np.ndarray, alpha: float) -> np.ndarray:
    means = np.zeros_like(vectors)
    for c in np.unique(owner):
        means[owner == c] = vectors[owner == c].mean(0)
    multi = np.array([(owner == o).sum() > 1 for o in owner])
    residual = (vectors - means)[multi]
    within = residual.T @ residual / max(len(residual), 1)
    within /= np.trace(within) / vectors.shape[1]
    w, v = np.linalg.eigh((1 - alpha) * np.eye(vectors.shape[1]) + alpha * within)
    return v @ np.diag(w ** -0.5) @ v.T


def norm(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default="banking77,bitext,northwind")
    args = parser.parse_args()
    from sklearn.linear_model import LogisticRegression

    from knowledge.entry_head import C, WEIGHT

    rows = []
    for name in args.sets.split(","):
        ks = kb_sets.SETS[name]()
        texts, owner = [], []
        for j, e in enumerate(ks.entries):
            for t in e.texts():
                texts.append(t)
                owner.append(j)
        owner_arr = np.array(owner)
        starts = np.flatnonzero(np.r_[True, owner_arr[1:] != owner_arr[:-1]])
        x, q = embed(texts), embed([a.text for a in ks.questions])
        col = {e.id: j for j, e in enumerate(ks.entries)}
        labels = np.array([col[a.label] if a.label else -1 for a in ks.questions])
        ins = labels >= 0
        cos = entry_scores(q @ x.T, starts)
        options = {"best cosine (baseline)": (cos.argmax(1), cos.max(1))}
        for alpha in (0.3, 0.9):
            t = wccn(x, owner_arr, alpha)
            s = entry_scores(norm(q @ t) @ norm(x @ t).T, starts)
            options[f"WCCN alpha {alpha}"] = (s.argmax(1), s.max(1))
        probs = LogisticRegression(C=C, max_iter=2000).fit(x, owner_arr).predict_proba(q)
        options["logistic regression alone (max probability gate)"] = (probs.argmax(1), probs.max(1))
        for weight in sorted({WEIGHT, 0.3}):
            fused = cos + weight * probs
            top = fused.argmax(1)
            options[f"cosine + {weight} x P (gate: chosen entry's cosine)"] = (top, cos[np.arange(len(cos)), top])
        for option, (top, gate) in options.items():
            rows.append([ks.name, option, f"{(top[ins] == labels[ins]).mean():.3f}", f"{best_in_right(top, gate, labels, ins):.3f}"])
            print(rows[-1], flush=True)
    print(markdown_table(["set", "option", "top-1 in scope", "best in-right at OOS >= 0.85 (label-picked threshold)"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
