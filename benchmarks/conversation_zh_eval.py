"""Conversation NLU in Chinese (issue 16): does Rasa keep Chinese greetings, thanks, yes/no, the bot
challenge and requests for a person, and send every Chinese question to the knowledge base?

The latest trained model in models/ (data/nlu.yml with its Chinese examples; WhitespaceTokenizer +
char_wb 1-4 n-grams + DIET, then nlu/conversation.ConversationGate checking Chinese per character)
parses, in-process:
- data/eval/conversation_zh.yml: 121 labelled messages (intent or null = not a conversation move),
  written by hand for this project, never trained on;
- the 190 questions of data/eval/heldout.zh.yml: Chinese customer questions, angry messages and
  requests for a person (label kind human_request must reach request_human, every other kind the
  knowledge route).

Reported: conversation recognised (right intent), questions captured by a conversation intent
(they would get a greeting instead of an answer), and how many labelled texts are also training
examples (short words such as 你好 are in both; the rate is shown without them too).

    nice -n 10 $VENV/bin/python benchmarks/conversation_zh_eval.py [--no-docs]
"""
from __future__ import annotations

import argparse
import sys
import time
import unicodedata
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import ROOT, machine, markdown_table, today, write_section  # noqa: E402
from benchmarks.conversation_nlu_eval import _parse, actual_route  # noqa: E402

SECTION = "Conversation NLU in Chinese (issue 16)"


def norm(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower().replace(" ", "").rstrip("?!.。,，~～？！")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args(argv)
    from benchmarks.escalation_eval import latest_model
    from core.settings import load_settings

    model = latest_model(load_settings().models_dir)
    conv = yaml.safe_load((ROOT / "data/eval/conversation_zh.yml").read_text(encoding="utf-8"))["messages"]
    held = yaml.safe_load((ROOT / "data/eval/heldout.zh.yml").read_text(encoding="utf-8"))["questions"]
    nlu = yaml.safe_load((ROOT / "data/nlu.yml").read_text(encoding="utf-8"))["nlu"]
    trained = {norm(line.strip()[2:]) for block in nlu for line in block["examples"].splitlines() if line.strip()}
    texts = sorted({m["text"] for m in conv} | {q["text"] for q in held})
    started = time.monotonic()
    parsed = _parse(model, texts)
    elapsed = time.monotonic() - started

    def expected_conv(m: dict[str, Any]) -> str:
        return m["intent"] or "knowledge"

    def expected_held(q: dict[str, Any]) -> str:
        return "request_human" if q.get("kind") == "human_request" else "knowledge"

    rows = []
    wrong: list[str] = []
    for name, items, expect in (("conversation_zh.yml", conv, expected_conv), ("heldout.zh.yml", held, expected_held)):
        for subset, chosen in (("all", items), ("not a training text", [i for i in items if norm(i["text"]) not in trained])):
            conv_items = [i for i in chosen if expect(i) != "knowledge"]
            know_items = [i for i in chosen if expect(i) == "knowledge"]
            conv_right = sum(actual_route(parsed[i["text"]]) == expect(i) for i in conv_items)
            captured = sum(actual_route(parsed[i["text"]]) != "knowledge" for i in know_items)
            rows.append([name, subset, str(len(chosen)), f"{conv_right}/{len(conv_items)}" if conv_items else "-",
                         f"{captured}/{len(know_items)}" if know_items else "-"])
        wrong += [f"{i['text']!r} -> {actual_route(parsed[i['text']])} (expected {expect(i)})"
                  for i in items if actual_route(parsed[i["text"]]) != expect(i)]
    table = markdown_table(["set", "texts", "n", "conversation recognised (right intent)", "questions captured by a conversation intent"], rows)
    print(table)
    print(f"\nmodel {model.name}; {len(texts)} texts parsed in {elapsed:.0f}s; wrong ({len(wrong)}):")
    for line in wrong:
        print("  ", line)
    if not args.no_docs:
        write_section(SECTION, (
            f"Command: `nice -n 10 $VENV/bin/python benchmarks/conversation_zh_eval.py` ({today()}; {machine()}). Model {model.name}.\n\n"
            "Chinese through the shipped pipeline: data/nlu.yml's Chinese examples, char_wb n-grams + DIET, and "
            "ConversationGate per Han character (nlu/conversation.py). Labels written by hand for this project.\n\n"
            f"{table}\n\nWrong ({len(wrong)}): " + "; ".join(wrong[:40]) + "\n"
        ), path=ROOT / "docs" / "evaluation.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
