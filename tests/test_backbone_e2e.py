"""The whole path, end to end, against a real trained Rasa model and the real action server:
answer from the knowledge base, escalate, an agent claims, replies and hands back."""
from __future__ import annotations

import httpx
import pytest
import yaml

from tests.conftest import Stack, wait_until


def faq_entry(stack: Stack, faq_id: str) -> dict:
    entries = yaml.safe_load(stack.settings.faq_file.read_text())["faqs"]
    return next(e for e in entries if e["id"] == faq_id)


def test_faq_question_gets_its_answer(stack: Stack) -> None:
    entry = faq_entry(stack, "orders-track-order")
    customer = stack.new_conversation()
    replies = customer.say("Hi, how can I track my order please?")["replies"]
    assert [r["text"] for r in replies] == [entry["answer"].strip()]
    assert replies[0]["faq_id"] == "orders-track-order"


def test_paraphrase_of_another_entry(stack: Stack) -> None:
    entry = faq_entry(stack, "shipping-costs")
    customer = stack.new_conversation()
    replies = customer.say(entry["paraphrases"][0])["replies"]
    assert replies and replies[0].get("faq_id") == "shipping-costs"


def test_nonsense_twice_escalates(stack: Stack) -> None:
    customer = stack.new_conversation()
    first = customer.say("can you fix my grandmother's bicycle chain?")
    assert first["mode"] == "bot"
    assert first["replies"], "the bot should ask to rephrase"
    second = customer.say("what's the capital of mongolia")
    assert second["mode"] == "waiting"
    assert "connecting you" in " ".join(r["text"] for r in second["replies"]).lower()
    agent = stack.login("agent")
    case = agent.case_for(customer.conversation_id)
    assert case["reason"] in ("low_faq_confidence", "nlu_fallback")
    assert case["detail"]


def test_asking_for_a_person_escalates(stack: Stack) -> None:
    customer = stack.new_conversation()
    reply = customer.say("I want to talk to a person")
    assert reply["mode"] == "waiting"
    case = stack.login("agent").case_for(customer.conversation_id)
    assert case["reason"] == "customer_request"
    assert case["position"] >= 1


def test_an_angry_customer_escalates_on_mood_not_on_a_complaint_intent(stack: Stack) -> None:
    customer = stack.new_conversation()
    assert customer.say("I want to file a complaint about your terrible service, this is unacceptable!!")["mode"] == "waiting"
    assert stack.login("agent").case_for(customer.conversation_id)["reason"] in ("negative_sentiment", "frustration")


def test_a_calm_problem_is_a_knowledge_question(stack: Stack) -> None:
    """No complaint intent: "it came broken" is answered from the knowledge base, not escalated."""
    customer = stack.new_conversation()
    reply = customer.say("hello, my parcel arrived and the item inside came broken, what do I do?")
    assert reply["mode"] == "bot" and reply["replies"] and reply["replies"][0].get("faq_id"), reply


def test_agent_claims_replies_and_hands_back(stack: Stack) -> None:
    customer = stack.new_conversation()
    customer.say("hello")
    customer.say("can I speak to a human please")
    waiting = customer.say("it's about order 1234")  # typed while waiting: reaches the agent, not the bot
    assert waiting["replies"] == [] and waiting["handled_in"] == "waiting"
    agent = stack.login("agent")
    case = agent.case_for(customer.conversation_id)
    detail = agent.get(f"/cases/{case['id']}").json()
    assert "it's about order 1234" in [m["text"] for m in detail["transcript"]]

    assert agent.post(f"/cases/{case['id']}/claim").status_code == 200
    joined = customer.messages()[-1]
    assert joined["sender"] == "system" and joined["agent_name"] == "Alex Agent"
    cursor = joined["id"]
    assert agent.post(f"/cases/{case['id']}/messages", {"text": "Hi, I'm Alex. Let me check order 1234."}).status_code == 201
    seen = customer.messages(after=cursor)
    assert [(m["sender"], m["text"]) for m in seen] == [("agent", "Hi, I'm Alex. Let me check order 1234.")]
    quiet = customer.say("thanks, waiting")
    assert quiet["replies"] == [] and quiet["handled_in"] == quiet["mode"] == "human"  # the bot stays quiet while a person has it

    closed = agent.post(f"/cases/{case['id']}/close", {"resolution": "resolved"})
    assert closed.status_code == 200
    after_close = customer.messages(after=seen[-1]["id"])
    assert any(m["sender"] == "bot" and "back with" in m["text"] for m in after_close)
    again = customer.say("how can I track my order?")
    assert again["mode"] == again["handled_in"] == "bot" and again["replies"][0]["faq_id"] == "orders-track-order"

    tracker = httpx.get(f"{stack.settings.rasa_url}/conversations/{customer.conversation_id}/tracker", params={"token": stack.settings.rasa_token()}).json()
    kinds = [e["event"] for e in tracker["events"]]
    texts = [e.get("text") for e in tracker["events"]]
    assert "pause" in kinds and "resume" in kinds
    assert "it's about order 1234" in texts and "Hi, I'm Alex. Let me check order 1234." in texts
    assert kinds.index("pause") < texts.index("Hi, I'm Alex. Let me check order 1234.") < kinds.index("resume")


def test_customer_can_leave_the_queue(stack: Stack) -> None:
    customer = stack.new_conversation()
    customer.say("agent please")
    left = customer.say("Back to the assistant", payload="/leave_queue")
    assert left["mode"] == "bot"
    agent = stack.login("agent")
    cancelled = agent.get("/cases", status="cancelled").json()["cases"]
    assert customer.conversation_id in [c["conversation_id"] for c in cancelled]


def test_queue_survives_a_web_process_crash(stack: Stack) -> None:
    customer = stack.new_conversation()
    customer.say("I need a real person")
    agent = stack.login("agent")
    case = agent.case_for(customer.conversation_id)
    stack.supervisor.restart("web", hard=True)  # kill -9, then start again
    agent = stack.login("agent")
    assert agent.case_for(customer.conversation_id)["id"] == case["id"]
    texts = [m["text"] for m in customer.messages()]
    assert "I need a real person" in texts
    assert agent.post(f"/cases/{case['id']}/claim").status_code == 200
    assert agent.post(f"/cases/{case['id']}/close").status_code == 200
