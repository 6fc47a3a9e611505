"""What sentiment and the policy add to each message, against the same pipeline without them.

Trains Tandem's NLU (data/nlu.yml) twice with `rasa train nlu`: config.yml as shipped, and
config.yml without nlu.sentiment.SentimentAnalyzer (the other components are restored from
Rasa's cache, the training graph is the same), loads both in-process with rasa's Agent and
parses the same customer messages (data/eval/conversations.yml) with each, alternating rounds so
machine load hits both alike. Also times the component's process() alone, and the policy's
signals_from_tracker + decide on a 12-turn conversation.

    nice -n 10 $VENV/bin/python benchmarks/policy_overhead.py [--messages 300]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import ROOT, machine, markdown_table, percentile, today, write_section  # noqa: E402

WORK = Path("/tmp/tandem-overhead")


def train(config: Path, out: Path) -> Path:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    subprocess.run([sys.executable, "-m", "rasa", "train", "nlu", "--config", str(config), "--nlu", "data/nlu.yml", "--out", str(out)],
                   cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    return sorted(out.glob("*.tar.gz"), key=lambda p: p.stat().st_mtime)[-1]


def config_without_sentiment(path: Path) -> None:
    config = yaml.safe_load((ROOT / "config.yml").read_text())
    config["pipeline"] = [c for c in config["pipeline"] if c["name"] != "nlu.sentiment.SentimentAnalyzer"]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))


async def time_parses(agent: object, texts: list[str]) -> list[float]:
    times = []
    for text in texts:
        started = time.perf_counter()
        await agent.parse_message(text)  # type: ignore[attr-defined]
        times.append((time.perf_counter() - started) * 1000)
    return times


def stats(name: str, values: list[float]) -> list[object]:
    return [name, len(values), f"{statistics.mean(values):.2f}", f"{percentile(values, 50):.2f}", f"{percentile(values, 95):.2f}"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args()
    from rasa.core.agent import Agent
    from rasa.shared.nlu.training_data.message import Message

    from actions.calibration import load_conversations
    from actions.policy import FAQ, Candidate, Thresholds, decide, signals_from_tracker
    from nlu.sentiment import SentimentAnalyzer

    conversations = load_conversations(ROOT / "data" / "eval" / "conversations.yml")
    texts = list(dict.fromkeys(t for c in conversations for t in c.turns))[: args.messages]
    config_without_sentiment(WORK / "config-without.yml")
    with_model = train(ROOT / "config.yml", WORK / "with")
    without_model = train(WORK / "config-without.yml", WORK / "without")
    agents = {"with sentiment": Agent.load(str(with_model)), "without sentiment": Agent.load(str(without_model))}
    for agent in agents.values():
        asyncio.run(time_parses(agent, texts[:10]))  # warm up
    times: dict[str, list[float]] = {name: [] for name in agents}
    for _ in range(args.rounds):
        for name, agent in agents.items():
            times[name] += asyncio.run(time_parses(agent, texts))

    component = SentimentAnalyzer(SentimentAnalyzer.get_default_config())
    component_times = []
    for text in texts:
        started = time.perf_counter()
        component.process([Message(data={"text": text})])
        component_times.append((time.perf_counter() - started) * 1000)

    parse = {"text": "where is my parcel", "intent": {"name": "faq", "confidence": 0.9}, "intent_ranking": [{"confidence": 0.9}, {"confidence": 0.05}],
             "sentiment": {"score": -0.4, "cues": [], "english": True}}
    events = []
    for i in range(12):
        events.append({"event": "user", "text": f"question number {i} about my order", "parse_data": parse})
        events.append({"event": "bot", "data": {"custom": {"tandem": {"answer": {"faq_id": "orders-track-order"}}}}})
    matches = [Candidate("orders-track-order", 0.7, "How can I track my order?"), Candidate("shipping-delayed", 0.6, "My order is late")]
    th = Thresholds()
    policy_times = []
    for _ in range(2000):
        started = time.perf_counter()
        decide(signals_from_tracker(FAQ, parse, events, matches, 0), th)
        policy_times.append((time.perf_counter() - started) * 1000)

    added = statistics.median(times["with sentiment"]) - statistics.median(times["without sentiment"])
    rows = [stats(f"NLU parse, {name}", values) for name, values in times.items()]
    rows += [stats("SentimentAnalyzer.process alone", component_times), stats("policy: signals_from_tracker + decide (12-turn tracker)", policy_times)]
    table = markdown_table(["what", "n", "mean ms", "p50 ms", "p95 ms"], rows)
    summary = f"added by sentiment per message (median parse with - without): {added:.2f} ms"
    print(table)
    print(summary)
    if args.no_docs:
        return
    write_section("Per-message cost of sentiment and the escalation policy (issue 6)", (
        f"Command: `nice -n 10 $VENV/bin/python benchmarks/policy_overhead.py --messages {args.messages}` ({today()}; {machine()}; the machine was shared "
        f"with other jobs, so absolute numbers are noisy, the with/without rounds alternate).\n\n{len(texts)} distinct customer messages "
        f"from data/eval/conversations.yml, {args.rounds} rounds each.\n\n{table}\n\n{summary}.\n"
    ))


if __name__ == "__main__":
    main()
