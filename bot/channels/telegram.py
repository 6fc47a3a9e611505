"""The Telegram channel: a thin adapter between python-telegram-bot and the Router.

One Tandem conversation per Telegram chat. Customer text goes to `router.customer_message`;
what comes back (and anything said later by an agent or the system) leaves through
`TelegramOutbox` (bot/channels/telegram_delivery.py), in order and exactly once.

    /start    the bot greets (payload /greet to Rasa)
    /human    ask for a person (payload /request_human, as the "Talk to a person" button)
    /restart  fresh start: in the queue it leaves the queue (the bot is back); with the bot it
              starts a new conversation (new Rasa tracker, old transcript kept); while a person
              is chatting it is passed to them, since only they can hand the chat back.

Modes (settings.telegram_mode): "polling" (development; getUpdates inside the web process)
or "webhook" (production; Telegram POSTs to /telegram/webhook with the secret header,
registered with setWebhook(<public url>/telegram/webhook, secret_token) at start).
"""
from __future__ import annotations

import asyncio
import hmac
import logging
import os
import time
from datetime import timedelta
from typing import Any, Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncEngine
from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json
from telegram import BotCommand, InlineKeyboardMarkup, Update
from telegram.error import InvalidToken, TelegramError
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot.channels.deliveries import DeliveryLedger
from bot.channels.telegram_delivery import (
    CHANNEL,
    DeliveryFailed,
    ChatOrderedUpdates,
    TelegramOutbox,
    call_telegram,
    parse_callback,
)
from bot.channels.updates import UpdateLedger
from conversations.store import Conversation
from customers.store import Customer
from bot.port import ChannelPort
from bot.turns import LEAVE_QUEUE, REQUEST_HUMAN, InvalidMessage, language_of
from core.language import normalise_tag
from core.texts import notice
from core.http import ApiError, read_json
from core.ratelimit import Limit, RateLimiter
from core.settings import Settings

log = logging.getLogger(__name__)

GREET = "/greet"
ONLY_TEXT = "Sorry, I can only read text messages. Please type your question."
TRY_AGAIN = "Sorry, something went wrong on our side. Please try again in a moment."
TOO_FAST = "You're sending messages faster than we can read them. Please wait {seconds} s, then send that one again."
UNKNOWN_COMMAND = "I know /start, /human (talk to a person) and /restart. Or just type your question."
WITH_A_PERSON = "A person from our team is chatting with you; they'll hand you back to the assistant when you're done."
COMMANDS = [
    BotCommand("start", "Say hello to the assistant"),
    BotCommand("human", "Talk to a person from our team"),
    BotCommand("restart", "Start over (or leave the queue)"),
]
ALLOWED_UPDATES = ["message", "callback_query"]
WEBHOOK_PATH = "/telegram/webhook"


def _file_url(api_url: str) -> str:
    """PTB's file URL next to the API URL (https://api.telegram.org/bot -> .../file/bot)."""
    base = api_url[: -len("/bot")] if api_url.endswith("/bot") else api_url.rstrip("/")
    return f"{base}/file/bot"


bp = Blueprint("telegram_channel", url_prefix="/telegram")
# Links a chat's conversation to the customer of a Telegram user id (customers/linking.link_telegram,
# bound to the stores by the composition root): (conversation id, user id, name) -> the customer.
LinkUser = Callable[[str, int, str], Awaitable[Customer]]


class TelegramChannel:
    """Owns the PTB Application, the update handlers and the outbox for one web process."""

    def __init__(self, settings: Settings, router: ChannelPort, engine: AsyncEngine, limiter: RateLimiter,
                 link_user: LinkUser) -> None:
        self.settings = settings
        self.router = router
        self.engine = engine
        self.link_user = link_user
        self.limiter = limiter
        # Each update is handled once across instances, however often Telegram (or anyone with
        # the secret) sends it; the bot id keeps two bots on one database apart.
        self.updates = UpdateLedger(engine, CHANNEL, settings.telegram_token.split(":")[0])
        self._too_fast_notice = Limit("telegram-too-fast-notice", 1, settings.rate_messages_window_s)
        self.application: Application = self._build_application()
        self.ledger = DeliveryLedger(engine, CHANNEL, f"web-{os.getpid()}")
        self.outbox = TelegramOutbox(self.application.bot, router, self.ledger)
        self.running = False
        self._stopping = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None

    @property
    def mode(self) -> str:
        return self.settings.telegram_mode

    def _build_application(self) -> Application:
        builder = (
            Application.builder()
            .token(self.settings.telegram_token)
            .base_url(self.settings.telegram_api_url)
            .base_file_url(_file_url(self.settings.telegram_api_url))
            # Chats run in parallel; one chat's updates stay in order (ChatOrderedUpdates).
            .concurrent_updates(ChatOrderedUpdates(64))
            # PTB's limiter keeps every Bot API call under Telegram's limits (30 messages a second
            # overall, 20 a minute per group). It does not retry (max_retries=0): a flood-control
            # answer comes back to call_telegram, which knows the outbox's wait budget.
            .rate_limiter(AIORateLimiter(max_retries=0))
        )
        if self.mode == "webhook":
            builder = builder.updater(None)
        app = builder.build()
        app.add_handler(TypeHandler(Update, self.on_arrival), group=-1)
        app.add_handler(TypeHandler(Update, self.on_handled), group=1)
        private = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE
        app.add_handler(CommandHandler("start", self.on_start, filters=private))
        app.add_handler(CommandHandler("human", self.on_human, filters=private))
        app.add_handler(CommandHandler("restart", self.on_restart, filters=private))
        app.add_handler(MessageHandler(private & filters.COMMAND, self.on_unknown_command))
        app.add_handler(MessageHandler(private & filters.TEXT, self.on_text))
        app.add_handler(MessageHandler(private & ~filters.TEXT, self.on_not_text))
        app.add_handler(CallbackQueryHandler(self.on_button))
        app.add_error_handler(self.on_error)
        return app

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        """Connect in the background: an unreachable Telegram must not stop the web server."""
        if self.mode not in ("polling", "webhook"):
            raise ValueError(f"telegram_mode must be 'polling' or 'webhook', not {self.mode!r}")
        if self.mode == "webhook" and not self.settings.telegram_webhook_secret:
            raise ValueError("telegram_mode=webhook needs telegram_webhook_secret (TANDEM_TELEGRAM_WEBHOOK_SECRET)")
        self.outbox.start()
        self._runner = asyncio.create_task(self._connect())

    async def _connect(self) -> None:
        delay = 1.0
        while not self._stopping.is_set():
            try:
                await self._start_application()
                self.running = True
                log.info("Telegram channel running (%s)", self.mode)
                await self._catch_up()
                return
            except InvalidToken:
                log.error("Telegram rejected the bot token; the Telegram channel stays off")
                return
            except (TelegramError, OSError) as exc:
                log.warning("Telegram not reachable (%s); retrying in %.0fs", exc, delay)
                await self._shutdown_application()
            try:
                await asyncio.wait_for(self._stopping.wait(), delay)
            except asyncio.TimeoutError:
                delay = min(delay * 2, 60.0)

    async def _start_application(self) -> None:
        app = self.application
        await app.initialize()  # getMe: checks the token
        try:
            await app.bot.set_my_commands(COMMANDS)
        except TelegramError as exc:
            log.warning("could not set the bot's command menu: %s", exc)
        if self.mode == "webhook":
            await app.bot.set_webhook(
                f"{self.settings.web_url}{WEBHOOK_PATH}",
                secret_token=self.settings.telegram_webhook_secret,
                allowed_updates=ALLOWED_UPDATES,
            )
        else:
            assert app.updater is not None
            await app.updater.start_polling(timeout=timedelta(seconds=10), allowed_updates=ALLOWED_UPDATES)
        await app.start()

    async def _shutdown_application(self) -> None:
        app = self.application
        try:
            if app.updater is not None and app.updater.running:
                await app.updater.stop()
            if app.running:
                await app.stop()
            await app.shutdown()
        except Exception:  # noqa: BLE001 - stopping must finish whatever state PTB is in
            log.exception("stopping the Telegram application")

    async def stop(self) -> None:
        """Stop polling and handlers, then the outbox; messages not yet sent stay stored."""
        self._stopping.set()
        if self._runner is not None:
            self._runner.cancel()
            await asyncio.gather(self._runner, return_exceptions=True)
        self.running = False
        await self._shutdown_application()
        await self.outbox.stop()

    async def _catch_up(self) -> None:
        """Deliver what was said while this process was down (e.g. an agent on another instance)."""
        try:
            await self._kick_undelivered(since=time.time() - 3600)
        except Exception:  # noqa: BLE001 - the live path works without it
            log.exception("Telegram catch-up failed; new messages are still delivered")

    async def _kick_undelivered(self, since: float) -> None:
        """Drain every Telegram conversation with messages newer than `since` and never claimed."""
        for conversation_id in await self.ledger.undelivered_conversations(since):
            self.outbox.kick(conversation_id)

    # -- before and after every update ------------------------------------------------------------
    async def on_arrival(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """First of all: drop a copy of an update already handled, then throttle the chat."""
        if not await self.updates.claim(update.update_id):
            log.info("Telegram update %s arrived again; handled once already", update.update_id)
            raise ApplicationHandlerStop
        chat = update.effective_chat
        if chat is None:
            return
        wait = await self.limiter.hit(*self.limiter.message(f"telegram:{chat.id}", None))
        if wait > 0:
            await self.updates.handled(update.update_id)
            if await self.limiter.hit((self._too_fast_notice, str(chat.id))) == 0:  # one notice per window
                await self._notice(update, TOO_FAST.format(seconds=max(1, round(wait))))
            raise ApplicationHandlerStop

    async def on_handled(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self.updates.handled(update.update_id)

    # -- from Telegram to the router -------------------------------------------------------------
    async def _conversation(self, update: Update) -> Conversation:
        """The chat's conversation, started (and logged as started) on first contact."""
        assert update.effective_chat is not None
        external_id = str(update.effective_chat.id)
        user = update.effective_user
        name = (user.full_name if user else "")[:120]
        conversation = await self.router.conversation_for(CHANNEL, external_id, name)
        # Telegram's language_code is the first language (/start's greeting); then each message's own.
        lang = normalise_tag(getattr(user, "language_code", None))
        if lang and lang != "en" and "lang" not in conversation.profile:
            await self.router.note_profile(conversation.id, lang=lang)
            conversation.profile["lang"] = lang
        return conversation

    async def _customer_says(self, update: Update, text: str | None, payload: str | None = None) -> Conversation | None:
        """Hand one customer message to the router, then send what is due in this chat."""
        conversation = await self._conversation(update)
        if "customer_id" not in conversation.profile and update.effective_user is not None:
            await self._link(conversation, update.effective_user)
        try:
            await self.router.customer_message(conversation.id, text, payload)
        except InvalidMessage as exc:
            await self._notice(update, f"Sorry, I couldn't take that message: {exc}.")
            return None
        await self.outbox.drain(conversation.id)
        return conversation

    async def _link(self, conversation: Conversation, user: Any) -> None:
        """The Telegram user id is the customer's identity (Telegram vouches for it): linked on the
        first message, so the tier of a known customer counts from their first turn."""
        name = (user.full_name or "")[:120]
        customer = await self.link_user(conversation.id, user.id, name)
        conversation.profile = {**conversation.profile, "customer_id": customer.id, **({"tier": customer.tier} if customer.tier else {})}

    async def _notice(self, update: Update, text: str) -> None:
        """A channel-level hint that is not part of the transcript (the router never saw the input)."""
        chat = update.effective_chat
        if chat is None:
            return
        try:
            await call_telegram(lambda: self.application.bot.send_message(chat.id, text), f"notice to chat {chat.id}")
        except DeliveryFailed as exc:
            log.warning("notice to chat %s not delivered: %s", chat.id, exc)

    async def on_start(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._customer_says(update, "/start", GREET)

    async def on_human(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._customer_says(update, "/human", REQUEST_HUMAN)

    async def on_restart(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        conversation = await self._conversation(update)
        if conversation.mode == "waiting":
            await self._customer_says(update, "/restart", LEAVE_QUEUE)
        elif conversation.mode == "human":
            await self._customer_says(update, "/restart")
            await self._notice(update, WITH_A_PERSON)
        else:
            await self.outbox.drain(conversation.id)  # nothing of the old one left behind
            chat_id = str(update.effective_chat.id)  # type: ignore[union-attr]
            await self.router.restart(conversation.id, f"{chat_id}:restarted:{time.time():.3f}")
            await self._customer_says(update, "/restart", GREET)

    async def on_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None
        await self._customer_says(update, update.message.text)

    async def on_unknown_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._notice(update, UNKNOWN_COMMAND)

    async def on_not_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._notice(update, ONLY_TEXT)

    async def on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A tap on a reply button (back to the router as that button's payload) or 👍/👎."""
        query = update.callback_query
        assert query is not None
        if update.effective_chat is None:
            await self._answer(query, "This button is no longer available.")
            return
        parsed = parse_callback(query.data)
        conversation = await self._conversation(update)
        if parsed is None:
            await self._answer(query, "This button is no longer available.")
            return
        kind, message_id, value = parsed
        if kind == "f":
            try:
                await self.router.feedback(conversation.id, message_id, bool(value))
            except InvalidMessage:
                await self._answer(query, "This answer can't be rated any more.")
                return
            await self._answer(query, notice("feedback_thanks", language_of(conversation)))
            await self._drop_feedback_buttons(query)
            return
        found = await self.router.history(conversation.id, message_id - 1, limit=1)
        buttons = found[0].data.get("buttons") or [] if found and found[0].id == message_id else []
        if value >= len(buttons):
            await self._answer(query, "This button is no longer available.")
            return
        button = buttons[value]
        await self._answer(query, None)
        await self._customer_says(update, str(button.get("title") or ""), str(button.get("payload") or ""))

    async def _answer(self, query: Any, text: str | None) -> None:
        try:
            await call_telegram(lambda: query.answer(text), "answerCallbackQuery")
        except DeliveryFailed as exc:  # too old: the tap still counts
            log.info("callback query not answered: %s", exc)

    async def _drop_feedback_buttons(self, query: Any) -> None:
        """One vote per answer: keep the message's other buttons, remove 👍/👎."""
        markup = query.message.reply_markup if query.message is not None else None
        if markup is None:
            return
        rows = [row for row in markup.inline_keyboard if not any((b.callback_data or "").startswith("f:") for b in row)]
        try:
            await query.edit_message_reply_markup(InlineKeyboardMarkup(rows) if rows else None)
        except TelegramError as exc:
            log.info("could not remove feedback buttons: %s", exc)

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A handler failed (database, Rasa client bug...): log it, tell the customer, carry on."""
        log.error("Telegram update failed", exc_info=context.error)
        if isinstance(update, Update):
            await self._notice(update, TRY_AGAIN)

    # -- webhook -------------------------------------------------------------------------------------
    async def accept_webhook(self, data: dict[str, Any]) -> None:
        """Queue one webhook update for the Application (answers Telegram quickly)."""
        try:
            update = Update.de_json(data, self.application.bot)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ApiError(400, f"not a Telegram update: {exc}") from None
        if update is None:
            raise ApiError(400, "not a Telegram update")
        await self.application.update_queue.put(update)


def _channel(request: Request) -> TelegramChannel | None:
    return getattr(request.app.ctx, "telegram", None)


@bp.post("/webhook")
async def webhook(request: Request) -> HTTPResponse:
    """Telegram's POST of one update; the secret header proves it comes from Telegram."""
    channel = _channel(request)
    if channel is None or channel.mode != "webhook":
        raise ApiError(404, "the Telegram webhook is not enabled on this server")
    expected = channel.settings.telegram_webhook_secret.encode()
    # Header bytes that are not UTF-8 arrive as surrogate escapes; keep them as the bytes sent.
    given = request.headers.get("x-telegram-bot-api-secret-token", "").encode("utf-8", "surrogateescape")
    if not given or not hmac.compare_digest(given, expected):
        raise ApiError(401, "missing or wrong X-Telegram-Bot-Api-Secret-Token header")
    data = read_json(request)
    if not channel.running:
        raise ApiError(503, "the Telegram channel is starting; Telegram will retry")
    await channel.accept_webhook(data)
    return json({"ok": True})


@bp.get("/status")
async def status(request: Request) -> HTTPResponse:
    """Whether the channel is on and connected (operators and tests wait for "running")."""
    channel = _channel(request)
    if channel is None:
        return json({"enabled": False, "running": False})
    return json({"enabled": True, "mode": channel.mode, "running": channel.running})
