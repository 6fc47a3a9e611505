"""A head trained on the knowledge base's own texts: to which entry does a customer's text belong?

Why: the cosine to an entry's nearest text ranks well, but it weighs every word alike; it cannot
learn which words set one entry apart from its neighbours ("card arrived" vs "card not arrived
yet"). The entries' paraphrases are labelled examples of exactly that. After every publish a
multinomial logistic regression over the (frozen) sentence vectors learns it, in a background
thread, and is swapped in when done; until then, and for any revision it was not trained on,
search is the plain cosine, so a live edit never waits for it.

It only re-ranks: an entry's rank score is its cosine + `WEIGHT` x P(entry | text). The answer
threshold and the clarify floor stay on the entry's own cosine, so the self-calibration
(knowledge/selfcalibration.py) and its meaning for editors are unchanged; the clarify margin is
measured on the rank score ("is the best entry clearly ahead?"), and knowledge/decision.py falls
back to the cosine when the head's first entry fails the threshold but another entry passes it.

Measured (docs/evaluation.md, "The knowledge base's own head"; benchmarks/head_options.py and
benchmarks/kb_eval.py; C and WEIGHT were picked once for all sets, not per set): top-1 on the
BANKING77 test set 0.923 -> 0.938, Bitext 0.990 -> 0.997, the demo's held-out set 0.720 -> 0.741.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

WEIGHT = 0.2  # how much the head's probability moves an entry's rank score (cosines are ~0.3-1.0)
C = 10.0  # inverse L2 strength of the regression
MIN_EXTRA_TEXTS = 20  # paraphrases beyond one text per entry needed to learn anything (as self-calibration's)
MAX_TEXTS = 20_000  # larger knowledge bases keep the plain cosine: a fit would take minutes of a core
MAX_ENTRIES = 3_000


def worth_training(owners: Sequence[str]) -> bool:
    """Enough labelled examples to learn from, and small enough to fit in seconds."""
    entries = len(set(owners))
    return 2 <= entries <= MAX_ENTRIES and len(owners) <= MAX_TEXTS and len(owners) - entries >= MIN_EXTRA_TEXTS


@dataclass(frozen=True)
class EntryHead:
    """The trained head for one revision of one encoder's index."""

    revision: int
    encoder: str
    entries: tuple[str, ...]
    coef: np.ndarray  # (entries, dim) float32
    intercept: np.ndarray  # (entries,) float32
    seconds: float = 0.0
    _column: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._column.update({faq_id: j for j, faq_id in enumerate(self.entries)})

    @classmethod
    def train(cls, vectors: np.ndarray, owners: Sequence[str], revision: int, encoder: str) -> "EntryHead | None":
        """Fit on the index's vectors (one row per text, `owners[i]` its entry); None when not worth it."""
        if not worth_training(owners):
            return None
        from sklearn.linear_model import LogisticRegression  # imported here: only the training thread needs it

        started = time.monotonic()
        labels = np.asarray(owners)
        model = LogisticRegression(C=C, max_iter=500)
        model.fit(np.asarray(vectors, dtype=np.float32), labels)
        return cls(revision, encoder, tuple(str(c) for c in model.classes_), model.coef_.astype(np.float32),
                   model.intercept_.astype(np.float32), time.monotonic() - started)

    def probabilities(self, vector: np.ndarray, faq_ids: Sequence[str]) -> list[float]:
        """P(entry | text) for these entries (0 for an entry the head was not trained on)."""
        logits = self.coef @ np.asarray(vector, dtype=np.float32).reshape(-1) + self.intercept
        logits -= logits.max()
        p = np.exp(logits)
        p /= p.sum()
        return [float(p[self._column[f]]) if f in self._column else 0.0 for f in faq_ids]

    def rank_scores(self, vector: np.ndarray, faq_ids: Sequence[str], scores: Sequence[float]) -> list[float]:
        """Each entry's cosine plus WEIGHT x its probability."""
        return [s + WEIGHT * p for s, p in zip(scores, self.probabilities(vector, faq_ids))]
