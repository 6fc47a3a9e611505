"""Customers and case care end to end on one whole Tandem (Rasa, actions, web) on PostgreSQL, with
the fake Telegram Bot API and a real SMTP server (aiosmtpd) on 127.0.0.1:

- a signed identity through the widget in Chromium links the customer; their tier makes the
  policy escalate at the first miss and raises the case's priority; a forged one is ignored;
- a Telegram user is linked on their first message (python-telegram-bot + the fake Bot API),
  and an agent merges the two records;
- an agent who leaves the customer waiting loses the chat to the next free agent (customer told,
  supervisors' console socket gets `case_reassigned`), with SLA timers in the console API;
- closing with a follow-up: asked in the widget and mailed; "No" in the widget reopens the case;
- a ticket's reply arrives as mail;
- a supervisor exports and erases the customer; nothing is left in any table, Rasa's tracker
  (same PostgreSQL database) included.
"""
from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import websockets
from aiosmtpd.controller import Controller
from playwright.sync_api import Browser, Page, expect

from server.cli import prepare
from server.processes import Supervisor
from core.db import sync_engine
from core.settings import CustomerSettings, FollowupSettings, MailSettings, ReassignSettings, SlaSettings, SlaTarget
from customers.identity import sign_identity
from tests.conftest import Agent, Stack, free_port, postgres_url, stack_settings, wait_until
from tests.fakes.telegram_api import FakeTelegramServer
from tests.test_data_rights import scan
from tests.test_mail import Inbox, authenticator

SITE_SECRET = "shop-secret-known-only-to-the-shop-and-tandem"
CHAT = 990012345  # the Telegram user (private chat id == user id)
GRACE = {"user_id": "u-1001", "name": "Grace Hopper", "email": "grace.hopper@example.org", "tier": "gold"}
OFF_TOPIC = "What is the capital of Mongolia?"

expect.set_options(timeout=30_000)


@pytest.fixture(scope="module")
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, authenticator=authenticator, auth_require_tls=False,
                            server_hostname="mail.test")
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeTelegramServer]:
    with FakeTelegramServer() as server:
        yield server


@pytest.fixture(scope="module")
def care(tmp_path_factory: pytest.TempPathFactory, smtp: tuple[Inbox, int], fake: FakeTelegramServer) -> Iterator[Stack]:
    settings = stack_settings(
        tmp_path_factory.mktemp("tandem-care"), database_url=postgres_url("tandem_test_care"), widget_site_keys="demo,shop",
        customers=CustomerSettings(identity_secrets={"shop": SITE_SECRET}),
        telegram_token=fake.token, telegram_api_url=f"{fake.url}/bot", telegram_mode="polling",
        mail=MailSettings(host="127.0.0.1", port=smtp[1], security="none", user="tandem", password="pw-smtp",
                          from_address="support@shop.example", backoff_s=1.0),
        reassign=ReassignSettings(wait_s=600.0, team_wait_s={"shipping": 4.0}),
        sla=SlaSettings(targets=(SlaTarget(first_response_s=30.0, resolution_s=900.0),), warn_fraction=0.1),
        followup=FollowupSettings(delay_s=3600.0), dispatch_interval_s=0.5,
    )
    model = prepare(settings)
    supervisor = Supervisor(settings, model=model)
    supervisor.start()
    client = httpx.Client(base_url=settings.web_url, timeout=60)
    try:
        wait_until(lambda: client.get("/telegram/status").json().get("running"), timeout=30, interval=0.2)
        yield Stack(settings, supervisor, client)
    finally:
        client.close()
        supervisor.stop()


@pytest.fixture(scope="module")
def db(care: Stack) -> Iterator[sa.engine.Engine]:
    engine = sync_engine(care.settings)
    yield engine
    engine.dispose()


def signed(who: dict[str, str], secret: str = SITE_SECRET, lifetime: int = 3600, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    payload = {**who, "iat": now, "exp": now + lifetime}
    signature = sign_identity(secret, payload)
    return {"payload": {**payload, **changes}, "signature": signature}


@pytest.fixture(scope="module")
def shop(care: Stack) -> Iterator[Any]:
    """The site that embeds the widget, on another origin; `?who=` picks the identity it renders."""
    tandem = care.settings.web_url
    identities: dict[str, dict[str, Any]] = {}

    class Shop(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            who = self.path.rpartition("who=")[2]
            attribute = json.dumps(identities[who]).replace("'", "&#39;") if who in identities else ""
            html = ("<!doctype html><html lang='en'><head><title>Shop</title></head><body><h1>Shop</h1>"
                    f"<script src='{tandem}/widget/tandem-widget.js' data-site-key='shop' data-tandem-url='{tandem}'"
                    + (f" data-identity='{attribute}'" if attribute else "") + " async></script></body></html>").encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(html)))
            self.end_headers()
            self.wfile.write(html)

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Shop)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def url(who: str, identity: dict[str, Any] | None) -> str:
        if identity is not None:
            identities[who] = identity
        return f"http://localhost:{server.server_address[1]}/?who={who}"

    try:
        yield url
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        yield page
    finally:
        context.close()


def open_chat(care: Stack, page: Page, url: str) -> None:
    page.goto(url)
    page.get_by_role("button", name=f"Open chat with {care.settings.business.name}").click()


def say(page: Page, text: str) -> None:
    box = page.get_by_label("Type your message")
    box.fill(text)
    box.press("Enter")


def widget_conversation(care: Stack, page: Page) -> str:
    key = f"tandem-widget:{care.settings.web_url}:shop"

    def token() -> str | None:
        stored = json.loads(page.evaluate("key => localStorage.getItem(key)", key) or "{}")
        return stored.get("token")

    return str(wait_until(token)).split(".")[0]


def profile(db: sa.engine.Engine, conversation_id: str) -> dict[str, Any]:
    with db.connect() as conn:
        row = conn.execute(sa.text("SELECT profile FROM conversations WHERE id = :c"), {"c": conversation_id}).first()
    assert row is not None
    return json.loads(row[0] or "{}")


def case_of(agent: Agent, conversation_id: str, status: str = "open") -> dict[str, Any]:
    return wait_until(lambda: next((c for c in agent.get("/cases", status=status).json()["cases"]
                                    if c["conversation_id"] == conversation_id), None), timeout=20)


def presence(agent: Agent, status: str) -> None:
    assert agent.post("/presence", {"status": status}).status_code == 200


class ConsoleFeed:
    """A supervisor's console socket in a thread: every frame the console is pushed."""

    def __init__(self, url: str, token: str) -> None:
        self.frames: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run(url, token)), daemon=True)
        self._thread.start()
        wait_until(lambda: any(f.get("type") == "hello" for f in self.frames), timeout=20)

    async def _run(self, url: str, token: str) -> None:
        async with websockets.connect(url, extra_headers={"Authorization": f"Bearer {token}"}) as ws:
            while not self._stop.is_set():
                try:
                    self.frames.append(json.loads(await asyncio.wait_for(ws.recv(), 0.5)))
                except asyncio.TimeoutError:
                    continue

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [f for f in list(self.frames) if f.get("type") == kind]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)


# -- identity ------------------------------------------------------------------------------------
def test_signed_identity_through_the_widget_links_the_customer_and_their_tier_counts(
        care: Stack, page: Page, shop: Any, db: sa.engine.Engine) -> None:
    open_chat(care, page, shop("grace", signed(GRACE)))
    say(page, OFF_TOPIC)  # a gold customer gets a person at the first unanswered question
    expect(page.locator(".tw-system.tw-kind-queued")).to_be_visible()
    conversation = widget_conversation(care, page)
    agent = care.login("agent")
    case = case_of(agent, conversation, "waiting")
    assert case["tier"] == "gold" and case["priority"] >= 20
    assert "priority_customer" in json.dumps(case["signals"]), case["signals"]
    panel = agent.get(f"/cases/{case['id']}/customer").json()
    who = panel["customer"]
    assert (who["name"], who["email"], who["tier"]) == ("Grace Hopper", "grace.hopper@example.org", "gold")
    assert who["identities"] == [{"channel": "site:shop", "external_id": "u-1001", "verified": True}]
    assert [c["id"] for c in panel["past_cases"]] == [case["id"]]
    page.get_by_role("button", name="Back to the assistant").last.click()  # leaves the queue
    expect(page.locator(".tw-system.tw-kind-back_to_bot, .tw-bot").last).to_be_visible()
    wait_until(lambda: agent.get(f"/cases/{case['id']}").json()["case"]["status"] == "cancelled")

    # Coming back to the page resumes the signed-in customer's conversation, history and all.
    page.goto(shop("grace", None))
    expect(page.locator(".tw-msg.tw-customer .tw-text").filter(has_text=OFF_TOPIC)).to_be_visible()
    assert widget_conversation(care, page) == conversation


def test_forged_or_expired_identity_is_ignored_and_the_chat_still_works(
        care: Stack, page: Page, shop: Any, db: sa.engine.Engine) -> None:
    forged = signed({**GRACE, "tier": "silver"}, tier="platinum")  # edited after signing
    open_chat(care, page, shop("forged", forged))
    say(page, OFF_TOPIC)  # anonymous: one miss is not yet a person
    expect(page.locator(".tw-bot .tw-text")).not_to_have_count(0)
    conversation = widget_conversation(care, page)
    expect(page.locator(".tw-system.tw-kind-queued")).to_have_count(0)
    assert "customer_id" not in profile(db, conversation)
    for identity in (signed(GRACE, lifetime=-10), signed(GRACE, secret="not-the-secret"), {"payload": "x", "signature": 5}, "junk"):
        response = care.http.post("/widget/session", json={"site_key": "shop", "identity": identity})
        assert response.status_code == 201, response.text
        assert "customer_id" not in profile(db, response.json()["conversation_id"])
    # A signed-in customer's conversation is not resumed by someone else on the same browser.
    grace = care.http.post("/widget/session", json={"site_key": "shop", "identity": signed(GRACE)}).json()
    other = signed({"user_id": "u-2002", "name": "Someone Else"})
    assert care.http.post("/widget/session", json={"site_key": "shop", "token": grace["token"], "identity": other}).status_code == 401
    assert care.http.post("/widget/session", json={"site_key": "shop", "token": grace["token"]}).status_code == 401
    assert care.http.post("/widget/session", json={"site_key": "shop", "token": grace["token"], "identity": signed(GRACE)}).status_code == 200


# -- Telegram linking and merging ------------------------------------------------------------------
def test_telegram_user_is_linked_on_first_message_and_merged_into_the_site_record(
        care: Stack, fake: FakeTelegramServer, db: sa.engine.Engine) -> None:
    fake.push_text(CHAT, "hello", first_name="Grace")
    fake.wait_sent(lambda e: e["method"] == "sendMessage" and e["params"]["chat_id"] == CHAT, 30)
    with db.connect() as conn:
        conversation = conn.execute(sa.text("SELECT id FROM conversations WHERE channel='telegram' AND external_id=:c"),
                                    {"c": str(CHAT)}).scalar_one()
    tg_customer = profile(db, conversation)["customer_id"]
    fake.push_text(CHAT, "I want to talk to a person", first_name="Grace")
    fake.wait_sent(lambda e: e["method"] == "sendMessage" and e["params"]["chat_id"] == CHAT and "queue" in e["params"]["text"], 30)
    with db.connect() as conn:
        rows = conn.execute(sa.text("SELECT customer_id, verified FROM customer_identities WHERE channel='telegram' AND external_id=:c"),
                            {"c": str(CHAT)}).all()
    assert [(r[0], bool(r[1])) for r in rows] == [(tg_customer, True)]  # one customer, however many messages

    agent = care.login("agent")
    [grace] = agent.get("/customers", email=GRACE["email"]).json()["customers"]
    assert agent.post("/customers/merge", {"keep_id": grace["id"], "absorb_id": "x"}).status_code == 400
    assert agent.post("/customers/merge", {"keep_id": grace["id"], "absorb_id": grace["id"]}).status_code == 400
    merged = agent.post("/customers/merge", {"keep_id": grace["id"], "absorb_id": tg_customer})
    assert merged.status_code == 200, merged.text
    body = merged.json()
    assert {(i["channel"], i["external_id"]) for i in body["customer"]["identities"]} == {("site:shop", "u-1001"), ("telegram", str(CHAT))}
    assert {c["channel"] for c in body["past_cases"]} == {"widget", "telegram"}
    case = case_of(agent, conversation, "waiting")
    assert agent.get(f"/cases/{case['id']}/customer").json()["customer"]["id"] == grace["id"]
    fake.push_command(CHAT, "/restart")  # leave the queue
    wait_until(lambda: agent.get(f"/cases/{case['id']}").json()["case"]["status"] == "cancelled", timeout=30)


# -- reassignment and SLA ----------------------------------------------------------------------------
def test_quiet_agent_loses_the_chat_to_the_next_free_agent(care: Stack) -> None:
    supervisor, agent, agent2 = care.login("supervisor"), care.login("agent"), care.login("agent2")
    ids = {name: a.get("/me").json()["account"]["id"] for name, a in (("agent", agent), ("agent2", agent2), ("supervisor", supervisor))}
    assert supervisor.stack.http.put(f"/api/agent/agents/{ids['agent']}", json={"teams": ["billing"]}, headers=supervisor.headers).status_code == 200
    for name in ("agent2", "supervisor"):
        assert supervisor.stack.http.put(f"/api/agent/agents/{ids[name]}", json={"teams": ["shipping"]}, headers=supervisor.headers).status_code == 200
    presence(agent, "online")
    customer = care.new_conversation()
    customer.say("I want to talk to a person")
    case = case_of(agent, customer.conversation_id, "assigned")  # the dispatcher gives it to the only one online
    assert case["agent_id"] == ids["agent"]
    assert agent.post(f"/cases/{case['id']}/transfer", {"team": "shipping"}).status_code == 200
    presence(agent2, "online")
    wait_until(lambda: agent.get(f"/cases/{case['id']}").json()["case"]["agent_id"] == ids["agent2"], timeout=20)
    assert agent2.post(f"/cases/{case['id']}/messages", {"text": "Hi, shipping here"}).status_code == 201

    timers = agent.get("/sla", case_id=case["id"]).json()["cases"][str(case["id"])]
    assert timers["first_response"]["state"] == "met" and timers["resolution"]["state"] in ("ok", "warn")
    assert timers["resolution"]["left_s"] <= 900

    feed = ConsoleFeed(care.settings.web_url.replace("http://", "ws://") + "/api/agent/ws", supervisor.token)
    presence(supervisor, "online")
    customer.say("hello? are you still there?")  # agent2 goes quiet: 4 s is the shipping team's limit
    moved = wait_until(lambda: [f for f in feed.of("case_reassigned") if f["case"]["id"] == case["id"]], timeout=30)
    assert (moved[0]["from_agent_id"], moved[0]["to_agent_id"], moved[0]["reason"]) == (ids["agent2"], ids["supervisor"], "agent_quiet")
    now = agent.get(f"/cases/{case['id']}").json()["case"]
    assert (now["status"], now["agent_id"]) == ("assigned", ids["supervisor"])
    texts = [m["text"] for m in customer.messages()]
    assert care.settings.business.text("reassigned_agent") in texts
    assert "Pat Supervisor from our support team has joined the chat." in texts
    notes = agent2.get(f"/cases/{case['id']}/notes").json()["notes"]
    assert any(n["kind"] == "reassigned" and "left the customer waiting" in n["text"] for n in notes)
    feed.close()
    assert supervisor.post(f"/cases/{case['id']}/close", {"resolution": "resolved", "followup": False}).json()["followup"] is None
    for a in (agent, agent2, supervisor):
        presence(a, "offline")


# -- follow-up and mail -------------------------------------------------------------------------------
def test_followup_is_asked_in_the_widget_and_by_mail_and_no_reopens(
        care: Stack, page: Page, shop: Any, smtp: tuple[Inbox, int]) -> None:
    inbox, _ = smtp
    agent = care.login("agent")
    open_chat(care, page, shop("grace", signed(GRACE)))
    conversation = widget_conversation(care, page)
    say(page, "I want to talk to a person")
    expect(page.locator(".tw-system.tw-kind-queued").last).to_be_visible()
    case = case_of(agent, conversation, "waiting")
    assert agent.post(f"/cases/{case['id']}/claim").status_code == 200
    presence(agent, "online")  # holding a chat while offline would send it back to the queue
    assert agent.post(f"/cases/{case['id']}/messages", {"text": "Sorry about the broken parcel, a new one is on its way."}).status_code == 201
    assert agent.post(f"/cases/{case['id']}/close", {"followup": "yes"}).status_code == 400  # bad input changes nothing
    assert agent.get(f"/cases/{case['id']}").json()["case"]["status"] == "assigned"
    closed = agent.post(f"/cases/{case['id']}/close", {"resolution": "resolved", "followup": True, "delay_s": 2})
    assert closed.status_code == 200, closed.text
    followup = closed.json()["followup"]
    assert followup["status"] == "scheduled" and followup["case_id"] == case["id"]
    assert followup["id"] in [f["id"] for f in agent.get("/followups", status="scheduled").json()["followups"]] or \
        followup["id"] in [f["id"] for f in agent.get("/followups", status="asked").json()["followups"]]

    question = care.settings.business.text("followup_question")
    expect(page.locator(".tw-system.tw-kind-followup_question .tw-text")).to_have_text(question, timeout=30_000)
    mail = wait_until(lambda: next((m for m in inbox.received if m["To"] == GRACE["email"] and "solved" in m["Subject"]), None), timeout=30)
    assert mail["Subject"] == f"Was your problem solved? (request #{case['id']})"
    assert question in mail.get_content()
    assert followup["id"] in [f["id"] for f in agent.get("/followups", status="asked").json()["followups"]]

    page.get_by_role("button", name=care.settings.business.text("followup_no")).click()
    expect(page.locator(".tw-system.tw-kind-followup_reopened")).to_be_visible()
    reopened = case_of(agent, conversation, "open")
    assert reopened["id"] != case["id"] and reopened["reason"] == "follow_up_unsolved"
    assert [f["status"] for f in agent.get("/followups", status="reopened").json()["followups"] if f["id"] == followup["id"]] == ["reopened"]
    presence(agent, "offline")


def test_ticket_reply_goes_out_by_mail(care: Stack, smtp: tuple[Inbox, int]) -> None:
    inbox, _ = smtp
    customer = care.new_conversation()
    customer.say("I want to talk to a person")  # no one online: the customer may leave a message
    customer.say("Leave a message", payload="/ticket")
    customer.say("fiona.customer@example.org")
    agent = care.login("agent")
    ticket = wait_until(lambda: next((t for t in agent.get("/tickets").json()["tickets"]
                                      if t["conversation_id"] == customer.conversation_id), None))
    reply = agent.post(f"/tickets/{ticket['id']}/reply", {"text": "Your refund was sent today."})
    assert reply.status_code == 201, reply.text
    assert reply.json()["reply"]["mail_id"] is not None
    mail = wait_until(lambda: next((m for m in inbox.received if m["To"] == "fiona.customer@example.org"), None), timeout=30)
    assert mail["Subject"] == f"Re: your request #{ticket['id']}"
    assert "Your refund was sent today." in mail.get_content()


# -- the console -------------------------------------------------------------------------------------
def console(browser: Browser, care: Stack, username: str) -> Page:
    page = browser.new_context().new_page()
    page.goto(care.settings.web_url + "/console")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(username)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#connection")).to_have_text("live", timeout=15000)
    return page


def test_console_shows_customer_past_cases_sla_and_followups_and_merges(care: Stack, browser: Browser, db: sa.engine.Engine) -> None:
    agent = care.login("agent")
    # A follow-up asked of a REST customer shows in the sidebar.
    customer = care.new_conversation()
    customer.say("I want to talk to a person")
    plain = case_of(agent, customer.conversation_id, "waiting")
    assert agent.post(f"/cases/{plain['id']}/claim").status_code == 200
    assert agent.post(f"/cases/{plain['id']}/close", {"followup": False}).json()["followup"] is None
    assert agent.post(f"/cases/{plain['id']}/followup", {"delay_s": -1}).status_code == 400
    assert agent.post(f"/cases/{plain['id']}/followup", {"delay_s": 0}).status_code == 201
    # A second record of Grace's, from another signed user id, to merge from the console.
    session = care.http.post("/widget/session", json={"site_key": "shop", "identity": signed({"user_id": "u-4004", "name": "G. Hopper"})})
    second = profile(db, session.json()["conversation_id"])["customer_id"]
    reopened = next(c for c in agent.get("/cases", status="open").json()["cases"] if c["reason"] == "follow_up_unsolved")
    [grace] = agent.get("/customers", email=GRACE["email"]).json()["customers"]
    past = agent.get(f"/customers/{grace['id']}").json()["past_cases"]

    page = console(browser, care, "agent")
    expect(page.locator(f'#followup-list li:has-text("case #{plain["id"]}")')).to_be_visible(timeout=20_000)
    row = page.locator(f'li[data-case-id="{reopened["id"]}"]').first
    expect(row.locator(".tag.sla")).to_contain_text("first reply", timeout=15_000)  # time left (or over) on the queue item
    row.locator("button", has_text="View").or_(row.locator("button", has_text="Open")).first.click()
    panel = page.locator(f'[data-case-id="{reopened["id"]}"].chat')
    expect(panel.locator(".record")).to_contain_text("Grace Hopper")
    expect(panel.locator(".record")).to_contain_text("gold")
    expect(panel.locator(".past-cases li")).to_have_count(len(past))
    expect(panel.locator(".past-cases")).to_contain_text("cancelled")
    expect(panel.locator(".sla")).to_contain_text("Resolution")
    panel.get_by_label("Merge with another record (its id or e-mail)").fill(str(second))
    panel.get_by_role("button", name="Merge records").click()
    expect(panel.locator(".merge-result")).to_contain_text(f"#{second} merged into #{grace['id']}")
    expect(panel.locator(".record")).to_contain_text("u-4004")
    assert {i["external_id"] for i in agent.get(f"/customers/{grace['id']}").json()["customer"]["identities"]} >= {"u-1001", "u-4004"}
    page.context.close()


def test_customer_api_bad_input_is_a_clear_4xx_and_changes_nothing(care: Stack) -> None:
    agent, supervisor = care.login("agent"), care.login("supervisor")
    [grace] = agent.get("/customers", email=GRACE["email"]).json()["customers"]
    path = f"/api/agent/customers/{grace['id']}"
    for body, status in (({"name": "x\u0000y"}, 400), ({"name": "two\nlines"}, 400), ({"email": 5}, 400), ({"tier": "platinum"}, 403),
                         ({"shoe_size": "9"}, 400), ({}, 400)):
        response = care.http.put(path, json=body, headers=agent.headers)
        assert response.status_code == status, (body, response.text)
    assert care.http.put(path, json={"notes": "prefers e-mail\ncalls after 5"}, headers=agent.headers).status_code == 200
    tiered = care.http.put(path, json={"tier": "GOLD"}, headers=supervisor.headers)
    assert tiered.status_code == 200 and tiered.json()["customer"]["tier"] == "gold"
    assert agent.get(f"/customers/{grace['id']}").json()["customer"]["notes"] == "prefers e-mail\ncalls after 5"
    assert agent.post("/customers/merge", {"keep_id": grace["id"], "absorb_id": 2**40}).status_code == 400  # beyond any id
    assert agent.post("/customers/merge", {"keep_id": grace["id"], "absorb_id": 987654}).status_code == 404
    assert agent.get("/customers").status_code == 400
    assert agent.get("/customers", q="100%_sure").json()["customers"] == []
    assert agent.get(f"/customers/{2**40}").status_code == 404
    assert supervisor.get(f"/customers/{2**40}/export").status_code == 404
    assert agent.get("/followups", status="everything").status_code == 400
    assert agent.post(f"/followups/{2**40}/cancel").status_code == 404
    assert agent.get("/sla", case_id="abc").status_code == 400


# -- data rights ---------------------------------------------------------------------------------------
def test_supervisor_exports_then_erases_the_customer_and_nothing_is_left(care: Stack, db: sa.engine.Engine) -> None:
    supervisor, agent = care.login("supervisor"), care.login("agent")
    [grace] = agent.get("/customers", q="grace hop").json()["customers"]
    assert agent.get(f"/customers/{grace['id']}/export").status_code == 403  # supervisors only
    exported = supervisor.get(f"/customers/{grace['id']}/export")
    assert exported.status_code == 200
    data = exported.json()
    text = json.dumps(data)
    assert GRACE["email"] in text and OFF_TOPIC in text and "Sorry about the broken parcel" in text
    conversations = data["conversation_ids"]
    assert len(conversations) >= 3  # two widget visits' conversations... and the Telegram one
    needles = [GRACE["email"], GRACE["name"], GRACE["user_id"], "u-4004", "G. Hopper", str(CHAT), "Sorry about the broken parcel",
               *conversations]
    before = scan(db, needles)
    assert any(h.startswith("events.") for h in before), before  # Rasa's tracker lives in this database too
    assert any(h.startswith("mail_outbox.") for h in before) and any(h.startswith("customers.") for h in before)

    refused = supervisor.post(f"/customers/{grace['id']}/erase")  # the reopened case is open
    assert refused.status_code == 409, refused.text
    assert set(before) <= set(scan(db, needles))  # the refusal erased nothing
    erased = supervisor.post(f"/customers/{grace['id']}/erase", {"force": True})
    assert erased.status_code == 200, erased.text
    assert erased.json()["conversations"] == len(conversations)
    assert scan(db, needles) == []
    assert supervisor.get(f"/customers/{grace['id']}").status_code == 404
    assert supervisor.post(f"/customers/{grace['id']}/erase", {"force": "yes"}).status_code == 400
