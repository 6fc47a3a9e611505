"""How an entry scores for a question: half its best text, half the mean of its best three.

Measured in docs/evaluation.md (benchmarks/retrieval_options.py): against "best cosine per entry"
this blend ranks the right entry first more often on all three sets (BANKING77 0.929 vs 0.923,
Bitext 0.992 vs 0.990, Northwind held-out 0.755 vs 0.720) and is a little more precise at the
self-calibrated threshold, because one stray paraphrase that happens to sit near a question
weighs less than three that agree. An entry with one text scores exactly its cosine, so the scale
stays a cosine and thresholds keep their meaning.

Used by knowledge/index.py (search) and knowledge/selfcalibration.py (the same scores on the
knowledge base's own texts), so the thresholds are calibrated on what the bot really computes.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

TOP = 3
BEST_WEIGHT = 0.5
MASKED = -2.0  # a similarity below any cosine: "not a candidate"


def entry_score(scores: Sequence[float]) -> float:
    """One entry's score from its texts' cosines (any order)."""
    ordered = sorted(scores, reverse=True)[:TOP]
    if not ordered:
        return MASKED
    return BEST_WEIGHT * ordered[0] + (1 - BEST_WEIGHT) * sum(ordered) / len(ordered)


def entry_scores(sims: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """(queries x texts) cosines, texts grouped by entry (group j starts at column starts[j]) ->
    (queries x entries). Texts masked with MASKED do not count."""
    owner = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, sims.shape[1]]))
    work = sims.copy()
    tops = []
    for _ in range(TOP):
        best = np.maximum.reduceat(work, starts, axis=1)
        tops.append(best)
        # remove one best text per entry (the first column reaching it) for the next round
        hit = work >= best[:, owner]
        first = hit & (np.cumsum(hit, axis=1) - np.concatenate([np.zeros((hit.shape[0], 1), dtype=np.int64),
                                                               np.cumsum(hit, axis=1)[:, starts[1:] - 1]], axis=1)[:, owner] == 1)
        work[first] = MASKED - 1
    stack = np.stack(tops, 0)
    valid = stack > MASKED + 0.5
    mean = np.where(valid, stack, 0).sum(0) / np.maximum(valid.sum(0), 1)
    out = BEST_WEIGHT * tops[0] + (1 - BEST_WEIGHT) * mean
    return np.where(valid[0], out, MASKED).astype(np.float32)
