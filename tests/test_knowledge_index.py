"""KnowledgeBase/FaqIndex: incremental updates (one entry, not a rebuild), drafts stay out, and a
missing or damaged index file is rebuilt from the store instead of being fatal."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pytest
import sqlalchemy as sa

from core.db import metadata
from knowledge.base import KnowledgeBase
from knowledge.embedder import Embedder
from knowledge.store import FaqStore

ENTRIES = [
    {"id": "ship-cost", "category": "shipping", "question": "How much does shipping cost?", "answer": "4.95 EUR.",
     "paraphrases": ["What is the delivery charge?"]},
    {"id": "returns", "category": "returns", "question": "How do I return an item?", "answer": "Use the label.",
     "paraphrases": []},
    {"id": "hours", "category": "contact", "question": "When is customer support open?", "answer": "Mon-Fri 8-20.",
     "paraphrases": ["What are your opening hours?"]},
]


class CountingEmbedder:
    """The real embedder, counting how many texts it was asked to embed (to prove incrementality)."""

    def __init__(self, real: Embedder) -> None:
        self.real = real
        self.texts = 0

    def encode(self, texts: Sequence[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        self.texts += len(texts)
        return self.real.encode(texts, batch_size=batch_size)


@pytest.fixture(scope="module")
def real_embedder() -> Embedder:
    return Embedder()


@pytest.fixture()
def store(tmp_path: Path) -> FaqStore:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'kb.db'}", future=True)
    metadata.create_all(engine, tables=[metadata.tables["faqs"], metadata.tables["faq_versions"]])
    store = FaqStore(engine)
    store.upsert_many(ENTRIES, author="seed")
    return store


def open_kb(store: FaqStore, folder: Path, embedder: object, kind: str = "flat") -> KnowledgeBase:
    kb = KnowledgeBase(store, folder, embedder=embedder, refresh_interval=0.0, index_kind=kind)  # type: ignore[arg-type]
    kb.open()
    return kb


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_edit_updates_one_entry_without_rebuilding(store: FaqStore, tmp_path: Path, real_embedder: Embedder, kind: str) -> None:
    counter = CountingEmbedder(real_embedder)
    kb = open_kb(store, tmp_path / "index", counter, kind)
    assert counter.texts == 5  # first open: everything embedded once
    assert kb.search("how much is delivery", 1)[0].faq_id == "ship-cost"

    counter.texts = 0
    store.update("hours", {**ENTRIES[2], "answer": "Every day 7-22."}, author="ed", expected_version=1)
    assert kb.search("when are you open", 1)[0].answer == "Every day 7-22."
    assert counter.texts == 2 + 1  # the edited entry's two texts, plus the query
    store.update("returns", {**ENTRIES[1], "status": "draft"}, author="ed", expected_version=1)
    assert "returns" not in [m.faq_id for m in kb.search("how do I return an item", 3)]
    store.delete("ship-cost", author="ed")
    assert "ship-cost" not in [m.faq_id for m in kb.search("shipping cost", 3)]
    assert len(kb.index) == 1


def test_a_second_instance_sees_edits_by_polling_the_revision(store: FaqStore, tmp_path: Path, real_embedder: Embedder) -> None:
    one = open_kb(store, tmp_path / "one", real_embedder)
    two = open_kb(store, tmp_path / "two", real_embedder)
    store.create({"id": "gift", "category": "orders", "question": "Do you offer gift wrapping?", "answer": "Yes, 3.95."}, author="ed")
    assert two.search("can you gift wrap my present", 1)[0].faq_id == "gift"
    assert one.search("can you gift wrap my present", 1)[0].faq_id == "gift"


@pytest.mark.parametrize("damage", ["missing", "truncated", "garbage", "meta-garbage", "meta-missing", "stale"])
def test_damaged_or_missing_index_is_rebuilt_not_fatal(store: FaqStore, tmp_path: Path, real_embedder: Embedder, damage: str) -> None:
    folder = tmp_path / "index"
    open_kb(store, folder, real_embedder)
    index_file, meta_file = folder / "faq.faiss", folder / "faq.json"
    if damage == "missing":
        index_file.unlink()
    elif damage == "truncated":
        index_file.write_bytes(index_file.read_bytes()[:100])
    elif damage == "garbage":
        index_file.write_bytes(b"\x00garbage" * 500)
    elif damage == "meta-garbage":
        meta_file.write_text("{not json")
    elif damage == "meta-missing":
        meta_file.unlink()
    else:  # an index saved by an older process that knows entries the store has since deleted
        store.delete("returns", author="ed")
        store.create({"id": "new", "category": "c", "question": "Is this new?", "answer": "Yes."}, author="ed")
    kb = open_kb(store, folder, real_embedder)
    assert set(kb.index._faq_vectors) == {f.id for f in store.list()}  # noqa: SLF001
    assert kb.search("what is the delivery charge", 1)[0].faq_id == "ship-cost"
    assert (folder / "faq.faiss").stat().st_size > 1000  # and it was saved again, whole


def test_a_searching_instance_indexes_edits_in_the_background_and_saves_later(store: FaqStore, tmp_path: Path, real_embedder: Embedder) -> None:
    from knowledge.index import FaqIndex
    from tests.conftest import wait_until

    folder = tmp_path / "index"
    kb = open_kb(store, folder, real_embedder)
    kb.save_interval = 0.5
    kb.search("warm up", 1)  # the first search starts the watcher
    try:
        store.update("hours", {**ENTRIES[2], "answer": "Every day 7-22."}, author="ed", expected_version=1)
        wait_until(lambda: kb.index.revision == store.revision(), timeout=5)  # no search needed
        assert kb.entry("hours").answer == "Every day 7-22."
        wait_until(lambda: FaqIndex.load(folder).revision == store.revision(), timeout=5)
    finally:
        kb.close()


def test_a_large_index_moves_to_ivf_and_keeps_deletes_updates_and_its_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`auto`: flat while small; from IVF_FROM_VECTORS vectors an IVF (lowered here to keep the test
    quick). It must still find what exact search finds, delete for real, take live additions,
    give its vectors back (self-calibration, the head) and survive save/load."""
    import knowledge.index as index_module
    from knowledge.index import FaqIndex

    monkeypatch.setattr(index_module, "IVF_FROM_VECTORS", 2_000)
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(200, 384))
    vectors = np.repeat(centres, 15, 0) + 0.5 * rng.normal(size=(3_000, 384))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    entries = [(f"e{i}", [f"e{i} text {j}" for j in range(3)]) for i in range(1_000)]

    small = FaqIndex()
    small.add_bulk(entries[:100], vectors[:300])
    assert small.structure == "flat"
    index, exact = FaqIndex(), FaqIndex("flat")
    index.add_bulk(entries, vectors)
    exact.add_bulk(entries, vectors)
    assert index.structure.startswith("ivf") and exact.structure == "flat"

    queries = vectors[rng.choice(len(vectors), 200, replace=False)] + 0.3 * rng.normal(size=(200, 384)).astype(np.float32)
    queries = (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)
    agree = np.mean([index.search(q, 1)[0].faq_id == exact.search(q, 1)[0].faq_id for q in queries])
    assert agree >= 0.97, agree

    target = index.search(queries[0], 1)[0].faq_id
    index.remove(target)
    assert target not in {h.faq_id for h in index.search(queries[0], 5)} and len(index) == 999
    index.upsert("new-entry", ["brand new"], queries[1:2])
    assert index.search(queries[1], 1)[0].faq_id == "new-entry"
    matrix, owners = index.matrix()
    assert matrix.shape == (len(owners), 384) and "new-entry" in owners and target not in owners

    index.save(tmp_path / "ivf")
    loaded = FaqIndex.load(tmp_path / "ivf")
    assert loaded.structure == index.structure
    assert loaded.search(queries[1], 1)[0].faq_id == "new-entry"
    loaded.remove("new-entry")
    assert "new-entry" not in {h.faq_id for h in loaded.search(queries[1], 5)}
