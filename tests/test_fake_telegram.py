"""Proves the fake Telegram Bot API server works with the real python-telegram-bot library.

Why: every Telegram test of Tandem relies on this fake; if its object shapes or error
answers drifted from what PTB expects, those tests would pass or fail for the wrong reason.
No Tandem code is used here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from aiohttp import web
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest, Forbidden, InvalidToken, RetryAfter
from telegram.ext import (
    Application,
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from tests.fakes.telegram_api import FakeTelegramServer

CHAT = 4242
KEYBOARD = {"inline_keyboard": [[{"text": "Helpful", "callback_data": "vote:up"}]]}


@pytest.fixture
def fake() -> Iterator[FakeTelegramServer]:
    """A started fake server, stopped after the test."""
    with FakeTelegramServer() as server:
        yield server


def sent_text(text: str, method: str = "sendMessage") -> Callable[[dict[str, Any]], bool]:
    """Predicate: ``method`` was called with exactly this text."""
    return lambda e: e["method"] == method and e["params"]["text"] == text


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Greet on /start."""
    assert update.message is not None
    await update.message.reply_text("Welcome to Tandem!")


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Echo text with an inline keyboard, so a callback can follow."""
    assert update.message is not None and update.message.text is not None
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("Helpful", callback_data="vote:up")]])
    await update.message.reply_text(f"echo: {update.message.text}", reply_markup=markup)


async def vote(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Answer the button tap and edit the message it sat on."""
    query = update.callback_query
    assert query is not None
    await query.answer("Thanks!")
    await query.edit_message_text(f"You voted {query.data}")


@contextlib.asynccontextmanager
async def polling_app(
    fake: FakeTelegramServer, *handlers: BaseHandler[Any, Any, Any]
) -> AsyncIterator[list[BaseException]]:
    """Run a real PTB Application against the fake; yields the errors its handlers raised."""
    app = (
        Application.builder()
        .token(fake.token)
        .base_url(f"{fake.url}/bot")
        .base_file_url(f"{fake.url}/file/bot")
        .build()
    )
    errors: list[BaseException] = []

    async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert context.error is not None
        errors.append(context.error)

    for handler in handlers:
        app.add_handler(handler)
    app.add_error_handler(on_error)
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0.05, timeout=1)
        try:
            yield errors
        finally:
            began = time.monotonic()
            await app.updater.stop()
            await app.stop()
            assert time.monotonic() - began < 5, "stopping a polling bot should be quick"


async def next_error(errors: list[BaseException], timeout: float = 10.0) -> BaseException:
    """Wait until a handler error was reported, and take it."""
    deadline = time.monotonic() + timeout
    while not errors:
        assert time.monotonic() < deadline, "no handler error was reported"
        await asyncio.sleep(0.02)
    return errors.pop(0)


@pytest.mark.asyncio
async def test_ptb_command_text_and_callback_round_trip(fake: FakeTelegramServer) -> None:
    """A polling Application gets /start, text and a tap, and its replies are recorded."""
    handlers = (
        CommandHandler("start", start),
        MessageHandler(filters.TEXT & ~filters.COMMAND, echo),
        CallbackQueryHandler(vote),
    )
    async with polling_app(fake, *handlers) as errors:
        fake.push_command(CHAT, "/start")
        welcome = await fake.await_sent(sent_text("Welcome to Tandem!"))
        assert welcome["params"]["chat_id"] == CHAT

        fake.push_text(CHAT, "where is my order?", username="ada")
        echoed = await fake.await_sent(sent_text("echo: where is my order?"))
        assert echoed["params"]["reply_markup"] == KEYBOARD

        # The tap comes from the keyboard on the bot's latest message: the echo.
        # Message ids count per chat: /start=1, welcome=2, user text=3, echo=4.
        tap = fake.push_callback(CHAT, "vote:up")
        assert tap["callback_query"]["message"]["message_id"] == 4
        assert tap["callback_query"]["message"]["reply_markup"] == KEYBOARD
        answered = await fake.await_sent(lambda e: e["method"] == "answerCallbackQuery")
        assert answered["params"]["text"] == "Thanks!"
        edited = await fake.await_sent(sent_text("You voted vote:up", "editMessageText"))
        assert edited["params"]["chat_id"] == CHAT
        assert edited["params"]["message_id"] == 4
        assert "reply_markup" not in edited["params"]  # the edit drops the keyboard
    assert errors == []


@pytest.mark.asyncio
async def test_ptb_surfaces_flood_control_and_blocked_user(
    fake: FakeTelegramServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Injected 429 and 403 answers reach the error handler as RetryAfter and Forbidden."""
    monkeypatch.setenv("PTB_TIMEDELTA", "true")  # PTB 22's future-proof, warning-free mode
    async with polling_app(fake, MessageHandler(filters.TEXT, echo)) as errors:
        fake.fail_next(
            "sendMessage",
            error_code=429,
            description="Too Many Requests: retry after 1",
            retry_after=1,
        )
        fake.push_text(CHAT, "one")
        error = await next_error(errors)
        assert isinstance(error, RetryAfter)
        assert error.retry_after == timedelta(seconds=1)

        fake.fail_next(
            "sendMessage", error_code=403, description="Forbidden: bot was blocked by the user"
        )
        fake.push_text(CHAT, "two")
        error = await next_error(errors)
        assert isinstance(error, Forbidden)
        assert error.message == "Forbidden: bot was blocked by the user"

        fake.push_text(CHAT, "three")  # failures are used up: sending works again
        await fake.await_sent(sent_text("echo: three"))
    assert [e["params"]["text"] for e in fake.sent] == ["echo: three"]
    assert [e["method"] for e in fake.calls].count("sendMessage") == 3


@pytest.mark.asyncio
async def test_ptb_bot_methods_and_errors(fake: FakeTelegramServer) -> None:
    """Object shapes parse in PTB and realistic 400/401 answers map to PTB errors."""
    async with Bot(fake.token, base_url=f"{fake.url}/bot") as bot:
        assert bot.username == "tandem_test_bot" and bot.bot.is_bot

        await bot.set_my_commands([("start", "Start over"), ("help", "Get help")])
        assert [c.command for c in await bot.get_my_commands()] == ["start", "help"]
        await bot.delete_my_commands()
        assert await bot.get_my_commands() == ()

        first = await bot.send_message(CHAT, "hello")
        assert first.from_user is not None and first.from_user.id == bot.id
        assert first.chat.type == "private" and first.text == "hello"
        with pytest.raises(BadRequest, match="(?i)message is not modified"):
            await bot.edit_message_text("hello", chat_id=CHAT, message_id=first.message_id)
        with pytest.raises(BadRequest, match="(?i)message text is empty"):
            await bot.send_message(CHAT, "")
        with pytest.raises(BadRequest, match="too old"):
            await bot.answer_callback_query("no-such-query")
        assert await bot.send_chat_action(CHAT, "typing")
        assert await bot.close() is True

    with pytest.raises(InvalidToken):  # initialize() calls getMe; a failed start shuts down
        async with Bot("999:WRONG", base_url=f"{fake.url}/bot"):
            pass


@pytest.mark.asyncio
async def test_webhook_delivery_to_a_receiver_in_the_test_loop(fake: FakeTelegramServer) -> None:
    """setWebhook is remembered and apost_webhook_update reaches a receiver in this loop."""
    received: list[tuple[dict[str, Any], str | None]] = []

    async def receive(request: web.Request) -> web.Response:
        secret = request.headers.get("X-Telegram-Bot-Api-Secret-Token")
        received.append((await request.json(), secret))
        return web.Response(text="ok")

    receiver = web.Application()
    receiver.router.add_post("/hook", receive)
    runner = web.AppRunner(receiver)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with Bot(fake.token, base_url=f"{fake.url}/bot") as bot:
            await bot.set_webhook(f"http://127.0.0.1:{port}/hook", secret_token="s3cret")
            info = await bot.get_webhook_info()
            assert info.url.endswith("/hook")
            update = fake.make_text_update(CHAT, "via webhook")
            assert await fake.apost_webhook_update(update, "s3cret") == 200
            assert received == [(update, "s3cret")]
            await bot.delete_webhook()
            assert (await bot.get_webhook_info()).url == ""
    finally:
        await runner.cleanup()


def test_raw_http_encodings_offsets_and_long_poll(fake: FakeTelegramServer) -> None:
    """Form, multipart and JSON bodies read alike; offsets confirm; long polls are capped."""
    api = f"{fake.url}/bot{fake.token}"
    markup = json.dumps(KEYBOARD)
    with httpx.Client(timeout=10) as http:
        # The same call as urlencoded form (PTB), multipart (file upload) and JSON.
        http.post(f"{api}/sendMessage", data={"chat_id": "7", "text": "42", "reply_markup": markup})
        upload = {"f": ("a.txt", b"x")}
        http.post(f"{api}/sendMessage", data={"chat_id": "7", "text": "b"}, files=upload)
        http.post(f"{api}/sendMessage", json={"chat_id": "7", "text": "c", "reply_markup": markup})
        assert [e["params"]["chat_id"] for e in fake.sent] == [7, 7, 7]
        assert fake.sent[0]["params"]["text"] == "42"  # text stays a string
        assert fake.sent[0]["params"]["reply_markup"] == KEYBOARD
        assert fake.sent[2]["params"]["reply_markup"] == KEYBOARD
        assert fake.wait_sent(sent_text("b"), timeout=1)["params"]["f"]["content"] == b"x"
        with pytest.raises(AssertionError, match="sendMessage"):
            fake.wait_sent(sent_text("never"), timeout=0.1)

        unknown = http.post(f"{api}/sendTelepathy")
        assert unknown.status_code == 404
        assert unknown.json() == {
            "ok": False,
            "error_code": 404,
            "description": "Not Found: method not found",
        }
        wrong = http.post(f"{fake.url}/bot1:nope/getMe")
        assert (wrong.status_code, wrong.json()["description"]) == (401, "Unauthorized")

        began = time.monotonic()
        assert http.post(f"{api}/getUpdates", data={"timeout": "30"}).json()["result"] == []
        assert 0.8 < time.monotonic() - began < 3, "long poll is capped at 1 s"

        first = fake.push_text(8, "a")
        fake.push_text(8, "b")
        got = http.post(f"{api}/getUpdates", data={"timeout": "5"}).json()["result"]
        assert [u["message"]["text"] for u in got] == ["a", "b"]
        later = http.post(f"{api}/getUpdates", data={"offset": str(first["update_id"] + 1)})
        assert [u["message"]["text"] for u in later.json()["result"]] == ["b"]
        again = http.post(f"{api}/getUpdates", data={"offset": "0"}).json()["result"]
        assert [u["message"]["text"] for u in again] == ["b"], "confirmed updates are dropped"
