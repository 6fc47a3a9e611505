"""The web widget in a real headless Chromium on the demo shop page, against the real stack:
FAQ answer, feedback, hand-off to a person, the agent's reply, history across reloads and
page navigation, reconnecting, text-only rendering, and not disturbing the host page."""
from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, Locator, Page, expect

from tests.conftest import Agent, Stack, free_port, wait_until

TRACK_QUESTION = "How can I track my order?"
TRACK_ANSWER_START = "As soon as your order leaves our warehouse"
XSS = "<img src=x onerror=alert(1)>"

expect.set_options(timeout=30_000)  # a real Rasa turn, not a mock: allow it a moment


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser profile (empty localStorage) per test; page dialogs are recorded."""
    context = browser.new_context()
    page = context.new_page()
    page.dialogs = []  # type: ignore[attr-defined]
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))  # type: ignore[attr-defined]
    page.set_default_timeout(30_000)
    try:
        yield page
    finally:
        context.close()


def open_demo(stack: Stack, page: Page, path: str = "/demo") -> None:
    page.goto(stack.settings.web_url + path)
    page.get_by_role("button", name="Open chat with Northwind Goods support").click()
    expect(page.get_by_role("dialog", name="Northwind Goods support")).to_be_visible()


def chat(page: Page) -> Locator:
    return page.get_by_role("dialog", name="Northwind Goods support")


def say(page: Page, text: str) -> None:
    box = page.get_by_label("Type your message")
    box.fill(text)
    box.press("Enter")


def conversation_id(page: Page) -> str:
    """The widget's own conversation, from the token it keeps in localStorage."""
    stored = page.evaluate("() => Object.entries(localStorage).filter(([k]) => k.startsWith('tandem-widget:')).map(([, v]) => v)")
    assert len(stored) == 1, stored
    return json.loads(stored[0])["token"].split(".")[0]


def bubbles(page: Page, sender: str) -> Locator:
    return chat(page).locator(f".tw-msg.tw-{sender} .tw-text")


def texts(page: Page, sender: str) -> list[str]:
    return [t.strip() for t in bubbles(page, sender).all_inner_texts()]


def events_of(stack: Stack, conversation: str, kind: str) -> list[dict[str, Any]]:
    from conversations.events import conversation_events

    engine = sa.create_engine(stack.settings.sqlalchemy_url, future=True)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(conversation_events.c.data)
                .where(conversation_events.c.conversation_id == conversation, conversation_events.c.kind == kind)
            ).all()
    finally:
        engine.dispose()
    return [json.loads(row[0]) for row in rows]


def claim_and_reply(stack: Stack, conversation: str, text: str) -> tuple[Agent, dict[str, Any]]:
    agent = stack.login("agent")
    case = wait_until(lambda: next((c for c in agent.get("/cases", status="waiting").json()["cases"] if c["conversation_id"] == conversation), None))
    assert agent.post(f"/cases/{case['id']}/claim").status_code == 200
    assert agent.post(f"/cases/{case['id']}/messages", {"text": text}).status_code == 201
    return agent, case


def test_faq_answer_feedback_handoff_agent_reply_and_reload(stack: Stack, page: Page) -> None:
    open_demo(stack, page)
    expect(page.get_by_label("Type your message")).to_be_focused()
    say(page, TRACK_QUESTION)
    answer = bubbles(page, "bot").filter(has_text=TRACK_ANSWER_START)
    expect(answer).to_have_count(1)
    expect(chat(page).locator(".tw-typing")).to_be_hidden()  # the "…" went away with the reply
    # the KB answer's URL is a real, safe link; the rest is text
    link = answer.get_by_role("link", name="https://northwind.example/track")
    expect(link).to_have_attribute("href", "https://northwind.example/track")
    expect(link).to_have_attribute("rel", "noopener noreferrer")
    expect(link).to_have_attribute("target", "_blank")
    assert texts(page, "customer") == [TRACK_QUESTION]  # own message shown once, not twice

    chat(page).get_by_role("button", name="No, this answer was not helpful").click()
    expect(chat(page).get_by_text("Sorry that didn't help.")).to_be_visible()
    conversation = conversation_id(page)
    wait_until(lambda: events_of(stack, conversation, "feedback"))
    feedback = events_of(stack, conversation, "feedback")
    assert [(f["faq_id"], f["helpful"]) for f in feedback] == [("orders-track-order", False)]

    chat(page).locator(".tw-feedback").get_by_role("button", name="Talk to a person").click()
    expect(chat(page).locator(".tw-system.tw-kind-queued")).to_be_visible()
    expect(chat(page).locator(".tw-human")).to_be_hidden()  # already asked for a person

    claim_and_reply(stack, conversation, "Hi, I'm Alex. Let me look at your order.")
    expect(chat(page).locator(".tw-system").filter(has_text="Alex Agent from our support team has joined")).to_be_visible()
    agent_line = chat(page).locator(".tw-msg.tw-agent").filter(has_text="Let me look at your order.")
    expect(agent_line.locator(".tw-name")).to_have_text("Alex Agent")

    page.reload()
    expect(chat(page)).to_be_visible()  # it stays open across reloads
    expect(bubbles(page, "agent").filter(has_text="Let me look at your order.")).to_have_count(1)
    assert texts(page, "customer") == [TRACK_QUESTION, "Talk to a person"]
    expect(bubbles(page, "bot").filter(has_text=TRACK_ANSWER_START)).to_have_count(1)
    expect(chat(page).get_by_text("Thanks for your feedback.")).to_be_visible()  # not asked twice

    page.get_by_role("link", name="Kitchen").click()  # another page of the shop: same conversation
    expect(page.locator("#page-title")).to_have_text("Kitchen")
    expect(bubbles(page, "agent").filter(has_text="Let me look at your order.")).to_have_count(1)
    assert conversation_id(page) == conversation


def test_customer_markup_is_shown_as_text(stack: Stack, page: Page) -> None:
    open_demo(stack, page)
    chat(page).get_by_role("button", name="Talk to a person from our team").click()
    expect(chat(page).locator(".tw-system.tw-kind-queued")).to_be_visible()
    say(page, XSS)
    mine = bubbles(page, "customer").filter(has_text="onerror")
    expect(mine).to_have_count(1)
    assert mine.text_content() == XSS
    assert mine.locator("*").count() == 0  # a text node only
    assert page.evaluate("() => document.querySelector('[data-tandem-widget]').shadowRoot.querySelectorAll('img').length") == 0
    assert page.evaluate("() => document.querySelectorAll('img').length") == 0

    # the agent API hands the same text over as text
    conversation = conversation_id(page)
    agent = stack.login("agent")
    case = agent.case_for(conversation)
    transcript = agent.get(f"/cases/{case['id']}").json()["transcript"]
    assert XSS in [m["text"] for m in transcript if m["sender"] == "customer"]

    # and an agent's markup or a script URL stays text too; only http(s) URLs become links
    assert agent.post(f"/cases/{case['id']}/claim").status_code == 200
    hostile = "<b>bold</b> javascript:alert(2) see https://northwind.example/help?a=1&b=<2>. Thanks"
    assert agent.post(f"/cases/{case['id']}/messages", {"text": hostile}).status_code == 201
    line = bubbles(page, "agent").filter(has_text="javascript:alert(2)")
    expect(line).to_have_count(1)
    assert line.text_content() == hostile
    links = line.locator("a")
    expect(links).to_have_count(1)
    expect(links).to_have_attribute("href", "https://northwind.example/help?a=1&b=")
    assert line.locator("b").count() == 0
    page.wait_for_timeout(300)
    assert page.dialogs == []  # type: ignore[attr-defined]


def test_keyboard_phone_layout_and_host_page_untouched(stack: Stack, browser: Browser) -> None:
    context = browser.new_context(viewport={"width": 375, "height": 667}, is_mobile=True, has_touch=True)
    page = context.new_page()
    try:
        page.goto(stack.settings.web_url + "/demo")
        launcher = page.get_by_role("button", name="Open chat with Northwind Goods support")
        # the host page's `button { background: hotpink }` does not reach the widget
        assert launcher.evaluate("b => getComputedStyle(b).backgroundColor") != "rgb(255, 105, 180)"
        # one global only
        new_globals = page.evaluate(
            """() => { const f = document.createElement('iframe'); document.body.appendChild(f);
                       const base = new Set(Object.getOwnPropertyNames(f.contentWindow)); f.remove();
                       return Object.getOwnPropertyNames(window).filter(k => !base.has(k)); }"""
        )
        assert new_globals == ["TandemWidget"]
        # no widget styles leak out: the host page's own buttons keep theirs
        assert page.evaluate("() => document.styleSheets.length") == 1

        launcher.focus()
        page.keyboard.press("Enter")
        dialog = chat(page)
        expect(dialog).to_be_visible()
        box = dialog.bounding_box()
        assert box is not None and box["width"] == 375 and box["height"] == 667  # full screen on a phone
        expect(page.get_by_label("Type your message")).to_be_focused()
        expect(dialog.get_by_role("log")).to_have_attribute("aria-live", "polite")

        page.keyboard.type("hello")
        page.keyboard.press("Enter")
        expect(bubbles(page, "customer")).to_have_text(["hello"])
        expect(bubbles(page, "bot")).not_to_have_count(0)

        page.keyboard.press("Escape")
        expect(dialog).to_be_hidden()
        expect(launcher).to_be_focused()
        expect(launcher).to_have_attribute("aria-expanded", "false")
    finally:
        context.close()


@pytest.fixture
def other_origin_shop(stack: Stack) -> Iterator[str]:
    """A host page served by something that is not Tandem, on another origin (localhost vs 127.0.0.1)."""
    tandem = stack.settings.web_url
    html = (
        "<!doctype html><html lang='en'><head><title>Other shop</title></head><body><h1>Other shop</h1>"
        f"<script src='{tandem}/widget/tandem-widget.js' data-site-key='demo' data-tandem-url='{tandem}' async></script>"
        "</body></html>"
    ).encode()

    class Shop(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(html)))
            self.end_headers()
            self.wfile.write(html)

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Shop)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_embedded_on_another_origin(stack: Stack, page: Page, other_origin_shop: str) -> None:
    """The one-tag embed on a shop that is NOT served by Tandem: CORS session, websocket, and a
    stale token in localStorage (e.g. after a database reset) leading to a fresh conversation."""
    tandem = stack.settings.web_url
    key = f"tandem-widget:{tandem}:demo"
    page.goto(other_origin_shop)
    page.evaluate("([key, value]) => localStorage.setItem(key, value)", [key, json.dumps({"token": "0123456789abcdef." + "0" * 32})])
    page.reload()
    # the host page sets no data-title: the header is the business's name from settings (issue 10)
    page.get_by_role("button", name=f"Open chat with {stack.settings.business.name}").click()
    say(page, TRACK_QUESTION)
    expect(page.locator(".tw-bot .tw-text").filter(has_text=TRACK_ANSWER_START)).to_have_count(1)
    token = json.loads(page.evaluate("key => localStorage.getItem(key)", key))["token"]
    assert token.split(".")[0] != "0123456789abcdef"  # the forged one was replaced by a genuine one
    assert stack.http.post("/widget/session", json={"site_key": "demo", "token": token}).status_code == 200


def test_widget_reconnects_after_the_server_restarts(stack: Stack, page: Page) -> None:
    """Runs last: restarts the web process. The open widget reconnects on its own and catches up."""
    open_demo(stack, page)
    say(page, "hello")
    expect(bubbles(page, "bot")).not_to_have_count(0)
    say(page, "I want to talk to a person")
    expect(chat(page).locator(".tw-system.tw-kind-queued")).to_be_visible()
    conversation = conversation_id(page)

    stack.supervisor.restart("web")
    claim_and_reply(stack, conversation, "Sorry for the wait, Alex here.")  # said while the widget was away
    expect(bubbles(page, "agent").filter(has_text="Sorry for the wait")).to_have_count(1, timeout=40_000)
    expect(chat(page).locator(".tw-status")).to_be_hidden()
    say(page, "great, thanks")  # and the widget sends again on the new connection
    expect(chat(page).locator(".tw-msg.tw-customer[data-id]").filter(has_text="great, thanks")).to_have_count(1)
    expect(chat(page).locator(".tw-pending")).to_have_count(0)
    assert texts(page, "customer") == ["hello", "I want to talk to a person", "great, thanks"]
