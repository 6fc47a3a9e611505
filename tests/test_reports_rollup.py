"""The reports' pre-aggregation (reports/rollup.py) gives exactly the figures computed straight
from the source tables (tests/reports_oracle.py), on a random history, for whole-day and partial-day
windows and every filter, and stays exact after what happens to a live system: late events in
past days, cases claimed/closed/transferred after the first report, a customer coming back, a
ticket, a conversation erased. On SQLite and PostgreSQL."""
from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from conversations.store import conversations
from core.db import sync_engine
from server.schema import create_schema
from conversations.events import conversation_events
from core.settings import load_settings
from handoff.schema import accounts, case_routing, cases, tickets
from reports import metrics, rollup
from tests import reports_oracle as direct
from reports.schema import case_facts, ensure_indexes, faq_days

DAY = 86400.0
T0 = 1_790_000_000.0 - (1_790_000_000.0 % DAY)  # a midnight UTC
CHANNELS = ("web", "telegram", "rest")
TEAMS = ("billing", "shipping")
KINDS = ("message_in", "answered", "feedback", "missed", "agent_message", "transferred")


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[sa.engine.Engine]:
    from tests.conftest import postgres_url

    url = "" if request.param == "sqlite" else postgres_url("tandem_reports_rollup")
    settings = load_settings(var_dir=tmp_path, database_url=url)
    create_schema(settings)
    engine = sync_engine(settings)
    ensure_indexes(engine)
    monkeypatch.setattr(rollup, "REFRESH_EVERY_S", 0.0)  # every figure checks for changes: nothing is stale
    try:
        yield engine
    finally:
        engine.dispose()


def _event(rng: random.Random, cid: str, channel: str, at: float) -> dict[str, Any]:
    kind = rng.choice(KINDS)
    data: dict[str, Any] = {}
    if kind in ("answered", "feedback"):
        data["faq_id"] = f"faq-{rng.randrange(5)}"
    if kind == "feedback":
        data["helpful"] = rng.choice([True, False, "yes"])  # "yes" is not JSON true: not helpful
    return {"conversation_id": cid, "kind": kind, "channel": channel, "data": json.dumps(data), "at": at}


def _history(engine: sa.engine.Engine, rng: random.Random) -> dict[str, Any]:
    with engine.begin() as conn:
        agents = [int(conn.execute(accounts.insert().values(username=f"a{i}", display_name=f"A{i}", password_hash="x", role="agent",
                                                            created_at=T0)).inserted_primary_key[0]) for i in range(3)]
        convs = []
        for i in range(60):
            channel, at = rng.choice(CHANNELS), T0 + rng.uniform(0, 6 * DAY)
            conn.execute(conversations.insert().values(id=f"v{i}", channel=channel, mode="bot", customer_name="", profile="{}",
                                                       created_at=at, updated_at=at))
            convs.append((f"v{i}", channel, at))
        evs = []
        for cid, channel, at in convs:
            for _ in range(rng.randrange(0, 8)):
                evs.append(_event(rng, cid, channel, at + rng.uniform(1, 3 * 3600)))
        conn.execute(conversation_events.insert(), evs)
        case_id = 0
        for cid, channel, at in rng.sample(convs, 30):
            created = at + rng.uniform(10, 600)
            for _ in range(rng.choice([1, 1, 2])):
                case_id += 1
                status = rng.choice(["closed", "closed", "cancelled", "assigned", "waiting"])
                claimed = created + rng.uniform(5, 300) if status in ("closed", "assigned") else None
                closed = (claimed or created) + rng.uniform(60, 3000) if status in ("closed", "cancelled") else None
                conn.execute(cases.insert().values(
                    id=case_id, conversation_id=cid, channel=channel, status=status, reason=rng.choice(["sentiment", "customer_request"]),
                    detail="", signals="{}", priority=0, agent_id=rng.choice(agents) if claimed else None, created_at=created,
                    claimed_at=claimed, closed_at=closed, resolution=rng.choice(["resolved", "customer_left"]) if closed else None))
                conn.execute(case_routing.insert().values(case_id=case_id, team=rng.choice(TEAMS), severity=0, announced=True))
                agent_events = [
                    {"conversation_id": cid, "kind": rng.choice(["agent_message", "transferred"]), "channel": channel, "data": "{}",
                     "at": created + rng.uniform(0, 3600)} for _ in range(rng.randrange(0, 4))]
                if agent_events:
                    conn.execute(conversation_events.insert(), agent_events)
                created = (closed or created) + rng.uniform(60, 5 * DAY)
    return {"agents": agents, "convs": convs, "cases": case_id}


def _rounded(value: Any) -> Any:
    """Compare figures field by field; means may differ in the last bits (summation order)."""
    if dataclasses.is_dataclass(value):
        return {f.name: _rounded(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, (list, tuple)):
        return [_rounded(v) for v in value]
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value


def _assert_same(engine: sa.engine.Engine, agents: list[int]) -> int:
    """Every rolled-up figure equals the direct one, for many scopes; returns how many were compared."""
    scopes = [
        metrics.Filters(T0, T0 + 10 * DAY), metrics.Filters(T0 + DAY, T0 + 3 * DAY),
        metrics.Filters(T0 + 0.4 * DAY, T0 + 4.7 * DAY),  # partial first and last days (FAQ edges from the log)
        metrics.Filters(T0 + 2.2 * DAY, T0 + 2.6 * DAY),  # inside one day
        metrics.Filters(T0, T0 + 10 * DAY, channel="telegram"), metrics.Filters(T0, T0 + 10 * DAY, team="billing"),
        metrics.Filters(T0, T0 + 10 * DAY, agent_id=agents[0]), metrics.Filters(T0, T0 + 10 * DAY, channel="web", team="shipping"),
    ]
    compared = 0
    with engine.connect() as conn:
        for f in scopes:
            pairs = [
                (metrics.containment(conn, f), direct.containment(conn, f)),
                (metrics.escalations(conn, f), direct.escalations(conn, f)),
                (metrics.faq(conn, f), direct.faq(conn, f)),
                (metrics.waiting(conn, f, 60), direct.waiting(conn, f, 60)),
                (metrics.handling(conn, f, 2 * DAY), direct.handling(conn, f, 2 * DAY)),
                (metrics.first_contact(conn, f, 2, T0 + 5 * DAY), direct.first_contact(conn, f, 2, T0 + 5 * DAY)),
                (metrics.first_contact(conn, f, 7, T0 + 30 * DAY), direct.first_contact(conn, f, 7, T0 + 30 * DAY)),
            ]
            for rolled, straight in pairs:
                assert _rounded(rolled) == _rounded(straight), (f, type(rolled).__name__)
                compared += 1
    return compared


def _logged(conn: sa.engine.Connection, conversation_id: str, kind: str) -> None:
    """The event the system writes with every change of a case or conversation (router, queue)."""
    conn.execute(conversation_events.insert().values(conversation_id=conversation_id, kind=kind, channel="web", data="{}", at=T0 + DAY))


@pytest.mark.parametrize("check", ["full", "events"])
def test_rollup_equals_the_direct_figures_before_and_after_changes(
        engine: sa.engine.Engine, check: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """`full`: changes made behind the event log's back, found by the full comparison; `events`:
    changes as the system makes them (each with its event), found by the quick check alone."""
    monkeypatch.setattr(rollup, "FULL_CHECK_EVERY_S", 0.0 if check == "full" else 1e9)
    logged = check == "events"
    rng = random.Random(7)
    world = _history(engine, rng)
    assert _assert_same(engine, world["agents"]) == 56
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(case_facts)).scalar_one() == world["cases"]
        assert conn.execute(sa.select(sa.func.sum(faq_days.c.served))).scalar_one() > 0
        # a sanity check that the figures are not trivially empty
        assert metrics.containment(conn, metrics.Filters(T0, T0 + 10 * DAY)).conversations > 20
        assert metrics.handling(conn, metrics.Filters(T0, T0 + 10 * DAY), 2 * DAY).closed > 3

    convs = world["convs"]
    with engine.begin() as conn:
        # late events: recorded now, dated in past days (FAQ days, first replies, "wrote")
        conn.execute(conversation_events.insert(), [_event(rng, cid, ch, at + 50) for cid, ch, at in convs[:25]] + [
            {"conversation_id": cid, "kind": "feedback", "channel": ch, "data": json.dumps({"faq_id": "faq-1", "helpful": True}),
             "at": at + 70} for cid, ch, at in convs[25:35]])
        # live cases move on: claimed, closed, transferred to another team
        open_cases = conn.execute(sa.select(cases.c.id, cases.c.created_at).where(cases.c.status.in_(("waiting", "assigned")))).all()
        assert open_cases, "the random history has open cases"
        for case_id, created in open_cases:
            conn.execute(cases.update().where(cases.c.id == case_id).values(
                status="closed", agent_id=world["agents"][1], claimed_at=created + 20, closed_at=created + 900, resolution="resolved"))
            if logged:
                owner = conn.execute(sa.select(cases.c.conversation_id).where(cases.c.id == case_id)).scalar_one()
                _logged(conn, owner, "handed_back")
        team = conn.execute(sa.select(case_routing.c.team).where(case_routing.c.case_id == 1)).scalar_one()
        conn.execute(case_routing.update().where(case_routing.c.case_id == 1).values(team="shipping" if team == "billing" else "billing"))
        if logged:
            _logged(conn, conn.execute(sa.select(cases.c.conversation_id).where(cases.c.id == 1)).scalar_one(), "transferred")
        # a customer comes back: a new case for an old conversation, after its last case closed
        cid, ch, at = conn.execute(sa.select(cases.c.conversation_id, cases.c.channel, cases.c.closed_at)
                                   .where(cases.c.closed_at.is_not(None)).order_by(cases.c.id).limit(1)).one()
        conn.execute(cases.insert().values(id=world["cases"] + 1, conversation_id=cid, channel=ch, status="closed", reason="sentiment",
                                           detail="", signals="{}", priority=0, agent_id=world["agents"][2], created_at=at + 3600,
                                           claimed_at=at + 3700, closed_at=at + 4000, resolution="resolved"))
        conn.execute(case_routing.insert().values(case_id=world["cases"] + 1, team="billing", severity=0, announced=True))
        if logged:
            _logged(conn, cid, "escalated")
        # a ticket for a bot-only conversation; a conversation erased with everything in it
        quiet = conn.execute(sa.select(conversations.c.id, conversations.c.channel).where(
            ~sa.exists().where(cases.c.conversation_id == conversations.c.id)).limit(2)).all()
        conn.execute(tickets.insert().values(conversation_id=quiet[0][0], channel=quiet[0][1], status="open", contact="a@b.example",
                                             created_at=T0 + DAY, updated_at=T0 + DAY))
        if logged:
            _logged(conn, quiet[0][0], "ticket_opened")
        gone = conn.execute(sa.select(cases.c.conversation_id).order_by(cases.c.id.desc()).limit(1)).scalar_one()
        case_ids = [r for (r,) in conn.execute(sa.select(cases.c.id).where(cases.c.conversation_id == gone))]
        conn.execute(case_routing.delete().where(case_routing.c.case_id.in_(case_ids)))
        conn.execute(cases.delete().where(cases.c.conversation_id == gone))
        conn.execute(conversation_events.delete().where(conversation_events.c.conversation_id == gone))
        conn.execute(conversations.delete().where(conversations.c.id == gone))
        if logged:  # erasure goes through the data-rights registry, which takes the facts with it
            from reports.schema import conversation_facts

            conn.execute(case_facts.delete().where(case_facts.c.conversation_id == gone))
            conn.execute(conversation_facts.delete().where(conversation_facts.c.id == gone))
        # and a brand-new conversation today
        conn.execute(conversations.insert().values(id="new", channel="web", mode="bot", customer_name="", profile="{}",
                                                   created_at=T0 + 2 * DAY, updated_at=T0 + 2 * DAY))
        conn.execute(conversation_events.insert().values(conversation_id="new", kind="message_in", channel="web", data="{}", at=T0 + 2 * DAY + 5))
    assert _assert_same(engine, world["agents"]) == 56


def test_two_refreshes_at_once_count_each_event_once(engine: sa.engine.Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """The FAQ days are added to under a compare-and-set of the watermark: concurrent refreshes
    (two web processes) never add the same events twice."""
    from concurrent.futures import ThreadPoolExecutor

    monkeypatch.setattr(rollup, "FULL_CHECK_EVERY_S", 0.0)
    rng = random.Random(3)
    world = _history(engine, rng)
    with ThreadPoolExecutor(4) as pool:
        for future in [pool.submit(rollup.refresh, engine, True) for _ in range(4)]:
            try:
                future.result()
            except sa.exc.OperationalError:  # SQLite: "database is locked" for a loser is acceptable, never a double count
                pass
    rollup.refresh(engine, force=True)
    assert _assert_same(engine, world["agents"]) == 56
