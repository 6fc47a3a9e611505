"""A local fake of the Telegram Bot API server, for tests.

Why: Tandem talks to Telegram through the real python-telegram-bot (PTB) library. Pointing
PTB at this server exercises its real HTTP requests, object parsing and error mapping
without network access or a real bot token::

    fake = FakeTelegramServer().start()
    app = (
        Application.builder()
        .token(fake.token)
        .base_url(f"{fake.url}/bot")            # PTB requests f"{base_url}{token}/{method}"
        .base_file_url(f"{fake.url}/file/bot")
        .build()
    )

The server runs its own asyncio loop in a background thread, so a sync test (bot in another
thread) and an async test (bot in the test's own loop) can both use it. In an async test use
the ``await``-able helpers (``await_sent``, ``apost_webhook_update``): the blocking ones would
stop the test's loop, and with it the bot under test.

Object shapes follow https://core.telegram.org/bots/api. Deliberate leniencies: any chat id
is accepted (an unknown one becomes a private chat) and webhook URLs may be plain http.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import json
import re
import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from aiohttp import ClientSession, ClientTimeout, web

JSONDict = dict[str, Any]
SentPredicate = Callable[[JSONDict], bool]

#: Form fields that are plain strings even when they look like JSON ("42", "true").
#: PTB sends every other non-string parameter JSON-encoded inside form data.
_STRING_FIELDS = frozenset(
    {
        "action",
        "business_connection_id",
        "callback_query_id",
        "caption",
        "custom_emoji_id",
        "data",
        "description",
        "emoji",
        "explanation",
        "game_short_name",
        "inline_message_id",
        "ip_address",
        "language_code",
        "message_effect_id",
        "name",
        "parse_mode",
        "query",
        "question",
        "quote",
        "secret_token",
        "short_description",
        "text",
        "title",
        "url",
    }
)
#: Fields that a JSON body may still carry as a JSON-encoded string.
_JSON_FIELDS = frozenset(
    {
        "allowed_updates",
        "caption_entities",
        "commands",
        "entities",
        "link_preview_options",
        "media",
        "options",
        "reply_markup",
        "reply_parameters",
        "results",
        "scope",
    }
)
#: Integer fields that may arrive as numeric strings.
_INT_FIELDS = frozenset(
    {"chat_id", "from_chat_id", "limit", "message_id", "offset", "timeout", "user_id"}
)
#: Methods that deliver something to a user; their successful calls are listed in ``sent``.
_SENDING_PREFIXES = ("send", "edit", "answer", "forward", "copy")
#: Update types Telegram leaves out when ``allowed_updates`` is empty or never given.
_OPT_IN_UPDATE_TYPES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
_BOT_COMMAND = re.compile(r"^[a-z0-9_]{1,32}$")
_MAX_TEXT = 4096
_NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)


class _ApiError(Exception):
    """An error answer of the Bot API: ``{"ok": false, "error_code": ..., ...}``."""

    def __init__(self, code: int, description: str, parameters: JSONDict | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters


def _error_response(
    code: int, description: str, parameters: JSONDict | None = None
) -> web.Response:
    """Answer like Telegram does: HTTP status = error_code, which is what PTB maps to errors."""
    body: JSONDict = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return web.json_response(body, status=code)


def _decode_form_value(key: str, value: str) -> Any:
    """Turn a form field back into the value PTB encoded (ints, dicts, lists, bools)."""
    if key in _STRING_FIELDS:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value  # e.g. "@channelusername" or a file_id


def _normalise(params: JSONDict) -> JSONDict:
    """Give params one shape whatever the encoding: int ids, parsed JSON objects."""
    for key, value in params.items():
        if key in _JSON_FIELDS and isinstance(value, str):
            with contextlib.suppress(ValueError):
                params[key] = json.loads(value)
        elif key in _INT_FIELDS and isinstance(value, str) and value.lstrip("-").isdigit():
            params[key] = int(value)
    return params


async def _read_params(request: web.Request) -> JSONDict:
    """Read parameters from the query string and a JSON, urlencoded or multipart body.

    PTB 22 (httpx) posts urlencoded form data, or multipart when a file is attached; other
    clients post JSON. Uploaded files become ``{"filename", "content_type", "content"}``.
    """
    params: JSONDict = {k: _decode_form_value(k, v) for k, v in request.query.items()}
    if request.can_read_body:
        if request.content_type == "application/json":
            body = await request.json()
            if not isinstance(body, dict):
                raise ValueError("JSON body is not an object")
            params.update(body)
        elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    with value.file as upload:  # a temp file aiohttp leaves open
                        content = upload.read()
                    params[key] = {
                        "filename": value.filename,
                        "content_type": value.content_type,
                        "content": content,
                    }
                else:
                    params[key] = _decode_form_value(key, str(value))
    return _normalise(params)


def _inline_markup(params: JSONDict) -> JSONDict | None:
    """The inline keyboard to attach to a message; other keyboards are not part of a Message."""
    markup = params.get("reply_markup")
    if isinstance(markup, dict) and "inline_keyboard" in markup:
        return markup
    return None


def _update_type(update: JSONDict) -> str:
    """The kind of an update ("message", "callback_query", ...), as used by allowed_updates."""
    return next((key for key in update if key != "update_id"), "")


class FakeTelegramServer:
    """A Telegram Bot API server on 127.0.0.1 (random free port) that records what bots send.

    Tests queue incoming updates with ``push_*``, wait for the bot's answers with
    ``wait_sent``/``await_sent`` and inject API errors with ``fail_next``.
    """

    def __init__(
        self, token: str = "123456:TEST-TOKEN", bot_username: str = "tandem_test_bot"
    ) -> None:
        """Prepare the server; nothing listens until ``start()``."""
        self.token = token
        self.bot_username = bot_username
        bot_id = token.split(":", 1)[0]
        #: The bot's own User object, as getMe returns it.
        self.bot_user: JSONDict = {
            "id": int(bot_id) if bot_id.isdigit() else 123456,
            "is_bot": True,
            "first_name": "Tandem Test Bot",
            "username": bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }
        #: Longest a getUpdates long poll is held, whatever timeout the client asks for,
        #: so that stopping a polling bot is quick.
        self.max_poll_seconds = 1.0
        #: The bot as the ``from`` of its messages (getMe's capability flags are not there).
        self._bot_sender: JSONDict = {
            key: self.bot_user[key] for key in ("id", "is_bot", "first_name", "username")
        }
        self.url = ""
        #: Successful calls that deliver something (send*, edit*, answer*, ...), in order.
        self.sent: list[JSONDict] = []
        #: Every call of any method (including failed and unknown ones), in arrival order.
        self.calls: list[JSONDict] = []

        self._lock = threading.RLock()
        self._sent_changed = threading.Condition(self._lock)
        self._updates: list[JSONDict] = []
        self._update_ids = itertools.count(1000)
        self._callback_ids = itertools.count(4_000_000_000_000_000_000)
        self._next_message_id: dict[int, int] = {}
        self._messages: dict[tuple[int, int], JSONDict] = {}
        self._users: dict[int, JSONDict] = {}
        self._open_callback_ids: set[str] = set()
        self._failures: dict[str, list[_ApiError]] = {}
        self._allowed_updates: list[str] | None = None
        self._webhook: JSONDict = {}
        self._commands: dict[tuple[str, str], list[JSONDict]] = {}
        self._methods: dict[str, Callable[[JSONDict], Any]] = {
            "getMe": self._get_me,
            "getUpdates": self._get_updates,
            "sendMessage": self._send_message,
            "editMessageText": self._edit_message_text,
            "editMessageReplyMarkup": self._edit_message_reply_markup,
            "answerCallbackQuery": self._answer_callback_query,
            "sendChatAction": lambda params: True,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "setMyCommands": self._set_my_commands,
            "deleteMyCommands": self._delete_my_commands,
            "getMyCommands": self._get_my_commands,
            "close": lambda params: True,
            "logOut": lambda params: True,
        }
        self._canonical = {name.lower(): name for name in self._methods}

        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._wakeup: asyncio.Event | None = None
        self._closing = False

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FakeTelegramServer:
        """Start serving in a background thread; returns self once the port is listening."""
        if self._thread is not None:
            raise RuntimeError("FakeTelegramServer already started")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self._closing = False
        loop = asyncio.new_event_loop()
        self._loop = loop
        started = asyncio.run_coroutine_threadsafe(self._serve(sock), loop)
        self._thread = threading.Thread(
            target=loop.run_forever, name="fake-telegram-api", daemon=True
        )
        self._thread.start()
        try:
            started.result(timeout=10)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop serving: pending long polls return at once, then the thread ends."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=10)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            loop.close()
            self._loop = None
            self._thread = None

    def __enter__(self) -> FakeTelegramServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def _serve(self, sock: socket.socket) -> None:
        """Bind the aiohttp app to the already-open socket (runs in the server loop)."""
        self._wakeup = asyncio.Event()
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_route("*", "/file/bot{token}/{path:.*}", self._handle_file)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()

    async def _shutdown(self) -> None:
        """Release long polls, then close the server (runs in the server loop)."""
        self._closing = True
        if self._wakeup is not None:
            self._wakeup.set()
        if self._runner is not None:
            await self._runner.cleanup()

    def _wake_pollers(self) -> None:
        """Tell a waiting getUpdates (in the server loop) that an update was queued."""
        loop, wakeup = self._loop, self._wakeup
        if loop is not None and wakeup is not None and not loop.is_closed():
            loop.call_soon_threadsafe(wakeup.set)

    # ------------------------------------------------------------------ incoming updates

    def make_text_update(
        self, chat_id: int, text: str, first_name: str = "Ada", username: str | None = None
    ) -> JSONDict:
        """Build (without queueing) a private-chat text Message update, e.g. for a webhook."""
        with self._lock:
            user = self._remember_user(chat_id, first_name, username)
            message = self._store_message(chat_id, sender=user, text=text)
            return {"update_id": next(self._update_ids), "message": message}

    def make_command_update(self, chat_id: int, command: str) -> JSONDict:
        """Build (without queueing) a "/command [args]" Message update with a bot_command entity."""
        if not command.startswith("/"):
            command = "/" + command
        with self._lock:
            user = self._remember_user(chat_id)
            message = self._store_message(chat_id, sender=user, text=command)
            message["entities"] = [
                {"type": "bot_command", "offset": 0, "length": len(command.split()[0])}
            ]
            return {"update_id": next(self._update_ids), "message": message}

    def make_callback_update(
        self, chat_id: int, data: str, message_id: int | None = None
    ) -> JSONDict:
        """Build (without queueing) a callback_query update, as a tap on an inline button does.

        The query carries the bot's message ``message_id`` (default: the bot's latest message
        in that chat), so handlers can edit it.
        """
        with self._lock:
            user = self._remember_user(chat_id)
            if message_id is None:
                mine = [
                    mid
                    for (cid, mid), msg in self._messages.items()
                    if cid == chat_id and msg["from"]["is_bot"]
                ]
                message_id = max(mine) if mine else None
            message = self._messages.get((chat_id, message_id)) if message_id else None
            if message is None:
                message = self._store_message(
                    chat_id, sender=self._bot_sender, text="(button message)", message_id=message_id
                )
            query_id = str(next(self._callback_ids))
            self._open_callback_ids.add(query_id)
            query = {
                "id": query_id,
                "from": copy.deepcopy(user),
                "message": copy.deepcopy(message),
                "chat_instance": str(-chat_id),
                "data": data,
            }
            return {"update_id": next(self._update_ids), "callback_query": query}

    def push_update(self, update: JSONDict) -> JSONDict:
        """Queue any update for getUpdates; returns it."""
        with self._lock:
            self._updates.append(update)
        self._wake_pollers()
        return update

    def push_text(
        self, chat_id: int, text: str, first_name: str = "Ada", username: str | None = None
    ) -> JSONDict:
        """Queue a text message from a user in a private chat; returns the update."""
        return self.push_update(self.make_text_update(chat_id, text, first_name, username))

    def push_command(self, chat_id: int, command: str) -> JSONDict:
        """Queue a command such as "/start" (with a bot_command entity); returns the update."""
        return self.push_update(self.make_command_update(chat_id, command))

    def push_callback(self, chat_id: int, data: str, message_id: int | None = None) -> JSONDict:
        """Queue an inline keyboard button tap; returns the update."""
        return self.push_update(self.make_callback_update(chat_id, data, message_id))

    # ------------------------------------------------------------------ assertions and faults

    def wait_sent(self, predicate: SentPredicate, timeout: float = 10.0) -> JSONDict:
        """Block until an entry of ``sent`` matches (earlier ones count too); return it.

        Raises AssertionError listing everything sent when ``timeout`` passes. Do not call it
        from the loop that runs the bot: use ``await_sent`` there.
        """
        deadline = time.monotonic() + timeout
        with self._sent_changed:
            while True:
                found = self._first_match(predicate)
                if found is not None:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(self._nothing_matched(timeout))
                self._sent_changed.wait(remaining)

    async def await_sent(self, predicate: SentPredicate, timeout: float = 10.0) -> JSONDict:
        """Like ``wait_sent`` but polls with asyncio.sleep, so the bot's loop keeps running."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                found = self._first_match(predicate)
            if found is not None:
                return found
            if time.monotonic() >= deadline:
                raise AssertionError(self._nothing_matched(timeout))
            await asyncio.sleep(0.02)

    def _first_match(self, predicate: SentPredicate) -> JSONDict | None:
        """Find the first matching sent entry.

        A predicate that trips on another method's params (KeyError etc.) just does not
        match, so tests can write ``e["params"]["text"]`` without guarding.
        """
        for entry in self.sent:
            try:
                if predicate(entry):
                    return entry
            except (KeyError, IndexError, TypeError, AttributeError):
                continue
        return None

    def _nothing_matched(self, timeout: float) -> str:
        with self._lock:
            lines = [f"  {entry['method']} {entry['params']!r}" for entry in self.sent]
        return f"nothing matching was sent within {timeout}s; sent:\n" + (
            "\n".join(lines) or "  (nothing)"
        )

    def fail_next(
        self,
        method: str,
        *,
        error_code: int,
        description: str,
        retry_after: int | None = None,
        times: int = 1,
    ) -> None:
        """Make the next ``times`` calls of ``method`` fail as Telegram would.

        E.g. ``error_code=429, description="Too Many Requests: retry after 1", retry_after=1``
        (PTB raises RetryAfter) or ``403, "Forbidden: bot was blocked by the user"`` (Forbidden).
        """
        parameters = {"retry_after": retry_after} if retry_after is not None else None
        with self._lock:
            queue = self._failures.setdefault(method.lower(), [])
            queue.extend(_ApiError(error_code, description, parameters) for _ in range(times))

    # ------------------------------------------------------------------ webhook delivery

    def post_webhook_update(self, update: JSONDict, secret_token: str | None) -> int:
        """POST ``update`` to the URL registered with setWebhook; returns the HTTP status.

        Sends header X-Telegram-Bot-Api-Secret-Token when ``secret_token`` is given. Blocks:
        from an async test whose loop serves the webhook, use ``apost_webhook_update``.
        """
        loop = self._require_loop()
        future = asyncio.run_coroutine_threadsafe(self._post_webhook(update, secret_token), loop)
        return future.result(timeout=15)

    async def apost_webhook_update(self, update: JSONDict, secret_token: str | None) -> int:
        """Like ``post_webhook_update``, without blocking the caller's event loop."""
        loop = self._require_loop()
        future = asyncio.run_coroutine_threadsafe(self._post_webhook(update, secret_token), loop)
        return await asyncio.wrap_future(future)

    def _require_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("FakeTelegramServer is not started")
        return self._loop

    async def _post_webhook(self, update: JSONDict, secret_token: str | None) -> int:
        with self._lock:
            url = self._webhook.get("url")
        if not url:
            raise AssertionError("no webhook registered with setWebhook")
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret_token} if secret_token else {}
        async with (
            ClientSession(timeout=ClientTimeout(total=10)) as session,
            session.post(url, json=update, headers=headers) as response,
        ):
            await response.read()
            return response.status

    # ------------------------------------------------------------------ HTTP dispatch

    async def _handle(self, request: web.Request) -> web.Response:
        """Answer one Bot API call: check token, record it, apply faults, run the method."""
        name = request.match_info["method"]
        try:
            params = await _read_params(request)
        except ValueError as exc:
            return _error_response(400, f"Bad Request: can't parse request: {exc}")
        canonical = self._canonical.get(name.lower(), name)
        entry: JSONDict = {"method": canonical, "params": params}
        with self._lock:
            self.calls.append(entry)
            if request.match_info["token"] != self.token:
                return _error_response(401, "Unauthorized")
            failures = self._failures.get(canonical.lower())
            failure = failures.pop(0) if failures else None
        if failure is not None:
            return _error_response(failure.code, failure.description, failure.parameters)
        handler = self._methods.get(canonical)
        if handler is None:
            return _error_response(404, "Not Found: method not found")
        try:
            if canonical == "getUpdates":
                await self._long_poll(params)
            with self._lock:
                result = handler(params)
                if canonical.startswith(_SENDING_PREFIXES):
                    self.sent.append(entry)
                    self._sent_changed.notify_all()
        except _ApiError as exc:
            return _error_response(exc.code, exc.description, exc.parameters)
        return web.json_response({"ok": True, "result": result})

    async def _handle_file(self, request: web.Request) -> web.Response:
        """File downloads are not faked: answer as Telegram does for a missing file."""
        return _error_response(404, "Not Found")

    async def _long_poll(self, params: JSONDict) -> None:
        """Hold getUpdates until an update is queued or min(timeout, max_poll_seconds) passes."""
        assert self._wakeup is not None
        loop = asyncio.get_running_loop()
        wait = min(float(params.get("timeout") or 0), self.max_poll_seconds)
        deadline = loop.time() + wait
        with self._lock:
            self._remember_allowed_updates(params)
        while not self._closing:
            self._wakeup.clear()
            with self._lock:
                if self._webhook.get("url") or self._pending(params.get("offset")):
                    return
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            try:
                await asyncio.wait_for(self._wakeup.wait(), remaining)
            except TimeoutError:
                return

    # ------------------------------------------------------------------ state helpers (lock held)

    def _remember_user(
        self, chat_id: int, first_name: str | None = None, username: str | None = None
    ) -> JSONDict:
        """The user of a private chat (user id == chat id), updated with any new names."""
        user = self._users.setdefault(
            chat_id,
            {"id": chat_id, "is_bot": False, "first_name": "Ada", "language_code": "en"},
        )
        if first_name is not None:
            user["first_name"] = first_name
        if username is not None:
            user["username"] = username
        return user

    def _chat(self, chat_id: int) -> JSONDict:
        """The Chat object for an id: negative ids are groups, others private chats."""
        if chat_id < 0:
            kind = "supergroup" if str(chat_id).startswith("-100") else "group"
            return {"id": chat_id, "type": kind, "title": "Test group"}
        user = self._remember_user(chat_id)
        chat = {"id": chat_id, "type": "private", "first_name": user["first_name"]}
        if "username" in user:
            chat["username"] = user["username"]
        return chat

    def _store_message(
        self,
        chat_id: int,
        *,
        sender: JSONDict,
        text: str,
        message_id: int | None = None,
        extra: JSONDict | None = None,
    ) -> JSONDict:
        """Create a Message in a chat (ids count up per chat, shared by user and bot)."""
        if message_id is None:
            message_id = self._next_message_id.get(chat_id, 1)
        self._next_message_id[chat_id] = max(self._next_message_id.get(chat_id, 1), message_id + 1)
        message: JSONDict = {
            "message_id": message_id,
            "from": copy.deepcopy(sender),
            "chat": self._chat(chat_id),
            "date": int(time.time()),
            "text": text,
            **(extra or {}),
        }
        self._messages[(chat_id, message_id)] = message
        return copy.deepcopy(message)

    def _pending(self, offset: Any) -> list[JSONDict]:
        """Apply getUpdates' offset and allowed_updates rules; returns what is left to serve.

        Updates before ``offset`` are confirmed and forgotten; a negative offset keeps only
        the last -offset updates. Updates of types the bot did not allow are dropped.
        """
        if isinstance(offset, int):
            if offset < 0:
                self._updates = self._updates[offset:]
            else:
                self._updates = [u for u in self._updates if u["update_id"] >= offset]
        allowed = self._allowed_updates
        if allowed:
            self._updates = [u for u in self._updates if _update_type(u) in allowed]
        else:
            self._updates = [
                u for u in self._updates if _update_type(u) not in _OPT_IN_UPDATE_TYPES
            ]
        return self._updates

    def _remember_allowed_updates(self, params: JSONDict) -> None:
        """Telegram keeps the last allowed_updates a bot gave until it gives another."""
        if "allowed_updates" in params:
            self._allowed_updates = list(params["allowed_updates"] or []) or None

    def _chat_id(self, params: JSONDict) -> int:
        chat_id = params.get("chat_id")
        if chat_id is None or chat_id == "":
            raise _ApiError(400, "Bad Request: chat_id is empty")
        if not isinstance(chat_id, int):
            raise _ApiError(400, "Bad Request: chat not found")
        return chat_id

    def _message_to_edit(self, params: JSONDict) -> JSONDict:
        """The stored bot message an edit* call targets, or Telegram's 400 answer."""
        chat_id, message_id = self._chat_id(params), params.get("message_id")
        message = self._messages.get((chat_id, message_id)) if isinstance(message_id, int) else None
        if message is None:
            raise _ApiError(400, "Bad Request: message to edit not found")
        if not message["from"]["is_bot"]:
            raise _ApiError(400, "Bad Request: message can't be edited")
        return message

    @staticmethod
    def _check_text(text: Any) -> str:
        if not isinstance(text, str) or not text.strip():
            raise _ApiError(400, "Bad Request: message text is empty")
        if len(text) > _MAX_TEXT:
            raise _ApiError(400, "Bad Request: message is too long")
        return text

    # ------------------------------------------------------------------ Bot API methods

    def _get_me(self, params: JSONDict) -> JSONDict:
        return copy.deepcopy(self.bot_user)

    def _get_updates(self, params: JSONDict) -> list[JSONDict]:
        if self._webhook.get("url"):
            raise _ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        self._remember_allowed_updates(params)
        limit = min(max(int(params.get("limit") or 100), 1), 100)
        return copy.deepcopy(self._pending(params.get("offset"))[:limit])

    def _send_message(self, params: JSONDict) -> JSONDict:
        chat_id = self._chat_id(params)
        text = self._check_text(params.get("text"))
        extra: JSONDict = {}
        if params.get("entities"):
            extra["entities"] = params["entities"]
        markup = _inline_markup(params)
        if markup is not None:
            extra["reply_markup"] = markup
        reply_to = (params.get("reply_parameters") or {}).get("message_id") or params.get(
            "reply_to_message_id"
        )
        replied = self._messages.get((chat_id, reply_to)) if reply_to else None
        if replied is not None:
            extra["reply_to_message"] = {
                k: v for k, v in replied.items() if k != "reply_to_message"
            }
        return self._store_message(chat_id, sender=self._bot_sender, text=text, extra=extra)

    def _edit_message_text(self, params: JSONDict) -> JSONDict | bool:
        text = self._check_text(params.get("text"))
        if params.get("inline_message_id"):
            return True
        message = self._message_to_edit(params)
        markup = _inline_markup(params)  # omitting reply_markup removes the keyboard
        if message["text"] == text and message.get("reply_markup") == markup:
            raise _ApiError(400, _NOT_MODIFIED)
        message["text"] = text
        message["edit_date"] = int(time.time())
        for key, value in (("entities", params.get("entities")), ("reply_markup", markup)):
            if value:
                message[key] = value
            else:
                message.pop(key, None)
        return copy.deepcopy(message)

    def _edit_message_reply_markup(self, params: JSONDict) -> JSONDict | bool:
        if params.get("inline_message_id"):
            return True
        message = self._message_to_edit(params)
        markup = _inline_markup(params)
        if message.get("reply_markup") == markup:
            raise _ApiError(400, _NOT_MODIFIED)
        if markup is None:
            message.pop("reply_markup", None)
        else:
            message["reply_markup"] = markup
        message["edit_date"] = int(time.time())
        return copy.deepcopy(message)

    def _answer_callback_query(self, params: JSONDict) -> bool:
        if str(params.get("callback_query_id")) not in self._open_callback_ids:
            raise _ApiError(
                400,
                "Bad Request: query is too old and response timeout expired or query ID is invalid",
            )
        return True

    def _set_webhook(self, params: JSONDict) -> bool:
        if not params.get("url"):
            return self._delete_webhook(params)
        self._webhook = {
            "url": params["url"],
            "secret_token": params.get("secret_token"),
            "max_connections": params.get("max_connections", 40),
            "allowed_updates": params.get("allowed_updates"),
        }
        if params.get("drop_pending_updates"):
            self._updates.clear()
        return True

    def _delete_webhook(self, params: JSONDict) -> bool:
        self._webhook = {}
        if params.get("drop_pending_updates"):
            self._updates.clear()
        return True

    def _get_webhook_info(self, params: JSONDict) -> JSONDict:
        info: JSONDict = {
            "url": self._webhook.get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }
        if info["url"]:
            info["max_connections"] = self._webhook["max_connections"]
            info["ip_address"] = "127.0.0.1"
            if self._webhook.get("allowed_updates"):
                info["allowed_updates"] = self._webhook["allowed_updates"]
        return info

    @staticmethod
    def _commands_key(params: JSONDict) -> tuple[str, str]:
        scope = params.get("scope") or {"type": "default"}
        return json.dumps(scope, sort_keys=True), str(params.get("language_code") or "")

    def _set_my_commands(self, params: JSONDict) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise _ApiError(400, "Bad Request: can't parse commands JSON object")
        for command in commands:
            if not _BOT_COMMAND.match(str(command.get("command", "")).lstrip("/")):
                raise _ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
        self._commands[self._commands_key(params)] = commands
        return True

    def _delete_my_commands(self, params: JSONDict) -> bool:
        self._commands.pop(self._commands_key(params), None)
        return True

    def _get_my_commands(self, params: JSONDict) -> list[JSONDict]:
        return copy.deepcopy(self._commands.get(self._commands_key(params), []))
