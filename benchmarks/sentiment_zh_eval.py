"""Chinese sentiment and anger cues (nlu/sentiment_zh.py) on hand-labelled Chinese text (issue 16).

Sets (both written by hand for this project, not taken from a data set, never trained on):
- data/eval/conversation_zh.yml: messages labelled negative / neutral / positive, including calm
  uses of 投诉 / 退钱 labelled neutral, so a cue list alone cannot score perfectly.
- data/eval/heldout.zh.yml: the `angry` questions (should be negative with an anger cue, so the
  policy escalates) against the `faq` questions (customers asking calmly: should not be angry).

Three methods on the same labels: the cues + lexicon (nlu/sentiment_zh.py), the cross-lingual head
alone (nlu/sentiment_head_e5.npz on multilingual-E5, trained on English tweets by
benchmarks/sentiment_head_e5.py), and their combination (head score blended into the lexicon
polarity, cues kept). Reports per-class F1, macro F1, and the share of messages reaching the
policy's one-message escalation (sentiment <= strong_negative with an anger cue).

    $VENV/bin/python benchmarks/sentiment_zh_eval.py [--no-docs]
"""
from __future__ import annotations

import argparse
import hashlib
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import ROOT, machine, markdown_table, today, write_section  # noqa: E402
from nlu.cues import Cues  # noqa: E402
from core.language import detect  # noqa: E402
from nlu.scorer import Head, SentimentScorer  # noqa: E402
from nlu.sentiment_zh import BLEND, HEAD_E5_FILE, find_cues_zh, score_zh  # noqa: E402

SECTION = "Sentiment in Chinese (issue 16)"
LABELS = ("negative", "neutral", "positive")
ANGRY_CUES = ("frustration_phrase", "profanity", "shouting", "exclamations")


ENGLISH_SIDE = SentimentScorer(head_path=None)  # what a non-Chinese message gets (as before: no English head here)


@dataclass(frozen=True)
class Scored:
    label: str
    score: float
    cues: Cues


def score_all(texts: list[str], method: str, head: Head | None, vectors: np.ndarray | None, blend: float) -> list[Scored]:
    """One method on all texts: "lexicon" (cues + lexicon), "head" (head alone, cues kept for escalation), "blend"."""
    out = []
    for i, text in enumerate(texts):
        if detect(text) != "zh":  # the product routes it away from the Chinese scorer (pinyin, "thx"): score it so
            other = ENGLISH_SIDE.score(text)
            out.append(Scored(other.label, other.score, other.cues))
            continue
        cues = find_cues_zh(text)
        if method == "lexicon" or head is None or vectors is None:
            label, score, _, _ = score_zh(text, cues)
        else:
            p = dict(zip(head.classes, head.probabilities(vectors[i : i + 1])[0].tolist()))
            h = p["positive"] - p["negative"]
            if method == "head":
                label, score = max(p, key=p.__getitem__), h
            else:
                label, score, _, _ = score_zh(text, cues, head_score=h, blend=blend)
        out.append(Scored(label, score, cues))
    return out


def e5_vectors(texts: list[str]) -> np.ndarray:
    """E5 "query: " embeddings of the evaluation texts, cached in /tmp (evaluation only, never trained on)."""
    key = hashlib.sha1("\x01".join(texts).encode()).hexdigest()
    path = Path("/tmp/tandem-cache/e5-eval-zh") / f"{key}.npy"
    if path.exists():
        return np.load(path)
    from knowledge.models import E5, encoder

    vectors = encoder(E5).encode_queries(texts)  # type: ignore[attr-defined]
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors


def evaluate(conv: list[dict], angry: list[str], calm: list[str], method: str, head: Head | None,
             vectors: dict[str, np.ndarray] | None, blend: float, strong_negative: float) -> dict[str, object]:
    res = score_all([m["text"] for m in conv], method, head, vectors and vectors["conv"], blend)
    f1s = []
    for label in LABELS:
        tp = sum(1 for m, r in zip(conv, res) if m["sentiment"] == label and r.label == label)
        predicted = sum(1 for r in res if r.label == label)
        actual = sum(1 for m in conv if m["sentiment"] == label)
        p = tp / predicted if predicted else 0.0
        r = tp / actual if actual else 0.0
        f1s.append(2 * p * r / (p + r) if p + r else 0.0)

    def strong(r: Scored) -> bool:
        return r.score <= strong_negative and any(c in ANGRY_CUES for c in r.cues.names())

    a_res = score_all(angry, method, head, vectors and vectors["angry"], blend)
    c_res = score_all(calm, method, head, vectors and vectors["calm"], blend)
    return {
        "f1": f1s, "macro": sum(f1s) / 3, "accuracy": sum(m["sentiment"] == r.label for m, r in zip(conv, res)) / len(conv),
        "angry_negative": sum(r.label == "negative" for r in a_res) / len(angry),
        "angry_escalated": sum(strong(r) for r in a_res) / len(angry),
        "calm_negative": sum(r.label == "negative" for r in c_res) / len(calm),
        "calm_escalated": sum(strong(r) for r in c_res) / len(calm),
        "misses": [(m["text"], m["sentiment"], r.label, round(r.score, 2)) for m, r in zip(conv, res) if m["sentiment"] != r.label],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-docs", action="store_true")
    parser.add_argument("--strong-negative", type=float, default=-0.8)
    parser.add_argument("--misses", action="store_true", help="print the misclassified messages of each method")
    parser.add_argument("--head", type=Path, default=HEAD_E5_FILE, help="the cross-lingual head to measure")
    args = parser.parse_args(argv)
    conv = yaml.safe_load((ROOT / "data/eval/conversation_zh.yml").read_text(encoding="utf-8"))["messages"]
    held = yaml.safe_load((ROOT / "data/eval/heldout.zh.yml").read_text(encoding="utf-8"))["questions"]
    angry = [q["text"] for q in held if q.get("kind") == "angry"]
    calm = [q["text"] for q in held if q.get("kind") == "faq"]
    head = Head.load(args.head) if args.head.exists() else None
    vectors = None
    if head is not None:
        started = time.perf_counter()
        vectors = {"conv": e5_vectors([m["text"] for m in conv]), "angry": e5_vectors(angry), "calm": e5_vectors(calm)}
        print(f"E5 vectors ready in {time.perf_counter() - started:.1f}s")
    methods = [("cues + lexicon (nlu/sentiment_zh.py)", "lexicon", BLEND)]
    if head is not None:
        methods += [("cross-lingual head alone (E5, English tweets)", "head", BLEND),
                    (f"combination: cues + {1 - BLEND:.2g} lexicon + {BLEND:.2g} head (weight fixed beforehand)", "blend", BLEND)]
    rows = []
    for name, method, blend in methods:
        r = evaluate(conv, angry, calm, method, head, vectors, blend, args.strong_negative)
        rows.append([name, *(f"{f:.3f}" for f in r["f1"]), f"{r['macro']:.3f}", f"{r['accuracy']:.3f}",
                     f"{r['angry_negative']:.3f} / {r['angry_escalated']:.3f}", f"{r['calm_negative']:.3f} / {r['calm_escalated']:.3f}"])
        if args.misses:
            print(name, "misclassified:", *r["misses"], sep="\n  ")
    header = ["method", "F1 neg", "F1 neu", "F1 pos", "macro F1", "accuracy",
              f"angry ({len(angry)}): negative / escalated", f"calm ({len(calm)}): negative / escalated"]
    table = markdown_table(header, rows)
    print(table)
    sweep = ""
    if head is not None:
        cells = []
        for w in (0.0, 0.25, 0.5, 0.75, 1.0):
            r = evaluate(conv, angry, calm, "blend", head, vectors, w, args.strong_negative)
            cells.append(f"{w:.2f}: macro F1 {r['macro']:.3f}, angry escalated {r['angry_escalated']:.3f}, calm escalated {r['calm_escalated']:.3f}")
        sweep = "Blend weight sweep (reported, not used to choose the weight, which was fixed at 0.5 beforehand): " + "; ".join(cells) + "."
        print(sweep)
    if not args.no_docs:
        write_section(SECTION, f"Command: `$VENV/bin/python benchmarks/sentiment_zh_eval.py` ({today()}; {machine()}).\n\n"
                               f"Labels written by hand for this project (data/eval/conversation_zh.yml: {len(conv)} messages; "
                               f"data/eval/heldout.zh.yml: {len(angry)} angry and {len(calm)} calm questions), never trained on. "
                               f"The head (nlu/sentiment_head_e5.npz) was trained on English airline tweets only "
                               f"(benchmarks/sentiment_head_e5.py). Escalated = score <= {args.strong_negative} with an anger cue "
                               f"(the policy's one-message escalation).\n\n{table}\n\n{sweep}\n",
                      path=ROOT / "docs" / "evaluation.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
