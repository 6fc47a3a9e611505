"""Tandem's Rasa NLU pipeline (config.yml, as shipped) on BANKING77 (../shared/datasets/banking77).

Trains `rasa train nlu` with config.yml on train.csv (written to a temporary Rasa NLU yml in /tmp),
loads the model in-process with rasa's Agent and parses every test.csv text: intent accuracy
and macro-F1. `--holdout N` leaves N intents out of training (every (77//N)-th category,
alphabetically) for the out-of-scope curve (benchmarks/oos_eval.py reads the predictions).

    nice -n 10 $VENV/bin/python benchmarks/banking77_eval.py              # full, 77 intents
    nice -n 10 $VENV/bin/python benchmarks/banking77_eval.py --holdout 10 # for oos_eval.py
"""
from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import ROOT, machine, markdown_table, today, write_section  # noqa: E402

DATA = ROOT.parent / "shared" / "datasets" / "banking77"
WORK = Path("/tmp/tandem-banking77")


def read(name: str) -> list[tuple[str, str]]:
    with (DATA / name).open(encoding="utf-8") as f:
        return [(r["text"].replace("\n", " ").strip(), r["category"]) for r in csv.DictReader(f)]


def held_out_intents(categories: list[str], n: int) -> list[str]:
    if n <= 0:
        return []
    step = len(categories) // n
    return [categories[i * step] for i in range(n)]


def escape(text: str) -> str:
    """Rasa reads `[text](entity)` as an entity annotation; BANKING77 has none, so neutralise brackets."""
    return text.replace("[", "(").replace("]", ")")


def write_nlu(rows: list[tuple[str, str]], path: Path) -> None:
    by_intent: dict[str, list[str]] = {}
    for text, intent in rows:
        by_intent.setdefault(intent, []).append(escape(text))
    nlu = [{"intent": intent, "examples": "".join(f"- {t}\n" for t in dict.fromkeys(texts))} for intent, texts in sorted(by_intent.items())]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"version": "3.1", "nlu": nlu}, sort_keys=False, allow_unicode=True, width=10_000))


def train(nlu_file: Path, out: Path, config: Path) -> tuple[Path, float]:
    started = time.monotonic()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    subprocess.run([sys.executable, "-m", "rasa", "train", "nlu", "--config", str(config), "--nlu", str(nlu_file), "--out", str(out)],
                   cwd=ROOT, env=env, check=True)
    return sorted(out.glob("*.tar.gz"), key=lambda p: p.stat().st_mtime)[-1], time.monotonic() - started


async def parse_all(model: Path, texts: list[str]) -> list[dict]:
    from rasa.core.agent import Agent

    agent = Agent.load(str(model))
    results = []
    for text in texts:
        parsed = await agent.parse_message(text)
        ranking = [r for r in parsed.get("intent_ranking") or [] if r["name"] != "nlu_fallback"]
        top = ranking[0] if ranking else {"name": None, "confidence": 0.0}
        second = ranking[1]["confidence"] if len(ranking) > 1 else 0.0
        results.append({"intent": top["name"], "confidence": float(top["confidence"]), "gap": float(top["confidence"]) - float(second)})
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--holdout", type=int, default=0, help="intents left out of training (out-of-scope test)")
    parser.add_argument("--config", default=str(ROOT / "config.yml"))
    parser.add_argument("--tag", default="", help="names this run's files and docs row (e.g. a config variant)")
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args()
    from sklearn.metrics import accuracy_score, f1_score

    train_rows, test_rows = read("train.csv"), read("test.csv")
    categories = sorted({c for _, c in train_rows})
    unknown = set(held_out_intents(categories, args.holdout))
    name = f"holdout{args.holdout}" if args.holdout else "full"
    name += f"-{args.tag}" if args.tag else ""
    work = WORK / name
    write_nlu([r for r in train_rows if r[1] not in unknown], work / "nlu.yml")
    model, seconds = train(work / "nlu.yml", work / "models", Path(args.config))
    started = time.monotonic()
    predictions = asyncio.run(parse_all(model, [t for t, _ in test_rows]))
    parse_seconds = time.monotonic() - started
    truth = [c for _, c in test_rows]
    out = {"holdout": sorted(unknown), "truth": truth, "predictions": predictions, "train_seconds": seconds, "parse_seconds": parse_seconds,
           "config": str(args.config), "model": str(model)}
    (work / "predictions.json").write_text(json.dumps(out))
    in_scope = [i for i, c in enumerate(truth) if c not in unknown]
    y_true = [truth[i] for i in in_scope]
    y_pred = [predictions[i]["intent"] or "none" for i in in_scope]
    accuracy = accuracy_score(y_true, y_pred)
    macro_f1 = f1_score(y_true, y_pred, labels=sorted(set(y_true)), average="macro")
    print(f"{name}: {len(in_scope)} in-scope test texts, accuracy {accuracy:.4f}, macro-F1 {macro_f1:.4f}; "
          f"trained in {seconds:.0f}s, parsed {len(truth)} in {parse_seconds:.0f}s -> {work / 'predictions.json'}")
    if args.no_docs or args.holdout:
        return
    row = [args.tag or "config.yml as shipped", f"{accuracy:.3f}", f"{macro_f1:.3f}", f"{seconds:.0f}s", f"{1000 * parse_seconds / len(truth):.1f} ms"]
    table = markdown_table(["pipeline", "accuracy", "macro-F1", "train time", "parse / message"], [row])
    write_section(f"BANKING77 intent classification{' - ' + args.tag if args.tag else ''} (issue 6)", (
        f"Command: `nice -n 10 $VENV/bin/python benchmarks/banking77_eval.py{' --tag ' + args.tag + ' --config ' + args.config if args.tag else ''}` "
        f"({today()}; {machine()}).\n\nTrained on train.csv ({len(train_rows)} texts, 77 intents), tested on test.csv ({len(truth)} texts).\n\n{table}\n"
    ))


if __name__ == "__main__":
    main()
