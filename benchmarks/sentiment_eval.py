"""Sentiment on real customer-support language: airline-support tweets (../shared/datasets/airline-sentiment).

Compares, on the same held-out test split (20 %, stratified, seed 42; never trained on):
  - VADER alone (the plain lexicon baseline, compound >= 0.05 positive, <= -0.05 negative)
  - Tandem's lexicon method (VADER + support cues, nlu/scorer.lexicon_sentiment)
  - Tandem's head (logistic regression on MiniLM embeddings + VADER + cues), trained on the 80 %
    training split only. `--write-head` saves its weights to nlu/sentiment_head.npz (shipped).
@mentions and links are removed from every tweet first (chat messages have neither).

    $VENV/bin/python benchmarks/sentiment_eval.py [--write-head]
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import re
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import ROOT, machine, markdown_table, today, write_section  # noqa: E402

DATA = ROOT.parent / "shared" / "datasets" / "airline-sentiment" / "tweets.csv"
CACHE = Path("/tmp/tandem-cache")


def clean(text: str) -> str:
    text = re.sub(r"@\w+", "", text)
    text = re.sub(r"https?://\S+", "", text)
    return re.sub(r"\s+", " ", text).strip() or "."


def load(path: Path = DATA) -> tuple[list[str], list[str]]:
    with path.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [clean(r["text"]) for r in rows], [r["airline_sentiment"] for r in rows]


def embeddings(texts: list[str]) -> np.ndarray:
    """MiniLM embeddings of every tweet, cached in /tmp (encoding 14k texts takes minutes on 2 cores)."""
    from knowledge.embedder import Embedder

    key = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]
    path = CACHE / f"airline-{key}.npy"
    if path.exists():
        return np.load(path)
    CACHE.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    vectors = Embedder().encode(texts, batch_size=128, progress=True)
    print(f"embedded {len(texts)} tweets in {time.monotonic() - started:.0f}s")
    np.save(path, vectors)
    return vectors


def report(name: str, truth: list[str], predicted: list[str]) -> list[object]:
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

    labels = ["negative", "neutral", "positive"]
    return [
        name,
        f"{f1_score(truth, predicted, labels=labels, average='macro'):.3f}",
        f"{recall_score(truth, predicted, labels=['negative'], average='macro'):.3f}",
        f"{precision_score(truth, predicted, labels=['negative'], average='macro'):.3f}",
        f"{accuracy_score(truth, predicted):.3f}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--write-head", action="store_true", help="save the trained head to nlu/sentiment_head.npz")
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args()
    from sklearn.model_selection import train_test_split

    from nlu.scorer import HEAD_FILE, SentimentScorer, lexicon_sentiment, train_head, vader

    texts, labels = load()
    vectors = embeddings(texts)
    index = np.arange(len(texts))
    train_idx, test_idx = train_test_split(index, test_size=0.2, stratify=labels, random_state=42)
    test_texts = [texts[i] for i in test_idx]
    truth = [labels[i] for i in test_idx]

    analyzer = vader()
    baseline = []
    for t in test_texts:
        c = analyzer.polarity_scores(t)["compound"]
        baseline.append("positive" if c >= 0.05 else "negative" if c <= -0.05 else "neutral")
    lexicon = [lexicon_sentiment(t).label for t in test_texts]

    scorer = SentimentScorer(head_path=None)
    train_texts = [texts[i] for i in train_idx]
    started = time.monotonic()
    features = scorer.features(train_texts, vectors[train_idx])
    head = train_head(features, [labels[i] for i in train_idx])
    print(f"trained the head on {len(train_idx)} tweets in {time.monotonic() - started:.0f}s")
    if args.write_head:
        head.save(HEAD_FILE)
        print(f"wrote {HEAD_FILE} ({HEAD_FILE.stat().st_size} bytes)")
    scorer.head = head
    results = scorer.score_many(test_texts, vectors[test_idx])
    predicted = [r.label for r in results]
    # Non-English tweets get "neutral" by design; count how many that was.
    unsupported = sum(1 for r in results if r.method == "unsupported_language")

    rows = [
        report("VADER alone (baseline)", truth, baseline),
        report("Tandem lexicon (VADER + support cues)", truth, lexicon),
        report("Tandem head (MiniLM + VADER + cues, LR)", truth, predicted),
    ]
    counts = {k: truth.count(k) for k in ("negative", "neutral", "positive")}
    table = markdown_table(["method", "macro-F1", "recall(negative)", "precision(negative)", "accuracy"], rows)
    print(table)
    print(f"test split: {len(test_idx)} tweets {counts}; {unsupported} scored as non-English (neutral)")
    if args.no_docs:
        return
    body = (
        f"Command: `$VENV/bin/python benchmarks/sentiment_eval.py --write-head` ({today()}; {machine()}).\n\n"
        f"Data: {len(texts)} airline-support tweets (../shared/datasets/airline-sentiment), @mentions and links removed. "
        f"Held-out test split: {len(test_idx)} tweets (20 %, stratified, seed 42) {counts}; the head was trained on the "
        f"other {len(train_idx)} only. {unsupported} test tweets were judged non-English and scored neutral.\n\n{table}\n"
    )
    write_section("Sentiment on airline-support tweets (issue 6)", body)


if __name__ == "__main__":
    main()
