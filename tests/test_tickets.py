"""Tickets: with no one online (or after hours) the waiting customer may leave a message with a
contact; the ticket holds the transcript; an agent answers it from the console the next day and
the answer reaches the customer's conversation (stored either way)."""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from handoff.tickets import clean_contact
from tests.conftest import Stack, stack_settings
from tests.test_routing import make_world


def test_contact_validation() -> None:
    assert clean_contact(" Jane.Doe@Example.com ") == "jane.doe@example.com"
    assert clean_contact("+49 (30) 123-4567") == "+49301234567"
    for bad in ("jane", "jane@", "@example.com", "call me maybe", "12345", "a@b"):
        assert clean_contact(bad) is None, bad


def test_nobody_online_ticket_end_to_end(stack: Stack) -> None:
    customer = stack.new_conversation()
    reply = customer.say("I want to talk to a person")
    assert reply["mode"] == "waiting"
    queued = [r for r in reply["replies"] if r.get("kind") == "queued"][0]
    assert "No one from our team is online" in queued["text"]
    assert {"title": "Leave a message", "payload": "/ticket"} in queued["buttons"]
    customer.say("my invoice shows the wrong VAT number")  # typed while waiting: goes into the ticket

    asked = customer.say("Leave a message", payload="/ticket")["replies"]
    assert asked[-1]["kind"] == "ticket_contact"
    retry = customer.say("tomorrow please")["replies"]
    assert retry[-1]["kind"] == "ticket_contact" and "doesn't look like" in retry[-1]["text"]
    done = customer.say("jane@example.com")
    assert done["mode"] == "bot"  # back with the bot, which carries on
    opened = [r for r in done["replies"] if r.get("kind") == "ticket_opened"][0]
    ticket_id = int(opened["text"].split("#")[1].split(";")[0])

    agent = stack.login("agent2")
    assert agent.case_for(customer.conversation_id, status="cancelled")["resolution"] == "ticket"
    pending = agent.get("/tickets", status="pending").json()["tickets"]
    assert ticket_id in [t["id"] for t in pending]
    ticket = agent.get(f"/tickets/{ticket_id}").json()["ticket"]
    assert ticket["contact"] == "jane@example.com" and ticket["status"] == "open"
    assert ticket["reason"] == "customer_request"
    assert "my invoice shows the wrong VAT number" in [m["text"] for m in ticket["transcript"]]

    # Next day: the agent answers from the console; the customer's channel has it.
    cursor = customer.messages()[-1]["id"]
    answer = agent.post(f"/tickets/{ticket_id}/reply", {"text": "We've corrected the VAT number on your invoice."})
    assert answer.status_code == 201, answer.text
    seen = customer.messages(after=cursor)
    assert [(m["sender"], m["text"], m.get("agent_name"), m.get("kind")) for m in seen] == [
        ("agent", "We've corrected the VAT number on your invoice.", "Sam Support", "ticket_reply")
    ]
    stored = agent.get(f"/tickets/{ticket_id}").json()["ticket"]
    assert stored["status"] == "answered"
    assert [(r["text"], r["agent_name"], r["message_id"]) for r in stored["replies"]] == [
        ("We've corrected the VAT number on your invoice.", "Sam Support", seen[0]["id"])
    ]
    assert agent.post(f"/tickets/{ticket_id}/close").json()["ticket"]["status"] == "closed"
    assert agent.post(f"/tickets/{ticket_id}/reply", {"text": "again"}).status_code == 400  # closed
    assert agent.post(f"/tickets/{ticket_id}/close").status_code == 400
    assert agent.get("/tickets/999999").status_code == 404
    assert agent.post(f"/tickets/{ticket_id}/reply", {"text": ""}).status_code == 400
    assert agent.get("/tickets", status="everything").status_code == 400


def test_leaving_the_queue_discards_a_draft(stack: Stack) -> None:
    customer = stack.new_conversation()
    customer.say("I want to talk to a person")
    customer.say("Leave a message", payload="/ticket")
    back = customer.say("Back to the assistant", payload="/leave_queue")
    assert back["mode"] == "bot"
    assert customer.say("how can I track my order?")["replies"][0].get("faq_id") == "orders-track-order"


@pytest.mark.asyncio
async def test_after_hours_offers_a_ticket_with_the_opening_time(tmp_path: Path) -> None:
    zone = ZoneInfo("America/New_York")
    tomorrow = (dt.datetime.now(zone) + dt.timedelta(days=1)).strftime("%a").lower()
    w = await make_world(stack_settings(tmp_path, business_hours=[{"days": tomorrow, "open": "09:00", "close": "17:00"}], business_timezone="America/New_York"))
    try:
        await w.agent("nightowl", capacity=2)  # online, but the business is closed
        conversation = await w.conversations.create("rest", profile={"email": "known@example.com", "tier": "gold"})
        [notice] = await w.router.escalate(conversation, "customer_request", "asked for a person", {})
        assert "We're closed right now. We open again" in notice.text and "09:00 (America/New_York)" in notice.text
        assert notice.data["buttons"][0] == {"title": "Leave a message", "payload": "/ticket"}
        # The profile already has an email: one click opens the ticket.
        replies = await w.router.customer_message(conversation.id, "Leave a message", "/ticket")
        assert any(m.data.get("kind") == "ticket_opened" and "known@example.com" in m.text for m in replies)
        [ticket] = await w.router.tickets.list("open")
        assert (ticket.contact, ticket.conversation_id) == ("known@example.com", conversation.id)
        assert (await w.conversations.get(conversation.id)).mode == "bot"
        assert await w.queue.list("waiting") == []
    finally:
        await w.router.rasa.close()
        await w.engine.dispose()
