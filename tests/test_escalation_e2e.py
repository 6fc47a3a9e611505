"""Escalation through the real stack: Rasa with the sentiment component, the action server's
policy, the router and the agent API."""
from __future__ import annotations

import httpx

from tests.conftest import Stack


def test_rasa_parse_carries_sentiment(stack: Stack) -> None:
    parsed = httpx.post(f"{stack.settings.rasa_url}/model/parse", json={"text": "this is useless, where is my refund!!!"}, params={"token": stack.settings.rasa_token()}, timeout=30).json()
    assert parsed["sentiment"]["label"] == "negative"
    assert parsed["sentiment"]["score"] < -0.5
    assert "frustration_phrase" in parsed["sentiment"]["cues"]


def test_angry_customer_escalates_with_negative_sentiment_and_values(stack: Stack) -> None:
    customer = stack.new_conversation()
    reply = customer.say("WHERE IS MY PARCEL?? three weeks and nothing, this is absolutely useless!!!")
    assert reply["mode"] == "waiting", reply
    agent = stack.login("agent")
    case = agent.case_for(customer.conversation_id)
    assert case["reason"] == "negative_sentiment"
    assert "sentiment -0." in case["detail"] and "in one message" in case["detail"]
    signals = agent.get(f"/cases/{case['id']}").json()["case"]["signals"]
    codes = [r["code"] for r in signals["reasons"]]
    assert codes[0] == "negative_sentiment"
    assert signals["reasons"][0]["values"]["sentiment"] < -0.8
    assert signals["sentiment"]["label"] == "negative"


def test_calm_question_is_still_answered(stack: Stack) -> None:
    customer = stack.new_conversation()
    replies = customer.say("hi, how can I track my order please?")["replies"]
    assert replies and replies[0]["faq_id"] == "orders-track-order"


def test_sustained_negativity_escalates_on_the_second_turn(stack: Stack) -> None:
    customer = stack.new_conversation()
    first = customer.say("my order is two weeks late, where is it?")  # negative, but the bot can still help
    assert first["mode"] == "bot" and first["replies"]
    second = customer.say("the tracking page hasn't moved in a week and nobody replies to my emails, really disappointing")
    assert second["mode"] == "waiting"
    case = stack.login("agent").case_for(customer.conversation_id)
    assert case["reason"] == "negative_sentiment"
    assert "over 2 turns" in case["detail"]


def _ambiguous_question(stack: Stack) -> str:
    """A question the live knowledge base finds ambiguous, by the editor's preview (the bot's own
    decision, tests/test_one_decision.py), once its calibration and head are in force."""
    from tests.test_editor_api import editor_login, wait_for_live_decision

    editor = editor_login(stack)
    wait_for_live_decision(editor)
    for text in CLARIFY_TEXTS:
        if editor.post("/try", {"text": text}).json()["decision"]["action"] == "clarify":
            return text
    raise AssertionError(f"none of {CLARIFY_TEXTS} is ambiguous for the demo knowledge base any more")


def test_did_you_mean_offers_two_faqs_and_the_button_answers(stack: Stack) -> None:
    customer = stack.new_conversation()
    reply = customer.say(_ambiguous_question(stack))
    assert reply["mode"] == "bot"
    question = reply["replies"][-1]
    assert question["text"].startswith("Did you mean"), reply
    buttons = question["buttons"]
    assert len(buttons) == 2 and all(b["payload"].startswith('/faq{"faq_id": ') for b in buttons)
    chosen = buttons[1]
    answer = customer.say(chosen["title"], payload=chosen["payload"])["replies"]
    faq_id = chosen["payload"].split('"faq_id": "')[1].rstrip('"}')
    assert answer and answer[0]["faq_id"] == faq_id


def test_sensitive_topic_goes_to_a_person(stack: Stack) -> None:
    customer = stack.new_conversation()
    assert customer.say("the phone charger I bought from you caught fire last night")["mode"] == "waiting"
    case = stack.login("agent").case_for(customer.conversation_id)
    assert case["reason"] == "sensitive_topic" and "safety" in case["detail"]


# Questions between two demo entries (data/faq.yml); the test takes the first the live decision finds
# ambiguous and fails loudly if none is any more.
CLARIFY_TEXTS = ("I want to send something back and get my money", "my order", "delivery", "refund", "account problem",
                 "can I change it", "payment", "how long", "where is it", "returns and refunds")
