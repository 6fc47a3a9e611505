"""Knowledge gaps, agents' answers as drafts, and per-entry usage, read from real tables
(conversation_events, messages) in a temporary database, written the way the router writes them."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

import conversations.store  # noqa: F401 - registers the messages table this room only reads
from core.db import metadata
from conversations.events import conversation_events
from knowledge.embedder import Embedder
from editor.gaps import knowledge_gaps, missed_questions
from editor.suggestions import suggestions
from editor.usage import usage_by_faq


class Log:
    """Writes conversations, messages and events with increasing timestamps."""

    def __init__(self, engine: sa.engine.Engine) -> None:
        self.engine = engine
        self.clock = 1000.0

    def tick(self) -> float:
        self.clock += 1
        return self.clock

    def conversation(self, cid: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(metadata.tables["conversations"].insert().values(
                id=cid, channel="rest", mode="bot", customer_name="", profile="{}", created_at=self.clock, updated_at=self.clock))

    def say(self, cid: str, sender: str, text: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(metadata.tables["messages"].insert().values(
                conversation_id=cid, sender=sender, text=text, data="{}", created_at=self.tick()))

    def event(self, cid: str, event_kind: str, /, **data: object) -> None:
        with self.engine.begin() as conn:
            conn.execute(conversation_events.insert().values(
                conversation_id=cid, kind=event_kind, channel="rest", data=json.dumps(data), at=self.tick()))


@pytest.fixture()
def log(tmp_path: Path) -> Log:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 't.db'}", future=True)
    metadata.create_all(engine)
    return Log(engine)


def test_missed_questions_take_the_customer_line_before_the_event(log: Log) -> None:
    log.conversation("a")
    log.say("a", "customer", "Do you sell marble garden gnomes?")
    log.say("a", "bot", "Sorry, could you rephrase?")
    log.event("a", "missed", kind="low_faq_confidence")
    log.conversation("b")
    log.say("b", "customer", "Can I get a gnome in marble?")
    log.say("b", "customer", "I want to talk to a person")
    log.event("b", "escalated", reason="customer_request", case_id=1)
    log.conversation("c")
    log.say("c", "customer", "ok")  # not a question: no gap
    log.event("c", "missed", kind="nlu_fallback")
    found = missed_questions(log.engine)
    assert [(q.text, q.kind, q.reason) for q in found] == [
        ("Can I get a gnome in marble?", "escalated", "customer_request"),
        ("Do you sell marble garden gnomes?", "missed", "low_faq_confidence"),
    ]


def test_similar_gaps_are_grouped_newest_first(log: Log) -> None:
    texts = ["Do you sell marble garden gnomes?", "How late is the pharmacy open?", "Do you sell garden gnomes made of marble?"]
    for n, text in enumerate(texts):
        log.conversation(f"c{n}")
        log.say(f"c{n}", "customer", text)
        log.event(f"c{n}", "missed", kind="low_faq_confidence")
    gaps = knowledge_gaps(log.engine, Embedder().encode, threshold=0.7)
    assert [(g.count, g.examples[0].text) for g in gaps] == [(2, texts[2]), (1, texts[1])]
    assert gaps[0].to_dict()["conversations"] == 2


def test_agents_answer_after_hand_back_is_a_draft(log: Log) -> None:
    log.conversation("x")
    log.say("x", "customer", "Can you deliver to an island?")
    log.say("x", "customer", "I want to talk to a person")
    log.event("x", "escalated", reason="customer_request", case_id=7)
    log.event("x", "claimed", case_id=7, agent="agent")
    log.say("x", "agent", "Hi there!")
    log.say("x", "agent", "Yes, islands are served by ferry freight, three extra days.")
    log.say("x", "customer", "thanks")
    log.event("x", "handed_back", case_id=7, resolution="resolved", agent="agent")
    log.conversation("spam")
    log.say("spam", "customer", "buy cheap watches now please")
    log.event("spam", "claimed", case_id=8, agent="agent")
    log.say("spam", "agent", "This conversation looks like spam to me, closing.")
    log.event("spam", "handed_back", case_id=8, resolution="spam", agent="agent")
    [found] = suggestions(log.engine)
    assert (found.case_id, found.question, found.answer) == (7, "Can you deliver to an island?", "Yes, islands are served by ferry freight, three extra days.")
    assert found.draft()["status"] == "draft" and found.draft()["tags"] == ["case-7"]
    assert suggestions(log.engine, used_tags={"case-7"}) == []


def test_usage_counts_served_and_feedback(log: Log) -> None:
    for _ in range(3):
        log.event("u", "answered", faq_id="shipping-costs", score=0.9)
    log.event("u", "answered", faq_id="returns-policy", score=0.8)
    log.event("u", "feedback", faq_id="shipping-costs", helpful=True, message_id=1)
    log.event("u", "feedback", faq_id="shipping-costs", helpful=False, message_id=2)
    log.event("u", "feedback", faq_id="returns-policy", helpful=False, message_id=3)
    usage = usage_by_faq(log.engine)
    assert usage["shipping-costs"].to_dict() == {"served": 3, "helpful": 1, "unhelpful": 1}
    assert usage["returns-policy"].to_dict() == {"served": 1, "helpful": 0, "unhelpful": 1}
