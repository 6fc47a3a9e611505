"""Thresholds from labelled data, not guesses: `./tandem calibrate` and the escalation benchmark.

- FAQ score: on data/eval/heldout.yml (never indexed), the lowest faq_threshold whose answers are
  right at least `target` of the time (precision), which answers as many questions as possible.
- Sentiment / frustration: on data/eval/conversations.yml, every conversation is parsed by the
  trained Rasa model (so the sentiment comes from nlu/sentiment.py) and searched in the FAQ index
  once, then replayed through actions/policy.decide for each candidate threshold pair; the pair
  with the best F1 of "escalated at the right turn (or one early)" among those meeting the target
  precision wins.
Writes the chosen values into tandem.yml (keeping its comments) and plots the trade-offs.
"""
from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import yaml

from actions.policy import ROUTE_OF_INTENT, Candidate, Decision, Thresholds, decide, signals_from_tracker

CACHE = Path("/tmp/tandem-cache")  # parsed conversations, keyed by model + FAQ revision + texts
UTTERANCE_INTENTS = {"greet", "goodbye", "thank", "affirm", "deny", "bot_challenge"}  # rules answer with a response, no action


# -- FAQ threshold -------------------------------------------------------------------------------
def load_heldout(path: Path) -> list[dict[str, str]]:
    return list((yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("questions") or [])


def faq_curve(best: Sequence[tuple[str, float]], labels: Sequence[str], grid: Iterable[float]) -> list[dict[str, float]]:
    """For each threshold: precision of the answers given, and the share of answerable questions answered."""
    answerable = sum(1 for label in labels if label != "escalate")
    rows = []
    for t in grid:
        answered = [(faq, label) for (faq, score), label in zip(best, labels) if score >= t]
        right = sum(1 for faq, label in answered if faq == label)
        rows.append({"threshold": round(float(t), 3), "answered": len(answered), "precision": right / len(answered) if answered else 1.0,
                     "coverage": right / answerable if answerable else 0.0})
    return rows


def pick_threshold(curve: list[dict[str, float]], target: float) -> dict[str, float]:
    """The lowest threshold reaching the target precision (most answers); the most precise one if none does."""
    meeting = [r for r in curve if r["precision"] >= target and r["answered"]]
    return min(meeting, key=lambda r: r["threshold"]) if meeting else max(curve, key=lambda r: (r["precision"], -r["threshold"]))


# -- conversations -------------------------------------------------------------------------------
@dataclass
class ParsedTurn:
    text: str
    parse: dict[str, Any]
    matches: list[Candidate]


@dataclass
class Conversation:
    id: str
    kind: str
    turns: list[str]
    escalate_at: int | None  # 1-based turn where a person should step in; None: never
    tier: str | None = None


def load_conversations(path: Path) -> list[Conversation]:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return [Conversation(str(c["id"]), c["kind"], list(c["turns"]), c.get("escalate_at"), c.get("tier")) for c in data["conversations"]]


async def _parse(agent: Any, texts: list[str]) -> list[dict[str, Any]]:
    return [await agent.parse_message(t) for t in texts]


def parse_conversations(model: Path, kb: Any, conversations: Sequence[Conversation]) -> dict[str, list[ParsedTurn]]:
    """The expensive part, done once: Rasa NLU (with the sentiment component) and FAQ search per turn."""
    texts = sorted({t for c in conversations for t in c.turns})
    key = hashlib.sha256("\n".join([model.name, str(model.stat().st_mtime), str(kb.store.revision()), *texts]).encode()).hexdigest()[:16]
    cache = CACHE / f"conversations-{key}.pkl"
    if cache.exists():  # same model, same FAQ revision, same texts: same parses
        parsed, matches = pickle.loads(cache.read_bytes())
    else:
        from rasa.core.agent import Agent

        agent = Agent.load(str(model))
        parsed = dict(zip(texts, asyncio.run(_parse(agent, texts))))
        vectors = kb.embedder.encode(texts, batch_size=64)
        if kb.use_head:
            kb.train_head_now()  # what the bot's search re-ranks with
        matches = {t: [Candidate(m.faq_id, m.score, m.question, m.rank_score) for m in kb.search_vector(v, 5)]
                   for t, v in zip(texts, vectors)}
        CACHE.mkdir(parents=True, exist_ok=True)
        cache.write_bytes(pickle.dumps((parsed, matches)))
    return {c.id: [ParsedTurn(t, parsed[t], matches[t]) for t in c.turns] for c in conversations}


def replay(turns: Sequence[ParsedTurn], th: Thresholds, tier: str | None = None) -> tuple[int | None, list[Decision | None]]:
    """Play a conversation through the policy as the actions would; the 1-based turn it escalated at."""
    events: list[dict[str, Any]] = []
    misses = 0
    decisions: list[Decision | None] = []
    for number, turn in enumerate(turns, start=1):
        parse = {**turn.parse, "metadata": {"tier": tier} if tier else {}}
        events.append({"event": "user", "text": turn.text, "parse_data": parse})
        intent = (parse.get("intent") or {}).get("name")
        route = ROUTE_OF_INTENT.get(intent or "")
        if route is None:  # greet/thank/...: a rule answers with a response, no decision
            decisions.append(None)
            continue
        decision = decide(signals_from_tracker(route, parse, events, turn.matches if route in ("faq", "fallback") else [], misses, tier), th)
        decisions.append(decision)
        if decision.action == "escalate":
            return number, decisions
        misses = decision.misses_after(misses)
        payload = {"answer": {"faq_id": decision.faq_id}} if decision.action == "answer" else {decision.action: {}}
        events.append({"event": "bot", "data": {"custom": {"tandem": payload}}})
    return None, decisions


def score_escalations(conversations: Sequence[Conversation], predicted: dict[str, int | None]) -> dict[str, float]:
    """Precision/recall of escalating, and timing: a hit is an escalation no more than one turn early
    and at most one turn late; turns late/early are reported for every escalated conversation that should."""
    tp = fp = fn = on_time = 0
    delays: list[int] = []
    for c in conversations:
        got = predicted.get(c.id)
        if c.escalate_at is None:
            fp += got is not None
            continue
        if got is None:
            fn += 1
            continue
        tp += 1
        delays.append(got - c.escalate_at)
        on_time += abs(got - c.escalate_at) <= 1
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    return {
        "tp": tp, "fp": fp, "fn": fn, "precision": precision, "recall": recall,
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        "on_time": on_time / tp if tp else 0.0, "exact": sum(1 for d in delays if d == 0) / tp if tp else 0.0,
        "mean_delay": float(np.mean(delays)) if delays else 0.0,
        "late": sum(1 for d in delays if d > 0), "early": sum(1 for d in delays if d < 0),
    }


def sweep_escalation(conversations: Sequence[Conversation], parsed: dict[str, list[ParsedTurn]], base: Thresholds,
                     sentiment_grid: Sequence[float], frustration_grid: Sequence[float]) -> list[dict[str, float]]:
    rows = []
    for s in sentiment_grid:
        for f in frustration_grid:
            th = dataclasses.replace(base, sentiment_threshold=float(s), frustration_threshold=float(f))
            predicted = {c.id: replay(parsed[c.id], th, c.tier)[0] for c in conversations}
            rows.append({"sentiment_threshold": float(s), "frustration_threshold": float(f), **score_escalations(conversations, predicted)})
    return rows


def pick_escalation(rows: list[dict[str, float]], target_precision: float) -> dict[str, float]:
    meeting = [r for r in rows if r["precision"] >= target_precision] or rows
    return max(meeting, key=lambda r: (round(r["f1"], 4), r["on_time"], r["frustration_threshold"]))


# -- settings file -------------------------------------------------------------------------------
def write_settings(path: Path, values: dict[str, float | str]) -> None:
    """Set `key: value` lines in tandem.yml, keeping every comment and other key; append new keys."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    for key, value in values.items():
        line = f"{key}: {value}"
        pattern = re.compile(rf"^{re.escape(key)}:.*$", re.MULTILINE)
        text = pattern.sub(line, text, count=1) if pattern.search(text) else text.rstrip("\n") + f"\n{line}\n"
    path.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")


# -- plots ---------------------------------------------------------------------------------------
def plot_faq(curve: list[dict[str, float]], chosen: dict[str, float], target: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [r["threshold"] for r in curve]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(xs, [r["precision"] for r in curve], label="answer precision")
    ax.plot(xs, [r["coverage"] for r in curve], label="answerable questions answered right")
    ax.axhline(target, color="grey", linestyle=":", label=f"target precision {target:.2f}")
    ax.axvline(chosen["threshold"], color="red", linestyle="--", label=f"faq_threshold {chosen['threshold']:.2f}")
    ax.set_xlabel("best FAQ cosine score needed to answer")
    ax.set_ylim(0, 1.02)
    ax.set_title("FAQ threshold on data/eval/heldout.yml")
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_escalation(rows: list[dict[str, float]], chosen: dict[str, float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for f in sorted({r["frustration_threshold"] for r in rows}):
        line = sorted((r for r in rows if r["frustration_threshold"] == f), key=lambda r: r["recall"])
        ax.plot([r["recall"] for r in line], [r["precision"] for r in line], marker="o", markersize=3, label=f"frustration >= {f:g}")
    ax.scatter([chosen["recall"]], [chosen["precision"]], color="red", zorder=5, s=60,
               label=f"chosen: sentiment <= {chosen['sentiment_threshold']:g}, frustration >= {chosen['frustration_threshold']:g}")
    ax.set_xlabel("recall (conversations that needed a person and got one)")
    ax.set_ylabel("precision of escalations")
    ax.set_title("Escalation on data/eval/conversations.yml (each line: sentiment threshold swept)", fontsize=10)
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -- the command ---------------------------------------------------------------------------------
SENTIMENT_GRID = (-0.2, -0.3, -0.4, -0.5, -0.6, -0.7, -0.8)
FRUSTRATION_GRID = (1.5, 2.0, 2.5, 3.0)


def calibrate(settings: Any, kb: Any, model: Path, target: float = 0.9, escalation_target: float = 0.85,
              conversations_file: Path | None = None, heldout_file: Path | None = None, images: Path | None = None,
              settings_file: Path | None = None) -> dict[str, Any]:
    """Choose faq_threshold, sentiment_threshold and frustration_threshold; write them; plot both trade-offs."""
    root = Path(settings.root)
    heldout_file = heldout_file or root / "data" / "eval" / "heldout.yml"
    conversations_file = conversations_file or root / "data" / "eval" / "conversations.yml"
    images = images or root / "docs" / "img"
    items = load_heldout(heldout_file)
    vectors = kb.embedder.encode([q["text"] for q in items], batch_size=64)
    best = []
    for vector in vectors:
        found = kb.search_vector(vector, 1)
        best.append((found[0].faq_id, found[0].score) if found else ("", 0.0))
    curve = faq_curve(best, [q["label"] for q in items], np.arange(0.30, 0.851, 0.01))
    chosen_faq = pick_threshold(curve, target)
    plot_faq(curve, chosen_faq, target, images / "calibration-faq-threshold.png")

    base = dataclasses.replace(Thresholds.from_settings(settings), faq_threshold=chosen_faq["threshold"])
    conversations = load_conversations(conversations_file)
    parsed = parse_conversations(model, kb, conversations)
    rows = sweep_escalation(conversations, parsed, base, SENTIMENT_GRID, FRUSTRATION_GRID)
    chosen_esc = pick_escalation(rows, escalation_target)
    plot_escalation(rows, chosen_esc, images / "calibration-escalation.png")
    values = {"faq_threshold": chosen_faq["threshold"], "sentiment_threshold": chosen_esc["sentiment_threshold"],
              "frustration_threshold": chosen_esc["frustration_threshold"]}
    if settings_file is not None:
        # A threshold fitted on labelled questions wins over the knowledge base's self-calibration.
        write_settings(settings_file, {**values, "faq_calibration": "off"})
    return {"values": values, "faq": chosen_faq, "escalation": chosen_esc, "faq_curve": curve, "escalation_rows": rows,
            "heldout": len(items), "conversations": len(conversations)}
