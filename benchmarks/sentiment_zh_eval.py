"""Chinese sentiment and anger cues (nlu/sentiment_zh.py) on hand-labelled Chinese text (issue 16).

Sets (both written by hand for this project, not taken from a data set, never trained on):
- data/eval/conversation_zh.yml: messages labelled negative / neutral / positive, including calm
  uses of 投诉 / 退钱 labelled neutral, so a cue list alone cannot score perfectly.
- data/eval/heldout.zh.yml: the `angry` questions (should be negative with an anger cue, so the
  policy escalates) against the `faq` questions (customers asking calmly: should not be angry).

Reports per-class precision/recall, macro F1, and the share of messages whose cues alone would
reach the policy's one-message escalation (sentiment <= strong_negative with an anger cue).

    $VENV/bin/python benchmarks/sentiment_zh_eval.py [--no-docs]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import ROOT, machine, markdown_table, today, write_section  # noqa: E402
from nlu.scorer import SentimentScorer  # noqa: E402

SECTION = "Sentiment in Chinese (issue 16)"
LABELS = ("negative", "neutral", "positive")
ANGRY_CUES = ("frustration_phrase", "profanity", "shouting", "exclamations")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-docs", action="store_true")
    parser.add_argument("--strong-negative", type=float, default=-0.8)
    args = parser.parse_args(argv)
    scorer = SentimentScorer(head_path=None)  # Chinese never reaches the English head
    conv = yaml.safe_load((ROOT / "data/eval/conversation_zh.yml").read_text(encoding="utf-8"))["messages"]
    held = yaml.safe_load((ROOT / "data/eval/heldout.zh.yml").read_text(encoding="utf-8"))["questions"]
    started = time.perf_counter()
    results = scorer.score_many([m["text"] for m in conv])
    per_message_ms = (time.perf_counter() - started) * 1000 / max(1, len(conv))
    rows = []
    f1s = []
    for label in LABELS:
        tp = sum(1 for m, r in zip(conv, results) if m["sentiment"] == label and r.label == label)
        predicted = sum(1 for r in results if r.label == label)
        actual = sum(1 for m in conv if m["sentiment"] == label)
        p = tp / predicted if predicted else 0.0
        r = tp / actual if actual else 0.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        f1s.append(f1)
        rows.append(["conversation_zh.yml", label, str(actual), f"{p:.3f}", f"{r:.3f}", f"{f1:.3f}"])
    accuracy = sum(1 for m, r in zip(conv, results) if m["sentiment"] == r.label) / len(conv)
    rows.append(["conversation_zh.yml", "macro F1 / accuracy", str(len(conv)), "-", "-", f"{sum(f1s) / 3:.3f} / {accuracy:.3f}"])
    misses = [(m["text"], m["sentiment"], r.label, round(r.score, 2)) for m, r in zip(conv, results) if m["sentiment"] != r.label]

    def strong(r) -> bool:  # noqa: ANN001 - a Sentiment
        return r.score <= args.strong_negative and any(c in ANGRY_CUES for c in r.cues.names())

    angry = [q["text"] for q in held if q.get("kind") == "angry"]
    calm = [q["text"] for q in held if q.get("kind") == "faq"]
    a_res, c_res = scorer.score_many(angry), scorer.score_many(calm)
    rows.append(["heldout.zh.yml angry", "negative / one-message escalation", str(len(angry)),
                 "-", f"{sum(r.label == 'negative' for r in a_res) / len(angry):.3f} / {sum(strong(r) for r in a_res) / len(angry):.3f}", "-"])
    rows.append(["heldout.zh.yml faq (calm)", "negative / one-message escalation (false alarms)", str(len(calm)),
                 "-", f"{sum(r.label == 'negative' for r in c_res) / len(calm):.3f} / {sum(strong(r) for r in c_res) / len(calm):.3f}", "-"])
    table = markdown_table(["set", "class", "n", "precision", "recall (share)", "F1"], rows)
    print(table)
    print(f"\n{per_message_ms:.3f} ms per message; misclassified ({len(misses)}):")
    for miss in misses:
        print("  ", miss)
    missed_angry = [(t, round(r.score, 2), r.cues.names()) for t, r in zip(angry, a_res) if not strong(r)]
    print(f"angry not escalated in one message ({len(missed_angry)}):")
    for miss in missed_angry:
        print("  ", miss)
    if not args.no_docs:
        write_section(SECTION, f"Command: `$VENV/bin/python benchmarks/sentiment_zh_eval.py` ({today()}; {machine()}).\n\n"
                               f"Labels written by hand for this project (data/eval/conversation_zh.yml, data/eval/heldout.zh.yml), "
                               f"never trained on. {per_message_ms:.2f} ms per message.\n\n{table}\n",
                      path=ROOT / "docs" / "evaluation.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
