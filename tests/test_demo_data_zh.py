"""Checks on the Chinese demo data (issue 16): data/faq.zh.yml, data/eval/heldout.zh.yml and
data/eval/conversation_zh.yml. Plain pytest + PyYAML, no Rasa needed.

The Chinese FAQ must mirror data/faq.yml entry for entry (same ids and categories), so one held-out
label space serves both languages and cross-lingual retrieval can be measured; the held-out set must
never leak into what is indexed.
"""

import re
import unicodedata
from collections import Counter
from pathlib import Path

import pytest
import yaml

DATA = Path(__file__).resolve().parents[1] / "data"
HELDOUT_KINDS = {"faq", "out_of_scope", "angry", "human_request"}
CONVERSATION_INTENTS = {"greet", "goodbye", "thank", "affirm", "deny", "bot_challenge", "request_human"}
SENTIMENTS = {"negative", "neutral", "positive"}
HAN = re.compile(r"[\u4e00-\u9fff]")


def norm(text):
    """Compare texts the way a customer would see them as "the same": width-folded (NFKC, so
    full-width ？ equals ?), case-folded, whitespace and trailing punctuation ignored."""
    text = unicodedata.normalize("NFKC", str(text)).lower()
    text = "".join(text.split())
    return text.rstrip("?!.。,，~～")


def load(relpath):
    with open(DATA / relpath, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


@pytest.fixture(scope="module")
def faqs_en():
    return load("faq.yml")["faqs"]


@pytest.fixture(scope="module")
def faqs_zh():
    data = load("faq.zh.yml")
    assert isinstance(data, dict) and isinstance(data.get("faqs"), list)
    assert data.get("lang") == "zh"
    return data["faqs"]


@pytest.fixture(scope="module")
def heldout_zh():
    data = load("eval/heldout.zh.yml")
    assert isinstance(data, dict) and isinstance(data.get("questions"), list)
    return data["questions"]


@pytest.fixture(scope="module")
def conversation_zh():
    data = load("eval/conversation_zh.yml")
    assert isinstance(data, dict) and isinstance(data.get("messages"), list)
    return data["messages"]


def faq_texts(faqs):
    return {norm(t) for e in faqs for t in [e["question"], *e["paraphrases"]]}


# ------------------------------------------------------------------ faq.zh.yml


def test_zh_faq_mirrors_english_entries(faqs_en, faqs_zh):
    assert [(e["id"], e["category"]) for e in faqs_zh] == [(e["id"], e["category"]) for e in faqs_en]


def test_zh_faq_entries_complete_and_chinese(faqs_zh):
    for e in faqs_zh:
        for field in ("question", "answer", "category"):
            assert isinstance(e.get(field), str) and e[field].strip(), f"{e.get('id')}: empty {field}"
        assert HAN.search(e["question"]) and HAN.search(e["answer"]), f"{e['id']}: not written in Chinese"
        paraphrases = e.get("paraphrases")
        assert isinstance(paraphrases, list) and 3 <= len(paraphrases) <= 5, f"{e['id']}: needs 3-5 paraphrases"
        assert all(isinstance(p, str) and HAN.search(p) for p in paraphrases), f"{e['id']}: bad paraphrase"
        assert isinstance(e.get("tags"), list) and e["tags"], f"{e['id']}: no tags"


def test_zh_faq_answers_not_folded_with_spaces(faqs_zh):
    """A folded YAML scalar spread over lines joins them with a space, which is wrong in Chinese
    text; an answer must not contain a space between two Han characters."""
    for e in faqs_zh:
        assert not re.search(r"[\u4e00-\u9fff] [\u4e00-\u9fff]", e["answer"]), f"{e['id']}: space inside Chinese text"


def test_zh_faq_questions_not_shared_between_entries(faqs_zh):
    owner = {}
    for e in faqs_zh:
        for t in [e["question"], *e["paraphrases"]]:
            key = norm(t)
            assert owner.setdefault(key, e["id"]) == e["id"], f"{t!r} appears in both {owner[key]} and {e['id']}"


# -------------------------------------------------------------- heldout.zh.yml


def test_zh_heldout_size_and_mix(heldout_zh):
    assert len(heldout_zh) >= 150
    labels = [q["label"] for q in heldout_zh]
    assert len({label for label in labels if label != "escalate"}) >= 60
    assert labels.count("escalate") >= 40
    assert {q["kind"] for q in heldout_zh} == HELDOUT_KINDS


def test_zh_heldout_labels_exist(faqs_zh, heldout_zh):
    ids = {e["id"] for e in faqs_zh}
    for q in heldout_zh:
        assert q["label"] in ids or q["label"] == "escalate", f"unknown label {q['label']!r}"
        assert q.get("kind") in HELDOUT_KINDS, f"bad kind {q.get('kind')!r} for {q['text']!r}"
        assert (q["kind"] == "faq") == (q["label"] != "escalate"), f"kind/label mismatch: {q['text']!r}"


def test_zh_heldout_texts_unique(heldout_zh):
    dupes = [t for t, n in Counter(norm(q["text"]) for q in heldout_zh).items() if n > 1]
    assert not dupes, f"duplicate held-out texts: {dupes}"


def test_zh_heldout_not_copied_from_any_faq(faqs_en, faqs_zh, heldout_zh):
    seen = faq_texts(faqs_zh) | faq_texts(faqs_en)
    leaked = [q["text"] for q in heldout_zh if norm(q["text"]) in seen]
    assert not leaked, f"held-out texts also in faq.zh.yml/faq.yml: {leaked}"


def test_zh_heldout_is_written_the_way_customers_write(heldout_zh):
    """The set is meant to be harder than the FAQ: mixed Chinese/English, full-width punctuation,
    pinyin-only messages must all be present, not just tidy Chinese."""
    texts = [q["text"] for q in heldout_zh]
    assert all(HAN.search(t) or re.fullmatch(r"[a-z ]+", t) for t in texts), "a text is neither Chinese nor pinyin"
    assert sum(bool(HAN.search(t) and re.search(r"[A-Za-z]{2,}", t)) for t in texts) >= 10, "too few mixed zh/en texts"
    assert sum(bool(re.search(r"[？！，～]", t)) for t in texts) >= 20, "too little full-width punctuation"
    assert any(re.fullmatch(r"[a-z ]+", t) for t in texts), "no pinyin-only message"


# -------------------------------------------------------- conversation_zh.yml


def test_conversation_labels_valid(conversation_zh):
    for m in conversation_zh:
        assert isinstance(m.get("text"), str) and m["text"].strip()
        assert m.get("intent") in CONVERSATION_INTENTS | {None}, f"bad intent for {m['text']!r}"
        assert m.get("sentiment") in SENTIMENTS, f"bad sentiment for {m['text']!r}"


def test_conversation_covers_every_intent_and_sentiment(conversation_zh):
    intents = Counter(m.get("intent") for m in conversation_zh)
    for intent in CONVERSATION_INTENTS:
        assert intents[intent] >= 8, f"{intent}: only {intents[intent]} examples"
    sentiments = Counter(m["sentiment"] for m in conversation_zh)
    assert all(sentiments[s] >= 20 for s in SENTIMENTS), sentiments


def test_conversation_texts_unique_and_not_in_heldout(conversation_zh, heldout_zh):
    counts = Counter(norm(m["text"]) for m in conversation_zh)
    assert not [t for t, n in counts.items() if n > 1]
    heldout = {norm(q["text"]) for q in heldout_zh}
    assert not [m["text"] for m in conversation_zh if norm(m["text"]) in heldout]
