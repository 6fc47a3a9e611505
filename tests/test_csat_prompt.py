"""CSAT asked where it belongs, end to end on real parts (reports/csat_prompt.py).

- the widget in headless Chromium: hand-back -> the 1-5 prompt (also after a reload), tap 4, a
  comment; the rating reaches the case, /api/reports (manager) and the agent's "My quality";
- Telegram through python-telegram-bot against the fake Bot API: inline 1-5 keyboard, the
  callback, the next text as the comment;
- a bot-only conversation: goodbye asks (REST), and so does a quiet spell (a web process with a
  short `csat_idle_minutes`);
- once only: two concurrent sweeps (two engines, like two web instances) and a hand-back racing
  the sweep ask each conversation exactly once, on SQLite and PostgreSQL;
- an agent's "My quality" (GET /api/reports/mine): their own QA reviews with scores and comment,
  not another agent's.
"""
from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, Page, expect

from server.cli import prepare
from conversations.store import ConversationStore
from server.processes import Supervisor
from bot.rasa_client import RasaClient
from bot.router import Router
from core.bus import Bus
from core.db import async_engine, sync_engine
from server.schema import create_schema
from conversations.events import EventLog
from core.persona import AsyncPersona
from core.settings import load_settings
from handoff.services import WaitingRoom
from handoff.queue import CaseQueue
from reports.csat_prompt import CsatPrompter
from tests.conftest import Stack, free_port, postgres_url, stack_settings, wait_until
from tests.fakes.telegram_api import FakeTelegramServer

expect.set_options(timeout=30_000)
QUESTION = "How satisfied are you with your help from Northwind Goods today?"  # tandem.yml's demo text
COMMENT_PROMPT = "Anything you'd like to tell us?"
THANKS = "Thank you for your feedback!"


def rows(settings: Any, sql: str, **params: Any) -> list[dict[str, Any]]:
    engine = sa.create_engine(settings.sqlalchemy_url, future=True)
    try:
        with engine.connect() as conn:
            return [dict(r) for r in conn.execute(sa.text(sql), params).mappings().all()]
    finally:
        engine.dispose()


def rating_of(settings: Any, conversation_id: str) -> dict[str, Any] | None:
    found = rows(settings, "SELECT * FROM csat WHERE conversation_id = :c", c=conversation_id)
    return found[0] if found else None


def prompts_in(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in messages if m.get("kind") == "csat_prompt"]


# -- the widget in Chromium ------------------------------------------------------------------
@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        yield page
    finally:
        context.close()


def _chat(page: Page) -> Any:
    return page.get_by_role("dialog", name="Northwind Goods support")


def _conversation_id(page: Page) -> str:
    import json

    stored = page.evaluate("() => Object.entries(localStorage).filter(([k]) => k.startsWith('tandem-widget:')).map(([, v]) => v)")
    return json.loads(stored[0])["token"].split(".")[0]


def test_widget_prompt_after_hand_back_rating_reaches_reports_and_agent(stack: Stack, page: Page, browser: Browser) -> None:
    page.goto(stack.settings.web_url + "/demo")
    page.get_by_role("button", name="Open chat with Northwind Goods support").click()
    chat = _chat(page)
    chat.get_by_role("button", name="Talk to a person from our team").click()
    expect(chat.locator(".tw-system.tw-kind-queued")).to_be_visible()
    conversation = _conversation_id(page)

    agent = stack.login("agent")
    case = wait_until(lambda: next((c for c in agent.get("/cases", status="waiting").json()["cases"]
                                    if c["conversation_id"] == conversation), None), timeout=20)
    before = stack.http.get("/api/reports/mine", headers=agent.headers).json()
    assert agent.post(f"/cases/{case['id']}/claim").status_code == 200
    assert agent.post(f"/cases/{case['id']}/messages", {"text": "Your refund is on its way."}).status_code == 201
    expect(chat.locator(".tw-msg.tw-agent").filter(has_text="Your refund is on its way.")).to_be_visible()
    assert rows(stack.settings, "SELECT * FROM csat_requests WHERE conversation_id = :c", c=conversation) == []  # not before
    assert agent.post(f"/cases/{case['id']}/close", {"resolution": "resolved"}).status_code == 200

    prompt = chat.locator(".tw-system.tw-kind-csat_prompt")
    expect(prompt).to_have_count(1)
    expect(prompt).to_contain_text(QUESTION)
    page.reload()  # stored before it was published: a reconnecting widget shows it too
    prompt = _chat(page).locator(".tw-system.tw-kind-csat_prompt")
    expect(prompt).to_have_count(1)
    scale = prompt.get_by_role("group", name="Rate from 1 (very unsatisfied) to 5 (very satisfied)")
    expect(scale.get_by_role("button")).to_have_count(5)
    scale.get_by_role("button", name="Rate 4 of 5").click()
    expect(_chat(page).locator(".tw-system.tw-kind-csat_comment")).to_contain_text(COMMENT_PROMPT)
    box = page.get_by_label("Type your message")
    box.fill("Alex was quick and kind")
    box.press("Enter")
    expect(_chat(page).locator(".tw-system.tw-kind-csat_thanks")).to_contain_text(THANKS)

    rating = wait_until(lambda: rating_of(stack.settings, conversation), timeout=15)
    assert rating["score"] == 4 and rating["comment"] == "Alex was quick and kind"
    assert rating["case_id"] == case["id"] and rating["agent_id"] is not None
    # one prompt only, and a second tap changes nothing
    assert len(rows(stack.settings, "SELECT id FROM messages WHERE conversation_id = :c AND data LIKE '%csat_prompt%'", c=conversation)) == 1

    # the agent's own stats
    mine = stack.http.get("/api/reports/mine", headers=agent.headers).json()
    assert rating["agent_id"] == mine["agent"]["id"]
    assert mine["csat"]["count"] == before["csat"]["count"] + 1
    assert mine["csat"]["recent"][0]["comment"] == "Alex was quick and kind" and mine["csat"]["recent"][0]["score"] == 4
    # the reports: the agent's ratings, filtered by that agent
    manager = stack.login("manager")
    summary = stack.http.get("/api/reports/summary", params={"agent": str(rating["agent_id"])}, headers=manager.headers).json()
    assert summary["figures"]["satisfaction"]["agent"]["ratings"] == mine["csat"]["count"]
    assert stack.http.get("/api/reports/mine", headers=manager.headers).status_code == 403

    # the console's "My quality" view shows it to the agent
    console = browser.new_context().new_page()
    try:
        console.goto(stack.settings.web_url + "/console")
        console.locator("#login-username").fill("agent")
        console.locator("#login-password").fill("agent")
        console.locator("#login-form button[type=submit]").click()
        console.get_by_role("button", name="Show my CSAT and reviews").click()
        expect(console.locator(".quality-csat-count")).to_have_text(str(mine["csat"]["count"]))
        expect(console.locator(".quality-ratings")).to_contain_text("Alex was quick and kind")
    finally:
        console.context.close()


# -- goodbye: a bot-only conversation ends (REST) ---------------------------------------------
def test_goodbye_asks_once_and_the_rating_is_the_bots(stack: Stack) -> None:
    customer = stack.new_conversation()
    customer.say("How can I track my order?")
    replies = customer.say("goodbye")["replies"]
    assert [m["kind"] for m in prompts_in(replies)] == ["csat_prompt"], replies
    prompt = prompts_in(replies)[0]
    assert [b["payload"] for b in prompt["buttons"]] == [f"/csat {n}" for n in range(1, 6)]

    comment = customer.say("5", payload="/csat 5")["replies"]
    assert [m["kind"] for m in comment] == ["csat_comment"]
    assert [m["kind"] for m in customer.say("No comment", payload="/csat_skip")["replies"]] == ["csat_thanks"]
    rating = rating_of(stack.settings, customer.conversation_id)
    assert rating is not None and rating["score"] == 5 and rating["comment"] == "" and rating["case_id"] is None

    # asked once: another goodbye, another tap and the API all leave the one answer alone
    assert prompts_in(customer.say("bye")["replies"]) == []
    assert [m["kind"] for m in customer.say("1", payload="/csat 1")["replies"]] == ["csat_thanks"]
    again = stack.http.post(f"/api/conversations/{customer.conversation_id}/rating", json={"score": 1}, headers=customer.headers)
    assert again.status_code == 409
    assert rating_of(stack.settings, customer.conversation_id)["score"] == 5
    # after the comment window the bot answers again
    assert any(m["sender"] == "bot" for m in customer.say("How can I track my order?")["replies"])


# -- a web process with a short idle time and Telegram ----------------------------------------
@pytest.fixture(scope="module")
def fake() -> Iterator[FakeTelegramServer]:
    with FakeTelegramServer() as server:
        yield server


@pytest.fixture(scope="module")
def csat_web(stack: Stack, fake: FakeTelegramServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Its own web process and database, sharing the stack's Rasa and action server: Telegram
    long-polls the fake Bot API, and a bot conversation quiet for 6 s is asked for its rating."""
    settings = stack_settings(
        tmp_path_factory.mktemp("tandem-csat"), telegram_token=fake.token, telegram_api_url=f"{fake.url}/bot",
        telegram_mode="polling", csat_idle_minutes=0.1, csat_sweep_interval_s=1.0,
    ).replace(rasa_port=stack.settings.rasa_port, action_port=stack.settings.action_port)
    with ThreadPoolExecutor(1) as pool:  # the module's Playwright keeps an event loop running in this thread
        pool.submit(prepare, settings, False).result()
    supervisor = Supervisor(settings)
    supervisor.start(only=("web",))
    client = httpx.Client(base_url=settings.web_url, timeout=60)
    try:
        wait_until(lambda: client.get("/telegram/status").json().get("running"), timeout=30, interval=0.2)
        yield Stack(settings, supervisor, client)
    finally:
        client.close()
        supervisor.stop()


def _wait_text(fake: FakeTelegramServer, chat: int, contains: str, timeout: float = 30) -> dict[str, Any]:
    return fake.wait_sent(
        lambda e: e["method"] == "sendMessage" and e["params"]["chat_id"] == chat and contains in e["params"]["text"], timeout)


def test_telegram_inline_scale_callback_and_comment(csat_web: Stack, fake: FakeTelegramServer) -> None:
    chat = 9101
    fake.push_command(chat, "/human")
    _wait_text(fake, chat, "in the queue")
    conversation = rows(csat_web.settings, "SELECT id FROM conversations WHERE channel = 'telegram' AND external_id = :x", x=str(chat))[0]["id"]
    agent = csat_web.login("agent")
    case = agent.case_for(conversation)
    assert agent.post(f"/cases/{case['id']}/claim").status_code == 200
    assert agent.post(f"/cases/{case['id']}/close", {"resolution": "resolved"}).status_code == 200

    prompt = _wait_text(fake, chat, QUESTION)
    keyboard = prompt["params"]["reply_markup"]["inline_keyboard"]
    assert [[key["text"] for key in row] for row in keyboard] == [["1", "2", "3", "4", "5"]]  # one row
    four = next(key["callback_data"] for key in keyboard[0] if key["text"] == "4")
    tap = fake.push_callback(chat, four)
    fake.wait_sent(lambda e: e["method"] == "answerCallbackQuery"
                   and str(e["params"]["callback_query_id"]) == tap["callback_query"]["id"], 15)
    _wait_text(fake, chat, COMMENT_PROMPT)
    fake.push_text(chat, "Sorted in two minutes, thanks")
    _wait_text(fake, chat, THANKS)

    rating = wait_until(lambda: rating_of(csat_web.settings, conversation), timeout=15)
    assert rating["score"] == 4 and rating["comment"] == "Sorted in two minutes, thanks"
    assert rating["channel"] == "telegram" and rating["case_id"] == case["id"] and rating["agent_id"] is not None
    mine = csat_web.http.get("/api/reports/mine", headers=agent.headers).json()
    assert mine["csat"]["count"] == 1 and mine["csat"]["recent"][0]["comment"] == "Sorted in two minutes, thanks"


def test_idle_bot_conversation_is_asked_once(csat_web: Stack) -> None:
    customer = csat_web.new_conversation()
    silent = csat_web.new_conversation()  # never wrote: not a conversation, never asked
    customer.say("How can I track my order?")
    started = time.monotonic()
    prompt = wait_until(lambda: prompts_in(customer.messages()), timeout=45, interval=0.5)
    assert time.monotonic() - started >= 4.0  # not before the conversation had been quiet (6 s)
    time.sleep(3)  # several more sweeps
    assert len(prompts_in(customer.messages())) == 1
    assert prompts_in(silent.messages()) == []
    request = rows(csat_web.settings, "SELECT * FROM csat_requests WHERE conversation_id = :c", c=customer.conversation_id)[0]
    assert request["trigger"] == "idle" and request["message_id"] == prompt[0]["id"]
    assert [m["kind"] for m in customer.say("2", payload="/csat 2")["replies"]] == ["csat_comment"]
    assert rating_of(csat_web.settings, customer.conversation_id)["score"] == 2


# -- once only, across instances --------------------------------------------------------------
@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_two_concurrent_sweeps_ask_each_conversation_once(database: str, tmp_path: Path) -> None:
    url = postgres_url("tandem_csat_once") if database == "postgresql" else ""
    settings = load_settings(var_dir=tmp_path, database_url=url, secret_key="test", csat_idle_minutes=10.0,
                             rasa_port=free_port(), action_port=free_port())
    create_schema(settings)
    with ThreadPoolExecutor(1) as pool:  # a thread of its own: Playwright's loop may be running in this one
        pool.submit(asyncio.run, _two_instances(settings)).result()


async def _instance(settings: Any) -> tuple[CsatPrompter, Router, Any]:
    engine = async_engine(settings)
    store = ConversationStore(engine)
    router = Router(settings, store, CaseQueue(engine, 1.0), RasaClient(settings.rasa_url, 1.0, "x", settings.action_url),
                    EventLog(engine), Bus(), WaitingRoom.build(engine, settings))
    prompter = CsatPrompter(settings, engine, sync_engine(settings), AsyncPersona(engine, settings.business), router.say)
    router.hooks.append(prompter)
    return prompter, router, engine


async def _two_instances(settings: Any) -> None:
    (one, router, engine), (two, _, engine2) = await _instance(settings), await _instance(settings)
    try:
        store = router.conversations
        now = time.time()
        quiet, fresh, mute, human, ancient = [], [], [], [], []
        for group, age, wrote, mode in ((quiet, 11 * 60, True, "bot"), (fresh, 60, True, "bot"), (mute, 11 * 60, False, "bot"),
                                        (human, 11 * 60, True, "human"), (ancient, 3 * 86400, True, "bot")):
            for _ in range(12 if group is quiet else 2):
                conversation = await store.create("widget", None, "")
                if wrote:
                    await store.add_message(conversation.id, "customer", "hello")
                async with engine.begin() as conn:
                    await conn.execute(sa.text("UPDATE conversations SET updated_at = :t, mode = :m WHERE id = :c"),
                                       {"t": now - age, "m": mode, "c": conversation.id})
                group.append(conversation.id)
        # a hand-back racing the sweeps for one of the quiet ones
        raced = await store.get(quiet[0])
        asked = await asyncio.gather(one.sweep(now), two.sweep(now), two.conversation_ended(raced, "hand_back", None),
                                     one.sweep(now), two.sweep(now))
        sweeps = [a for a in asked if isinstance(a, int)]
        handed = asked[2]
        assert sum(sweeps) + len(handed) == len(quiet)
        async with engine.connect() as conn:
            counts = dict((await conn.execute(sa.text(
                "SELECT conversation_id, COUNT(*) FROM messages WHERE data LIKE '%csat_prompt%' GROUP BY conversation_id"))).all())
            requests = dict((await conn.execute(sa.text("SELECT conversation_id, message_id FROM csat_requests"))).all())
        assert counts == {c: 1 for c in quiet}  # each quiet conversation once; no one else
        assert set(requests) == set(quiet) and all(requests.values())
        # a later sweep (a controllable clock: two hours on) asks the fresh ones, never the others again
        assert await one.sweep(now + 7200) == len(fresh)
        assert await two.sweep(now + 7200) == 0
    finally:
        for prompter in (one, two):
            prompter.sync_engine.dispose()
        await engine.dispose()
        await engine2.dispose()


# -- agents see their own quality -------------------------------------------------------------
def test_my_quality_shows_an_agent_their_own_reviews_only(stack: Stack) -> None:
    import datetime as dt

    customer = stack.new_conversation()
    customer.say("Talk to a person", payload="/request_human")
    agent = stack.login("agent")
    case = agent.case_for(customer.conversation_id)
    assert agent.post(f"/cases/{case['id']}/claim").status_code == 200
    assert agent.post(f"/cases/{case['id']}/messages", {"text": "Done: your address is updated."}).status_code == 201
    assert agent.post(f"/cases/{case['id']}/close", {"resolution": "resolved"}).status_code == 200

    supervisor = stack.login("supervisor")
    today = dt.datetime.now(dt.timezone.utc).date().isoformat()
    sampled = stack.http.post("/api/reports/qa/sample", json={"start": today, "end": today, "per_bucket": 500, "seed": 5},
                              headers=supervisor.headers)
    assert sampled.status_code == 201, sampled.text
    queue = stack.http.get("/api/reports/qa/queue", headers=supervisor.headers).json()["reviews"]
    review = next(r for r in queue if r["case_id"] == case["id"])
    criteria = stack.http.get("/api/reports/qa/rubric", headers=supervisor.headers).json()["criteria"]
    scores = {str(c["id"]): 5 for c in criteria}
    scores[str(criteria[0]["id"])] = 3
    scored = stack.http.post(f"/api/reports/qa/reviews/{review['id']}", json={"scores": scores, "comment": "Clear and polite"},
                             headers=supervisor.headers)
    assert scored.status_code == 200, scored.text

    mine = stack.http.get("/api/reports/mine", headers=agent.headers).json()
    found = [r for r in mine["reviews"] if r["case_id"] == case["id"]]
    assert len(found) == 1 and found[0]["comment"] == "Clear and polite"
    assert found[0]["scores"] == scores and 0 < found[0]["score"] < 100
    assert mine["criteria"][str(criteria[0]["id"])] == criteria[0]["name"]
    assert mine["qa"]["count"] >= 1
    other = stack.http.get("/api/reports/mine", headers=stack.login("agent2").headers).json()
    assert all(r["case_id"] != case["id"] for r in other["reviews"])
    assert other["agent"]["id"] != mine["agent"]["id"]
