"""Out-of-scope detection on BANKING77: intents the model never saw should not be answered.

Reads the predictions of `benchmarks/banking77_eval.py --holdout 10` (10 of the 77 intents left
out of training; their test texts play customers asking something the assistant does not know)
and sweeps the NLU confidence threshold (what config.yml's FallbackClassifier does): for each
threshold, the share of out-of-scope texts correctly not answered versus in-scope accuracy
(answered AND right), plus the gap between the top two intents as a second signal.

    nice -n 10 $VENV/bin/python benchmarks/banking77_eval.py --holdout 10 [--tag T --config C]
    $VENV/bin/python benchmarks/oos_eval.py [--predictions /tmp/tandem-banking77/holdout10/predictions.json]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import IMAGES, machine, markdown_table, today, write_section  # noqa: E402


def sweep(truth: list[str], preds: list[dict], unknown: set[str], key: str, grid: np.ndarray) -> list[dict[str, float]]:
    inside = [i for i, t in enumerate(truth) if t not in unknown]
    outside = [i for i, t in enumerate(truth) if t in unknown]
    rows = []
    for t in grid:
        rejected_out = sum(1 for i in outside if preds[i][key] < t) / len(outside)
        right_in = sum(1 for i in inside if preds[i][key] >= t and preds[i]["intent"] == truth[i]) / len(inside)
        rejected_in = sum(1 for i in inside if preds[i][key] < t) / len(inside)
        rows.append({"threshold": float(t), "oos_rejected": rejected_out, "in_scope_accuracy": right_in, "in_scope_rejected": rejected_in})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--predictions", default="/tmp/tandem-banking77/holdout10-diet10/predictions.json")
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args()
    data = json.loads(Path(args.predictions).read_text())
    truth, preds, unknown = data["truth"], data["predictions"], set(data["holdout"])
    grid = np.round(np.arange(0.0, 1.0001, 0.05), 2)
    by_conf = sweep(truth, preds, unknown, "confidence", grid)
    by_gap = sweep(truth, preds, unknown, "gap", grid)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for rows, label in ((by_conf, "top intent confidence"), (by_gap, "gap top1 - top2")):
        ax.plot([r["oos_rejected"] for r in rows], [r["in_scope_accuracy"] for r in rows], marker="o", markersize=3, label=label)
    fallback = min(by_conf, key=lambda r: abs(r["threshold"] - 0.45))
    ax.scatter([fallback["oos_rejected"]], [fallback["in_scope_accuracy"]], color="red", zorder=5, label="FallbackClassifier threshold 0.45")
    ax.set_xlabel("out-of-scope texts not answered (10 unseen intents)")
    ax.set_ylabel("in-scope texts answered with the right intent")
    ax.set_title("BANKING77 out-of-scope curve (threshold swept 0..1)", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    IMAGES.mkdir(parents=True, exist_ok=True)
    image = IMAGES / "banking77-oos.png"
    fig.savefig(image, dpi=110)
    plt.close(fig)

    pick = [r for r in by_conf if r["threshold"] in (0.3, 0.45, 0.6, 0.7, 0.8, 0.9)]
    table = markdown_table(["confidence threshold", "out-of-scope not answered", "in-scope answered right", "in-scope refused"],
                           [[f"{r['threshold']:.2f}", f"{r['oos_rejected']:.3f}", f"{r['in_scope_accuracy']:.3f}", f"{r['in_scope_rejected']:.3f}"] for r in pick])
    n_out = sum(1 for t in truth if t in unknown)
    print(table)
    if args.no_docs:
        return
    write_section("BANKING77 out-of-scope detection (issue 6)", (
        f"Commands: `nice -n 10 $VENV/bin/python benchmarks/banking77_eval.py --holdout 10 ...` then `$VENV/bin/python benchmarks/oos_eval.py` "
        f"({today()}; {machine()}).\n\nHeld out (never trained on): {', '.join(sorted(unknown))} - {n_out} test texts; "
        f"{len(truth) - n_out} in-scope test texts. Model: {data.get('config')}.\n\n{table}\n\n![OOS curve](img/banking77-oos.png)\n"
    ))


if __name__ == "__main__":
    main()
