"""Asking for satisfaction (CSAT) where it belongs: after a hand-back, a goodbye, or a quiet spell.

The flow, the same on every channel (the prompt is a stored message with buttons, so the widget
shows it after a reconnect and Telegram sends it with an inline keyboard):

1. `offer` claims the conversation by inserting its `csat_requests` row (primary key: the
   conversation id). Whoever inserts first asks; every other instance, sweep or trigger gets
   an IntegrityError and stays quiet. Then the question is stored and published.
2. The customer taps 1-5 (payload `/csat <n>`): `reports.csat.record_rating` stores the rating
   (linked to the case and agent), and the customer is asked for an optional comment.
3. The next text is the comment (`add_comment`); the "No comment" button, or any other button,
   ends it. One answer per conversation: the csat table's unique key decides a race.

A conversation is idle when it is in bot mode, the customer wrote at least once, and nothing was
said for `csat_idle_minutes`; the sweep (a small task in each web process, `run`) looks every
`csat_sweep_interval_s` at conversations that went quiet within the last day (older ones are
left alone, so turning the feature on does not ask every old conversation at once).

The texts are the business's (core/settings.Business csat_*; editors may override them).
"""
from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass
import json
from typing import Awaitable, Callable

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from conversations.store import Conversation, ConversationStore, Message
from core.persona import AsyncPersona
from core.settings import Settings
from reports import csat
from reports.schema import csat as csat_table
from reports.schema import csat_requests, events

log = logging.getLogger(__name__)

SCORE_PAYLOAD = re.compile(r"/csat ([1-5])")
SKIP_PAYLOAD = "/csat_skip"
LOOKBACK_S = 86400.0  # the sweep only asks conversations that went quiet within the last day
SWEEP_BATCH = 200

conversations = sa.table(
    "conversations", sa.column("id", sa.String), sa.column("channel", sa.String), sa.column("mode", sa.String),
    sa.column("updated_at", sa.Float),
)
messages = sa.table("messages", sa.column("conversation_id", sa.String), sa.column("sender", sa.String))


def score_buttons() -> list[dict[str, str]]:
    return [{"title": str(n), "payload": f"/csat {n}"} for n in range(1, 6)]


@dataclass(frozen=True)
class CsatRequest:
    conversation_id: str
    trigger: str
    status: str
    case_id: int | None
    message_id: int | None


# The router's `say(conversation_id, sender, text, **data)`: stored, then published.
Say = Callable[..., Awaitable[Message]]


class CsatPrompter:
    """The CSAT question's owner in one web process (a ConversationHooks for the router)."""

    def __init__(self, settings: Settings, engine: AsyncEngine, sync_engine: sa.engine.Engine, persona: AsyncPersona, say: Say) -> None:
        self.settings = settings
        self.engine = engine
        self.sync_engine = sync_engine  # record_rating is synchronous: it runs in a worker thread
        self.persona = persona
        self.say = say
        self.conversations = ConversationStore(engine)
        self._task: asyncio.Task[None] | None = None

    async def _language(self, conversation_id: str) -> str:
        """The customer's language (the router keeps that of their latest message on the conversation)."""
        return str((await self.conversations.get(conversation_id)).profile.get("lang") or "en")

    # -- asking ---------------------------------------------------------------------------------
    async def offer(self, conversation_id: str, channel: str, trigger: str, case_id: int | None = None,
                    now: float | None = None) -> Message | None:
        """Ask once: claim the conversation, then store and publish the question. None if it was
        claimed (asked) before, or already rated through the API."""
        now = time.time() if now is None else now
        try:
            async with self.engine.begin() as conn:
                rated = (await conn.execute(sa.select(csat_table.c.id).where(csat_table.c.conversation_id == conversation_id))).first()
                if rated is not None:
                    return None
                await conn.execute(csat_requests.insert().values(
                    conversation_id=conversation_id, channel=channel, trigger=trigger, case_id=case_id, status="asked", asked_at=now,
                ))
        except sa.exc.IntegrityError:
            return None  # someone else asked
        business, lang = await self.persona.current(), await self._language(conversation_id)
        message = await self.say(conversation_id, "system", business.text("csat_question", lang), kind="csat_prompt",
                                 buttons=score_buttons(), csat={"scale": [1, 2, 3, 4, 5], "trigger": trigger})
        async with self.engine.begin() as conn:
            await conn.execute(csat_requests.update().where(csat_requests.c.conversation_id == conversation_id)
                               .values(message_id=message.id))
            await conn.execute(events.insert().values(
                conversation_id=conversation_id, kind="csat_asked", channel=channel,
                data=json.dumps({"trigger": trigger, "message_id": message.id, "case_id": case_id}), at=now,
            ))
        return message

    async def conversation_ended(self, conversation: Conversation, trigger: str, case_id: int | None) -> list[Message]:
        message = await self.offer(conversation.id, conversation.channel, trigger, case_id)
        return [message] if message else []

    # -- answering ------------------------------------------------------------------------------
    async def request_for(self, conversation_id: str) -> CsatRequest | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(sa.select(csat_requests).where(csat_requests.c.conversation_id == conversation_id))).mappings().first()
        if row is None:
            return None
        return CsatRequest(row["conversation_id"], row["trigger"], row["status"], row["case_id"], row["message_id"])

    async def _move(self, conversation_id: str, from_status: str, to_status: str) -> bool:
        """Compare-and-set: of two instances handling the same tap, one wins."""
        async with self.engine.begin() as conn:
            result = await conn.execute(
                csat_requests.update()
                .where(csat_requests.c.conversation_id == conversation_id, csat_requests.c.status == from_status)
                .values(status=to_status, answered_at=time.time())
            )
        return bool(result.rowcount)

    async def customer_turn(self, conversation: Conversation, text: str, payload: str | None) -> list[Message] | None:
        """A score button, the comment after it, or "No comment"; None lets the bot answer."""
        match = SCORE_PAYLOAD.fullmatch(payload or "")
        request = await self.request_for(conversation.id)  # one primary-key read per bot turn
        if match is None and payload != SKIP_PAYLOAD and (request is None or request.status != "commenting"):
            return None
        business = await self.persona.current()
        if match is not None:
            return await self._score(conversation, request, int(match.group(1)))
        if request is None or request.status != "commenting":
            if payload == SKIP_PAYLOAD:
                return [await self.say(conversation.id, "system", business.text("csat_thanks", _lang(conversation)), kind="csat_thanks")]
            return None
        if payload is not None and payload != SKIP_PAYLOAD:
            await self._move(conversation.id, "commenting", "done")  # another button: no comment, the bot answers
            return None
        if payload == SKIP_PAYLOAD:
            await self._move(conversation.id, "commenting", "done")
            return [await self.say(conversation.id, "system", business.text("csat_thanks", _lang(conversation)), kind="csat_thanks")]
        if len(text) > csat.MAX_COMMENT:
            return [await self.say(
                conversation.id, "system",
                f"Your comment is {len(text)} characters long; please shorten it to at most {csat.MAX_COMMENT}.",
                kind="csat_comment", buttons=[{"title": business.text("csat_no_comment", _lang(conversation)), "payload": SKIP_PAYLOAD}],
            )]
        if not await self._move(conversation.id, "commenting", "done"):
            return None  # another instance took the comment meanwhile: the bot answers this one
        await asyncio.to_thread(csat.add_comment, self.sync_engine, conversation.id, text)
        return [await self.say(conversation.id, "system", business.text("csat_thanks", _lang(conversation)), kind="csat_thanks")]

    async def _score(self, conversation: Conversation, request: CsatRequest | None, score: int) -> list[Message]:
        business = await self.persona.current()

        async def thanks() -> list[Message]:
            return [await self.say(conversation.id, "system", business.text("csat_thanks", _lang(conversation)), kind="csat_thanks")]

        if request is None or not await self._move(conversation.id, "asked", "commenting"):
            return await thanks()  # not asked, or answered already (a double tap, another device): one answer only
        try:
            await asyncio.to_thread(csat.record_rating, self.sync_engine, conversation.id, score, "")
        except csat.AlreadyRated:  # rated meanwhile through the API: that answer stands
            await self._move(conversation.id, "commenting", "done")
            return await thanks()
        return [await self.say(conversation.id, "system", business.text("csat_comment", _lang(conversation)), kind="csat_comment",
                               buttons=[{"title": business.text("csat_no_comment", _lang(conversation)), "payload": SKIP_PAYLOAD}], score=score)]

    # -- the idle sweep -------------------------------------------------------------------------
    async def sweep(self, now: float | None = None) -> int:
        """Ask every conversation that has been quiet long enough; returns how many were asked here."""
        if self.settings.csat_idle_minutes <= 0:
            return 0
        now = time.time() if now is None else now
        cutoff = now - self.settings.csat_idle_minutes * 60
        wrote = sa.exists().where(messages.c.conversation_id == conversations.c.id, messages.c.sender == "customer")
        asked = sa.exists().where(csat_requests.c.conversation_id == conversations.c.id)
        rated = sa.exists().where(csat_table.c.conversation_id == conversations.c.id)
        query = (
            sa.select(conversations.c.id, conversations.c.channel)
            .where(conversations.c.mode == "bot", conversations.c.updated_at <= cutoff,
                   conversations.c.updated_at >= cutoff - LOOKBACK_S, wrote, ~asked, ~rated)
            .order_by(conversations.c.updated_at).limit(SWEEP_BATCH)
        )
        async with self.engine.connect() as conn:
            idle = (await conn.execute(query)).all()
        count = 0
        for conversation_id, channel in idle:
            if await self.offer(str(conversation_id), str(channel), "idle", now=now) is not None:
                count += 1
        return count

    async def run(self) -> None:
        """The web process's sweep loop (started and stopped by server/app.py)."""
        from reports.schema import ensure_indexes

        try:  # the sweep's index on conversations.updated_at
            await asyncio.to_thread(ensure_indexes, self.sync_engine)
        except Exception:  # noqa: BLE001 - another process creating it at the same moment; the sweep works without
            log.warning("could not ensure the reports' indexes", exc_info=True)
        while True:
            try:
                await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a database hiccup: try again next round
                log.exception("CSAT idle sweep failed")
            await asyncio.sleep(self.settings.csat_sweep_interval_s)

    def start(self) -> None:
        if self.settings.csat_idle_minutes > 0 and self._task is None:
            self._task = asyncio.create_task(self.run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None


def _lang(conversation: Conversation) -> str:
    """The customer's language as the router keeps it on the conversation (en | zh)."""
    return str(conversation.profile.get("lang") or "en")
