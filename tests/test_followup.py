"""Follow-ups (回访): scheduled at closing, due with a controllable clock, asked once, a "no"
reopens for the same team, a "yes" closes the loop; on SQLite and PostgreSQL."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from core.settings import FollowupSettings
from handoff.followup import FollowupError, Followups
from tests.case_world import World, make_world


@pytest_asyncio.fixture(params=["sqlite", "postgresql"])
async def world(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[World]:
    w = await make_world(request.param, tmp_path, "tandem_test_followup")
    try:
        yield w
    finally:
        await w.engine.dispose()


async def closed_case(w: World, agent_id: int, team: str = "complaints") -> int:
    case = await w.case(team, text="the parcel arrived broken")
    await w.queue.claim(case.id, agent_id)
    await w.queue.close(case.id, agent_id, "replacement_sent")
    return case.id


@pytest.mark.asyncio
async def test_no_reopens_for_the_same_team_and_yes_closes_the_loop(world: World) -> None:
    w = world
    ada = await w.agent("ada", ["complaints"])
    follow = Followups(w.engine, w.queue, FollowupSettings(delay_s=86400), clock=w.clock)
    unsolved_case, solved_case = await closed_case(w, ada.id), await closed_case(w, ada.id)
    first = await follow.schedule(unsolved_case, created_by=ada.id)
    second = await follow.schedule(solved_case, delay_s=3600)
    assert (await follow.schedule(unsolved_case)).id == first.id  # one open follow-up per case
    assert await follow.due() == []
    w.clock.advance(3601)
    assert [f.id for f in await follow.due()] == [second.id]
    w.clock.advance(86400)
    assert [f.id for f in await follow.due()] == [second.id, first.id]

    # Two processes ask at once: one customer question.
    asked = await asyncio.gather(follow.claim_ask(first.id), follow.claim_ask(first.id))
    assert sorted(asked) == [False, True]
    assert await follow.claim_ask(second.id)
    assert (await follow.pending_for(first.conversation_id)).id == first.id

    resolved, reopened = await follow.resolve(first.id, solved=False)
    assert resolved.status == "reopened" and reopened is not None
    assert (reopened.status, reopened.team, reopened.conversation_id, reopened.reason) == ("waiting", "complaints", first.conversation_id,
                                                                                          "follow_up_unsolved")
    assert resolved.reopened_case_id == reopened.id and reopened.signals["previous_case_id"] == unsolved_case
    done, none = await follow.resolve(second.id, solved=True)
    assert done.status == "solved" and none is None
    assert [c.id for c in await w.queue.list("waiting")] == [reopened.id]
    with pytest.raises(FollowupError):
        await follow.resolve(second.id, solved=False)  # answered already
    kinds = await w.kinds(first.conversation_id)
    assert "followup_asked" in kinds and "followup_answered" in kinds
    assert await follow.pending_for(first.conversation_id) is None


@pytest.mark.asyncio
async def test_only_closed_cases_and_unanswered_questions_expire(world: World) -> None:
    w = world
    ada = await w.agent("ada", ["complaints"])
    follow = Followups(w.engine, w.queue, FollowupSettings(delay_s=0, answer_timeout_s=3600), clock=w.clock)
    open_case = await w.case("complaints")
    with pytest.raises(FollowupError):
        await follow.schedule(open_case.id)
    with pytest.raises(FollowupError):
        await follow.schedule(await closed_case(w, ada.id), delay_s=-5)
    quiet = await follow.schedule(await closed_case(w, ada.id))
    cancelled = await follow.schedule(await closed_case(w, ada.id), delay_s=600)
    assert (await follow.cancel(cancelled.id)).status == "cancelled"
    assert await follow.claim_ask(quiet.id)
    assert await follow.expire() == []
    w.clock.advance(3601)
    [ended] = await follow.expire()
    assert ended.id == quiet.id and ended.status == "no_answer"
    assert await follow.due() == []


@pytest.mark.asyncio
async def test_one_timer_tick_drives_sla_reassignment_and_followups(world: World) -> None:
    from core.settings import ReassignSettings, SlaSettings, SlaTarget
    from handoff.timers import CaseTimers

    w = world
    ada = await w.agent("ada", ["complaints"])
    settings = w.settings.replace(sla=SlaSettings(targets=(SlaTarget(first_response_s=60, resolution_s=10**6),)),
                                  reassign=ReassignSettings(wait_s=120, target="queue"))
    timers = CaseTimers(w.engine, settings, w.queue, w.presence, clock=w.clock)
    quiet = await w.case("complaints")
    await w.queue.claim(quiet.id, ada.id)
    await timers.followups.schedule(await closed_case(w, ada.id), delay_s=100)
    first = await timers.tick()
    assert (first.breaches, first.reassigned, first.followups_to_ask) == ([], [], [])
    w.clock.advance(130)
    second = await timers.tick()
    assert [(b.case_id, b.timer) for b in second.breaches] == [(quiet.id, "first_response")]
    assert [r.case_id for r in second.reassigned] == [quiet.id]
    assert len(second.followups_to_ask) == 1 and second.followups_to_ask[0].status == "asked"
    third = await timers.tick()
    assert (third.breaches, third.reassigned, third.followups_to_ask) == ([], [], [])
