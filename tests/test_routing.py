"""Routing: teams from the case's signals, priority (tier, sentiment, aging), presence and
capacity, auto-assignment to the longest-idle agent of the right team, team fallback, business
hours and the waiting customer's position updates.

The dispatcher runs against the real router, conversation store, event log and bus on a real
database; Rasa is simply not running here (the router tolerates that by design), so these
tests need no trained model. The full path through Rasa is in test_tickets / test_console_browser.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import sqlalchemy as sa

from conversations.store import ConversationStore
from bot.rasa_client import RasaClient
from bot.router import Router
from core.bus import Bus
from core.db import async_engine
from server.schema import create_schema
from conversations.events import EventLog
from core.settings import OpeningHours, Settings, load_settings
from handoff.assignment import CaseAssignment
from handoff.accounts import Account, Accounts
from handoff.dispatch import Dispatcher, estimate_wait
from handoff.hours import BusinessHours
from handoff.presence import Presence, PresenceError
from handoff.services import WaitingRoom
from handoff.queue import AgentFull, CaseQueue
from handoff.routing import RoutingRules, category_of, sentiment_severity
from handoff.schema import cases
from tests.conftest import Stack, free_port, postgres_url, stack_settings, wait_until


# -- pure rules ------------------------------------------------------------------------------
def rules(**overrides: Any) -> RoutingRules:
    """Rules from settings given as tandem.yml would give them (plain YAML lists and mappings)."""
    return RoutingRules(load_settings(env={"TANDEM_CONFIG": "/nonexistent"}, **overrides))


def test_team_from_reason_intent_and_faq_category() -> None:
    r = rules()
    assert r.team_for("complaint", {}) == "complaints"
    assert r.team_for("customer_request", {"nlu": {"intent": "complain"}}) == "complaints"
    low = {"candidates": [{"faq_id": "refunds-how-long", "score": 0.41}, {"faq_id": "orders-track-order", "score": 0.3}]}
    assert r.team_for("low_faq_confidence", low) == "billing"  # the best candidate decides
    assert r.team_for("low_faq_confidence", {"candidates": [{"faq_id": "shipping-costs"}]}) == "shipping"
    assert r.team_for("low_faq_confidence", {"candidates": [{"faq_id": "warranty-claim"}]}) == "technical"
    assert r.team_for("customer_request", {"category": "returns"}) == "shipping"
    assert r.team_for("customer_request", {"candidates": []}) is None  # any team
    assert category_of("loyalty-points-expire") == "loyalty"


def test_team_from_the_policy_reasons() -> None:
    """The escalation policy's reason codes (actions/policy.py) reach the right people."""
    r = rules()
    assert r.team_for("negative_sentiment", {"candidates": [{"faq_id": "shipping-costs"}]}) == "complaints"
    assert r.team_for("frustration", {}) == "complaints"
    fraud = {"reasons": [{"code": "sensitive_topic", "values": {"topic": "fraud", "phrase": "stolen card"}}]}
    assert r.team_for("sensitive_topic", fraud) == "billing"
    safety = {"reasons": [{"code": "sensitive_topic", "values": {"topic": "safety", "phrase": "caught fire"}}]}
    assert r.team_for("sensitive_topic", safety) == "technical"
    assert r.team_for("sensitive_topic", {"reasons": [], "candidates": [{"faq_id": "refunds-how-long"}]}) == "billing"


def test_custom_teams_setting() -> None:
    r = rules(teams={"money": ["payments", "refunds"], "everything_else": ["orders"]})
    assert r.team_names() == ["money", "everything_else"]
    assert r.team_for("complaint", {}) is None  # no complaints team configured: any team
    assert r.team_for("x", {"candidates": [{"faq_id": "payments-methods"}]}) == "money"
    with pytest.raises(ValueError):
        rules(teams={"money": "payments,refunds"})  # a list of categories, not a string to parse
    with pytest.raises(ValueError):
        rules(routing_teams="money:payments")  # the old string setting is gone, and says so


def test_priority_from_tier_and_sentiment() -> None:
    r = rules(tiers={"platinum": {"priority": 30}, "gold": {"priority": 20, "escalate_sooner": True}, "silver": {"priority": 10}})
    calm = r.classify("customer_request", {}, {})
    gold = r.classify("customer_request", {}, {"tier": "Gold"})
    upset = r.classify("customer_request", {"sentiment": {"label": "negative", "score": 0.95}}, {})
    complaint = r.classify("complaint", {}, {"tier": "silver"})
    assert (calm.priority, gold.priority, gold.tier) == (0, 20, "gold")
    assert upset.severity == 3 and upset.priority == 30
    assert complaint.severity == 1 and complaint.priority == 10 + 10 and complaint.team == "complaints"
    assert [sentiment_severity(v) for v in (0.4, -0.3, -0.6, -0.9, "angry", None)] == [0, 1, 2, 3, 0, 0]


def test_business_hours_with_time_zone() -> None:
    hours = BusinessHours((OpeningHours("mon-fri", "09:00", "17:00"), OpeningHours("sat", "10:00", "13:00")), "Europe/Berlin")
    berlin = hours.zone
    assert hours.is_open(dt.datetime(2024, 7, 3, 9, 0, tzinfo=berlin))  # Wednesday
    assert not hours.is_open(dt.datetime(2024, 7, 3, 17, 0, tzinfo=berlin))
    assert hours.is_open(dt.datetime(2024, 7, 6, 12, 59, tzinfo=berlin))  # Saturday
    assert not hours.is_open(dt.datetime(2024, 7, 7, 12, 0, tzinfo=berlin))  # Sunday
    # 07:30 UTC is 09:30 in Berlin (summer time): open, although 07:30 is before 09:00.
    assert hours.is_open(dt.datetime(2024, 7, 3, 7, 30, tzinfo=dt.timezone.utc))
    assert hours.next_opening(dt.datetime(2024, 7, 6, 14, 0, tzinfo=berlin)) == dt.datetime(2024, 7, 8, 9, 0, tzinfo=berlin)
    assert BusinessHours((), "UTC").is_open() and BusinessHours((), "UTC").next_opening() is None
    assert BusinessHours((OpeningHours("fri-mon", "22:00", "24:00"),), "UTC").is_open(dt.datetime(2024, 7, 7, 23, 0, tzinfo=dt.timezone.utc))  # Sunday wraps
    for bad in (OpeningHours("weekdays", "9", "5"), OpeningHours("mon", "17:00", "09:00"), OpeningHours("xyz", "09:00", "10:00"), OpeningHours("mon", "25:00", "26:00")):
        with pytest.raises(ValueError):
            BusinessHours((bad,), "UTC")
    with pytest.raises(ValueError):
        BusinessHours((), "Mars/Olympus")
    # tandem.yml's form: a list of mappings
    loaded = load_settings(env={"TANDEM_CONFIG": "/nonexistent"}, business_hours=[{"days": "sat", "open": "10:00", "close": "13:00"}])
    assert loaded.business_hours == (OpeningHours("sat", "10:00", "13:00"),)


# -- against a real database -----------------------------------------------------------------
@dataclass
class World:
    settings: Settings
    engine: Any
    queue: CaseQueue
    router: Router
    presence: Presence
    dispatcher: Dispatcher
    accounts: Accounts
    conversations: ConversationStore

    async def agent(self, username: str, teams: list[str] | None = None, capacity: int = 2, status: str = "online") -> Account:
        account = await self.accounts.create(username, "pw-" + username, "agent", username.title())
        await self.presence.configure(account.id, teams=teams, capacity=capacity)
        await self.presence.set_status(account.id, status)
        return account

    async def escalate(self, reason: str = "customer_request", signals: dict[str, Any] | None = None, profile: dict[str, Any] | None = None) -> int:
        conversation = await self.conversations.create("rest", profile=profile or {})
        await self.router.escalate(conversation, reason, "test escalation", signals or {})
        found = await self.queue.open_case_for(conversation.id)
        assert found is not None
        return found.id


async def make_world(settings: Settings) -> World:
    await asyncio.to_thread(create_schema, settings)
    engine = async_engine(settings)
    queue = CaseQueue(engine, settings.aging_per_minute)
    conversations = ConversationStore(engine)
    bus = Bus()
    # No Rasa listens on this port: the router keeps the database story and logs the miss.
    waiting = WaitingRoom.build(engine, settings)
    router = Router(settings, conversations, queue, RasaClient(f"http://127.0.0.1:{free_port()}", 1.0, "test-token"), EventLog(engine), bus, waiting)
    presence = waiting.presence
    return World(settings, engine, queue, router, presence, Dispatcher(settings, queue, presence, CaseAssignment(queue, router, bus)), Accounts(engine, 8), conversations)


@pytest_asyncio.fixture(params=["sqlite", "postgresql"])
async def world(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[World]:
    overrides: dict[str, Any] = {"team_fallback_s": 60.0, "queue_update_interval_s": 0.0}
    if request.param == "postgresql":
        overrides["database_url"] = postgres_url("tandem_test_routing")
    w = await make_world(stack_settings(tmp_path, **overrides))
    try:
        yield w
    finally:
        await w.router.rasa.close()
        await w.engine.dispose()


async def transcript_texts(w: World, case_id: int) -> list[str]:
    case = await w.queue.get(case_id)
    return [m["text"] for m in await w.router.transcript(case.conversation_id)]


@pytest.mark.asyncio
async def test_auto_assign_by_team_and_capacity(world: World) -> None:
    w = world
    billing = await w.agent("bill", teams=["billing"], capacity=1)
    shipper = await w.agent("ship", teams=["shipping"], capacity=1)
    refund = await w.escalate("low_faq_confidence", {"candidates": [{"faq_id": "refunds-how-long", "score": 0.4}]})
    parcel = await w.escalate("low_faq_confidence", {"candidates": [{"faq_id": "shipping-costs", "score": 0.4}]})
    extra = await w.escalate("low_faq_confidence", {"candidates": [{"faq_id": "payments-methods", "score": 0.4}]})
    assigned = await w.dispatcher.tick()
    assert {c.id: c.agent_id for c in assigned} == {refund: billing.id, parcel: shipper.id}
    assert (await w.queue.get(extra)).status == "waiting"  # billing's only seat is taken
    assert "Bill from our support team has joined the chat." in await transcript_texts(w, refund)
    conversation = await w.conversations.get((await w.queue.get(refund)).conversation_id)
    assert conversation.mode == "human"

    await w.queue.close(refund, billing.id, "resolved")
    assert [c.id for c in await w.dispatcher.tick()] == [extra]  # the freed seat is used at once
    state = await w.presence.get(billing.id)
    assert (state.active, state.free_seats) == (1, 0)


@pytest.mark.asyncio
async def test_longest_idle_agent_first_and_away_agents_skipped(world: World) -> None:
    w = world
    first = await w.agent("first", capacity=3)
    second = await w.agent("second", capacity=3)
    await w.agent("resting", capacity=3, status="away")
    one = await w.escalate()
    assert [c.agent_id for c in await w.dispatcher.tick()] in ([first.id], [second.id])
    two = await w.escalate()
    got_one = (await w.queue.get(one)).agent_id
    [taken] = await w.dispatcher.tick()
    assert taken.id == two and taken.agent_id != got_one  # the other one has been idle longer


@pytest.mark.asyncio
async def test_team_fallback_after_wait(world: World) -> None:
    w = world
    shipper = await w.agent("ship", teams=["shipping"], capacity=2)
    complaint = await w.escalate("complaint")
    assert await w.dispatcher.tick() == []  # no complaints agent: wait for the team first
    async with w.engine.begin() as conn:  # the case has now waited longer than team_fallback_s
        await conn.execute(cases.update().where(cases.c.id == complaint).values(created_at=time.time() - 61))
    [taken] = await w.dispatcher.tick()
    assert (taken.id, taken.agent_id, taken.team) == (complaint, shipper.id, "complaints")


@pytest.mark.asyncio
async def test_priority_and_aging_order_the_queue(world: World) -> None:
    w = world
    calm = await w.escalate()
    gold = await w.escalate(profile={"tier": "gold"})
    assert [c.id for c in await w.queue.list("waiting")] == [gold, calm]  # 20 points jump the queue
    assert await w.queue.position(calm) == 2
    async with w.engine.begin() as conn:  # calm has waited 21 minutes: 21 aging points > 20 tier points
        await conn.execute(cases.update().where(cases.c.id == calm).values(created_at=time.time() - 21 * 60))
    assert [c.id for c in await w.queue.list("waiting")] == [calm, gold]
    assert await w.queue.positions() == {calm: 1, gold: 2}
    agent = await w.agent("solo", capacity=1)
    [taken] = await w.dispatcher.tick()
    assert (taken.id, taken.agent_id) == (calm, agent.id)  # the starving case goes first


@pytest.mark.asyncio
async def test_presence_goes_stale_and_validates(world: World) -> None:
    w = world
    agent = await w.agent("sleepy")
    assert [a.username for a in await w.presence.available()] == ["sleepy"]
    stale = Presence(w.engine, w.settings.replace(presence_timeout_s=0.0))
    await asyncio.sleep(0.01)
    assert await stale.available() == []  # a console that stopped checking in is offline
    assert (await stale.get(agent.id)).effective_status == "offline"
    with pytest.raises(PresenceError):
        await w.presence.set_status(agent.id, "busy")
    with pytest.raises(PresenceError):
        await w.presence.configure(agent.id, teams=["astronauts"])
    with pytest.raises(PresenceError):
        await w.presence.configure(agent.id, capacity=-1)


@pytest.mark.asyncio
async def test_assign_refuses_a_full_agent(world: World) -> None:
    w = world
    agent = await w.agent("full", capacity=1)
    first, second = await w.escalate(), await w.escalate()
    await w.queue.assign(first, agent.id, 1)
    with pytest.raises(AgentFull):
        await w.queue.assign(second, agent.id, 1)
    assert (await w.queue.get(second)).status == "waiting"


@pytest.mark.asyncio
async def test_waiting_customer_hears_position_and_wait(world: World) -> None:
    w = world
    first = await w.escalate()
    second = await w.escalate()
    third = await w.escalate()
    texts = await transcript_texts(w, third)
    assert any(t.startswith("You're number 3 in the queue") and "No one from our team is online" in t for t in texts)
    # Someone claims the first case: the others move up and are told so, once.
    claimer = await w.accounts.create("claimer", "pw-claimer", "agent", "Claire")
    await w.queue.claim(first, claimer.id)
    await w.dispatcher.notify_positions()
    await w.dispatcher.notify_positions()
    assert (await transcript_texts(w, second)).count("You're now number 1 in the queue.") == 1
    assert [t for t in await transcript_texts(w, third) if t.startswith("You're now")] == ["You're now number 2 in the queue."]
    # With an agent online the estimate appears (no history yet: the default handling time).
    await w.agent("busy", capacity=1)
    await w.queue.assign(second, (await w.accounts.by_username("busy")).id, 1)  # type: ignore[union-attr]
    await w.dispatcher.notify_positions()
    assert (await transcript_texts(w, third))[-1].startswith("You're now number 1 in the queue. Estimated wait: about 5 minutes")


def test_estimate_wait() -> None:
    from handoff.presence import AgentState

    def state(capacity: int, active: int) -> AgentState:
        return AgentState(1, "a", "A", "agent", "online", ("billing",), capacity, 0.0, 0.0, active, True)

    assert estimate_wait(1, [], None) is None
    assert estimate_wait(1, [state(2, 1)], None) == 30.0  # a free seat: moments
    assert estimate_wait(3, [state(2, 2)], 120.0) == 180.0  # 3 ahead, 2 seats of 2-minute chats


@pytest.mark.asyncio
async def test_unannounced_assignment_is_announced_after_restart(tmp_path: Path) -> None:
    """A crash between the assignment and the customer being told: the next process repairs it."""
    settings = stack_settings(tmp_path)
    w = await make_world(settings)
    try:
        agent = await w.agent("lost", capacity=1)
        case_id = await w.escalate()
        await w.queue.assign(case_id, agent.id, 1)  # ... and the process dies here
    finally:
        await w.router.rasa.close()
        await w.engine.dispose()
    again = await make_world(settings)  # the restarted process
    try:
        await again.dispatcher.announce_pending(grace_s=0.0)
        assert "Lost from our support team has joined the chat." in await transcript_texts(again, case_id)
        assert await again.queue.unannounced() == []
        async with again.engine.connect() as conn:
            mode = (await conn.execute(sa.text("SELECT mode FROM conversations"))).scalar_one()
        assert mode == "human"
    finally:
        await again.router.rasa.close()
        await again.engine.dispose()


# -- through the running stack (real Rasa, actions, web process) ------------------------------
def test_auto_assignment_through_the_stack(stack: Stack) -> None:
    """An online agent gets the case without claiming; the customer is told who joined.

    Earlier tests in the session may have left cases waiting; they are older, so (aging) they
    go first: the agent gets enough seats for all of them plus ours, and closes them after.
    """
    agent, boss = stack.login("agent2"), stack.login("supervisor")
    me = agent.get("/me").json()["account"]
    # Cases other tests of the session left waiting (the fault suite leaves dozens) would be
    # assigned first (aging) and can outnumber the 50 seats an agent may have: set them aside.
    from core.db import sync_engine
    engine = sync_engine(stack.settings)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE cases SET status = 'cancelled', resolution = 'set aside by a test' WHERE status = 'waiting'"))
    engine.dispose()
    busy = len(agent.get("/cases", status="mine").json()["cases"])  # chats other tests left with agent2
    seats = stack.http.put(f"/api/agent/agents/{me['id']}", headers=boss.headers, json={"capacity": min(50, busy + 1)})
    assert seats.status_code == 200, seats.text
    try:
        assert agent.post("/presence", {"status": "online"}).json()["presence"]["effective_status"] == "online"
        customer = stack.new_conversation()
        reply = customer.say("I want to talk to a person")
        queued = [r for r in reply["replies"] if r.get("kind") == "queued"][0]
        assert "No one from our team is online" not in queued["text"]
        joined = wait_until(lambda: [m for m in customer.messages() if m.get("kind") == "agent_joined"], timeout=30)
        assert joined[0]["agent_name"] == "Sam Support"
        case = agent.case_for(customer.conversation_id, status="mine")
        assert case["assigned_by"] == "auto"
        assert agent.post(f"/cases/{case['id']}/messages", {"text": "Hi, Sam here."}).status_code == 201
    finally:
        assert agent.post("/presence", {"status": "offline"}).status_code == 200
        for mine in agent.get("/cases", status="mine").json()["cases"]:
            agent.post(f"/cases/{mine['id']}/close", {"resolution": "other"})
        stack.http.put(f"/api/agent/agents/{me['id']}", headers=boss.headers, json={"capacity": 3})
    assert agent.post("/presence", {"status": "napping"}).status_code == 400


def test_context_suggestions_notes_canned(stack: Stack) -> None:
    customer = stack.new_conversation()
    customer.say("how can I track my order?")  # answered: the bot's candidates are recorded
    customer.say("I want to talk to a person")
    customer.say("how long does a refund take?")  # typed while waiting
    agent = stack.login("agent")
    case = agent.case_for(customer.conversation_id)
    context = agent.get(f"/cases/{case['id']}/context").json()
    assert context["conversation"]["channel"] == "rest" and context["conversation"]["mode"] == "waiting"
    assert context["escalation"]["reason"] == case["reason"] and context["escalation"]["detail"]
    # The FAQ candidates the bot weighed: on the escalation itself or on the misses before it.
    weighed = context["escalation"]["candidates"] or [c for t in context["turns"] for c in t.get("candidates", [])]
    assert weighed and all({"faq_id", "score"} <= set(c) for c in weighed)
    assert "intent" in context["escalation"]["nlu"]
    assert [t["kind"] for t in context["turns"]].count("escalated") == 1
    answered = [t for t in context["turns"] if t["kind"] == "answered"][0]
    assert answered["faq_id"] == "orders-track-order" and answered["nlu"]["intent"]
    assert "how long does a refund take?" in [m["text"] for m in context["transcript"]]
    # The agent sees the sentiment of the messages the bot handled (never shown to the customer).
    first = next(m for m in context["transcript"] if m["text"] == "how can I track my order?")
    assert isinstance(first.get("sentiment"), dict) and "score" in first["sentiment"]
    shown = customer.stack.http.get(f"/api/conversations/{customer.conversation_id}/messages", params={"after": 0},
                                    headers={"Authorization": f"Bearer {customer.token}"}).json()["messages"]
    assert all("sentiment" not in m for m in shown)

    suggestions = agent.get(f"/cases/{case['id']}/suggestions").json()
    assert suggestions["query"] == "how long does a refund take?"
    assert suggestions["suggestions"][0]["faq_id"].startswith("refunds-")

    note = agent.post(f"/cases/{case['id']}/notes", {"text": "VIP, be gentle"})
    assert note.status_code == 201
    assert [n["text"] for n in agent.get(f"/cases/{case['id']}/notes").json()["notes"]] == ["VIP, be gentle"]
    assert all(m["text"] != "VIP, be gentle" for m in customer.messages())  # never reaches the customer
    assert agent.post(f"/cases/{case['id']}/notes", {"text": "  "}).status_code == 400

    canned = agent.get("/canned").json()["canned"]
    assert canned and {"title", "text"} <= set(canned[0])
    added = agent.post("/canned", {"title": "Refund time", "text": "Refunds take 5-10 working days."})
    assert added.status_code == 201
    supervisor = stack.login("supervisor")
    deleted = stack.http.delete(f"/api/agent/canned/{added.json()['canned']['id']}", headers=supervisor.headers)
    assert deleted.status_code == 200
    refused = stack.http.delete(f"/api/agent/canned/{canned[0]['id']}", headers=agent.headers)
    assert refused.status_code == 403
    assert agent.post(f"/cases/{case['id']}/claim").status_code == 200
    assert agent.post(f"/cases/{case['id']}/close").status_code == 200


def test_transfer_to_team_and_supervisor_takeover(stack: Stack) -> None:
    customer = stack.new_conversation()
    customer.say("I want to talk to a person")
    alex, sam, boss = stack.login("agent"), stack.login("agent2"), stack.login("supervisor")
    case = alex.case_for(customer.conversation_id)
    assert alex.post(f"/cases/{case['id']}/claim").status_code == 200
    assert sam.post(f"/cases/{case['id']}/transfer", {"team": "billing"}).status_code == 409  # not Sam's
    assert alex.post(f"/cases/{case['id']}/transfer", {"team": "astrology"}).status_code == 400
    assert alex.post(f"/cases/{case['id']}/transfer", {}).status_code == 400
    moved = alex.post(f"/cases/{case['id']}/transfer", {"team": "billing", "note": "invoice question"})
    assert moved.status_code == 200, moved.text
    assert moved.json()["case"]["status"] == "waiting" and moved.json()["case"]["team"] == "billing"
    last = customer.messages()[-1]
    assert last["kind"] == "transferred" and "billing team" in last["text"]
    notes = sam.get(f"/cases/{case['id']}/notes").json()["notes"]
    assert notes[-1]["kind"] == "transfer" and "invoice question" in notes[-1]["text"]

    assert sam.post(f"/cases/{case['id']}/claim").status_code == 200
    assert alex.post(f"/cases/{case['id']}/takeover").status_code == 403  # agents cannot
    taken = boss.post(f"/cases/{case['id']}/takeover")
    assert taken.status_code == 200 and taken.json()["case"]["agent_name"] == "Pat Supervisor"
    assert customer.messages()[-1]["agent_name"] == "Pat Supervisor"
    assert sam.post(f"/cases/{case['id']}/messages", {"text": "still mine?"}).status_code == 409
    assert boss.post(f"/cases/{case['id']}/messages", {"text": "Pat here, I'll finish this."}).status_code == 201
    assert boss.post(f"/cases/{case['id']}/close", {"resolution": "resolved"}).status_code == 200
    assert customer.say("how can I track my order?")["mode"] == "bot"


def test_supervisor_configures_teams_and_capacity(stack: Stack) -> None:
    boss, alex = stack.login("supervisor"), stack.login("agent")
    agents = boss.get("/agents").json()
    me = alex.get("/me").json()["account"]
    assert set(agents["teams"]) == {"billing", "shipping", "technical", "complaints"}
    put = lambda who, body: stack.http.put(f"/api/agent/agents/{me['id']}", headers=who.headers, json=body)  # noqa: E731
    assert put(alex, {"capacity": 9}).status_code == 403
    assert put(boss, {"teams": ["nope"]}).status_code == 400
    assert put(boss, {"capacity": "lots"}).status_code == 400
    done = put(boss, {"teams": ["billing", "shipping"], "capacity": 4}).json()["agent"]
    assert (done["teams"], done["capacity"]) == (["billing", "shipping"], 4)
    restored = put(boss, {"teams": agents["teams"], "capacity": 3}).json()["agent"]
    assert restored["capacity"] == 3
