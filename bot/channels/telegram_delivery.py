"""Getting stored Tandem messages into Telegram chats: format, split, send, retry, exactly once.

Why one path for everything: a bot reply to the customer's own message, an agent's reply, a
queue notice and the greeting after a hand-back are all stored messages of the conversation;
they leave through `TelegramOutbox.drain`, which sends the conversation's undelivered
messages in order, claiming each one in the delivery ledger first. The update handler drains
right after the router answers (the direct reply); the bus listener drains when something is
said outside a Telegram update (agent API). Whoever claims first sends; nobody sends twice.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ChatAction
from telegram.ext import BaseUpdateProcessor
from telegram.error import BadRequest, ChatMigrated, Forbidden, NetworkError, RetryAfter, TelegramError

from bot.channels.deliveries import DeliveryLedger
from bot.port import ChannelPort
from conversations.store import Message, UnknownConversation

log = logging.getLogger(__name__)

CHANNEL = "telegram"
#: Telegram's limit for one message, counted (conservatively) in UTF-16 code units.
MAX_TEXT = 4096
#: Flood control: wait what Telegram asks, but never longer than this per attempt.
MAX_RETRY_WAIT_S = 30.0
MAX_ATTEMPTS = 4
NETWORK_BACKOFF_S = (0.5, 1.0, 2.0)
FEEDBACK_UP, FEEDBACK_DOWN = "👍", "👎"

T = TypeVar("T")


# -- formatting ------------------------------------------------------------------------------
def _units(ch: str) -> int:
    return 2 if ord(ch) > 0xFFFF else 1


def _fits(text: str, limit: int) -> int:
    """How many leading characters of `text` fit in `limit` UTF-16 code units."""
    used = 0
    for index, ch in enumerate(text):
        used += _units(ch)
        if used > limit:
            return index
    return len(text)


def _cut_point(window: str) -> int:
    """Where to end a chunk inside `window`: the last paragraph, line, sentence or word break.

    Only breaks in the second half count, so no chunk is absurdly short; failing all, the
    window is cut hard (a 4096-character word has no better place).
    """
    half = len(window) // 2
    for separator in ("\n\n", "\n"):
        at = window.rfind(separator)
        if at > half:
            return at + len(separator)
    sentence = max(window.rfind(mark) for mark in (". ", "! ", "? ", "… "))
    if sentence > half:
        return sentence + 2
    space = window.rfind(" ")
    if space > half:
        return space + 1
    return len(window)


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Split a long answer into Telegram-sized messages, on paragraph/sentence breaks if possible."""
    chunks: list[str] = []
    rest = text.strip()
    while rest:
        fit = _fits(rest, limit)
        if fit == len(rest):
            chunks.append(rest)
            break
        cut = _cut_point(rest[:fit])
        chunk = rest[:cut].rstrip()
        if chunk:
            chunks.append(chunk)
        rest = rest[cut:].lstrip()
    return chunks


def display_text(message: dict[str, Any]) -> str:
    """What the chat shows: agents speak under their name, like on the other channels."""
    text = str(message.get("text", ""))
    if message.get("sender") == "agent" and message.get("agent_name"):
        return f"{message['agent_name']}: {text}"
    return text


def button_data(message_id: int, index: int) -> str:
    """callback_data of a reply button: small ids, because Telegram allows only 64 bytes."""
    return f"b:{message_id}:{index}"


def feedback_data(message_id: int, helpful: bool) -> str:
    return f"f:{message_id}:{1 if helpful else 0}"


def parse_callback(data: str | None) -> tuple[str, int, int] | None:
    """("b", message_id, button index) or ("f", message_id, 1|0); None for anything else."""
    parts = (data or "").split(":")
    if len(parts) != 3 or parts[0] not in ("b", "f") or not parts[1].isdigit() or not parts[2].isdigit():
        return None
    return parts[0], int(parts[1]), int(parts[2])


def feedback_row(message_id: int) -> list[InlineKeyboardButton]:
    return [
        InlineKeyboardButton(FEEDBACK_UP, callback_data=feedback_data(message_id, True)),
        InlineKeyboardButton(FEEDBACK_DOWN, callback_data=feedback_data(message_id, False)),
    ]


def keyboard(message: dict[str, Any]) -> InlineKeyboardMarkup | None:
    """Reply buttons (one per row; the CSAT scale 1-5 on one row) and, under a knowledge-base answer, 👍 / 👎."""
    rows: list[list[InlineKeyboardButton]] = [
        [InlineKeyboardButton(str(button.get("title") or button.get("payload") or "?")[:64], callback_data=button_data(message["id"], index))]
        for index, button in enumerate(message.get("buttons") or [])
    ]
    if message.get("kind") == "csat_prompt" and rows:
        rows = [[key for row in rows for key in row]]
    if message.get("faq_id"):
        rows.append(feedback_row(message["id"]))
    return InlineKeyboardMarkup(rows) if rows else None


def _seconds(value: int | float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


# -- sending -----------------------------------------------------------------------------------
class DeliveryFailed(Exception):
    """Telegram refused for good (blocked, chat gone, bad request) or kept failing."""


async def call_telegram(action: Callable[[], Awaitable[T]], what: str) -> T:
    """Run one Bot API call, riding out flood control and network hiccups (bounded)."""
    network_failures = 0
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            return await action()
        except RetryAfter as exc:
            wait = _seconds(exc.retry_after)
            if wait > MAX_RETRY_WAIT_S or attempt == MAX_ATTEMPTS:
                raise DeliveryFailed(f"flood control: retry after {wait:.0f}s") from exc
            log.info("%s: flood control, retrying in %.1fs", what, wait)
            await asyncio.sleep(wait)
        except (Forbidden, ChatMigrated, BadRequest) as exc:  # BadRequest is a NetworkError: first
            raise DeliveryFailed(exc.message) from exc  # e.g. "Forbidden: bot was blocked by the user"
        except NetworkError as exc:  # includes TimedOut
            if network_failures >= len(NETWORK_BACKOFF_S) or attempt == MAX_ATTEMPTS:
                raise DeliveryFailed(f"network: {exc.message}") from exc
            wait = NETWORK_BACKOFF_S[network_failures]
            network_failures += 1
            log.info("%s: %s, retrying in %.1fs", what, exc.message, wait)
            await asyncio.sleep(wait)
        except TelegramError as exc:
            raise DeliveryFailed(f"{type(exc).__name__}: {exc.message}") from exc
    raise DeliveryFailed("gave up")  # not reached: the loop returns or raises


async def send_message(bot: Bot, chat_id: int, message: dict[str, Any]) -> None:
    """Send one stored message, split if long; the keyboard sits under the last part."""
    chunks = split_text(display_text(message)) or ["…"]
    markup = keyboard(message)
    for number, chunk in enumerate(chunks, start=1):
        reply_markup = markup if number == len(chunks) else None
        await call_telegram(
            lambda: bot.send_message(chat_id, chunk, reply_markup=reply_markup),  # noqa: B023 - awaited at once
            f"message {message.get('id')} part {number} to chat {chat_id}",
        )


def chat_id_of(external_id: str | None) -> int | None:
    """The Telegram chat of a conversation ("<chat>" or, after /restart, "<chat>:restarted:<t>")."""
    head = (external_id or "").split(":", 1)[0]
    return int(head) if head.lstrip("-").isdigit() else None


class KeyedLocks:
    """One asyncio.Lock per key, forgotten when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


class ChatOrderedUpdates(BaseUpdateProcessor):
    """python-telegram-bot's update processor, ordered per chat: chats are handled in parallel
    (up to `max_concurrent`), one chat's updates one at a time in arrival order. The lock is
    taken before any handler group runs, so the update ledger, the router and the reply of one
    message finish before the next message of that chat starts."""

    def __init__(self, max_concurrent: int) -> None:
        super().__init__(max_concurrent)
        self._chats = KeyedLocks()

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        chat = update.effective_chat if isinstance(update, Update) else None
        if chat is None:
            await coroutine
            return
        async with self._chats.hold(str(chat.id)):
            await coroutine

    async def initialize(self) -> None:
        """Nothing to set up: the locks are made on demand."""

    async def shutdown(self) -> None:
        """Nothing to release: a lock is forgotten when nobody holds it."""


class TelegramOutbox:
    """Sends each conversation's undelivered messages in order, once, to its Telegram chat."""

    def __init__(self, bot: Bot, port: ChannelPort, ledger: DeliveryLedger) -> None:
        self.bot = bot
        self.port = port
        self.ledger = ledger
        self._locks = KeyedLocks()
        self._queued: set[str] = set()  # conversations with a drain waiting for the lock
        self._tasks: set[asyncio.Task[None]] = set()
        self._listener: asyncio.Task[None] | None = None
        self._subscription: asyncio.Queue[dict[str, Any]] | None = None

    # -- the bus side --------------------------------------------------------------------------
    def start(self) -> None:
        """Listen to `channel:telegram`: agent replies and notices arrive without an update."""
        self._subscription = self.port.follow_channel(CHANNEL)
        self._listener = asyncio.create_task(self._listen(self._subscription))

    async def stop(self) -> None:
        if self._subscription is not None:
            self.port.unfollow_channel(CHANNEL, self._subscription)
        tasks = [t for t in (self._listener, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _listen(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        while True:
            event = await queue.get()
            if not isinstance(event, dict):
                continue
            if event.get("type") == "typing" and event.get("sender") == "agent" and event.get("typing"):
                self._typing(chat_id_of(event.get("external_id")))
                continue
            message = event.get("message")
            if event.get("type") != "message" or not isinstance(message, dict):
                continue
            if message.get("sender") == "customer" or not message.get("conversation_id"):
                continue
            self.kick(str(message["conversation_id"]))

    def _typing(self, chat_id: int | None) -> None:
        """Show "typing..." while an agent writes (live only; every instance may send it, harmless)."""
        if chat_id is None:
            return

        async def show() -> None:
            try:
                await self.bot.send_chat_action(chat_id, ChatAction.TYPING)
            except TelegramError as exc:
                log.info("typing indicator for chat %s not shown: %s", chat_id, exc)

        task = asyncio.create_task(show())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def kick(self, conversation_id: str) -> None:
        """Drain soon, in the background; a drain already waiting will see the new message."""
        if conversation_id in self._queued:
            return
        task = asyncio.create_task(self.drain(conversation_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- the sending side ------------------------------------------------------------------------
    async def drain(self, conversation_id: str) -> None:
        """Send everything undelivered in this conversation, oldest first. Never raises."""
        self._queued.add(conversation_id)
        try:
            async with self._locks.hold(conversation_id):
                self._queued.discard(conversation_id)
                await self._drain(conversation_id)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - a delivery problem must never take the process down
            log.exception("delivering conversation %s to Telegram failed; messages stay stored", conversation_id)
        finally:
            self._queued.discard(conversation_id)

    async def _drain(self, conversation_id: str) -> None:
        try:
            conversation = await self.port.conversation(conversation_id)
        except UnknownConversation:
            return  # another deployment's publish on a shared Redis
        chat_id = chat_id_of(conversation.external_id)
        if conversation.channel != CHANNEL or chat_id is None:
            return
        while True:
            pending = await self.ledger.next_pending(conversation_id)
            if pending is None:
                return
            if not await self.ledger.claim(pending):
                return  # someone else is sending it, and will carry on with the rest
            await self._deliver(conversation_id, chat_id, pending.message)

    async def _deliver(self, conversation_id: str, chat_id: int, message: Message) -> None:
        try:
            await send_message(self.bot, chat_id, message.to_dict())
        except DeliveryFailed as exc:
            log.warning("message %s to Telegram chat %s not delivered: %s", message.id, chat_id, exc)
            await self.ledger.finish(message.id, "failed", str(exc))
            await self.port.delivery_failed(conversation_id, message.id, str(exc), chat_id=chat_id)
            return
        except Exception as exc:  # noqa: BLE001 - unexpected: record, keep serving
            log.exception("message %s to Telegram chat %s crashed the sender", message.id, chat_id)
            await self.ledger.finish(message.id, "failed", repr(exc))
            await self.port.delivery_failed(conversation_id, message.id, repr(exc), chat_id=chat_id)
            return
        await self.ledger.finish(message.id, "sent")
