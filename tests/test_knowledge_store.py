"""FaqStore: versions with who and when, optimistic locking, rollback, all-or-nothing bulk writes."""
from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from core.db import metadata
from knowledge.store import FaqStore, NotFound, StoreError, VersionConflict

ENTRY = {"id": "ship-cost", "category": "shipping", "question": "How much is shipping?", "answer": "4.95 EUR.",
         "paraphrases": "What does delivery cost? | Shipping price?", "tags": ["shipping"]}


@pytest.fixture()
def store(tmp_path: Path) -> FaqStore:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'kb.db'}", future=True)
    metadata.create_all(engine, tables=[metadata.tables["faqs"], metadata.tables["faq_versions"]])
    return FaqStore(engine)


def test_create_normalises_and_records_a_version(store: FaqStore) -> None:
    faq = store.create(ENTRY, author="ed")
    assert faq.paraphrases == ["What does delivery cost?", "Shipping price?"]
    assert (faq.version, faq.status, faq.updated_by) == (1, "published", "ed")
    assert faq.revision == store.revision() > 0
    with pytest.raises(StoreError, match="already exists"):
        store.create(ENTRY, author="ed")
    [version] = store.history("ship-cost")
    assert version["action"] == "create" and version["author"] == "ed" and version["snapshot"]["answer"] == "4.95 EUR."


def test_update_with_stale_version_is_a_conflict(store: FaqStore) -> None:
    store.create(ENTRY, author="ed")
    store.update("ship-cost", {**ENTRY, "answer": "5.95 EUR."}, author="ann", expected_version=1)
    with pytest.raises(VersionConflict, match="now version 2, you edited version 1"):
        store.update("ship-cost", {**ENTRY, "answer": "lost?"}, author="bob", expected_version=1)
    assert store.get("ship-cost").answer == "5.95 EUR."
    with pytest.raises(NotFound):
        store.update("nope", ENTRY, author="ed", expected_version=None)


def test_rollback_restores_content_as_a_new_version(store: FaqStore) -> None:
    store.create(ENTRY, author="ed")
    store.update("ship-cost", {**ENTRY, "answer": "Free.", "status": "draft"}, author="ann", expected_version=1)
    back = store.rollback("ship-cost", 1, author="bob")
    assert (back.answer, back.status, back.version, back.updated_by) == ("4.95 EUR.", "published", 3, "bob")
    assert [v["action"] for v in store.history("ship-cost")] == ["rollback", "update", "create"]
    with pytest.raises(NotFound):
        store.rollback("ship-cost", 9, author="bob")


def test_delete_hides_entry_keeps_history_and_can_be_rolled_back(store: FaqStore) -> None:
    store.create(ENTRY, author="ed")
    with pytest.raises(VersionConflict):
        store.delete("ship-cost", author="ed", expected_version=7)
    store.delete("ship-cost", author="ed", expected_version=1)
    with pytest.raises(NotFound):
        store.get("ship-cost")
    assert store.list() == [] and store.count() == 0
    assert store.get("ship-cost", include_deleted=True).deleted
    restored = store.rollback("ship-cost", 1, author="ed")
    assert not restored.deleted and restored.version == 3


def test_list_filters_and_changed_since(store: FaqStore) -> None:
    store.create(ENTRY, author="ed")
    mark = store.revision()
    store.create({**ENTRY, "id": "ret", "category": "returns", "question": "How do I return?", "answer": "Label.", "status": "draft", "paraphrases": []}, author="ed")
    assert [f.id for f in store.list(status="draft")] == ["ret"]
    assert [f.id for f in store.list(category="shipping")] == ["ship-cost"]
    assert [f.id for f in store.list(search="DELIVERY")] == ["ship-cost"]  # paraphrases are searched too
    assert [f.id for f in store.changed_since(mark)] == ["ret"]
    assert store.categories() == ["returns", "shipping"]


def test_upsert_many_is_one_transaction(store: FaqStore) -> None:
    store.create(ENTRY, author="ed")
    with pytest.raises(StoreError):
        store.upsert_many([{**ENTRY, "answer": "changed"}, {"id": "bad", "category": "c", "question": "q"}], author="imp")
    assert store.get("ship-cost").answer == "4.95 EUR." and store.count() == 1
    assert store.upsert_many([{**ENTRY, "answer": "changed"}, {**ENTRY, "id": "new"}], author="imp") == 2
    assert store.get("ship-cost").version == 2 and store.get("new").version == 1
