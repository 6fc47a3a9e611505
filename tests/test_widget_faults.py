"""The web widget on a bad network, in real Chromium against the real stack: a TCP proxy between
the browser and the web process loses the customer's websocket frame, cuts the connection
right after it, or turns the connection into a black hole; the server is unreachable for a
while, and the page is reloaded meanwhile. Every message is stored exactly once and answered,
or shown "Not sent. Retry" until the customer retries."""
from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, Page, expect

from conversations.store import messages
from tests.conftest import Stack, free_port, wait_until
from tests.test_widget_browser import TRACK_ANSWER_START, TRACK_QUESTION, bubbles, chat, conversation_id, say, texts

pytestmark = pytest.mark.browser
expect.set_options(timeout=30_000)


@dataclass
class Connection:
    client: asyncio.StreamWriter
    server: asyncio.StreamWriter
    websocket: bool = False
    dead: bool = False  # a black hole: bytes go in, nothing comes out, nothing is closed
    mute_server: bool = False


@dataclass
class FaultyProxy:
    """127.0.0.1:<port> -> the web process, with faults the test arms one at a time.

    fault "drop_and_cut": the next client websocket frame is thrown away and the connection
    closed; "forward_and_cut": it reaches the server, but nothing more reaches the browser and
    the connection closes half a second later. blackhole() kills the open websockets silently;
    refuse=True makes every session and websocket request fail (the server is "down").
    """

    target: int
    port: int = field(default_factory=free_port)
    fault: str | None = None
    refuse: bool = False
    faults_done: list[str] = field(default_factory=list)
    frames_seen: int = 0
    connections: list[Connection] = field(default_factory=list)

    def start(self) -> "FaultyProxy":
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            self._server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", self.port))
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        async def close() -> None:
            self._server.close()
            for conn in self.connections:
                conn.client.close()
                conn.server.close()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def blackhole(self) -> None:
        def kill() -> None:
            for conn in self.connections:
                if conn.websocket:
                    conn.dead = True

        self._loop.call_soon_threadsafe(kill)

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            client_writer.close()
            return
        conn = Connection(client_writer, server_writer)
        self.connections.append(conn)
        await asyncio.gather(self._upstream(conn, client_reader), self._downstream(conn, server_reader), return_exceptions=True)
        self.connections.remove(conn)

    def _cut(self, conn: Connection) -> None:
        conn.client.close()
        conn.server.close()

    async def _upstream(self, conn: Connection, reader: asyncio.StreamReader) -> None:
        while data := await reader.read(65536):
            if self.refuse and (b"POST /widget/session" in data or b"GET /widget/ws" in data):
                self._cut(conn)
                return
            if data.startswith(b"GET /widget/ws"):
                conn.websocket = True
            elif conn.websocket:
                self.frames_seen += 1
                if conn.dead:
                    continue
                if self.fault == "drop_and_cut":
                    self.fault = None
                    self.faults_done.append("drop_and_cut")
                    self._cut(conn)
                    return
                if self.fault == "forward_and_cut":
                    self.fault = None
                    conn.mute_server = True
                    conn.server.write(data)
                    await conn.server.drain()
                    await asyncio.sleep(0.5)
                    self.faults_done.append("forward_and_cut")
                    self._cut(conn)
                    return
            conn.server.write(data)
            await conn.server.drain()
        self._cut(conn)

    async def _downstream(self, conn: Connection, reader: asyncio.StreamReader) -> None:
        while data := await reader.read(65536):
            if conn.dead or conn.mute_server:
                continue
            conn.client.write(data)
            await conn.client.drain()
        self._cut(conn)


@pytest.fixture
def proxy(stack: Stack) -> Iterator[FaultyProxy]:
    running = FaultyProxy(stack.settings.web_port).start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        yield page
    finally:
        context.close()


def open_through(proxy: FaultyProxy, page: Page) -> None:
    """The demo shop loaded through the proxy, so the widget's session and socket go through it."""
    page.goto(proxy.url + "/demo")
    page.get_by_role("button", name="Open chat with Northwind Goods support").click()
    expect(chat(page)).to_be_visible()
    expect(chat(page).locator(".tw-status")).to_be_hidden()  # connected


def stored(stack: Stack, conversation: str) -> list[tuple[str, str, str | None]]:
    engine = sa.create_engine(stack.settings.sqlalchemy_url, future=True)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(messages.c.sender, messages.c.text, messages.c.data)
                .where(messages.c.conversation_id == conversation).order_by(messages.c.id)
            ).all()
    finally:
        engine.dispose()
    return [(row[0], row[1], json.loads(row[2]).get("faq_id") or json.loads(row[2]).get("client_id")) for row in rows]


def answered_once(stack: Stack, page: Page, question: str) -> None:
    """The widget shows the question once, stored and answered; the database has it once, answered once."""
    expect(bubbles(page, "bot").filter(has_text=TRACK_ANSWER_START)).to_have_count(1)
    expect(chat(page).locator(".tw-pending")).to_have_count(0)
    expect(chat(page).locator(".tw-failed")).to_have_count(0)
    assert texts(page, "customer").count(question) == 1
    conversation = conversation_id(page)
    rows = wait_until(lambda: [r for r in stored(stack, conversation) if r[0] != "system"] or None)
    customer = [r for r in rows if r[0] == "customer" and r[1] == question]
    answers = [r for r in rows if r[0] == "bot" and r[2] == "orders-track-order"]
    assert len(customer) == 1, rows
    assert customer[0][2] and customer[0][2].startswith("w-"), "stored with the widget's client id"
    assert len(answers) == 1, rows
    page.reload()  # and after a reload it is still there once, nothing pending comes back
    expect(bubbles(page, "bot").filter(has_text=TRACK_ANSWER_START)).to_have_count(1)
    expect(chat(page).locator(".tw-pending")).to_have_count(0)
    assert texts(page, "customer").count(question) == 1


def test_frame_lost_with_the_connection_is_resent(stack: Stack, proxy: FaultyProxy, page: Page) -> None:
    open_through(proxy, page)
    proxy.fault = "drop_and_cut"
    say(page, TRACK_QUESTION)
    wait_until(lambda: proxy.faults_done == ["drop_and_cut"])
    answered_once(stack, page, TRACK_QUESTION)


def test_frame_stored_but_acknowledgement_lost_is_not_stored_twice(stack: Stack, proxy: FaultyProxy, page: Page) -> None:
    open_through(proxy, page)
    proxy.fault = "forward_and_cut"
    before = proxy.frames_seen
    say(page, TRACK_QUESTION)
    wait_until(lambda: proxy.faults_done == ["forward_and_cut"])
    answered_once(stack, page, TRACK_QUESTION)
    assert proxy.frames_seen - before >= 2, "the widget sent it again after reconnecting (and the server kept one)"


def test_silent_dead_connection_is_noticed_and_the_message_resent(stack: Stack, proxy: FaultyProxy, page: Page) -> None:
    open_through(proxy, page)
    proxy.blackhole()
    say(page, TRACK_QUESTION)
    expect(chat(page).locator(".tw-pending")).to_have_count(1)
    answered_once(stack, page, TRACK_QUESTION)  # ping unanswered -> new connection -> resent


def test_unreachable_server_keeps_the_message_across_a_reload_and_offers_a_retry(stack: Stack, proxy: FaultyProxy, page: Page) -> None:
    open_through(proxy, page)
    proxy.refuse = True
    proxy.blackhole()  # the open socket dies with the server
    say(page, TRACK_QUESTION)
    expect(chat(page).locator(".tw-pending")).to_have_count(1)
    page.reload()  # the unsent message survives a reload (sessionStorage) ...
    expect(chat(page)).to_be_visible()
    pending = chat(page).locator(".tw-msg.tw-customer").filter(has_text=TRACK_QUESTION)
    expect(pending).to_have_count(1)
    retry = chat(page).get_by_role("button", name="Not sent. Retry sending this message")
    expect(retry).to_be_visible(timeout=60_000)  # ... and, the server out of reach, says so
    assert [r for r in stored(stack, conversation_id(page)) if r[0] == "customer"] == [], "nothing reached the server"
    proxy.refuse = False
    retry.click()
    answered_once(stack, page, TRACK_QUESTION)
