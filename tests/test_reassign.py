"""Reassignment when the assigned agent goes quiet or offline, with a controllable clock, on
SQLite and PostgreSQL."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from core.settings import ReassignSettings
from handoff.presence import AgentState
from handoff.reassign import Reassigner, decide
from tests.case_world import World, make_world


def state(account_id: int, teams: tuple[str, ...] = ("billing",), active: int = 0, capacity: int = 2, last: float = 0.0) -> AgentState:
    return AgentState(account_id, f"a{account_id}", f"A{account_id}", "agent", "online", teams, capacity, 0.0, last, active, True)


def test_decide_rules() -> None:
    rules = ReassignSettings(wait_s=120.0, team_wait_s={"complaints": 30.0})
    free = [state(2, last=50.0), state(3, last=10.0), state(4, teams=("shipping",)), state(5, active=2)]
    assert decide(rules, "billing", 1, True, None, 1000.0, free).action == "keep"  # nobody is waiting
    assert decide(rules, "billing", 1, True, 900.0, 1000.0, free).action == "keep"  # 100 s < 120 s
    moved = decide(rules, "billing", 1, True, 880.0, 1000.0, free)
    assert (moved.action, moved.reason, moved.to_agent_id) == ("to_agent", "agent_quiet", 3)  # idle longest, right team, a seat
    assert decide(rules, "complaints", 1, True, 960.0, 1000.0, free).action == "to_queue"  # 40 s > 30 s, no complaints agent
    offline = decide(rules, "billing", 1, False, None, 1000.0, free)
    assert (offline.action, offline.reason) == ("to_agent", "agent_offline")
    assert decide(ReassignSettings(target="queue"), "billing", 1, False, None, 0.0, free).action == "to_queue"
    assert decide(rules, "billing", 3, False, None, 0.0, [state(3)]).action == "to_queue"  # never back to the same agent


@pytest_asyncio.fixture(params=["sqlite", "postgresql"])
async def world(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[World]:
    w = await make_world(request.param, tmp_path, "tandem_test_reassign")
    try:
        yield w
    finally:
        await w.engine.dispose()


@pytest.mark.asyncio
async def test_quiet_agent_loses_the_case_to_the_next_free_agent(world: World) -> None:
    w = world
    ada = await w.agent("ada", ["billing"])
    case = await w.case()
    await w.queue.assign(case.id, ada.id, 3)
    bob = await w.agent("bob", ["billing"])
    reassigner = Reassigner(w.engine, w.presence, ReassignSettings(wait_s=120.0), clock=w.clock)
    assert await reassigner.sweep() == []  # just claimed
    await w.conversations.add_message(case.conversation_id, "agent", "Looking into it")
    await w.conversations.add_message(case.conversation_id, "customer", "thanks, any news?")
    w.clock.advance(100)  # the agent replied; the new question has waited 100 s of the 120 s
    assert await reassigner.sweep() == []
    w.clock.advance(30)
    [moved] = await reassigner.sweep()
    assert (moved.case_id, moved.from_agent_id, moved.decision.action, moved.decision.to_agent_id) == (case.id, ada.id, "to_agent", bob.id)
    now = await w.queue.get(case.id)
    assert (now.status, now.agent_id, now.assigned_by) == ("assigned", bob.id, "reassign")
    assert [c.id for c in await w.queue.unannounced()] == [case.id]  # the dispatcher will tell the customer who joined
    assert "reassigned" in await w.kinds(case.conversation_id)
    assert await reassigner.sweep() == []  # bob's clock starts at his assignment


@pytest.mark.asyncio
async def test_offline_agent_sends_the_case_back_to_the_queue(world: World) -> None:
    w = world
    ada = await w.agent("ada", ["billing"])
    case = await w.case()
    await w.queue.assign(case.id, ada.id, 3)
    reassigner = Reassigner(w.engine, w.presence, ReassignSettings(wait_s=600.0), clock=w.clock)
    assert await reassigner.sweep() == []
    await w.presence.went_away(ada.id)  # console closed
    assert await reassigner.sweep() == []  # a console may reconnect: offline_grace_s first
    w.clock.advance(ReassignSettings().offline_grace_s)
    [moved] = await reassigner.sweep()
    assert (moved.decision.action, moved.decision.reason) == ("to_queue", "agent_offline")
    now = await w.queue.get(case.id)
    assert (now.status, now.agent_id, now.team) == ("waiting", None, "billing")  # keeps its team, age and priority
    assert await w.queue.position(case.id) == 1


@pytest.mark.asyncio
async def test_per_team_wait_and_queue_target(world: World) -> None:
    w = world
    ada = await w.agent("ada", ["billing", "complaints"], capacity=5)
    await w.agent("bob", ["billing", "complaints"], capacity=5)
    billing, complaint = await w.case("billing"), await w.case("complaints")
    await w.queue.assign(billing.id, ada.id, 5)
    await w.queue.assign(complaint.id, ada.id, 5)
    reassigner = Reassigner(w.engine, w.presence, ReassignSettings(wait_s=300.0, team_wait_s={"complaints": 30.0}, target="queue"),
                            clock=w.clock)
    w.clock.advance(60)
    [moved] = await reassigner.sweep()
    assert (moved.case_id, moved.decision.action) == (complaint.id, "to_queue")
    assert (await w.queue.get(billing.id)).status == "assigned"


@pytest.mark.asyncio
async def test_two_processes_move_a_case_once(world: World) -> None:
    w = world
    ada = await w.agent("ada", ["billing"])
    cases = [await w.case() for _ in range(3)]
    for case in cases:
        await w.queue.assign(case.id, ada.id, 3)
    await w.agent("bob", ["billing"], capacity=1)  # one seat: the rest must go to the queue
    settings = ReassignSettings(wait_s=10.0)
    first, second = (Reassigner(w.engine, w.presence, settings, clock=w.clock) for _ in range(2))
    w.clock.advance(20)
    results = await asyncio.gather(first.sweep(), second.sweep())
    moved = [r for rs in results for r in rs]
    assert sorted(r.case_id for r in moved) == sorted(c.id for c in cases)  # each case moved exactly once
    final = [await w.queue.get(c.id) for c in cases]
    assert sorted(c.status for c in final) == ["assigned", "waiting", "waiting"]
    for case in cases:
        assert (await w.kinds(case.conversation_id)).count("reassigned") == 1
