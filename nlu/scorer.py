"""Sentiment of a customer message: negative / neutral / positive and a score in -1..1.

Two methods, one interface:
- "head": a small logistic-regression head over the offline all-MiniLM-L6-v2 sentence embedding
  plus VADER's scores and the support cues (nlu/cues.py). Its weights (nlu/sentiment_head.npz,
  a few KB) are trained by `benchmarks/sentiment_eval.py --write-head` on a training split of
  real airline-support tweets and shipped in the repo, so nothing is downloaded or trained at
  run time.
- "lexicon": VADER + the support cues only, used when the head file is missing (and as the
  cheap method for callers that cannot load the embedding model).
Chinese messages (core/language.detect) are scored by nlu/sentiment_zh.py (lexicon + Chinese
support cues, method "lexicon_zh", issue 16); when the cross-lingual head nlu/sentiment_head_e5.npz
is given (`zh_head_path`), its score on the message's multilingual-E5 embedding is blended into the
lexicon polarity, cues kept (method "blend_zh"; measured in docs/evaluation.md). Other non-English messages (nlu/cues.is_english) get
a neutral score marked unsupported: both VADER and the head are English-only, and a confident wrong
score would be worse than none.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from core.language import detect
from nlu.cues import Cues, find_cues
from nlu.sentiment_zh import score_zh

HEAD_FILE = Path(__file__).resolve().parent / "sentiment_head.npz"
LABELS = ("negative", "neutral", "positive")


@dataclass(frozen=True)
class Sentiment:
    label: str
    score: float  # P(positive) - P(negative), or VADER's adjusted compound: -1 (angry) .. 1 (happy)
    probabilities: dict[str, float]
    cues: Cues = field(default_factory=Cues)
    method: str = "head"

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label, "score": round(self.score, 4),
            "probabilities": {k: round(v, 4) for k, v in self.probabilities.items()},
            "cues": self.cues.names(), "cue_detail": self.cues.to_dict(), "english": self.cues.english,
            "method": self.method, "language": "zh" if self.method.endswith("_zh") else "en" if self.cues.english else "other",
            "supported": self.method != "unsupported_language",
        }


_vader_lock = threading.Lock()
_vader: SentimentIntensityAnalyzer | None = None


def vader() -> SentimentIntensityAnalyzer:
    """VADER loads its lexicon from the installed package (no network); one per process."""
    global _vader
    with _vader_lock:
        if _vader is None:
            _vader = SentimentIntensityAnalyzer()
    return _vader


def hand_features(text: str, cues: Cues) -> list[float]:
    """VADER's four scores and the support cues, scaled to about 0..1."""
    polarity = vader().polarity_scores(text)
    return [
        polarity["neg"], polarity["neu"], polarity["pos"], polarity["compound"],
        float(cues.shouting), min(cues.exclamations, 3) / 3, min(cues.profanity, 2) / 2, min(len(cues.frustration), 2) / 2,
    ]


def lexicon_sentiment(text: str, cues: Cues | None = None) -> Sentiment:
    """VADER's compound, pushed down by support frustration cues VADER does not know."""
    cues = cues or find_cues(text)
    compound = vader().polarity_scores(text)["compound"]
    penalty = 0.35 * min(len(cues.frustration), 2) + 0.3 * min(cues.profanity, 1) + 0.15 * cues.shouting + 0.1 * (cues.exclamations >= 2)
    score = max(-1.0, compound - penalty) if penalty else compound
    label = "negative" if score <= -0.05 else "positive" if score >= 0.05 else "neutral"
    probabilities = {"negative": max(0.0, -score), "neutral": 1 - abs(score), "positive": max(0.0, score)}
    return Sentiment(label, score, probabilities, cues, "lexicon")


@dataclass(frozen=True)
class Head:
    """Multinomial logistic regression: softmax(features @ coef.T + intercept)."""

    coef: np.ndarray  # (3, n_features)
    intercept: np.ndarray  # (3,)
    classes: tuple[str, ...]

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        logits = features @ self.coef.T + self.intercept
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)

    def save(self, path: Path) -> None:
        np.savez_compressed(path, coef=self.coef.astype(np.float32), intercept=self.intercept.astype(np.float32), classes=np.array(self.classes))

    @classmethod
    def load(cls, path: Path) -> "Head":
        with np.load(path) as data:
            return cls(data["coef"], data["intercept"], tuple(str(c) for c in data["classes"]))


def train_head(features: np.ndarray, labels: Sequence[str], c: float = 1.0) -> Head:
    """Fit the head (class-balanced, so `negative` recall is not traded for the majority class)."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=c, max_iter=2000, class_weight="balanced")
    model.fit(features, list(labels))
    return Head(model.coef_, model.intercept_, tuple(str(c) for c in model.classes_))


class SentimentScorer:
    """Scores messages with the head when its weights exist, else with the lexicon method."""

    def __init__(self, head_path: Path | None = HEAD_FILE, embedder: Any = None, zh_head_path: Path | None = None,
                 zh_embedder: Any = None) -> None:
        self.head = Head.load(head_path) if head_path and Path(head_path).exists() else None
        self._embedder = embedder
        # The cross-lingual head for Chinese: None (lexicon + cues only) unless its file is given and exists.
        self.zh_head = Head.load(zh_head_path) if zh_head_path and Path(zh_head_path).exists() else None
        self._zh_embedder = zh_embedder

    def zh_embedder(self) -> Any:
        """The process's one multilingual-E5 encoder (knowledge/models.encoder), shared with the knowledge base."""
        if self._zh_embedder is None:
            from knowledge.models import E5, encoder

            self._zh_embedder = encoder(E5)
        return self._zh_embedder

    def zh_head_scores(self, texts: Sequence[str], embeddings: np.ndarray | None = None) -> list[float]:
        """The cross-lingual head's P(positive) - P(negative) per text, on E5's "query: " side."""
        if self.zh_head is None or not texts:
            return []
        if embeddings is None:
            embeddings = self.zh_embedder().encode_queries(list(texts))
        probs = self.zh_head.probabilities(np.asarray(embeddings, dtype=np.float32))
        classes = list(self.zh_head.classes)
        return [float(row[classes.index("positive")] - row[classes.index("negative")]) for row in probs]

    @property
    def method(self) -> str:
        return "head" if self.head else "lexicon"

    def embedder(self) -> Any:
        if self._embedder is None:
            from knowledge.models import MINILM, encoder

            self._embedder = encoder(MINILM)  # the process's one MiniLM, shared with the FAQ search
        return self._embedder

    def features(self, texts: Sequence[str], embeddings: np.ndarray | None = None) -> np.ndarray:
        """Sentence embedding + hand features; `embeddings` may be passed in (benchmarks cache them)."""
        if embeddings is None:
            embeddings = self.embedder().encode(list(texts))
        hand = np.array([hand_features(t, find_cues(t)) for t in texts], dtype=np.float32)
        return np.hstack([embeddings, hand]).astype(np.float32)

    def score_many(self, texts: Sequence[str], embeddings: np.ndarray | None = None) -> list[Sentiment]:
        chinese = {i for i, t in enumerate(texts) if detect(t) == "zh"}
        if chinese:
            out = self.score_many([t for i, t in enumerate(texts) if i not in chinese],
                                  None if embeddings is None else embeddings[[i for i in range(len(texts)) if i not in chinese]])
            rest = iter(out)
            order = sorted(chinese)
            heads = dict(zip(order, self.zh_head_scores([texts[i] for i in order])))
            return [Sentiment(*_zh(t, heads.get(i))) if i in chinese else next(rest) for i, t in enumerate(texts)]
        cues = [find_cues(t) for t in texts]
        if self.head is None:
            return [self._unsupported(c) if not c.english else lexicon_sentiment(t, c) for t, c in zip(texts, cues)]
        english = [i for i, c in enumerate(cues) if c.english]
        results: list[Sentiment] = [self._unsupported(c) for c in cues]
        if english:
            chosen = [texts[i] for i in english]
            probs = self.head.probabilities(self.features(chosen, None if embeddings is None else embeddings[english]))
            for row, i in zip(probs, english):
                p = dict(zip(self.head.classes, (float(x) for x in row)))
                label = max(p, key=p.__getitem__)
                results[i] = Sentiment(label, p.get("positive", 0.0) - p.get("negative", 0.0), p, cues[i], "head")
        return results

    def score(self, text: str) -> Sentiment:
        return self.score_many([text])[0]

    @staticmethod
    def _unsupported(cues: Cues) -> Sentiment:
        return Sentiment("neutral", 0.0, {"negative": 0.0, "neutral": 1.0, "positive": 0.0}, cues, "unsupported_language")


def _zh(text: str, head_score: float | None = None) -> tuple[str, float, dict[str, float], Cues, str]:
    label, score, probabilities, cues = score_zh(text, head_score=head_score)
    return label, score, probabilities, cues, "lexicon_zh" if head_score is None else "blend_zh"
