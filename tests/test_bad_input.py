"""Bad input gets a clear 4xx JSON error, the process keeps serving, nothing stored is lost."""
from __future__ import annotations

import httpx
import pytest

from tests.conftest import Stack


def error_of(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == status and body["error"]
    return body["error"]


@pytest.mark.parametrize(
    "body, expected",
    [
        ({"text": ""}, "empty"),
        ({"text": "   \n\t "}, "empty"),
        ({"text": "x" * 100_000}, "too long"),
        ({"text": "hello\x00\x01world"}, "binary"),
        ({"text": 42}, "string"),
        ({}, "string"),
    ],
)
def test_bad_messages_are_refused_and_nothing_is_lost(stack: Stack, body: dict, expected: str) -> None:
    customer = stack.new_conversation()
    customer.say("hello")
    before = customer.messages()
    response = stack.http.post(f"/api/conversations/{customer.conversation_id}/messages", json=body, headers=customer.headers)
    assert expected in error_of(response, 400)
    assert customer.messages() == before
    assert customer.say("hi again")["replies"]


@pytest.mark.parametrize(
    "raw, expected",
    [(b"\xff\xfe\xfa not utf8", "UTF-8"), (b"{not json", "JSON"), (b"[1, 2]", "object"), (b"", "empty")],
)
def test_broken_bodies(stack: Stack, raw: bytes, expected: str) -> None:
    customer = stack.new_conversation()
    response = stack.http.post(
        f"/api/conversations/{customer.conversation_id}/messages", content=raw,
        headers={**customer.headers, "content-type": "application/json"},
    )
    assert expected in error_of(response, 400)


def test_unknown_and_forged_conversations(stack: Stack) -> None:
    customer = stack.new_conversation()
    other = stack.new_conversation()
    url = f"/api/conversations/{customer.conversation_id}/messages"
    error_of(stack.http.get(url), 401)
    error_of(stack.http.get(url, headers={"Authorization": "Bearer nonsense"}), 401)
    error_of(stack.http.get(url, headers={"Authorization": f"Bearer {customer.conversation_id}.{'0' * 32}"}), 401)
    error_of(stack.http.get(url, headers=other.headers), 403)
    error_of(stack.http.get(url, params={"after": "abc"}, headers=customer.headers), 400)
    error_of(stack.http.get("/api/nowhere"), 404)


def test_agent_auth_and_case_errors(stack: Stack) -> None:
    error_of(stack.http.get("/api/agent/cases"), 401)
    error_of(stack.http.get("/api/agent/cases", headers={"Authorization": "Bearer wrong"}), 401)
    error_of(stack.http.post("/api/agent/login", json={"username": "agent", "password": "nope"}), 401)
    editor = stack.login("editor")
    error_of(editor.get("/cases"), 403)
    agent = stack.login("agent")
    error_of(agent.post("/cases/999999/claim"), 404)
    error_of(agent.get("/cases/999999"), 404)
    error_of(agent.get("/cases", status="bogus"), 400)

    customer = stack.new_conversation()
    customer.say("let me talk to a human")
    case = agent.case_for(customer.conversation_id)
    second = stack.login("agent2")
    assert agent.post(f"/cases/{case['id']}/claim").status_code == 200
    assert "already assigned" in error_of(second.post(f"/cases/{case['id']}/claim"), 409)
    error_of(second.post(f"/cases/{case['id']}/messages", {"text": "hi"}), 409)
    error_of(agent.post(f"/cases/{case['id']}/messages", {"text": ""}), 400)
    error_of(agent.post(f"/cases/{case['id']}/close", {"resolution": "whatever"}), 400)
    assert agent.post(f"/cases/{case['id']}/close").status_code == 200
    error_of(agent.post(f"/cases/{case['id']}/close"), 409)


def test_rasa_down_offers_a_person(stack: Stack) -> None:
    customer = stack.new_conversation()
    stack.supervisor.stop_service("rasa")  # an outage the supervisor does not repair
    try:
        reply = customer.say("where is my parcel?")
        assert reply["mode"] == "bot"
        [notice] = reply["replies"]
        assert "trouble" in notice["text"] and notice["buttons"][0]["payload"] == "/request_human"
        escalated = customer.say("Talk to a person", payload="/request_human")
        assert escalated["mode"] == "waiting"
        case = stack.login("agent").case_for(customer.conversation_id)
        assert case["reason"] == "bot_unavailable"
        assert "where is my parcel?" in [m["text"] for m in customer.messages()]
    finally:
        stack.supervisor.start(only=("rasa",))
