"""Retrieval quality of Tandem's FAQ search against a BM25 baseline, on the held-out set.

Why: `faq_threshold` decides between answering and asking again / escalating, so it must be
chosen on questions the index has never seen. This script indexes data/faq.yml with Tandem's
real knowledge code (FaqStore on a temporary SQLite file, KnowledgeBase.rebuild(): the same
embedder, FAISS index and max-over-texts scoring production uses), asks every question of
data/eval/heldout.yml (never indexed), and compares with BM25 over the same texts.

    $VENV/bin/python benchmarks/retrieval.py            # prints tables, writes docs/benchmarks.md
    $VENV/bin/python benchmarks/retrieval.py --no-docs  # prints only

Threshold rule: the dense threshold that maximises correct answers subject to answer
precision >= --min-precision (0.9), where precision counts every answer given on the whole
held-out set (an answer to an `escalate` question is a wrong answer). Among thresholds with the
same number of correct answers the highest (fewest wrong answers) wins.
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import IMAGES, ROOT, machine, markdown_table, percentile, today, write_section  # noqa: E402

from core.db import sync_engine

from server.schema import create_schema# noqa: E402
from core.settings import load_settings  # noqa: E402
from knowledge.base import KnowledgeBase, load_faq_file, seed_if_empty  # noqa: E402
from knowledge.store import FaqStore  # noqa: E402

HELDOUT = ROOT / "data" / "eval" / "heldout.yml"
ESCALATE = "escalate"
K = 5
EMBED_SAMPLE = 60
BM25_NAMES = {"max": "BM25, per-text max", "concat": "BM25, texts concatenated per entry"}
SECTION = "Retrieval quality: FAQ search vs BM25 (held-out set)"


@dataclass(frozen=True)
class Question:
    text: str
    label: str  # an FAQ id, or "escalate"
    kind: str  # faq | out_of_scope | angry | human_request

    @property
    def is_faq(self) -> bool:
        return self.label != ESCALATE


@dataclass(frozen=True)
class Ranking:
    """The k best FAQ ids for one question with their scores, best first."""

    ids: tuple[str, ...]
    scores: tuple[float, ...]

    @property
    def top_id(self) -> str | None:
        return self.ids[0] if self.ids else None

    @property
    def top_score(self) -> float:
        return self.scores[0] if self.scores else float("-inf")


@dataclass(frozen=True)
class Operating:
    """What a system does at one threshold: answer when the best score >= threshold."""

    threshold: float
    correct: int  # FAQ questions answered with the right entry
    wrong_faq: int  # FAQ questions answered with a wrong entry
    answered_escalate: int  # escalate questions answered anyway (always wrong)
    n_faq: int
    n_escalate: int

    @property
    def answered(self) -> int:
        return self.correct + self.wrong_faq + self.answered_escalate

    @property
    def precision(self) -> float:
        return self.correct / self.answered if self.answered else 1.0

    @property
    def correct_rate(self) -> float:
        """Share of FAQ-labelled questions answered correctly (coverage)."""
        return self.correct / self.n_faq

    @property
    def wrong_rate(self) -> float:
        """Share of ALL held-out questions that got a wrong answer."""
        return (self.wrong_faq + self.answered_escalate) / (self.n_faq + self.n_escalate)

    @property
    def escalate_rejection(self) -> float:
        """Share of escalate questions correctly not answered (best score below the threshold)."""
        return 1 - self.answered_escalate / self.n_escalate if self.n_escalate else 1.0


# -- data ------------------------------------------------------------------------------------
def load_heldout(path: Path = HELDOUT) -> list[Question]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [Question(q["text"], q["label"], q.get("kind", "faq")) for q in data["questions"]]


def faq_texts(path: Path) -> dict[str, list[str]]:
    """Each entry's indexed texts, exactly what Faq.texts() gives the dense index."""
    return {
        e["id"]: [t for t in [e["question"], *(e.get("paraphrases") or [])] if str(t).strip()]
        for e in load_faq_file(path)
    }


# -- dense (Tandem) --------------------------------------------------------------------------
@dataclass
class DenseRun:
    rankings: list[Ranking]
    model_load_s: float
    build_s: float
    entries: int
    vectors: int
    build_cpu_s: float
    embed_ms: list[float]
    embed_cpu_ms: list[float]  # process CPU time: far less sensitive to a busy machine than wall time
    search_ms: list[float]


def run_dense(questions: Sequence[Question]) -> DenseRun:
    """Index data/faq.yml in a throwaway var dir with Tandem's own code and ask every question."""
    with tempfile.TemporaryDirectory(prefix="tandem-bench-retrieval-") as tmp:
        settings = load_settings(var_dir=Path(tmp), database_url="")
        create_schema(settings)
        engine = sync_engine(settings)
        try:
            store = FaqStore(engine)
            seed_if_empty(store, settings.faq_file)
            kb = KnowledgeBase(store, settings.index_dir)
            started = time.perf_counter()
            kb.embedder.encode(["warm up"])  # model load is a one-off per process: time it apart
            model_load_s = time.perf_counter() - started
            started, cpu = time.perf_counter(), time.process_time()
            entries = kb.rebuild()
            build_s, build_cpu_s = time.perf_counter() - started, time.process_time() - cpu

            embed_ms: list[float] = []
            embed_cpu_ms: list[float] = []
            search_ms: list[float] = []
            rankings: list[Ranking] = []
            for number, question in enumerate(questions):
                if number < EMBED_SAMPLE:  # the embedding alone, on a sample (search below includes it)
                    started, cpu = time.perf_counter(), time.process_time()
                    kb.embedder.encode([question.text])
                    embed_ms.append((time.perf_counter() - started) * 1000)
                    embed_cpu_ms.append((time.process_time() - cpu) * 1000)
                started = time.perf_counter()
                matches = kb.search(question.text, K)  # what the action server calls
                search_ms.append((time.perf_counter() - started) * 1000)
                rankings.append(Ranking(tuple(m.faq_id for m in matches), tuple(m.score for m in matches)))
            return DenseRun(rankings, model_load_s, build_s, entries, kb.index.vector_count, build_cpu_s, embed_ms,
                            embed_cpu_ms, search_ms)
        finally:
            engine.dispose()


# -- BM25 baseline ---------------------------------------------------------------------------
TOKEN = re.compile(r"[a-z0-9]+")


def tokenize(text: str) -> list[str]:
    """Lower-case alphanumeric words; no stemming or stop words (a plain, honest baseline)."""
    return TOKEN.findall(text.lower())


def bm25_ranker(texts: dict[str, list[str]], mode: str) -> Callable[[str], Ranking]:
    """BM25Okapi over the same texts the dense index holds.

    mode "max": one document per text, an entry scores its best text (like the dense index).
    mode "concat": one document per entry, question and paraphrases joined.
    """
    from rank_bm25 import BM25Okapi

    if mode == "max":
        owners = [faq_id for faq_id, group in texts.items() for _ in group]
        corpus = [tokenize(t) for group in texts.values() for t in group]
    else:
        owners = list(texts)
        corpus = [tokenize(" ".join(group)) for group in texts.values()]
    bm25 = BM25Okapi(corpus)
    owner_array = np.array(owners)
    entry_ids = list(texts)

    def rank(text: str) -> Ranking:
        scores = bm25.get_scores(tokenize(text))
        best: dict[str, float] = dict.fromkeys(entry_ids, float("-inf"))
        for owner, score in zip(owner_array.tolist(), scores.tolist()):
            if score > best[owner]:
                best[owner] = score
        top = sorted(best.items(), key=lambda item: item[1], reverse=True)[:K]
        return Ranking(tuple(i for i, _ in top), tuple(float(s) for _, s in top))

    return rank


# -- metrics ---------------------------------------------------------------------------------
def top1_and_mrr(questions: Sequence[Question], rankings: Sequence[Ranking]) -> tuple[float, float]:
    """Top-1 accuracy and MRR@5 over the FAQ-labelled questions (no threshold)."""
    hits, reciprocal = 0, 0.0
    labelled = [(q, r) for q, r in zip(questions, rankings) if q.is_faq]
    for question, ranking in labelled:
        if ranking.top_id == question.label:
            hits += 1
        if question.label in ranking.ids[:K]:
            reciprocal += 1 / (ranking.ids.index(question.label) + 1)
    return hits / len(labelled), reciprocal / len(labelled)


def operating_point(questions: Sequence[Question], rankings: Sequence[Ranking], threshold: float) -> Operating:
    correct = wrong_faq = answered_escalate = 0
    for question, ranking in zip(questions, rankings):
        if ranking.top_score < threshold:
            continue
        if not question.is_faq:
            answered_escalate += 1
        elif ranking.top_id == question.label:
            correct += 1
        else:
            wrong_faq += 1
    n_faq = sum(q.is_faq for q in questions)
    return Operating(threshold, correct, wrong_faq, answered_escalate, n_faq, len(questions) - n_faq)


def sweep(questions: Sequence[Question], rankings: Sequence[Ranking], thresholds: Sequence[float]) -> list[Operating]:
    return [operating_point(questions, rankings, t) for t in thresholds]


def choose_net(points: Sequence[Operating], wrong_cost: float = 1.0) -> Operating:
    """Most correct answers minus wrong_cost x wrong answers; ties go to the higher threshold."""
    return max(points, key=lambda p: (p.correct - wrong_cost * (p.wrong_faq + p.answered_escalate), p.threshold))


def choose(points: Sequence[Operating], min_precision: float) -> Operating | None:
    """Most correct answers with precision >= min_precision; ties go to the higher threshold."""
    allowed = [p for p in points if p.precision >= min_precision and p.answered > 0]
    if not allowed:
        return None
    return max(allowed, key=lambda p: (p.correct, p.threshold))


def rejection_by_kind(questions: Sequence[Question], rankings: Sequence[Ranking], threshold: float) -> dict[str, str]:
    """For each escalate kind: how many were correctly not answered."""
    result: dict[str, str] = {}
    for kind in sorted({q.kind for q in questions if not q.is_faq}):
        group = [r for q, r in zip(questions, rankings) if not q.is_faq and q.kind == kind]
        rejected = sum(r.top_score < threshold for r in group)
        result[kind] = f"{rejected}/{len(group)}"
    return result


# -- plot ------------------------------------------------------------------------------------
def plot(dense: list[Operating], bm25: list[Operating], bm25_name: str, chosen: Operating | None,
         bm25_chosen: Operating | None, configured: float, out: Path) -> None:
    """Dense vs cosine threshold, BM25 vs its own (raw) score threshold, and the trade-off."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    for ax, points, title, xlabel, pick in (
        (axes[0], dense, "Tandem FAQ search (MiniLM + FAISS)", "cosine threshold", chosen),
        (axes[1], bm25, bm25_name, "BM25 score threshold (raw, unbounded)", bm25_chosen),
    ):
        xs = [p.threshold for p in points]
        ax.plot(xs, [p.precision for p in points], label="answer precision", color="tab:blue")
        ax.plot(xs, [p.correct_rate for p in points], label="FAQ questions answered correctly", color="tab:green")
        ax.plot(xs, [p.wrong_rate for p in points], label="questions answered wrongly", color="tab:red")
        ax.plot(xs, [p.escalate_rejection for p in points], label="escalate questions not answered", color="tab:purple",
                linestyle="--")
        if pick is not None:
            ax.axvline(pick.threshold, color="black", linewidth=1, label=f"precision>=0.9 rule: {pick.threshold:.2f}")
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    axes[0].axvline(configured, color="grey", linewidth=1, linestyle=":", label=f"tandem.yml {configured:.2f}")
    axes[0].legend(loc="upper left", fontsize=8)
    axes[0].set_ylabel("share")

    ax = axes[2]
    for points, label, color in ((dense, "Tandem dense", "tab:blue"), (bm25, "BM25", "tab:orange")):
        ax.plot([p.correct_rate for p in points], [p.precision for p in points], label=label, color=color)
    ax.axhline(0.9, color="grey", linewidth=1, linestyle=":")
    ax.set_title("Trade-off (threshold-free comparison)")
    ax.set_xlabel("FAQ questions answered correctly")
    ax.set_ylabel("answer precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


# -- report ----------------------------------------------------------------------------------
def fmt(value: float) -> str:
    return f"{value:.3f}"


def point_row(name: str, p: Operating) -> list[str]:
    return [name, f"{p.threshold:.2f}", f"{p.correct}/{p.n_faq} ({p.correct_rate:.1%})",
            f"{p.wrong_faq + p.answered_escalate} ({p.wrong_rate:.1%})", fmt(p.precision),
            f"{p.n_escalate - p.answered_escalate}/{p.n_escalate} ({p.escalate_rejection:.1%})"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--min-precision", type=float, default=0.9)
    parser.add_argument("--no-docs", action="store_true", help="print only; do not touch docs/")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    settings = load_settings()
    questions = load_heldout()
    texts = faq_texts(settings.faq_file)
    indexed = {t.strip().lower() for group in texts.values() for t in group}
    leaked = [q.text for q in questions if q.text.strip().lower() in indexed]
    if leaked:
        raise SystemExit(f"held-out questions found in the index (evaluation would be meaningless): {leaked[:3]}")
    unknown = sorted({q.label for q in questions if q.is_faq} - set(texts))
    if unknown:
        raise SystemExit(f"held-out labels that are not FAQ ids: {unknown}")
    n_faq = sum(q.is_faq for q in questions)
    print(f"held-out: {len(questions)} questions ({n_faq} FAQ-labelled, {len(questions) - n_faq} escalate); "
          f"index: {len(texts)} entries, {sum(map(len, texts.values()))} texts")

    dense = run_dense(questions)
    bm25_runs: dict[str, list[Ranking]] = {}
    bm25_ms: dict[str, float] = {}
    for mode in ("max", "concat"):
        ranker = bm25_ranker(texts, mode)
        t0 = time.perf_counter()
        bm25_runs[mode] = [ranker(q.text) for q in questions]
        bm25_ms[mode] = (time.perf_counter() - t0) * 1000 / len(questions)

    # -- ranking quality
    quality_rows = []
    for name, rankings in (("Tandem dense (MiniLM-L6 + FAISS, max over texts)", dense.rankings),
                           (BM25_NAMES["max"], bm25_runs["max"]), (BM25_NAMES["concat"], bm25_runs["concat"])):
        top1, mrr = top1_and_mrr(questions, rankings)
        quality_rows.append([name, fmt(top1), fmt(mrr)])
    quality = markdown_table(["system", "top-1 accuracy", "MRR@5"], quality_rows)

    # -- threshold sweeps: dense on its cosine scale, BM25 (the stronger variant) on its own raw scale
    bm25_mode = max(("max", "concat"), key=lambda m: top1_and_mrr(questions, bm25_runs[m])[1])
    bm25_name = BM25_NAMES[bm25_mode]
    dense_points = sweep(questions, dense.rankings, [round(t, 2) for t in np.arange(0.0, 1.0001, 0.01)])
    bm25_top = max(r.top_score for r in bm25_runs[bm25_mode])
    bm25_points = sweep(questions, bm25_runs[bm25_mode], [round(t, 2) for t in np.linspace(0.0, bm25_top, 121)])
    chosen = choose(dense_points, args.min_precision)
    bm25_chosen = choose(bm25_points, args.min_precision)
    configured = settings.faq_threshold
    headers = ["operating point", "threshold", "answered correctly (of FAQ qs)", "answered wrongly (of all qs)",
               "precision", "escalate not answered"]
    shown = [p for p in dense_points if round(p.threshold * 100) % 5 == 0 and 0.30 <= p.threshold <= 0.80]
    sweep_table = markdown_table(headers, [point_row("dense", p) for p in shown])

    current = operating_point(questions, dense.rankings, configured)
    picks: list[tuple[str, Operating]] = [("dense, tandem.yml faq_threshold", current)]
    if chosen:
        picks.append((f"dense, CHOSEN: max correct with precision >= {args.min_precision}", chosen))
    for target in (0.85, 0.8):
        alternative = choose(dense_points, target)
        if alternative and target < args.min_precision:
            picks.append((f"dense, alternative: max correct with precision >= {target}", alternative))
    picks.append(("dense, alternative: max (correct - wrong)", choose_net(dense_points, 1.0)))
    picks.append(("dense, alternative: max (correct - 2 x wrong)", choose_net(dense_points, 2.0)))
    if bm25_chosen:
        picks.append((f"{bm25_name}, precision >= {args.min_precision}", bm25_chosen))
    for target in (0.8,):
        alternative = choose(bm25_points, target)
        if alternative:
            picks.append((f"{bm25_name}, precision >= {target}", alternative))
    picks.append((f"{bm25_name}, max (correct - wrong)", choose_net(bm25_points, 1.0)))
    picks_table = markdown_table(headers, [point_row(name, p) for name, p in picks])

    kinds = sorted({q.kind for q in questions if not q.is_faq})
    dense_picks = [(name, p) for name, p in picks if name.startswith("dense")]
    kinds_table = markdown_table(
        ["escalate questions not answered, by kind", *kinds],
        [[f"{name} ({p.threshold:.2f})", *rejection_by_kind(questions, dense.rankings, p.threshold).values()]
         for name, p in dense_picks],
    )

    timing = markdown_table(
        ["measurement", "value"],
        [
            ["embedding model load (once per process)", f"{dense.model_load_s:.2f} s"],
            [f"index build: KnowledgeBase.rebuild() ({dense.entries} entries, {dense.vectors} vectors, incl. save)",
             f"{dense.build_s:.2f} s wall, {dense.build_cpu_s:.2f} s CPU"],
            [f"embedding one query (Embedder.encode, {len(dense.embed_ms)} queries), median / p95",
             f"{statistics.median(dense.embed_ms):.1f} ms / {percentile(dense.embed_ms, 95):.1f} ms"],
            ["embedding one query, CPU time (all threads), median",
             f"{statistics.median(dense.embed_cpu_ms):.1f} ms"],
            [f"KnowledgeBase.search(text, 5) ({len(dense.search_ms)} queries), median / p95",
             f"{statistics.median(dense.search_ms):.1f} ms / {percentile(dense.search_ms, 95):.1f} ms"],
            [f"{bm25_name}, one query, mean", f"{bm25_ms[bm25_mode]:.2f} ms"],
        ],
    )
    elapsed = time.perf_counter() - started
    load = os.getloadavg()

    image = IMAGES / "retrieval-threshold.png"
    plot(dense_points, bm25_points, bm25_name, chosen, bm25_chosen, configured, image)

    print("\nRanking quality on the FAQ-labelled held-out questions\n" + quality)
    print("\nDense threshold sweep (answer when the best score >= threshold)\n" + sweep_table)
    print("\nOperating points\n" + picks_table)
    print("\n" + kinds_table)
    print("\nTiming\n" + timing)
    print(f"load average at the end (1/5/15 min): {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}")
    verdict = f"no dense threshold reaches precision {args.min_precision}"
    if chosen:
        verdict = (f"chosen dense threshold: {chosen.threshold:.2f} (rule: max correct with precision >= "
                   f"{args.min_precision}); tandem.yml faq_threshold: {configured:.2f}")
        if abs(chosen.threshold - configured) > 1e-9:
            verdict += " -> DIFFERS from the configured value"
    print("\n" + verdict)
    print(f"plot: {image.relative_to(ROOT)}; total {elapsed:.0f} s")

    if not args.no_docs:
        body = f"""Command: `$VENV/bin/python benchmarks/retrieval.py` ({today()}; {machine()}; {elapsed:.0f} s;
load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} at the end, the machine was shared, so timings are pessimistic).

Set-up: data/faq.yml ({dense.entries} entries, {dense.vectors} texts: question + paraphrases) is indexed
with Tandem's own code (FaqStore on a temporary SQLite file, `KnowledgeBase.rebuild()`; an entry scores
the best cosine over its texts). The questions come from `data/eval/heldout.yml` ({len(questions)} questions:
{n_faq} labelled with an FAQ id, {len(questions) - n_faq} labelled `escalate`: out of scope, angry,
asking for a person); they are never indexed (the script refuses to run if one equals an indexed text).
The baseline is BM25 (`rank_bm25.BM25Okapi`, lower-cased words, no stemming, no stop words) over the same
texts, in two forms: one document per text with an entry scoring its best text ("per-text max", like
the dense index), and one document per entry with its texts concatenated. The threshold sweep uses
the better of the two by MRR@5: **{bm25_name}**. These numbers measure retrieval alone, as if every
message reached the FAQ search; in the running bot Rasa's NLU routes greetings, requests for a
person and complaints elsewhere first, so the escalate rejection here is the second line of defence.

Ranking quality (FAQ-labelled questions, no threshold):

{quality}

Threshold sweep of the dense search (answer when the best score >= threshold). "Answered
correctly" is out of the {n_faq} FAQ questions; "answered wrongly" counts wrong entries plus answers to
`escalate` questions, out of all {len(questions)}; precision = correct answers / all answers;
"escalate not answered" = `escalate` questions whose best score is below the threshold.

{sweep_table}

Operating points. The rule asked for is: the threshold with the most correct answers whose precision
is at least {args.min_precision} (ties: the higher threshold). Alternatives are listed so the trade-off is
visible; BM25 rows use raw BM25 scores as thresholds.

{picks_table}

{kinds_table}

**Chosen dense threshold (precision >= {args.min_precision}): {f"{chosen.threshold:.2f}" if chosen else "none"}**
(tandem.yml `faq_threshold`: {configured:.2f}). Reading: the dense top-1 accuracy is
{top1_and_mrr(questions, dense.rankings)[0]:.0%}, so some in-scope questions retrieve a wrong entry with a high score, and
precision rises slowly with the threshold. At the configured {configured:.2f} the search answers
{current.correct_rate:.0%} of the FAQ questions correctly with precision {current.precision:.2f}; the
precision-{args.min_precision} rule answers {f"{chosen.correct_rate:.0%}" if chosen else "none"} of them. Pick the
rule by what a wrong answer costs compared with a "please rephrase" (the second miss in a row
brings a person). The held-out set is small ({n_faq} + {len(questions) - n_faq} questions): one question moves a rate by 0.5-0.7 points, so
neighbouring thresholds are within noise of each other.

![precision, coverage and escalate rejection vs threshold](img/{image.name})

Left: the dense search against its cosine threshold; middle: BM25 against its raw score (no
natural scale, so its x-axis is not comparable); right: precision against coverage for both, which
compares them without any threshold.

Timing (one process, CPU, torch limited to 2 threads by knowledge/embedder.py; OMP_WAIT_POLICY
{os.environ.get("OMP_WAIT_POLICY", "unset")}):

{timing}

An idle CPU embeds one short query in about 10 ms of CPU time. Far more CPU per query than that
means OpenMP worker threads are spin-waiting for a core on a busy machine; compare with
`OMP_WAIT_POLICY=PASSIVE $VENV/bin/python benchmarks/retrieval.py`.
"""
        write_section(SECTION, body)
        print(f"wrote the '{SECTION}' section of docs/benchmarks.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
