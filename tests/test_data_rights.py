"""Data rights: export everything about one customer, erase it, and prove nothing is left.

Real parts: every room's real stores write the data (conversations, the event log, cases,
notes, tickets, mail outbox, follow-ups, SLA breaches, customers) and Rasa's own SQLTrackerStore
writes tracker rows where `./tandem up` keeps them (var/rasa-tracker.db on SQLite, the Tandem
database on PostgreSQL). After the erasure every text column of every table in the database
(and in Rasa's file) is scanned for the customer's identifiers, while a second customer's
data must survive untouched.
"""
from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import sqlalchemy as sa

from conversations.store import ConversationStore
from core.db import async_engine, metadata, sync_engine
from server.schema import create_schema
from conversations.events import EventLog
from core.settings import FollowupSettings, MailSettings, Settings, SlaSettings, SlaTarget
from privacy.data_rights import DataRights, OpenCaseError, default_registry
from customers.store import CustomerStore
from handoff.accounts import Accounts
from handoff.followup import Followups
from handoff.notes import NoteStore
from handoff.queue import CaseQueue
from handoff.sla import SlaMonitor
from handoff.tickets import TicketStore
from mail.message import OutboundMail
from mail.outbox import Outbox
from tests.conftest import postgres_url, stack_settings


@dataclass
class Person:
    customer_id: int
    conversation_ids: list[str]
    needles: list[str]  # strings that must not survive an erasure


async def rasa_tracker(settings: Settings, conversation_id: str, texts: list[str]) -> None:
    """Write a tracker with Rasa's own SQLTrackerStore, configured as server/processes.py configures it."""
    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.shared.core.events import UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    if settings.is_postgres:
        url = sa.engine.make_url(settings.sqlalchemy_url)
        store = SQLTrackerStore(dialect="postgresql", host=url.host, port=url.port, db=url.database, username=url.username or "")
    else:
        store = SQLTrackerStore(dialect="sqlite", db=str(settings.var_dir / "rasa-tracker.db"))
    tracker = DialogueStateTracker.from_events(conversation_id, [UserUttered(t) for t in texts])
    await store.save(tracker)
    store.engine.dispose()


async def make_person(settings: Settings, engine: Any, tag: str, agent_id: int) -> Person:
    """A customer with a Telegram conversation and a widget conversation, touching every room."""
    email, phone, name = f"{tag}.person@example.org", f"+4930{abs(hash(tag)) % 10**7:07d}", f"Name{tag.title()}"
    tg_user = f"77{abs(hash(tag + 'tg')) % 10**8:08d}"
    store = CustomerStore(engine)
    conversations = ConversationStore(engine)
    customer = await store.get_or_create_by_identity("telegram", tg_user, name)
    customer = await store.update(customer.id, email=email, phone=phone, tier="gold", notes=f"prefers mornings {tag}")
    await store.add_identity(customer.id, f"site:demo", f"site-user-{tag}", verified=True)
    telegram = await conversations.get_or_create_external("telegram", tg_user, name)  # linked by identity only
    web = await conversations.create("widget", customer_name=name, profile={"tier": "gold", "email": email})
    await store.link_conversation(customer.id, web.id, "identity")
    events, queue = EventLog(engine), CaseQueue(engine)
    for conv in (telegram, web):
        await conversations.add_message(conv.id, "customer", f"my address is {email}, call {phone}")
        await conversations.add_message(conv.id, "bot", f"Thanks {name}")
        await events.record(conv.id, "answered", conv.channel, faq_id="orders-track", query=f"where is order of {email}")
        await events.record(conv.id, "feedback", conv.channel, faq_id="orders-track", helpful=False, comment=f"{name} unhappy")
        await rasa_tracker(settings, conv.id, [f"hello I am {name}", f"mail me at {email}"])
    case = await queue.open_case(web.id, "widget", "complaint", detail=f"{name} is angry", signals={"email": email})
    await queue.claim(case.id, agent_id)
    await conversations.add_message(web.id, "agent", f"Hello {name}, on it")
    await NoteStore(engine).add(web.id, case.id, agent_id, f"{name} called twice from {phone}")
    await queue.close(case.id, agent_id, "resolved")
    tickets = TicketStore(engine)
    draft = await tickets.start_draft(telegram.id, "telegram", None, "shipping", "no_agents", f"question of {name}")
    ticket = await tickets.open(draft.id, email, [{"sender": "customer", "text": f"I am {name}"}])
    await tickets.add_reply(ticket.id, agent_id, f"Dear {name}, here you go")
    await Outbox(engine, MailSettings()).enqueue(OutboundMail(email, f"Your ticket, {name}", f"Hello {name}", "ticket_reply", telegram.id))
    follow = Followups(engine, queue, FollowupSettings(), clock=lambda: time.time() - 10)
    await follow.schedule(case.id, delay_s=0)
    sla = SlaMonitor(engine, SlaSettings(targets=(SlaTarget(first_response_s=0.0, resolution_s=0.0),)))
    assert await sla.sweep(closed_since=0.0)
    return Person(customer.id, [telegram.id, web.id], [email, phone, name, tg_user, f"site-user-{tag}", telegram.id, web.id,
                                                       f"prefers mornings {tag}"])


def text_columns(table: sa.Table) -> list[sa.Column]:
    return [c for c in table.columns if isinstance(c.type, (sa.String, sa.Text)) or "CHAR" in str(c.type).upper() or "TEXT" in str(c.type).upper()]


def scan(engine: sa.engine.Engine, needles: list[str]) -> list[str]:
    """Every (table.column: needle) where a needle still appears, in every table of the database."""
    hits = []
    reflected = sa.MetaData()
    reflected.reflect(bind=engine)
    assert reflected.tables, "reflected no tables"
    with engine.connect() as conn:
        for table in reflected.tables.values():
            for column in text_columns(table):
                for needle in needles:
                    query = sa.select(sa.func.count()).select_from(table).where(sa.cast(column, sa.Text).contains(needle, autoescape=True))
                    if conn.execute(query).scalar():
                        hits.append(f"{table.name}.{column.name}: {needle}")
    return hits


@pytest_asyncio.fixture(params=["sqlite", "postgresql"])
async def world(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[Settings, Any, Person, Person]]:
    overrides = {"database_url": postgres_url("tandem_test_rights")} if request.param == "postgresql" else {}
    settings = stack_settings(tmp_path, **overrides)
    await asyncio.to_thread(create_schema, settings)
    engine = async_engine(settings)
    agent = await Accounts(engine, 8).create("ada", "pw-ada-123", "agent", "Ada")
    try:
        alice = await make_person(settings, engine, "alice", agent.id)
        bob = await make_person(settings, engine, "bob", agent.id)
        yield settings, engine, alice, bob
    finally:
        await engine.dispose()


def all_stores(settings: Settings) -> list[sa.engine.Engine]:
    engines = [sync_engine(settings)]
    if not settings.is_postgres:
        engines.append(sa.create_engine(f"sqlite:///{settings.var_dir / 'rasa-tracker.db'}", future=True))
    return engines


def test_every_table_has_a_data_rights_handler(tmp_path: Path) -> None:
    create_schema(stack_settings(tmp_path))
    assert default_registry().uncovered(metadata) == []


@pytest.mark.asyncio
async def test_export_then_erase_leaves_nothing(world: tuple[Settings, Any, Person, Person]) -> None:
    settings, engine, alice, bob = world
    rights = DataRights(sync_engine(settings), settings)
    stores = all_stores(settings)
    before = sum((scan(e, alice.needles) for e in stores), [])
    # The scan can find things: before the erasure it sees alice in every room.
    for table in ("messages", "conversation_events", "events", "tickets", "ticket_replies", "case_notes", "mail_outbox", "customers",
                  "customer_identities", "cases"):
        assert any(h.startswith(f"{table}.") for h in before), (table, before)

    exported = await asyncio.to_thread(rights.export_customer, alice.customer_id)
    text = json.dumps(exported, default=str)
    assert set(exported["conversation_ids"]) == set(alice.conversation_ids)
    for needle in alice.needles:
        assert needle in text
    assert "bob.person@example.org" not in text
    assert set(exported["data"]) >= {"bot", "conversations", "handoff", "customers", "mail"}
    assert len(exported["data"]["bot"]["rasa_tracker.events"]) >= 4
    assert exported["data"]["handoff"]["followups"] and exported["data"]["handoff"]["sla_breaches"]

    live = await CaseQueue(engine).open_case(alice.conversation_ids[0], "telegram", "customer_request")
    with pytest.raises(OpenCaseError):
        await asyncio.to_thread(rights.erase_customer, alice.customer_id)  # not while someone is helping them
    assert sum((scan(e, alice.needles) for e in stores), [])  # nothing was erased by the refusal
    erasure = await asyncio.to_thread(rights.erase_customer, alice.customer_id, True)
    assert live.id not in [c.id for c in await CaseQueue(engine).list()]
    assert erasure.counts["conversations.messages"] == 5
    assert sum((scan(e, alice.needles) for e in stores), []) == []
    # Bob is untouched, everywhere.
    bob_left = sum((scan(e, bob.needles) for e in stores), [])
    assert {h.split(".")[0] for h in bob_left} == {h.split(".")[0] for h in before}
    with pytest.raises(KeyError):
        await asyncio.to_thread(rights.export_customer, alice.customer_id)
    for e in stores:
        e.dispose()


@pytest.mark.asyncio
async def test_retention_erases_old_conversations_only(world: tuple[Settings, Any, Person, Person]) -> None:
    settings, engine, alice, bob = world
    from conversations.store import conversations

    async with engine.begin() as conn:  # alice's conversations were last touched 40 days ago
        await conn.execute(conversations.update().where(conversations.c.id.in_(alice.conversation_ids))
                           .values(updated_at=time.time() - 40 * 86400))
    rights = DataRights(sync_engine(settings), settings.replace(customers=settings.customers.__class__(retention_days=30)))
    assert await asyncio.to_thread(rights.apply_retention) == 2
    stores = all_stores(settings)
    conversation_needles = [n for n in alice.needles if n in alice.conversation_ids] + ["where is order of alice"]
    assert sum((scan(e, conversation_needles) for e in stores), []) == []
    assert sum((scan(e, bob.conversation_ids) for e in stores), [])  # bob's recent ones stay
    assert await asyncio.to_thread(rights.apply_retention) == 0
    for e in stores:
        e.dispose()
