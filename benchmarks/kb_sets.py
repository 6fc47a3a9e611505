"""The knowledge-base evaluation sets: a business's FAQ to import, and its customers' questions.

Shared by benchmarks/retrieval_options.py (the engine alone) and benchmarks/kb_eval.py (through
the product's doors), so both measure exactly the same entries and questions.

* BANKING77 (../shared/datasets/banking77): train.csv as 77 entries (first text the question, the
  rest its paraphrases), `leave_out` intents (seeded) not imported; test.csv asked. A left-out
  intent's questions are out of scope: the right reply is a refusal.
* Bitext customer support (../shared/datasets/bitext-customer-support, 27 intents): a seeded
  split per intent (`per_entry` texts imported, `per_test` asked), `leave_out` intents not imported.
* Northwind (data/faq.yml + data/eval/heldout.yml): the demo FAQ and its held-out questions;
  label `escalate` is out of scope for retrieval.

The datasets have no answer texts (BANKING77, Bitext); their entries get a neutral answer that
names the topic, so "scoring against the answer text" is only measured on Northwind.
"""
from __future__ import annotations

import csv
import random
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "datasets"
if not SHARED.exists():  # a worktree under /work/wt/<name>: shared/ sits beside the main checkout
    SHARED = Path("/work/shared/datasets")


@dataclass(frozen=True)
class Entry:
    id: str
    category: str
    question: str
    answer: str
    paraphrases: tuple[str, ...] = ()

    def texts(self) -> list[str]:
        return [t for t in [self.question, *self.paraphrases] if t.strip()]

    def to_import(self) -> dict:
        return {"id": self.id, "category": self.category, "question": self.question, "answer": self.answer,
                "paraphrases": list(self.paraphrases), "tags": [], "status": "published"}


@dataclass(frozen=True)
class Asked:
    text: str
    label: str | None  # the entry id that answers it; None: out of scope (refuse)
    kind: str = "faq"


@dataclass
class KbSet:
    name: str
    entries: list[Entry]
    questions: list[Asked]
    left_out: list[str] = field(default_factory=list)

    @property
    def in_scope(self) -> list[Asked]:
        return [q for q in self.questions if q.label is not None]

    @property
    def out_of_scope(self) -> list[Asked]:
        return [q for q in self.questions if q.label is None]

    def limited(self, limit: int | None, seed: int = 7) -> "KbSet":
        """At most `limit` questions, in-scope and out-of-scope in their original proportion."""
        if not limit or limit >= len(self.questions):
            return self
        rng = random.Random(seed)
        share = len(self.in_scope) / len(self.questions)
        n_in = max(1, round(limit * share))
        picked = rng.sample(self.in_scope, min(n_in, len(self.in_scope)))
        picked += rng.sample(self.out_of_scope, min(limit - len(picked), len(self.out_of_scope)))
        return KbSet(self.name, self.entries, picked, self.left_out)


def capped(kbset: KbSet, paraphrases: int | None) -> KbSet:
    """The same set with at most `paraphrases` paraphrases per entry (a cheaper import on a busy machine)."""
    if paraphrases is None:
        return kbset
    entries = [Entry(e.id, e.category, e.question, e.answer, e.paraphrases[:paraphrases]) for e in kbset.entries]
    return KbSet(kbset.name, entries, kbset.questions, kbset.left_out)


def _topic(intent: str) -> str:
    return intent.replace("_", " ").strip().capitalize()


def _entry_id(intent: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in intent.lower()).strip("-")[:100]


def banking77(leave_out: int = 10, seed: int = 77) -> KbSet:
    def read(name: str) -> list[tuple[str, str]]:
        with (SHARED / "banking77" / name).open(encoding="utf-8") as f:
            return [(r["text"].replace("\n", " ").strip(), r["category"]) for r in csv.DictReader(f)]

    train, test = read("train.csv"), read("test.csv")
    intents = sorted({c for _, c in train})
    out = sorted(random.Random(seed).sample(intents, leave_out))
    grouped: dict[str, list[str]] = {}
    for text, intent in train:
        if intent not in out and text:
            grouped.setdefault(intent, [])
            if text not in grouped[intent]:
                grouped[intent].append(text)
    entries = [Entry(_entry_id(i), "banking", texts[0], f"{_topic(i)}: (this business's answer)", tuple(texts[1:]))
               for i, texts in sorted(grouped.items())]
    questions = [Asked(t, None if c in out else _entry_id(c), "out_of_scope" if c in out else "faq") for t, c in test]
    return KbSet("BANKING77", entries, questions, out)


def bitext(leave_out: int = 5, per_entry: int = 50, per_test: int = 30, seed: int = 27) -> KbSet:
    grouped: dict[str, list[str]] = {}
    with (SHARED / "bitext-customer-support" / "utterances.csv").open(encoding="utf-8-sig") as f:
        for row in csv.DictReader(f):
            text = " ".join(row["utterance"].split())
            if text:
                grouped.setdefault(row["intent"], [])
                if text not in grouped[row["intent"]]:
                    grouped[row["intent"]].append(text)
    rng = random.Random(seed)
    intents = sorted(grouped)
    out = sorted(rng.sample(intents, leave_out))
    entries: list[Entry] = []
    questions: list[Asked] = []
    for intent in intents:
        texts = list(grouped[intent])
        rng.shuffle(texts)
        if intent in out:
            questions += [Asked(t, None, "out_of_scope") for t in texts[:per_test]]
            continue
        kb, asked = texts[:per_entry], texts[per_entry : per_entry + per_test]
        entries.append(Entry(_entry_id(intent), "support", kb[0], f"{_topic(intent)}: (this business's answer)", tuple(kb[1:])))
        questions += [Asked(t, _entry_id(intent)) for t in asked]
    return KbSet("Bitext", entries, questions, out)


def northwind() -> KbSet:
    faq = yaml.safe_load((ROOT / "data" / "faq.yml").read_text(encoding="utf-8"))["faqs"]
    entries = [Entry(e["id"], e["category"], e["question"], e["answer"], tuple(e.get("paraphrases") or ())) for e in faq]
    held = yaml.safe_load((ROOT / "data" / "eval" / "heldout.yml").read_text(encoding="utf-8"))["questions"]
    questions = [Asked(q["text"], None if q["label"] == "escalate" else q["label"], q.get("kind", "faq")) for q in held]
    return KbSet("Northwind", entries, questions, [])


def northwind_zh() -> KbSet:
    """The Chinese demo FAQ (data/faq.zh.yml) and its Chinese held-out questions (issue 16)."""
    faq = yaml.safe_load((ROOT / "data" / "faq.zh.yml").read_text(encoding="utf-8"))["faqs"]
    entries = [Entry(e["id"], e["category"], e["question"], e["answer"], tuple(e.get("paraphrases") or ())) for e in faq]
    held = yaml.safe_load((ROOT / "data" / "eval" / "heldout.zh.yml").read_text(encoding="utf-8"))["questions"]
    questions = [Asked(q["text"], None if q["label"] == "escalate" else q["label"], q.get("kind", "faq")) for q in held]
    return KbSet("Northwind zh", entries, questions, [])


SETS = {"banking77": banking77, "bitext": bitext, "northwind": northwind, "northwind_zh": northwind_zh}


def load(names: list[str] | None = None) -> list[KbSet]:
    return [SETS[n]() for n in (names or list(SETS))]
