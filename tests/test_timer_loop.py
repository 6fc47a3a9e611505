"""The web process's timer loop (handoff/timer_loop.py) with a controllable clock, on SQLite and
PostgreSQL: a quiet agent loses the chat to the next free agent (the customer is told, the new
agent joins, both get a note, consoles see `case_reassigned`), an agent who went offline sends it
back to the queue, SLA breaches reach the consoles once, two web processes ticking at once tell
the customer once; a due follow-up is asked in the conversation and mailed to a real SMTP server
(aiosmtpd), "no" reopens the case for the same team (Rasa paused again), "yes" closes the loop.

The router is the real one against the session stack's real Rasa (the tracker is checked).
"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiosmtpd.controller import Controller

from conversations.store import Conversation
from bot.rasa_client import RasaClient
from bot.router import Router
from core.bus import Bus, make_bus
from core.db import sync_engine
from core.persona import AsyncPersona
from core.settings import FollowupSettings, MailSettings, SlaSettings, SlaTarget, ReassignSettings
from privacy.data_rights import DataRights
from customers.store import CustomerStore
from handoff.accounts import Account
from handoff.care import CareServices
from handoff.followup_flow import NO, YES, FollowupFlow
from handoff.history import CaseHistory
from handoff.services import WaitingRoom
from handoff.notes import NoteStore
from handoff.queue import Case
from handoff.tickets import TicketStore
from handoff.timer_loop import TimerLoop
from handoff.timers import CaseTimers
from mail.outbox import Outbox
from tests.case_world import World, make_world
from tests.conftest import Stack, free_port
from tests.test_mail import Inbox, authenticator


@pytest.fixture()
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, authenticator=authenticator, auth_require_tls=False,
                            server_hostname="mail.test")
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


@dataclass
class Web:
    """What one web process holds: its router (real Rasa) and its timer loop, on the shared database."""

    router: Router
    loop: TimerLoop
    bus: Bus
    agents_events: asyncio.Queue[dict[str, Any]]  # what this process's consoles are pushed
    kept: list[dict[str, Any]] = field(default_factory=list)

    def seen(self, kind: str) -> list[dict[str, Any]]:
        while not self.agents_events.empty():
            self.kept.append(self.agents_events.get_nowait())
        return [e for e in self.kept if e.get("type") == kind]

    async def close(self) -> None:
        await self.router.rasa.close()


async def shared_bus() -> Bus:
    """The bus between web processes (Redis in production; one in-process bus stands for it here)."""
    bus = make_bus("")
    await bus.start()
    return bus


async def web_process(w: World, stack: Stack, bus: Bus | None = None) -> Web:
    settings = w.settings
    bus = bus or await shared_bus()
    rasa = RasaClient(stack.settings.rasa_url, 20.0, stack.settings.rasa_token())
    router = Router(settings, w.conversations, w.queue, rasa, w.events, bus, WaitingRoom.build(w.engine, settings))
    persona = AsyncPersona(w.engine, settings.business)
    timers = CaseTimers(w.engine, settings, w.queue, w.presence, w.clock)
    outbox = Outbox(w.engine, settings.mail, w.clock)
    customers = CustomerStore(w.engine, w.clock)
    flow = FollowupFlow(settings, timers.followups, router, w.conversations, customers, TicketStore(w.engine), outbox, persona, bus)
    router.followup_answers = flow.answer
    care = CareServices(customers, timers, flow, outbox, CaseHistory(w.engine), DataRights(sync_engine(settings), settings, clock=w.clock).apply_retention)
    loop = TimerLoop(care, w.queue, w.accounts, NoteStore(w.engine), router, bus, persona, 1.0, 3600.0, w.clock)
    return Web(router, loop, bus, bus.subscribe("agents"))


@pytest_asyncio.fixture(params=["sqlite", "postgresql"])
async def world(request: pytest.FixtureRequest, tmp_path: Path, stack: Stack, smtp: tuple[Inbox, int]) -> AsyncIterator[World]:
    _, port = smtp
    w = await make_world(
        request.param, tmp_path, "tandem_test_timer_loop",
        sla=SlaSettings(targets=(SlaTarget(first_response_s=60.0, resolution_s=3600.0),), warn_fraction=0.5),
        reassign=ReassignSettings(wait_s=120.0), followup=FollowupSettings(delay_s=3600.0),
        mail=MailSettings(host="127.0.0.1", port=port, security="none", user="tandem", password="pw-smtp",
                          from_address="support@shop.example"),
    )
    try:
        yield w
    finally:
        await w.engine.dispose()


async def with_agent(w: World, web: Web, agent: Account, team: str = "billing") -> tuple[Conversation, Case]:
    """A REST customer who asked for a person (the router's real escalation) and got `agent`."""
    conversation = await web.router.start_conversation("rest")
    category = {"billing": "refunds", "complaints": "complaints"}[team]
    await web.router.escalate(conversation, "customer_request", "asked for a person", signals={"category": category})
    case = await w.queue.open_case_for(conversation.id)
    assert case is not None
    case = await w.queue.assign(case.id, agent.id, 3)
    await web.router.agent_joined(case, agent)
    await web.router.agent_message(case, agent, "Hello, I'm looking at it")
    await w.queue.mark_announced(case.id)
    return await w.conversations.get(conversation.id), case


async def said(w: World, conversation_id: str, kind: str) -> list[str]:
    return [m.text for m in await w.conversations.messages_since(conversation_id, 0) if m.data.get("kind") == kind]


@pytest.mark.asyncio
async def test_quiet_then_offline_agent_reassigns_and_tells_everyone_once(world: World, stack: Stack) -> None:
    w = world
    ada, bob = await w.agent("ada", ["billing"]), await w.agent("bob", ["billing"])
    bus = await shared_bus()
    one, two = await web_process(w, stack, bus), await web_process(w, stack, bus)  # two web processes, one database
    conversation, case = await with_agent(w, one, ada)
    await one.router.customer_turn(conversation.id, "any news on my refund?")
    assert (await one.loop.tick()).tick.reassigned == []  # the customer has just written

    w.clock.advance(130)  # 130 s unanswered > 120 s: ada went quiet
    first, second = await asyncio.gather(one.loop.tick(), two.loop.tick())
    moved = first.tick.reassigned + second.tick.reassigned
    assert [(m.case_id, m.from_agent_id, m.decision.action, m.decision.to_agent_id) for m in moved] == [(case.id, ada.id, "to_agent", bob.id)]
    now = await w.queue.get(case.id)
    assert (now.status, now.agent_id, now.assigned_by) == ("assigned", bob.id, "reassign")
    assert await said(w, conversation.id, "reassigned") == [w.settings.business.text("reassigned_agent")]  # told once
    assert await said(w, conversation.id, "agent_joined") == ["Ada from our support team has joined the chat.",
                                                                "Bob from our support team has joined the chat."]
    assert (await w.queue.unannounced()) == []  # announced now, not by a later dispatcher sweep
    notes = [n for n in await NoteStore(w.engine).for_conversation(conversation.id) if n["kind"] == "reassigned"]
    assert [n["text"] for n in notes] == ["Reassigned from Ada to Bob: Ada left the customer waiting 130 s."]
    for web in (one, two):  # every console (supervisors too) sees it, whichever process moved it
        events = web.seen("case_reassigned")
        assert [(e["from_agent_id"], e["to_agent_id"], e["reason"]) for e in events] == [(ada.id, bob.id, "agent_quiet")]
    assert "reassigned" in await w.kinds(conversation.id)

    assert [e for e in one.seen("sla_breached") if e["case_id"] == case.id] == []  # ada answered within 60 s

    await w.presence.went_away(bob.id)  # bob closes his console; ada is still quiet, so no one is free
    await w.presence.set_status(ada.id, "offline")
    assert (await one.loop.tick()).tick.reassigned == []  # bob's console may come back within offline_grace_s
    w.clock.advance(w.settings.reassign.offline_grace_s)
    first, second = await asyncio.gather(one.loop.tick(), two.loop.tick())
    [back] = first.tick.reassigned + second.tick.reassigned
    assert (back.decision.action, back.decision.reason, back.from_agent_id) == ("to_queue", "agent_offline", bob.id)
    now = await w.queue.get(case.id)
    assert (now.status, now.agent_id) == ("waiting", None)
    conv = await w.conversations.get(conversation.id)
    assert (conv.mode, conv.case_id) == ("waiting", case.id)
    assert await said(w, conversation.id, "reassigned") == [w.settings.business.text(k) for k in ("reassigned_agent", "reassigned_queue")]
    # Still waiting after its resolution target (3600 s): recorded once, shown to the consoles once.
    w.clock.advance(3600)
    await asyncio.gather(one.loop.tick(), two.loop.tick())
    await asyncio.gather(one.loop.tick(), two.loop.tick())
    for web in (one, two):
        assert [b["timer"] for b in web.seen("sla_breached") if b["case_id"] == case.id] == ["resolution"]
        await web.close()
    assert (await w.kinds(conversation.id)).count("sla_breached") == 1
    await bus.stop()


@pytest.mark.asyncio
async def test_first_response_breach_is_recorded_and_shown(world: World, stack: Stack) -> None:
    w = world
    web = await web_process(w, stack)
    conversation = await web.router.start_conversation("rest")
    await web.router.escalate(conversation, "customer_request", "asked for a person")
    case = await w.queue.open_case_for(conversation.id)
    assert case is not None
    assert (await web.loop.tick()).tick.breaches == []
    w.clock.advance(61)
    [breach] = (await web.loop.tick()).tick.breaches
    assert (breach.case_id, breach.timer, breach.target_s) == (case.id, "first_response", 60.0)
    assert [e["timer"] for e in web.seen("sla_breached")] == ["first_response"]
    assert (await web.loop.tick()).tick.breaches == []  # once
    await web.close()
    await web.bus.stop()


async def closed_with_followup(w: World, web: Web, agent: Account, email: str) -> tuple[Conversation, Case, int]:
    conversation, case = await with_agent(w, web, agent, team="complaints")
    await w.conversations.update_profile(conversation.id, email=email)
    case = await w.queue.close(case.id, agent.id, "resolved")
    await web.router.hand_back(case, agent, "resolved")  # real Rasa: resumed, the bot says it is back
    followup = await web.loop.care.timers.followups.schedule(case.id, created_by=agent.id)
    return conversation, case, followup.id


@pytest.mark.asyncio
async def test_followup_is_asked_in_the_chat_and_by_mail_and_no_reopens(world: World, stack: Stack, smtp: tuple[Inbox, int]) -> None:
    w = world
    inbox, _ = smtp
    web = await web_process(w, stack)
    ada = await w.agent("ada", ["complaints"])
    conversation, case, followup_id = await closed_with_followup(w, web, ada, "Carol.Customer@example.org")
    assert (await w.conversations.get(conversation.id)).mode == "bot"
    assert (await web.loop.tick()).asked == []  # due in an hour
    w.clock.advance(3601)
    [asked] = (await web.loop.tick()).asked
    assert (asked.followup.id, asked.mailed_to) == (followup_id, "carol.customer@example.org")
    [question] = [m for m in await w.conversations.messages_since(conversation.id, 0) if m.data.get("kind") == "followup_question"]
    business = w.settings.business
    assert question.text == business.text("followup_question")
    assert question.data["buttons"] == [{"title": business.text("followup_yes"), "payload": YES},
                                        {"title": business.text("followup_no"), "payload": NO}]
    # The outbox was drained in the same tick: the mail is in the SMTP server.
    [mail] = inbox.received
    assert mail["To"] == "carol.customer@example.org"
    assert mail["Subject"] == f"Was your problem solved? (request #{case.id})"
    assert business.text("followup_question") in mail.get_content()
    assert web.seen("followup_asked")
    assert (await web.loop.tick()).asked == []  # asked once

    turn = await web.router.customer_turn(conversation.id, business.text("followup_no"), NO)
    assert [m.data.get("kind") for m in turn.replies] == ["followup_reopened"]
    reopened = await w.queue.open_case_for(conversation.id)
    assert reopened is not None and reopened.id != case.id
    assert (reopened.status, reopened.team, reopened.reason) == ("waiting", "complaints", "follow_up_unsolved")
    conv = await w.conversations.get(conversation.id)
    assert (conv.mode, conv.case_id) == ("waiting", reopened.id)
    tracker = await web.router.rasa.tracker(conversation.id)
    assert tracker["paused"] is True  # the bot keeps quiet while the person takes it
    assert (await web.loop.care.timers.followups.get(followup_id)).status == "reopened"
    again = await web.router.customer_turn(conversation.id, business.text("followup_no"), NO)  # a stale button
    assert [m.text for m in again.replies] == ["Thanks, we already have your answer."]
    await web.close()
    await web.bus.stop()


@pytest.mark.asyncio
async def test_followup_yes_closes_the_loop_and_telegram_gets_no_mail(world: World, stack: Stack, smtp: tuple[Inbox, int]) -> None:
    w = world
    inbox, _ = smtp
    web = await web_process(w, stack)
    ada = await w.agent("ada", ["complaints"])
    conversation, case, followup_id = await closed_with_followup(w, web, ada, "dan@example.org")
    w.clock.advance(3601)
    [asked] = (await web.loop.tick()).asked
    assert asked.mailed_to == "dan@example.org"
    turn = await web.router.customer_turn(conversation.id, w.settings.business.text("followup_yes").upper())  # typed, not tapped
    assert [m.text for m in turn.replies] == [w.settings.business.text("followup_solved")]
    assert (await web.loop.care.timers.followups.get(followup_id)).status == "solved"
    assert await w.queue.open_case_for(conversation.id) is None
    assert (await w.conversations.get(conversation.id)).mode == "bot"
    # A Telegram customer is reached by Telegram itself: the question is not mailed.
    telegram = await web.router.start_conversation("telegram", "tg-555", "Erin")
    await w.conversations.update_profile(telegram.id, email="erin@example.org")
    tg_case = await w.queue.open_case(telegram.id, "telegram", "customer_request", team="complaints")
    await w.queue.claim(tg_case.id, ada.id)
    await w.queue.close(tg_case.id, ada.id, "resolved")
    await web.loop.care.timers.followups.schedule(tg_case.id, delay_s=0)
    [asked] = (await web.loop.tick()).asked
    assert (asked.followup.conversation_id, asked.mailed_to) == (telegram.id, None)
    assert [m["To"] for m in inbox.received] == ["dan@example.org"]
    await web.close()
    await web.bus.stop()


@pytest.mark.asyncio
async def test_retention_is_applied_by_the_loop_at_its_interval(world: World, stack: Stack) -> None:
    import sqlalchemy as sa

    from conversations.store import UnknownConversation, conversations
    from core.settings import CustomerSettings

    w = world
    web = await web_process(w, stack)
    settings = w.settings.replace(customers=CustomerSettings(retention_days=30, retention_interval_s=3600.0))
    web.loop.care.apply_retention = DataRights(sync_engine(settings), settings, clock=w.clock).apply_retention
    old, recent = await web.router.start_conversation("rest"), await web.router.start_conversation("rest")
    for conversation in (old, recent):
        await w.conversations.add_message(conversation.id, "customer", f"my address is 1 Main St ({conversation.id})")
    async with w.engine.begin() as conn:  # untouched for 40 days
        await conn.execute(conversations.update().where(conversations.c.id == old.id).values(updated_at=w.clock() - 40 * 86400))
    assert (await web.loop.tick()).retained == 1
    with pytest.raises(UnknownConversation):
        await w.conversations.get(old.id)
    assert await w.conversations.messages_since(old.id, 0) == []
    assert [m.text for m in await w.conversations.messages_since(recent.id, 0)] == [f"my address is 1 Main St ({recent.id})"]
    async with w.engine.begin() as conn:
        await conn.execute(conversations.update().where(conversations.c.id == recent.id).values(updated_at=w.clock() - 40 * 86400))
    assert (await web.loop.tick()).retained == 0  # not again before retention_interval_s
    w.clock.advance(3601)
    assert (await web.loop.tick()).retained == 1
    async with w.engine.connect() as conn:
        assert (await conn.execute(sa.select(sa.func.count()).select_from(conversations))).scalar() == 0
    await web.close()
    await web.bus.stop()
