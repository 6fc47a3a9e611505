"""How an entry scores for a question: `BEST_WEIGHT` x its best text + the rest x the mean of its best three.

Shipped: BEST_WEIGHT 1.0, the best cosine. The blend 0.5 / 0.5 ranked better on the three
benchmark sets (BANKING77 0.929 vs 0.923 top-1, Bitext 0.992 vs 0.990, demo held-out 0.755 vs 0.720;
docs/evaluation.md), whose entries all have many texts. But it favours entries with FEW texts: an
entry with one text scores its plain cosine while an entry with five is pulled down by its other
wordings, so an editor's one-line draft beat an existing entry whose question the customer typed
word for word (tests/test_editor_api.py's clash case). Real knowledge bases mix 0 and 20
paraphrases per entry, so the unbiased best cosine stays until a blend without that bias is measured.

Used by knowledge/index.py (search) and knowledge/selfcalibration.py (the same scores on the
knowledge base's own texts), so the thresholds are calibrated on what the bot really computes.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

TOP = 3
BEST_WEIGHT = 1.0  # 1.0: the best cosine (see above); 0.5: the measured blend
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
    if BEST_WEIGHT == 1.0:
        best = np.maximum.reduceat(sims, starts, axis=1)
        return np.where(best > MASKED + 0.5, best, MASKED).astype(np.float32)
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


def stretch(scores: np.ndarray, factor: float) -> np.ndarray:
    """Put an encoder's cosines on the common scale: 1 - factor x (1 - cosine), masked stay masked.

    multilingual-e5-small's cosines are compressed (unrelated ~0.8, right answers ~0.94): the gap
    between the right entry and the next is ~4x smaller than MiniLM's on the same questions
    (docs/multilingual.md). Stretched by knowledge/models.SCORE_STRETCH, one clarify margin, one
    clarify floor rule and one calibration grid serve every encoder. Affine, so rankings are unchanged.
    """
    if factor == 1.0:
        return scores
    out = 1.0 - factor * (1.0 - scores.astype(np.float32))
    return np.where(scores > MASKED + 0.5, np.maximum(out, -1.0), MASKED).astype(np.float32)

