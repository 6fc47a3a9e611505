"""The Telegram channel end to end: the real python-telegram-bot inside the real web process,
talking to the local fake Bot API (tests/fakes/telegram_api.py), with real Rasa and actions.

Two stacks: a development one (SQLite, long polling) for the conversation flows, and a
production-like one (webhook mode, PostgreSQL, Redis, two web instances sharing the first
stack's Rasa) for the webhook secret and exactly-once delivery across instances.
"""
from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import yaml

from bot.channels.telegram_delivery import MAX_TEXT, parse_callback, split_text
from server.cli import prepare
from server.processes import Supervisor
from core.db import sync_engine
from tests.conftest import Stack, free_port, postgres_url, redis_url, stack_settings, wait_until
from tests.fakes.telegram_api import FakeTelegramServer

_chats = itertools.count(7001)
Entry = dict[str, Any]


# -- fixtures ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fake() -> Iterator[FakeTelegramServer]:
    with FakeTelegramServer() as server:
        yield server


def _wait_running(client: httpx.Client) -> None:
    wait_until(lambda: client.get("/telegram/status").json().get("running"), timeout=30, interval=0.2)


@pytest.fixture(scope="module")
def tg(tmp_path_factory: pytest.TempPathFactory, fake: FakeTelegramServer) -> Iterator[Stack]:
    """A whole Tandem (Rasa, actions, web) whose web process long-polls the fake Telegram."""
    settings = stack_settings(
        tmp_path_factory.mktemp("tandem-telegram"),
        telegram_token=fake.token, telegram_api_url=f"{fake.url}/bot", telegram_mode="polling",
    )
    model = prepare(settings)
    supervisor = Supervisor(settings, model=model)
    supervisor.start()
    client = httpx.Client(base_url=settings.web_url, timeout=60)
    try:
        _wait_running(client)
        yield Stack(settings, supervisor, client)
    finally:
        client.close()
        supervisor.stop()


@pytest.fixture(scope="module")
def db(tg: Stack) -> Iterator[sa.engine.Engine]:
    engine = sync_engine(tg.settings)
    yield engine
    engine.dispose()


# -- helpers -------------------------------------------------------------------------------------
def new_chat() -> int:
    return next(_chats)


def messages_to(fake: FakeTelegramServer, chat: int) -> list[Entry]:
    return [e for e in list(fake.sent) if e["method"] == "sendMessage" and e["params"].get("chat_id") == chat]


def texts_to(fake: FakeTelegramServer, chat: int) -> list[str]:
    return [e["params"]["text"] for e in messages_to(fake, chat)]


def wait_text(fake: FakeTelegramServer, chat: int, contains: str, timeout: float = 30) -> Entry:
    """The first sendMessage to `chat` whose text contains `contains`."""
    return fake.wait_sent(
        lambda e: e["method"] == "sendMessage" and e["params"]["chat_id"] == chat and contains in e["params"]["text"],
        timeout,
    )


def answered(fake: FakeTelegramServer, update: Entry, timeout: float = 15) -> Entry:
    """The answerCallbackQuery for a pushed callback update."""
    query_id = update["callback_query"]["id"]
    return fake.wait_sent(
        lambda e: e["method"] == "answerCallbackQuery" and str(e["params"]["callback_query_id"]) == query_id, timeout
    )


def button(entry: Entry, title: str) -> str:
    """callback_data of the inline button called `title` on a sent message."""
    for row in entry["params"]["reply_markup"]["inline_keyboard"]:
        for key in row:
            if key["text"] == title:
                return str(key["callback_data"])
    raise AssertionError(f"no button {title!r} in {entry['params'].get('reply_markup')}")


def faq_answer(settings: Any, faq_id: str) -> str:
    entries = yaml.safe_load(settings.faq_file.read_text())["faqs"]
    return next(e for e in entries if e["id"] == faq_id)["answer"].strip()


def conversation_of(engine: sa.engine.Engine, chat: int) -> dict[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(
            sa.text("SELECT * FROM conversations WHERE channel = 'telegram' AND external_id = :chat"), {"chat": str(chat)}
        ).mappings().first()
    assert row is not None, f"no conversation for chat {chat}"
    return dict(row)


def events_of(engine: sa.engine.Engine, conversation_id: str, kind: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT data FROM conversation_events WHERE conversation_id = :c AND kind = :k ORDER BY id"),
            {"c": conversation_id, "k": kind},
        ).all()
    return [json.loads(r[0]) for r in rows]


def transcript(engine: sa.engine.Engine, conversation_id: str) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT sender, text FROM messages WHERE conversation_id = :c ORDER BY id"), {"c": conversation_id}
        ).all()
    return [(r[0], r[1]) for r in rows]


def delivery_statuses(engine: sa.engine.Engine, conversation_id: str) -> list[str]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT status FROM deliveries WHERE conversation_id = :c AND channel = 'telegram' ORDER BY message_id"),
            {"c": conversation_id},
        ).all()
    return [r[0] for r in rows]


def settle(check: Callable[[], Any], seconds: float = 1.5) -> None:
    """Give late (wrong) sends a chance to show up, then check."""
    time.sleep(seconds)
    check()


# -- unit: the splitter ------------------------------------------------------------------------
def test_split_keeps_short_text_whole() -> None:
    assert split_text("Hello there.") == ["Hello there."]
    assert split_text("x" * MAX_TEXT) == ["x" * MAX_TEXT]


def test_split_prefers_paragraphs_then_sentences() -> None:
    paragraph = ("This sentence is about returns. " * 40).strip()  # ~1300 characters
    text = "\n\n".join([paragraph] * 5)  # ~6500 characters
    chunks = split_text(text)
    assert len(chunks) == 2
    assert all(len(c) <= MAX_TEXT for c in chunks)
    assert chunks[0].count(paragraph) == 3 and chunks[0].endswith("returns.")
    assert "\n\n".join(chunks) == text  # nothing lost, breaks on a paragraph

    one_long_paragraph = "Sentence number one is here. " * 300  # ~8700 characters, no newlines
    chunks = split_text(one_long_paragraph)
    assert all(len(c) <= MAX_TEXT for c in chunks)
    assert all(c.endswith("here.") for c in chunks)
    assert " ".join(chunks) == one_long_paragraph.strip()


def test_split_hard_cuts_and_counts_utf16() -> None:
    chunks = split_text("y" * 9000)
    assert [len(c) for c in chunks] == [4096, 4096, 808]
    emoji = "😀" * 3000  # 2 UTF-16 units each: Telegram counts 6000
    chunks = split_text(emoji)
    assert [len(c) for c in chunks] == [2048, 952]
    assert "".join(chunks) == emoji


def test_callback_data_is_parsed_strictly() -> None:
    assert parse_callback("b:12:0") == ("b", 12, 0)
    assert parse_callback("f:7:1") == ("f", 7, 1)
    for bad in ("", None, "b:12", "x:1:2", "b:-1:0", "b:1:z", "f:1:1:1"):
        assert parse_callback(bad) is None


# -- end to end: polling -------------------------------------------------------------------------
def test_start_greets_and_opens_one_conversation(tg: Stack, fake: FakeTelegramServer, db: sa.engine.Engine) -> None:
    chat = new_chat()
    fake.push_command(chat, "/start")
    wait_text(fake, chat, "I'm the Northwind Goods assistant")
    fake.push_command(chat, "/start")
    wait_until(lambda: len(texts_to(fake, chat)) == 2, timeout=30)
    conversation = conversation_of(db, chat)
    assert conversation["customer_name"] == "Ada" and conversation["mode"] == "bot"
    assert [s for s, _ in transcript(db, conversation["id"])] == ["customer", "bot", "customer", "bot"]
    assert len(events_of(db, conversation["id"], "conversation_started")) == 1
    wait_until(lambda: delivery_statuses(db, conversation["id"]) == ["sent", "sent"], timeout=10)


def test_faq_question_gets_its_answer_and_feedback_buttons(tg: Stack, fake: FakeTelegramServer, db: sa.engine.Engine) -> None:
    chat = new_chat()
    answer = faq_answer(tg.settings, "orders-track-order")
    fake.push_text(chat, "How can I track my order?")
    sent = wait_text(fake, chat, answer)
    assert sent["params"]["text"] == answer
    rows = sent["params"]["reply_markup"]["inline_keyboard"]
    assert [key["text"] for key in rows[-1]] == ["👍", "👎"]

    tap = fake.push_callback(chat, button(sent, "👎"))
    assert answered(fake, tap)["params"]["text"] == "Thanks for your feedback!"
    conversation = conversation_of(db, chat)
    feedback = wait_until(lambda: events_of(db, conversation["id"], "feedback"), timeout=15)
    assert feedback[0]["faq_id"] == "orders-track-order" and feedback[0]["helpful"] is False
    # One vote per answer: the thumbs are taken off the message.
    fake.wait_sent(lambda e: e["method"] == "editMessageReplyMarkup" and e["params"]["chat_id"] == chat)


def test_handoff_agent_reply_and_back_to_the_bot(tg: Stack, fake: FakeTelegramServer, db: sa.engine.Engine) -> None:
    chat = new_chat()
    fake.push_command(chat, "/human")
    wait_text(fake, chat, "in the queue")
    conversation = conversation_of(db, chat)
    assert conversation["mode"] == "waiting"
    agent = tg.login("agent")
    case = agent.case_for(conversation["id"])
    assert case["reason"] == "customer_request"

    assert agent.post(f"/cases/{case['id']}/claim").status_code == 200
    wait_text(fake, chat, "Alex Agent from our support team has joined the chat.")
    assert agent.post(f"/cases/{case['id']}/messages", {"text": "Hi, I'm Alex. How can I help?"}).status_code == 201
    wait_text(fake, chat, "Alex Agent: Hi, I'm Alex. How can I help?")

    fake.push_text(chat, "my parcel never arrived")  # to the agent, not the bot
    wait_until(lambda: "my parcel never arrived" in [m["text"] for m in agent.get(f"/cases/{case['id']}").json()["transcript"]], timeout=15)
    before = texts_to(fake, chat)
    settle(lambda: None)
    assert texts_to(fake, chat) == before, "the bot must stay quiet while a person has the chat"

    assert agent.post(f"/cases/{case['id']}/close", {"resolution": "resolved"}).status_code == 200
    wait_text(fake, chat, "You're back with the Northwind Goods assistant")
    fake.push_text(chat, "How can I track my order?")
    wait_text(fake, chat, faq_answer(tg.settings, "orders-track-order"))

    texts = texts_to(fake, chat)
    order = [
        next(i for i, t in enumerate(texts) if marker in t)
        for marker in ("in the queue", "has joined", "Alex Agent: Hi", "has left the chat", "back with the Northwind Goods", "tracking link")
    ]
    assert order == sorted(order), texts
    assert texts.count("Alex Agent: Hi, I'm Alex. How can I help?") == 1
    wait_until(lambda: set(delivery_statuses(db, conversation["id"])) == {"sent"}, timeout=10)


def test_inline_button_goes_back_to_the_router(tg: Stack, fake: FakeTelegramServer, db: sa.engine.Engine) -> None:
    chat = new_chat()
    fake.push_text(chat, "I want to talk to a person")
    notice = wait_text(fake, chat, "in the queue")
    tap = fake.push_callback(chat, button(notice, "Back to the assistant"))
    answered(fake, tap)
    wait_text(fake, chat, "You're back with the Northwind Goods assistant")
    conversation = conversation_of(db, chat)
    assert conversation["mode"] == "bot"
    assert ("customer", "Back to the assistant") in transcript(db, conversation["id"])
    cancelled = tg.login("agent").get("/cases", status="cancelled").json()["cases"]
    assert conversation["id"] in [c["conversation_id"] for c in cancelled]


def test_restart_leaves_the_queue_then_starts_afresh(tg: Stack, fake: FakeTelegramServer, db: sa.engine.Engine) -> None:
    chat = new_chat()
    fake.push_command(chat, "/human")
    wait_text(fake, chat, "in the queue")
    first = conversation_of(db, chat)
    fake.push_command(chat, "/restart")  # waiting: leave the queue
    wait_text(fake, chat, "You're back with the Northwind Goods assistant")
    assert conversation_of(db, chat)["id"] == first["id"]
    fake.push_command(chat, "/restart")  # with the bot: a new conversation, greeted
    wait_text(fake, chat, "I'm the Northwind Goods assistant")
    second = conversation_of(db, chat)
    assert second["id"] != first["id"] and second["mode"] == "bot"
    assert events_of(db, first["id"], "restarted") == [{}]
    assert ("customer", "/restart") in transcript(db, second["id"])


def test_flood_control_is_waited_out(tg: Stack, fake: FakeTelegramServer, db: sa.engine.Engine) -> None:
    chat = new_chat()
    fake.fail_next("sendMessage", error_code=429, description="Too Many Requests: retry after 1", retry_after=1)
    began = time.monotonic()
    fake.push_text(chat, "How can I track my order?")
    wait_text(fake, chat, "tracking link")
    assert time.monotonic() - began >= 1.0, "the retry must wait what Telegram asked"
    attempts = [c for c in list(fake.calls) if c["method"] == "sendMessage" and c["params"].get("chat_id") == chat]
    assert len(attempts) == 2  # refused once, then delivered
    settle(lambda: None, 0.5)
    assert len(messages_to(fake, chat)) == 1
    wait_until(lambda: delivery_statuses(db, conversation_of(db, chat)["id"]) == ["sent"], timeout=10)


def test_blocked_bot_is_recorded_and_serving_goes_on(tg: Stack, fake: FakeTelegramServer, db: sa.engine.Engine) -> None:
    blocked, other = new_chat(), new_chat()
    fake.fail_next("sendMessage", error_code=403, description="Forbidden: bot was blocked by the user")
    fake.push_text(blocked, "How can I track my order?")
    conversation = wait_until(lambda: _conversation_or_none(db, blocked), timeout=15)
    failures = wait_until(lambda: events_of(db, conversation["id"], "delivery_failed"), timeout=30)
    assert "Forbidden" in failures[0]["error"] and failures[0]["chat_id"] == blocked
    assert delivery_statuses(db, conversation["id"]) == ["failed"]
    stored = transcript(db, conversation["id"])
    assert stored[-1][0] == "bot" and "tracking link" in stored[-1][1], "the answer stays stored"
    assert messages_to(fake, blocked) == []

    fake.push_text(other, "How can I track my order?")
    wait_text(fake, other, "tracking link")
    assert tg.http.get("/telegram/status").json()["running"] is True


def _conversation_or_none(engine: sa.engine.Engine, chat: int) -> dict[str, Any] | None:
    try:
        return conversation_of(engine, chat)
    except AssertionError:
        return None


def test_non_text_unknown_command_and_too_long(tg: Stack, fake: FakeTelegramServer, db: sa.engine.Engine) -> None:
    chat = new_chat()
    photo = fake.make_text_update(chat, "unused")
    del photo["message"]["text"]
    photo["message"]["photo"] = [{"file_id": "AgAD1", "file_unique_id": "u1", "width": 90, "height": 90}]
    fake.push_update(photo)
    wait_text(fake, chat, "I can only read text")

    fake.push_command(chat, "/dance")
    wait_text(fake, chat, "I know /start, /human")

    fake.push_text(chat, "a" * (tg.settings.max_message_chars + 50))
    wait_text(fake, chat, "too long")
    conversation = _conversation_or_none(db, chat)
    assert conversation is None or transcript(db, conversation["id"]) == [], "nothing invalid is stored"

    fake.push_text(chat, "How can I track my order?")  # and the chat still works
    wait_text(fake, chat, "tracking link")


# -- end to end: webhook mode, PostgreSQL + Redis, two web instances ---------------------------------
SECRET = "hook-secret_42"


@pytest.fixture(scope="module")
def hook_fake() -> Iterator[FakeTelegramServer]:
    with FakeTelegramServer(token="654321:HOOK-TOKEN") as server:
        yield server


@pytest.fixture(scope="module")
def instances(tmp_path_factory: pytest.TempPathFactory, tg: Stack, hook_fake: FakeTelegramServer) -> Iterator[list[Stack]]:
    """Two web processes in webhook mode on one PostgreSQL and one Redis, sharing tg's Rasa.

    They start one after the other, so the second one's setWebhook is the one Telegram keeps:
    updates arrive at instance 1, while agents may use instance 0 (as behind a load balancer).
    """
    base = stack_settings(
        tmp_path_factory.mktemp("tandem-telegram-hook"),
        database_url=postgres_url("tandem_telegram_e2e"), redis_url=redis_url(),
        telegram_token=hook_fake.token, telegram_api_url=f"{hook_fake.url}/bot",
        telegram_mode="webhook", telegram_webhook_secret=SECRET,
    ).replace(rasa_port=tg.settings.rasa_port, action_port=tg.settings.action_port)
    prepare(base, train=False)
    stacks: list[Stack] = []
    try:
        for _ in range(2):
            settings = base.replace(web_port=free_port())
            supervisor = Supervisor(settings)
            stacks.append(Stack(settings, supervisor, httpx.Client(base_url=settings.web_url, timeout=60)))
            supervisor.start(only=("web",))
            _wait_running(stacks[-1].http)
        yield stacks
    finally:
        for stack in stacks:
            stack.http.close()
            stack.supervisor.stop()


@pytest.fixture(scope="module")
def pg(instances: list[Stack]) -> Iterator[sa.engine.Engine]:
    engine = sync_engine(instances[0].settings)
    yield engine
    engine.dispose()


def test_webhook_checks_the_secret(instances: list[Stack], hook_fake: FakeTelegramServer, tg: Stack) -> None:
    chat = new_chat()
    assert hook_fake.post_webhook_update(hook_fake.make_text_update(chat, "How can I track my order?"), None) == 401
    assert hook_fake.post_webhook_update(hook_fake.make_text_update(chat, "How can I track my order?"), "wrong") == 401
    refused = instances[1].http.post("/telegram/webhook", json={"update_id": 1})
    assert refused.status_code == 401 and "Secret-Token" in refused.json()["error"]
    for raw in (b"\xff\xfe\x80", "sécret".encode(), SECRET.encode() + b"\xff"):  # not UTF-8 / not ASCII: a 401, never a 500
        odd = instances[1].http.post("/telegram/webhook", json={"update_id": 1}, headers={"X-Telegram-Bot-Api-Secret-Token": raw})  # type: ignore[dict-item]
        assert odd.status_code == 401, odd.text
    header = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    garbage = instances[1].http.post("/telegram/webhook", content=b"{not json", headers=header)
    assert garbage.status_code == 400 and "JSON" in garbage.json()["error"]
    assert tg.http.post("/telegram/webhook", json={}, headers=header).status_code == 404  # polling server
    settle(lambda: None, 1.0)
    assert messages_to(hook_fake, chat) == [], "refused updates must not be processed"

    update = hook_fake.make_text_update(chat, "How can I track my order?")
    assert hook_fake.post_webhook_update(update, SECRET) == 200
    sent = wait_text(hook_fake, chat, "tracking link")
    assert sent["params"]["text"] == faq_answer(tg.settings, "orders-track-order")
    assert len(messages_to(hook_fake, chat)) == 1


def test_each_message_is_sent_once_across_instances(instances: list[Stack], hook_fake: FakeTelegramServer, pg: sa.engine.Engine) -> None:
    chat = new_chat()
    assert hook_fake.post_webhook_update(hook_fake.make_command_update(chat, "/human"), SECRET) == 200
    wait_text(hook_fake, chat, "in the queue")
    conversation = conversation_of(pg, chat)
    agent = instances[0].login("agent")  # the agent is on the instance that gets no webhooks
    case = agent.case_for(conversation["id"])
    assert agent.post(f"/cases/{case['id']}/claim").status_code == 200
    lines = [f"Update {n}: still checking your order." for n in range(1, 6)]
    for line in lines:
        assert agent.post(f"/cases/{case['id']}/messages", {"text": line}).status_code == 201
    wait_text(hook_fake, chat, lines[-1])
    assert agent.post(f"/cases/{case['id']}/close", {"resolution": "resolved"}).status_code == 200
    wait_text(hook_fake, chat, "back with the Northwind Goods assistant")

    def exactly_once_in_order() -> None:
        texts = texts_to(hook_fake, chat)
        ours = ["Alex Agent from our support team has joined the chat.", *[f"Alex Agent: {line}" for line in lines],
                "Alex Agent has left the chat."]
        assert [t for t in texts if t in ours] == ours, texts
        # Every stored message reaches the chat once, in the stored order (nothing more, nothing less).
        stored = [
            (f"Alex Agent: {text}" if sender == "agent" else text)
            for sender, text in transcript(pg, conversation["id"]) if sender != "customer"
        ]
        assert texts == stored

    settle(exactly_once_in_order, 2.0)
    wait_until(lambda: set(delivery_statuses(pg, conversation["id"])) == {"sent"}, timeout=10)


def test_replayed_update_is_handled_once_across_instances(instances: list[Stack], hook_fake: FakeTelegramServer, pg: sa.engine.Engine) -> None:
    """Telegram retries webhooks, and anyone with the secret can replay one: the same update_id
    posted four times (twice to each instance) stores one message and sends one reply."""
    chat = new_chat()
    update = hook_fake.make_text_update(chat, "How can I track my order?")
    header = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    for n in range(4):
        assert instances[n % 2].http.post("/telegram/webhook", json=update, headers=header).status_code == 200
    wait_text(hook_fake, chat, "tracking link")

    def once() -> None:
        conversation = conversation_of(pg, chat)
        assert transcript(pg, conversation["id"]) == [
            ("customer", "How can I track my order?"), ("bot", faq_answer(instances[0].settings, "orders-track-order")),
        ]
        assert len(messages_to(hook_fake, chat)) == 1
        assert len(events_of(pg, conversation["id"], "message_in")) == 1

    settle(once, 2.0)
    # a new update of the same chat is of course handled
    assert hook_fake.post_webhook_update(hook_fake.make_text_update(chat, "How can I track my order?"), SECRET) == 200
    wait_until(lambda: len(messages_to(hook_fake, chat)) == 2, timeout=30)


def test_a_flooding_chat_is_throttled_and_told_once(instances: list[Stack], hook_fake: FakeTelegramServer) -> None:
    """Per chat: rate_messages_per_conversation updates per window (refilled evenly); past that
    the updates are dropped and the chat is told once."""
    chat, other = new_chat(), new_chat()
    settings = instances[0].settings
    limit, posted = settings.rate_messages_per_conversation, settings.rate_messages_per_conversation + 15
    began = time.monotonic()
    for _ in range(posted):  # unknown commands: cheap for the bot, still counted
        assert hook_fake.post_webhook_update(hook_fake.make_command_update(chat, "/dance"), SECRET) == 200
    wait_text(hook_fake, chat, "faster than we can read")
    refilled = (time.monotonic() - began) / (settings.rate_messages_window_s / limit)  # the bucket refills meanwhile

    def throttled() -> None:
        texts = texts_to(hook_fake, chat)
        handled = sum(1 for t in texts if "I know /start" in t)
        assert limit <= handled <= limit + refilled + 1 < posted, (handled, refilled)
        assert sum(1 for t in texts if "faster than we can read" in t) == 1

    settle(throttled, 2.0)
    assert hook_fake.post_webhook_update(hook_fake.make_command_update(other, "/dance"), SECRET) == 200
    wait_text(hook_fake, other, "I know /start")  # another chat is unaffected


def test_agent_typing_shows_in_the_chat(instances: list[Stack], hook_fake: FakeTelegramServer, pg: sa.engine.Engine) -> None:
    """Last on purpose: the console socket marks the agent online (auto-assignment may follow)."""
    import asyncio

    import websockets

    chat = new_chat()
    assert hook_fake.post_webhook_update(hook_fake.make_command_update(chat, "/human"), SECRET) == 200
    wait_text(hook_fake, chat, "in the queue")
    agent = instances[0].login("agent")
    case = agent.case_for(conversation_of(pg, chat)["id"])
    assert agent.post(f"/cases/{case['id']}/claim").status_code == 200
    url = instances[0].settings.web_url.replace("http://", "ws://") + "/api/agent/ws"

    async def type_in_console() -> None:
        async with websockets.connect(url, extra_headers=agent.headers) as ws:
            await ws.send(json.dumps({"type": "typing", "case_id": case["id"], "typing": True}))
            await hook_fake.await_sent(
                lambda e: e["method"] == "sendChatAction" and e["params"]["chat_id"] == chat and e["params"]["action"] == "typing",
                timeout=15,
            )

    asyncio.run(type_in_console())
    assert agent.post(f"/cases/{case['id']}/close", {"resolution": "resolved"}).status_code == 200
