"""Checks on the Northwind Goods demo data: data/faq.yml, data/eval/heldout.yml
and data/nlu.yml. Plain pytest + PyYAML, no Rasa needed."""

import re
from collections import Counter, defaultdict
from pathlib import Path

import pytest
import yaml

DATA = Path(__file__).resolve().parents[1] / "data"

CATEGORIES = {
    "orders", "shipping", "returns", "refunds", "payments",
    "account", "warranty", "loyalty", "complaints", "contact",
}
HELDOUT_KINDS = {"faq", "out_of_scope", "angry", "human_request"}
MIN_INTENT_EXAMPLES = {
    "greet": 25,
    "goodbye": 20,
    "thank": 20,
    "affirm": 20,
    "deny": 20,
    "bot_challenge": 15,
    "request_human": 30,
}
# Rasa keeps the conversation only: the knowledge base decides what a business covers (issue 10).
CONVERSATION_INTENTS = set(MIN_INTENT_EXAMPLES)
ID_PATTERN = re.compile(r"^[a-z]+(-[a-z0-9]+)+$")


def norm(text):
    return " ".join(str(text).split()).lower()


def load(relpath):
    with open(DATA / relpath, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


@pytest.fixture(scope="module")
def faqs():
    data = load("faq.yml")
    assert isinstance(data, dict) and isinstance(data.get("faqs"), list)
    return data["faqs"]


@pytest.fixture(scope="module")
def heldout():
    data = load("eval/heldout.yml")
    assert isinstance(data, dict) and isinstance(data.get("questions"), list)
    return data["questions"]


@pytest.fixture(scope="module")
def nlu_examples():
    """intent -> list of example texts, parsed the way Rasa reads `examples: |`."""
    data = load("nlu.yml")
    assert str(data.get("version")) == "3.1"
    examples = defaultdict(list)
    for block in data["nlu"]:
        assert "intent" in block, f"unexpected nlu block: {block}"
        lines = [ln.strip() for ln in block["examples"].splitlines() if ln.strip()]
        for line in lines:
            assert line.startswith("- "), f"{block['intent']}: bad example line {line!r}"
            examples[block["intent"]].append(line[2:].strip())
    return dict(examples)


def faq_texts(faqs):
    return {norm(t) for e in faqs for t in [e["question"], *e["paraphrases"]]}


# ----------------------------------------------------------------- faq.yml


def test_faq_has_enough_entries(faqs):
    assert len(faqs) >= 80


def test_faq_ids_unique_and_well_formed(faqs):
    ids = [e["id"] for e in faqs]
    dupes = [i for i, n in Counter(ids).items() if n > 1]
    assert not dupes, f"duplicate FAQ ids: {dupes}"
    for e in faqs:
        assert ID_PATTERN.match(e["id"]), f"id not kebab-case: {e['id']}"
        assert e["id"].startswith(e["category"] + "-"), f"id not prefixed by category: {e['id']}"


def test_faq_categories_valid_and_all_used(faqs):
    used = {e["category"] for e in faqs}
    assert used <= CATEGORIES, f"unknown categories: {used - CATEGORIES}"
    assert used == CATEGORIES, f"unused categories: {CATEGORIES - used}"


def test_faq_entries_complete(faqs):
    for e in faqs:
        for field in ("question", "answer", "category"):
            assert isinstance(e.get(field), str) and e[field].strip(), f"{e.get('id')}: empty {field}"
        paraphrases = e.get("paraphrases")
        assert isinstance(paraphrases, list) and len(paraphrases) >= 3, f"{e['id']}: <3 paraphrases"
        assert all(isinstance(p, str) and p.strip() for p in paraphrases), f"{e['id']}: empty paraphrase"
        assert isinstance(e.get("tags"), list) and e["tags"], f"{e['id']}: no tags"


def test_faq_questions_not_shared_between_entries(faqs):
    owner = {}
    for e in faqs:
        for t in [e["question"], *e["paraphrases"]]:
            key = norm(t)
            assert owner.setdefault(key, e["id"]) == e["id"], (
                f"{t!r} appears in both {owner[key]} and {e['id']}"
            )


# ----------------------------------------------------------- heldout.yml


def test_heldout_has_enough_questions(heldout):
    assert len(heldout) >= 150


def test_heldout_labels_exist(faqs, heldout):
    ids = {e["id"] for e in faqs}
    for q in heldout:
        assert q["label"] in ids or q["label"] == "escalate", f"unknown label {q['label']!r}"
        assert q.get("kind") in HELDOUT_KINDS, f"bad kind {q.get('kind')!r} for {q['text']!r}"
        assert (q["kind"] == "faq") == (q["label"] != "escalate"), f"kind/label mismatch: {q['text']!r}"


def test_heldout_mix(heldout):
    labels = [q["label"] for q in heldout]
    faq_labels = [label for label in labels if label != "escalate"]
    assert len(set(faq_labels)) >= 60
    assert labels.count("escalate") >= 40
    assert {q["kind"] for q in heldout} == HELDOUT_KINDS


def test_heldout_texts_unique(heldout):
    dupes = [t for t, n in Counter(norm(q["text"]) for q in heldout).items() if n > 1]
    assert not dupes, f"duplicate heldout texts: {dupes}"


def test_heldout_not_copied_from_training_data(faqs, heldout, nlu_examples):
    seen = faq_texts(faqs) | {norm(x) for xs in nlu_examples.values() for x in xs}
    leaked = [q["text"] for q in heldout if norm(q["text"]) in seen]
    assert not leaked, f"heldout texts also in faq.yml/nlu.yml: {leaked}"


# ---------------------------------------------------------------- nlu.yml


def test_nlu_intents_and_counts(nlu_examples):
    for intent, minimum in MIN_INTENT_EXAMPLES.items():
        assert intent in nlu_examples, f"missing intent {intent}"
        assert len(nlu_examples[intent]) >= minimum, (
            f"{intent}: {len(nlu_examples[intent])} examples, need {minimum}"
        )
    assert "nlu_fallback" not in nlu_examples


def test_nlu_examples_unique_across_intents(nlu_examples):
    owner = {}
    for intent, examples in nlu_examples.items():
        for x in examples:
            key = norm(x)
            assert owner.setdefault(key, intent) == intent, (
                f"{x!r} is in both {owner[key]} and {intent}"
            )
    counts = Counter(norm(x) for xs in nlu_examples.values() for x in xs)
    dupes = [x for x, n in counts.items() if n > 1]
    assert not dupes, f"repeated NLU examples: {dupes}"


def test_nlu_has_only_conversation_intents(nlu_examples):
    """No topic intent (faq, out_of_scope, complain): those would decide what a business covers."""
    assert set(nlu_examples) == CONVERSATION_INTENTS


def test_nlu_names_no_business_and_no_faq_topic(faqs, nlu_examples):
    texts = [x for xs in nlu_examples.values() for x in xs]
    assert not [x for x in texts if "northwind" in x.lower()]
    copied = [x for x in texts if norm(x) in faq_texts(faqs)]
    assert not copied, f"nlu examples copied from faq.yml: {copied}"


def test_conversation_eval_set_is_held_out(nlu_examples):
    turns = load("eval/conversation_turns.yml")["turns"]
    trained = {norm(x) for xs in nlu_examples.values() for x in xs}
    assert len(turns) >= 50 and not [t["text"] for t in turns if norm(t["text"]) in trained]
    assert {t["expect"] for t in turns} == CONVERSATION_INTENTS | {"knowledge"}
