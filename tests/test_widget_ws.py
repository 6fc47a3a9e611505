"""The web widget's session endpoint and websocket protocol, spoken by a real websocket client
against the real stack: site keys, signed tokens, bad frames, resuming, feedback."""
from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import websockets
from websockets.exceptions import InvalidStatusCode

from tests.conftest import Stack

TRACK_QUESTION = "How can I track my order?"


def start_session(stack: Stack, token: str | None = None, site_key: str = "demo") -> httpx.Response:
    body: dict[str, Any] = {"site_key": site_key}
    if token is not None:
        body["token"] = token
    return stack.http.post("/widget/session", json=body)


def new_session(stack: Stack) -> dict[str, Any]:
    response = start_session(stack)
    assert response.status_code == 201, response.text
    return response.json()


def ws_url(stack: Stack, token: str, after: int | None = None) -> str:
    url = stack.settings.web_url.replace("http://", "ws://") + f"/widget/ws?token={token}"
    return url if after is None else f"{url}&after={after}"


async def next_frame(ws: Any, timeout: float = 30.0, kind: str | None = None) -> dict[str, Any]:
    """The next frame (of `kind`, skipping others); fails instead of hanging."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            raise AssertionError(f"no {kind or 'frame'} within {timeout}s")
        frame = json.loads(await asyncio.wait_for(ws.recv(), remaining))
        if kind is None or frame["type"] == kind:
            return frame


async def ask(ws: Any, text: str, ref: str = "q") -> dict[str, Any]:
    await ws.send(json.dumps({"type": "message", "text": text, "ref": ref}))
    ack = await next_frame(ws, kind="ack")
    assert ack["ref"] == ref
    return ack


def events_of(stack: Stack, conversation_id: str, kind: str) -> list[dict[str, Any]]:
    from conversations.events import conversation_events

    engine = sa.create_engine(stack.settings.sqlalchemy_url, future=True)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(conversation_events.c.data)
                .where(conversation_events.c.conversation_id == conversation_id, conversation_events.c.kind == kind)
                .order_by(conversation_events.c.id)
            ).all()
    finally:
        engine.dispose()
    return [json.loads(row[0]) for row in rows]


# -- session --------------------------------------------------------------------------------
def test_session_refuses_unknown_site_key(stack: Stack) -> None:
    response = start_session(stack, site_key="someone-elses-site")
    assert response.status_code == 403
    assert "site key" in response.json()["error"]
    assert response.headers["access-control-allow-origin"] == "*"  # readable by a host page on another origin
    assert start_session(stack, site_key=42).status_code == 403  # type: ignore[arg-type]


def test_session_refuses_forged_token(stack: Stack) -> None:
    genuine = new_session(stack)
    forged = genuine["conversation_id"] + "." + "0" * 32
    for token in (forged, genuine["conversation_id"], "nonsense", 12345):
        response = start_session(stack, token=token)  # type: ignore[arg-type]
        assert response.status_code == 401, (token, response.text)
        assert response.json()["error"]
        assert response.headers["access-control-allow-origin"] == "*"


def test_session_resumes_the_same_conversation(stack: Stack) -> None:
    first = new_session(stack)
    again = start_session(stack, token=first["token"])
    assert again.status_code == 200
    assert again.json()["conversation_id"] == first["conversation_id"]
    assert again.json()["resumed"] is True
    other = new_session(stack)
    assert other["conversation_id"] != first["conversation_id"]


def test_rest_token_is_not_a_widget_token(stack: Stack) -> None:
    rest_customer = stack.new_conversation()
    assert start_session(stack, token=rest_customer.token).status_code == 401


def test_session_answers_cors_preflight(stack: Stack) -> None:
    response = stack.http.options("/widget/session", headers={"Origin": "https://shop.example", "Access-Control-Request-Method": "POST"})
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "*"
    assert "POST" in response.headers["access-control-allow-methods"]


def test_widget_files_and_demo_page_are_served(stack: Stack) -> None:
    js = stack.http.get("/widget/tandem-widget.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    assert "TandemWidget" in js.text
    assert stack.http.get("/widget/widget.css").headers["content-type"].startswith("text/css")
    assert stack.http.get("/widget/..%2Fdemo.html").status_code == 404
    demo = stack.http.get("/demo")
    assert demo.status_code == 200 and "Northwind Goods" in demo.text
    assert 'data-site-key="demo"' in demo.text


# -- websocket ------------------------------------------------------------------------------
def test_websocket_refuses_forged_and_missing_tokens(stack: Stack) -> None:
    genuine = new_session(stack)

    async def attempt(url: str) -> int:
        with pytest.raises(InvalidStatusCode) as refused:
            async with websockets.connect(url, open_timeout=10):
                pass
        return refused.value.status_code

    base = stack.settings.web_url.replace("http://", "ws://") + "/widget/ws"
    assert asyncio.run(attempt(ws_url(stack, genuine["conversation_id"] + "." + "f" * 32))) == 401
    assert asyncio.run(attempt(base)) == 401
    assert asyncio.run(attempt(ws_url(stack, genuine["token"], after="x"))) == 400  # type: ignore[arg-type]


def test_faq_question_over_websocket(stack: Stack) -> None:
    session = new_session(stack)

    async def scenario() -> None:
        async with websockets.connect(ws_url(stack, session["token"])) as ws:
            history = await next_frame(ws, kind="history")
            assert history["messages"] == [] and history["mode"] == "bot"
            ack = await ask(ws, TRACK_QUESTION)
            assert ack["mode"] == "bot"
            assert ack["messages"][0]["sender"] == "bot"
            assert ack["messages"][0]["faq_id"] == "orders-track-order"
            assert "https://northwind.example/track" in ack["messages"][0]["text"]

    asyncio.run(scenario())


def test_live_frames_carry_every_message_once(stack: Stack) -> None:
    """The customer's own message and the reply are each pushed exactly once."""
    session = new_session(stack)

    async def scenario() -> None:
        async with websockets.connect(ws_url(stack, session["token"])) as ws:
            await next_frame(ws, kind="history")
            await ws.send(json.dumps({"type": "message", "text": TRACK_QUESTION, "ref": "1"}))
            seen: list[dict[str, Any]] = []
            while True:
                frame = await next_frame(ws)
                if frame["type"] == "message":
                    seen.append(frame["message"])
                if frame["type"] == "ack":
                    break
            # anything published late (another process's bus) would still arrive: give it a moment
            try:
                while True:
                    frame = json.loads(await asyncio.wait_for(ws.recv(), 0.5))
                    if frame["type"] == "message":
                        seen.append(frame["message"])
            except asyncio.TimeoutError:
                pass
            ids = [m["id"] for m in seen]
            assert len(ids) == len(set(ids)), seen
            assert [m["sender"] for m in seen] == ["customer", "bot"]
            assert seen[0]["text"] == TRACK_QUESTION

    asyncio.run(scenario())


@pytest.mark.parametrize(
    "frame, expected",
    [
        ("this is not json", "not valid JSON"),
        (b"\x00\x01binary", "binary"),
        ("[1, 2, 3]", "JSON object"),
        (json.dumps({"type": "shout", "text": "hi"}), "type"),
        (json.dumps({"type": "message", "text": ""}), "empty"),
        (json.dumps({"type": "message", "text": "   "}), "empty"),
        (json.dumps({"type": "message"}), "string"),
        (json.dumps({"type": "message", "text": "x" * 5000}), "too long"),
        (json.dumps({"type": "message", "text": "y" * 40_000}), "too large"),
        (json.dumps({"type": "message", "text": "hi\x00there"}), "binary"),
        (json.dumps({"type": "button", "title": "Go"}), "payload"),
        (json.dumps({"type": "typing", "typing": "yes"}), "true or false"),
        (json.dumps({"type": "feedback", "message_id": "1", "helpful": True}), "integer"),
        (json.dumps({"type": "feedback", "message_id": 1, "helpful": True}), "not a knowledge-base answer"),
    ],
)
def test_invalid_frames_get_an_error_and_the_connection_stays(stack: Stack, frame: str | bytes, expected: str) -> None:
    session = new_session(stack)

    async def scenario() -> None:
        async with websockets.connect(ws_url(stack, session["token"])) as ws:
            await next_frame(ws, kind="history")
            first = await ask(ws, "hello", ref="before")
            await ws.send(frame)
            error = await next_frame(ws)
            assert error["type"] == "error", error
            assert expected in error["error"]
            # still open and serving, nothing said before is lost, nothing bad was stored
            after = await ask(ws, TRACK_QUESTION, ref="after")
            assert after["messages"][0]["faq_id"] == "orders-track-order"
        async with websockets.connect(ws_url(stack, session["token"])) as ws:
            history = (await next_frame(ws, kind="history"))["messages"]
            customer_texts = [m["text"] for m in history if m["sender"] == "customer"]
            assert customer_texts == ["hello", TRACK_QUESTION]
            assert first["messages"][0]["id"] in [m["id"] for m in history]

    asyncio.run(scenario())


def test_error_frame_names_the_frame_it_refused(stack: Stack) -> None:
    session = new_session(stack)

    async def scenario() -> None:
        async with websockets.connect(ws_url(stack, session["token"])) as ws:
            await next_frame(ws, kind="history")
            await ws.send(json.dumps({"type": "message", "text": " ", "ref": "r7"}))
            error = await next_frame(ws, kind="error")
            assert error["ref"] == "r7"

    asyncio.run(scenario())


def test_resume_with_after_sends_only_newer_messages(stack: Stack) -> None:
    session = new_session(stack)

    async def scenario() -> None:
        async with websockets.connect(ws_url(stack, session["token"])) as ws:
            await next_frame(ws, kind="history")
            await ask(ws, "hello", ref="1")
        # the session endpoint hands back the same conversation for the stored token
        resumed = start_session(stack, token=session["token"]).json()
        assert resumed["conversation_id"] == session["conversation_id"]
        async with websockets.connect(ws_url(stack, resumed["token"])) as ws:
            full = (await next_frame(ws, kind="history"))["messages"]
            assert [m["sender"] for m in full][:1] == ["customer"] and len(full) >= 2
            cursor = full[-1]["id"]
            await ask(ws, TRACK_QUESTION, ref="2")
        async with websockets.connect(ws_url(stack, session["token"], after=cursor)) as ws:
            newer = await next_frame(ws, kind="history")
            assert [m["id"] for m in newer["messages"]] == sorted(m["id"] for m in newer["messages"])
            assert all(m["id"] > cursor for m in newer["messages"])
            assert [(m["sender"], m["text"]) for m in newer["messages"]][0] == ("customer", TRACK_QUESTION)
            assert newer["messages"][1]["faq_id"] == "orders-track-order"
            assert newer["cursor"] == newer["messages"][-1]["id"]

    asyncio.run(scenario())


def test_feedback_is_recorded(stack: Stack) -> None:
    session = new_session(stack)

    async def scenario() -> int:
        async with websockets.connect(ws_url(stack, session["token"])) as ws:
            await next_frame(ws, kind="history")
            answer = (await ask(ws, TRACK_QUESTION))["messages"][0]
            await ws.send(json.dumps({"type": "feedback", "message_id": answer["id"], "helpful": False}))
            recorded = await next_frame(ws, kind="feedback_recorded")
            assert recorded["message_id"] == answer["id"] and recorded["helpful"] is False
            return int(answer["id"])

    message_id = asyncio.run(scenario())
    feedback = events_of(stack, session["conversation_id"], "feedback")
    assert feedback == [{"faq_id": "orders-track-order", "message_id": message_id, "helpful": False}]


def test_agent_reply_is_pushed_live(stack: Stack) -> None:
    session = new_session(stack)

    async def scenario() -> None:
        async with websockets.connect(ws_url(stack, session["token"])) as ws:
            await next_frame(ws, kind="history")
            await ws.send(json.dumps({"type": "button", "title": "Talk to a person", "payload": "/request_human", "ref": "h"}))
            ack = await next_frame(ws, kind="ack")
            assert ack["mode"] == "waiting"
            assert any(m.get("kind") == "queued" for m in ack["messages"])
            # typing is accepted silently now that a person will read
            await ws.send(json.dumps({"type": "typing", "typing": True}))

            agent = stack.login("agent")
            case = await asyncio.to_thread(agent.case_for, session["conversation_id"])
            assert (await asyncio.to_thread(agent.post, f"/cases/{case['id']}/claim")).status_code == 200
            joined = await next_frame(ws, kind="message")
            while joined["message"].get("kind") != "agent_joined":
                joined = await next_frame(ws, kind="message")
            assert joined["message"]["agent_name"] == "Alex Agent"
            # the agent types in the console: the widget hears it
            console = stack.settings.web_url.replace("http://", "ws://") + "/api/agent/ws"
            async with websockets.connect(console, extra_headers=agent.headers) as agent_ws:
                await agent_ws.send(json.dumps({"type": "typing", "case_id": case["id"], "typing": True}))
                typing = await next_frame(ws, kind="typing")
                assert typing["typing"] is True and typing["agent_name"] == "Alex Agent"
            posted = await asyncio.to_thread(agent.post, f"/cases/{case['id']}/messages", {"text": "Hi, Alex here."})
            assert posted.status_code == 201
            live = await next_frame(ws, kind="message")
            assert live["message"]["sender"] == "agent"
            assert (live["message"]["text"], live["message"]["agent_name"]) == ("Hi, Alex here.", "Alex Agent")

    asyncio.run(scenario())


def test_message_sent_just_before_leaving_is_kept_and_answered(stack: Stack) -> None:
    """Closing the page right after sending must not lose the message (nor its answer)."""
    session = new_session(stack)

    async def scenario() -> list[dict[str, Any]]:
        async with websockets.connect(ws_url(stack, session["token"])) as ws:
            await next_frame(ws, kind="history")
            await ws.send(json.dumps({"type": "message", "text": TRACK_QUESTION}))
        # gone at once; come back until the answer is in the history (bounded)
        for _ in range(60):
            async with websockets.connect(ws_url(stack, session["token"])) as ws:
                history = (await next_frame(ws, kind="history"))["messages"]
            if any(m.get("faq_id") for m in history):
                return history
            await asyncio.sleep(0.5)
        raise AssertionError(f"the answer never arrived: {history}")

    history = asyncio.run(scenario())
    assert [(m["sender"], m.get("faq_id")) for m in history] == [("customer", None), ("bot", "orders-track-order")]
