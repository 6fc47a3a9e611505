"""Real concurrency on SQLite and PostgreSQL: many engines (= many connections, as with many
web processes) claim and auto-assign at the same instant. Exactly one claim wins per case,
no agent ever gets more chats than their capacity, and no case is assigned twice.

Separate OS processes are covered too: a pool of worker processes, each with its own engine,
races for the same cases.
"""
from __future__ import annotations

import asyncio
import multiprocessing
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import sqlalchemy as sa

from core.db import async_engine
from core.settings import Settings
from handoff.assignment import CaseAssignment
from handoff.dispatch import Dispatcher
from handoff.presence import Presence
from handoff.queue import AgentFull, CaseConflict, CaseQueue
from handoff.schema import cases
from tests.conftest import postgres_url, stack_settings
from tests.test_routing import World, make_world

CLAIMERS = 16


@pytest_asyncio.fixture(params=["sqlite", "postgresql"])
async def world(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    overrides: dict[str, Any] = {}
    if request.param == "postgresql":
        overrides["database_url"] = postgres_url("tandem_test_concurrency")
    w = await make_world(stack_settings(tmp_path, **overrides))
    try:
        yield w
    finally:
        await w.router.rasa.close()
        await w.engine.dispose()


async def _engines(settings: Settings, n: int) -> list[Any]:
    return [async_engine(settings) for _ in range(n)]


@pytest.mark.asyncio
async def test_many_simultaneous_claims_one_winner_each(world: World) -> None:
    w = world
    agents = [await w.accounts.create(f"racer{i}", "pw-racer", "agent", f"Racer {i}") for i in range(4)]
    case_ids = [(await w.queue.open_case(f"conv-{i}", "rest", "customer_request")).id for i in range(10)]
    engines = await _engines(w.settings, CLAIMERS)
    try:
        for case_id in case_ids:
            results = await asyncio.gather(
                *(CaseQueue(e).claim(case_id, agents[i % len(agents)].id) for i, e in enumerate(engines)), return_exceptions=True
            )
            winners = [r for r in results if not isinstance(r, BaseException)]
            assert len(winners) == 1, results
            losers = [r for r in results if isinstance(r, BaseException)]
            assert all(isinstance(r, CaseConflict) for r in losers), losers
            assert (await w.queue.get(case_id)).agent_id == winners[0].agent_id
    finally:
        for e in engines:
            await e.dispose()


@pytest.mark.asyncio
async def test_simultaneous_assignments_respect_capacity(world: World) -> None:
    w = world
    agent = await w.agent("capped", capacity=3)
    case_ids = [(await w.queue.open_case(f"cap-{i}", "rest", "customer_request")).id for i in range(12)]
    engines = await _engines(w.settings, len(case_ids))
    try:
        results = await asyncio.gather(
            *(CaseQueue(e).assign(case_id, agent.id, 3) for e, case_id in zip(engines, case_ids)), return_exceptions=True
        )
    finally:
        for e in engines:
            await e.dispose()
    won = [r for r in results if not isinstance(r, BaseException)]
    assert len(won) == 3, results
    assert all(isinstance(r, AgentFull) for r in results if isinstance(r, BaseException))
    assert (await w.queue.active_counts()) == {agent.id: 3}


@pytest.mark.asyncio
async def test_parallel_dispatchers_never_double_assign(world: World) -> None:
    """Four dispatchers (four processes' worth of engines) sweep the same queue at once."""
    w = world
    team = [await w.agent(f"d{i}", capacity=2) for i in range(3)]
    case_ids = [await w.escalate() for _ in range(10)]
    engines = await _engines(w.settings, 4)
    try:
        dispatchers = []
        for e in engines:
            queue = CaseQueue(e)
            presence = Presence(e, w.settings)
            dispatchers.append(Dispatcher(w.settings, queue, presence, CaseAssignment(queue, w.router, w.router.bus)))
        await asyncio.gather(*(d.assign_waiting() for d in dispatchers))
    finally:
        for e in engines:
            await e.dispose()
    assigned = [c for c in await w.queue.list("assigned")]
    assert len(assigned) == 6  # three agents, two seats each
    assert Counter(c.agent_id for c in assigned) == {a.id: 2 for a in team}
    assert {c.id for c in assigned} <= set(case_ids)
    # Every assigned customer was told exactly once who joined.
    for case in assigned:
        texts = [m["text"] for m in await w.router.transcript(case.conversation_id)]
        assert sum("has joined the chat" in t for t in texts) == 1, texts


def _claim_in_process(url: str, case_id: int, agent_id: int, barrier: Any) -> str:
    """Runs in a separate OS process: its own interpreter, engine and connection."""
    async def run() -> str:
        engine = async_engine(Settings(database_url=url) if not url.startswith("sqlite") else Settings(database_url=url))
        try:
            queue = CaseQueue(engine)
            await queue.get(case_id)  # connect before the start line
            barrier.wait()
            try:
                await queue.claim(case_id, agent_id)
                return "won"
            except CaseConflict:
                return "lost"
        finally:
            await engine.dispose()

    return asyncio.run(run())


@pytest.mark.asyncio
async def test_claims_from_separate_processes(world: World) -> None:
    w = world
    agents = [await w.accounts.create(f"proc{i}", "pw-proc", "agent", f"Proc {i}") for i in range(2)]
    workers = 6
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        for round_ in range(3):
            case_id = (await w.queue.open_case(f"proc-{round_}", "rest", "customer_request")).id
            barrier = manager.Barrier(workers)
            with context.Pool(workers) as pool:
                pending = [
                    pool.apply_async(_claim_in_process, (w.settings.sqlalchemy_url, case_id, agents[i % 2].id, barrier))
                    for i in range(workers)
                ]
                outcomes = await asyncio.to_thread(lambda: [p.get(timeout=120) for p in pending])
            assert sorted(outcomes) == ["lost"] * (workers - 1) + ["won"], outcomes
            async with w.engine.connect() as conn:
                row = (await conn.execute(sa.select(cases.c.status, cases.c.agent_id).where(cases.c.id == case_id))).one()
            assert row.status == "assigned" and row.agent_id in {a.id for a in agents}
