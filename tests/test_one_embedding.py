"""One embedding per message (issue 13): Rasa embeds the customer's text once (nlu/embedding.py),
sentiment and the action server's FAQ search reuse that vector instead of embedding again, and
the results are the same as when each embedded the text itself."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import sqlalchemy as sa
from rasa.shared.nlu.training_data.message import Message

from core.db import metadata
from knowledge.base import KnowledgeBase
from knowledge.models import E5, MINILM, encoder
from knowledge.query_vector import EMBEDDING, QueryVector
from knowledge.store import FaqStore
from nlu.embedding import TextEmbedder, embeddable
from nlu.sentiment import SENTIMENT, SentimentAnalyzer
from tests.conftest import Stack

ENTRIES = [
    {"id": "ship-cost", "category": "shipping", "question": "How much does shipping cost?", "answer": "4.95 EUR.",
     "paraphrases": ["What is the delivery charge?"]},
    {"id": "returns", "category": "returns", "question": "How do I return an item?", "answer": "Use the label.", "paraphrases": []},
]


class CountingEncoder:
    """The process's real MiniLM, counting the texts it embeds (to prove a search embedded nothing)."""

    name = MINILM

    def __init__(self) -> None:
        self.real = encoder(MINILM)
        self.texts = 0

    def encode(self, texts: Any, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        self.texts += len(texts)
        return self.real.encode(texts, batch_size=batch_size)


def test_the_vector_travels_exactly() -> None:
    vector = encoder(MINILM).encode(["where is my parcel"])[0]
    carried = QueryVector.from_parse(json.loads(json.dumps({EMBEDDING: QueryVector(MINILM, vector).to_dict()})))
    assert carried is not None and carried.encoder == MINILM
    assert np.array_equal(carried.vector, vector)  # bit for bit: base64 of the float32 bytes
    for broken in ({}, {EMBEDDING: "x"}, {EMBEDDING: {"encoder": MINILM, "dim": 384, "f32": "not base64!"}},
                   {EMBEDDING: {"encoder": MINILM, "dim": 3, "f32": QueryVector(MINILM, vector).to_dict()["f32"]}},
                   {EMBEDDING: {"encoder": MINILM, "dim": 1, "f32": "AADAfw=="}}):  # a NaN
        assert QueryVector.from_parse(broken) is None


def test_the_component_embeds_what_minilm_can_read() -> None:
    messages = [Message(data={"text": t}) for t in ("how do I return an item?", '/faq{"faq_id": "returns"}', "我的包裹在哪里", "  ")]
    TextEmbedder({}).process(messages)
    english = QueryVector.from_parse({EMBEDDING: messages[0].get(EMBEDDING)})
    assert english is not None and english.encoder == MINILM
    assert EMBEDDING in messages[0].as_dict(only_output_properties=True)
    alone = encoder(MINILM).encode(["how do I return an item?"])[0]
    assert float(np.max(np.abs(english.vector - alone))) < 1e-6
    assert [m.get(EMBEDDING) is None for m in messages[1:]] == [True, True, True]
    assert not embeddable("/greet") and not embeddable("你好") and embeddable("hi there")


def test_sentiment_with_the_carried_vector_equals_sentiment_without() -> None:
    texts = ["this is useless!!! third time I ask", "thanks, that sorted it", "how can I track my order?"]
    with_vector = [Message(data={"text": t}) for t in texts]
    TextEmbedder({}).process(with_vector)
    analyzer = SentimentAnalyzer(SentimentAnalyzer.get_default_config())
    analyzer.process(with_vector)
    without = [Message(data={"text": t}) for t in texts]
    analyzer.process(without)
    for a, b in zip(with_vector, without):
        assert a.get(SENTIMENT)["label"] == b.get(SENTIMENT)["label"]
        assert a.get(SENTIMENT)["score"] == pytest.approx(b.get(SENTIMENT)["score"], abs=1e-3)
    assert with_vector[0].get(SENTIMENT)["label"] == "negative"


def test_search_with_the_carried_vector_embeds_nothing(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'kb.db'}", future=True)
    metadata.create_all(engine, tables=[metadata.tables["faqs"], metadata.tables["faq_versions"]])
    store = FaqStore(engine)
    store.upsert_many(ENTRIES, author="seed")
    counting = CountingEncoder()
    kb = KnowledgeBase(store, tmp_path / "index", embedder=counting, refresh_interval=0.0)  # type: ignore[arg-type]
    kb.open()
    text = "what does delivery cost"
    embedded = kb.search(text)
    before = counting.texts
    carried = QueryVector(MINILM, encoder(MINILM).encode([text])[0])
    reused = kb.search_with(text, carried)
    assert counting.texts == before  # no embedding for the search
    assert [(m.faq_id, round(m.score, 5)) for m in reused] == [(m.faq_id, round(m.score, 5)) for m in embedded]
    assert reused[0].faq_id == "ship-cost"
    # A vector of another encoder (or none) is not used: the knowledge base embeds the text itself.
    assert [m.faq_id for m in kb.search_with(text, QueryVector(E5, carried.vector))] == [m.faq_id for m in embedded]
    assert [m.faq_id for m in kb.search_with(text, None)] == [m.faq_id for m in embedded]
    assert counting.texts == before + 2
    kb.close()


def test_the_stack_embeds_a_message_once(stack: Stack) -> None:
    """Through the REST channel: the tracker's user event carries the vector and the action says
    its FAQ search reused it (query_vector "rasa")."""
    customer = stack.new_conversation()
    reply = customer.say("how can I track my order?")
    assert reply["replies"][0]["faq_id"] == "orders-track-order"
    tracker = httpx.get(f"{stack.settings.rasa_url}/conversations/{customer.conversation_id}/tracker",
                        params={"token": stack.settings.rasa_token()}).json()
    user = [e for e in tracker["events"] if e["event"] == "user"][-1]
    carried = QueryVector.from_parse(user["parse_data"])
    assert carried is not None and carried.encoder == MINILM
    assert user["parse_data"][SENTIMENT]["method"] == "head"
    payloads = [((e.get("data") or {}).get("custom") or {}).get("tandem") for e in tracker["events"] if e["event"] == "bot"]
    answered = [p for p in payloads if p and p.get("decision") == "answer"]
    assert answered and answered[-1]["query_vector"] == "rasa"
    assert answered[-1]["answer"]["faq_id"] == "orders-track-order"
