"""The action -> router contract: every decision survives the trip through Rasa's JSON."""
from __future__ import annotations

import json

import pytest

from conversations.decisions import Answered, BotDecision, Candidate, Escalation, Missed

CANDIDATES = (Candidate("orders-track", 0.81234, "Where is my order?"), Candidate("returns-how", 0.5, "How do I return?"))


@pytest.mark.parametrize("decision", [
    BotDecision("answer", CANDIDATES, {"intent": "nlu_fallback"}, {"score": -0.1}, ({"code": "faq_match"},), answered=Answered("orders-track", 0.8123, "orders"), query_vector="rasa"),
    BotDecision("clarify", CANDIDATES, options=CANDIDATES, reasons=({"code": "close_call"},)),
    BotDecision("miss", CANDIDATES, missed=Missed("low_score", {"best_score": 0.31})),
    BotDecision("reply", intent="goodbye"),
    BotDecision("escalate", sentiment={"score": -0.9}, escalation=Escalation("customer_request", "asked for a person", {"frustration": 1.5, "reasons": [{"code": "asked"}]})),
])
def test_round_trip_through_json(decision: BotDecision) -> None:
    wire = json.loads(json.dumps(decision.to_payload()))  # what Rasa carries
    back = BotDecision.from_payload(wire)
    assert back is not None and back.kind == decision.kind
    assert back.answered == decision.answered and back.missed == decision.missed and back.intent == decision.intent
    assert back.query_vector == decision.query_vector
    assert [c.faq_id for c in back.candidates] == [c.faq_id for c in decision.candidates]
    assert [c.faq_id for c in back.options] == [c.faq_id for c in decision.options]
    if decision.escalation:
        assert back.escalation is not None
        assert (back.escalation.reason, back.escalation.detail) == (decision.escalation.reason, decision.escalation.detail)
        assert back.escalation.signals["frustration"] == 1.5


def test_the_wire_format_is_what_the_policy_reads_from_the_tracker() -> None:
    """actions/policy.py reads earlier turns' decisions by these keys from Rasa's tracker."""
    body = BotDecision("answer", answered=Answered("a-b", 0.9)).to_payload()["tandem"]
    assert body["answer"]["faq_id"] == "a-b" and body["decision"] == "answer"
    assert "escalate" in BotDecision("escalate", escalation=Escalation("x", "", {})).to_payload()["tandem"]


@pytest.mark.parametrize("junk", [None, "text", [], {}, {"tandem": "x"}, {"tandem": {}}, {"tandem": {"decision": "dance"}}, {"other": {}}])
def test_anything_else_is_not_a_decision(junk: object) -> None:
    assert BotDecision.from_payload(junk) is None


def test_damaged_parts_are_dropped_not_raised() -> None:
    back = BotDecision.from_payload({"tandem": {"decision": "answer", "answer": {"faq_id": 3}, "candidates": [1, {"faq_id": "ok", "score": "high"}], "reasons": "no"}})
    assert back is not None and back.answered is None and back.reasons == ()
    assert back.candidates == (Candidate("ok", 0.0, ""),)


def test_a_payload_without_the_decision_key_is_read_by_its_parts() -> None:
    assert BotDecision.from_payload({"tandem": {"escalate": {"reason": "frustration"}}}).escalation.reason == "frustration"  # type: ignore[union-attr]


def test_the_reply_payload_is_the_one_the_goodbye_prompt_reads() -> None:
    assert BotDecision.from_payload({"tandem": {"reply": {"intent": "goodbye"}}}) == BotDecision("reply", intent="goodbye")
