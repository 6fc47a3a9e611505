"""SLA timers: targets per team and tier, ok/warn/breached with a controllable clock, breaches
recorded once as events, on SQLite and PostgreSQL."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from core.settings import SlaSettings, SlaTarget, load_settings
from handoff.sla import CaseTimes, SlaMonitor, case_sla, target_for, timer
from tests.case_world import World, make_world

TARGETS = SlaSettings(
    targets=(
        SlaTarget(first_response_s=300, resolution_s=3600),
        SlaTarget(tier="gold", first_response_s=120, resolution_s=1800),
        SlaTarget(team="complaints", first_response_s=60, resolution_s=900),
        SlaTarget(team="complaints", tier="gold", first_response_s=30, resolution_s=600),
    ),
    warn_fraction=0.8,
)


def test_most_specific_target_wins() -> None:
    assert target_for(TARGETS, "billing", None).first_response_s == 300
    assert target_for(TARGETS, "billing", "GOLD").first_response_s == 120
    assert target_for(TARGETS, "complaints", "silver").first_response_s == 60
    assert target_for(TARGETS, "complaints", "gold").first_response_s == 30
    assert target_for(SlaSettings(targets=()), "x", "y").first_response_s == SlaTarget().first_response_s


def test_timer_states() -> None:
    assert timer(0, None, 100, 0.8, 50).state == "ok"
    assert timer(0, None, 100, 0.8, 80).state == "warn"
    late = timer(0, None, 100, 0.8, 130)
    assert (late.state, late.left_s, late.breached) == ("breached", -30, True)
    assert timer(0, 90, 100, 0.8, 500).state == "met"
    assert timer(0, 120, 100, 0.8, 500).state == "missed"
    sla = case_sla(CaseTimes(created_at=0, first_response_at=None, closed_at=None), TARGETS.targets[0], 0.8, 250)
    assert (sla.first_response.state, sla.resolution.state) == ("warn", "ok")


def test_sla_settings_from_yaml(tmp_path: Path) -> None:
    config = tmp_path / "tandem.yml"
    config.write_text("sla:\n  warn_fraction: 0.5\n  targets:\n    - {first_response_s: 600}\n    - {team: complaints, tier: gold, first_response_s: 30}\n")
    settings = load_settings({"TANDEM_CONFIG": str(config)})
    assert settings.sla.warn_fraction == 0.5
    assert target_for(settings.sla, "complaints", "gold").first_response_s == 30.0


@pytest_asyncio.fixture(params=["sqlite", "postgresql"])
async def world(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[World]:
    w = await make_world(request.param, tmp_path, "tandem_test_sla")
    try:
        yield w
    finally:
        await w.engine.dispose()


@pytest.mark.asyncio
async def test_breaches_are_recorded_once_as_events(world: World) -> None:
    w = world
    ada = await w.agent("ada", ["complaints", "billing"])
    vip = await w.case("complaints", tier="gold")
    plain = await w.case("billing")
    monitor = SlaMonitor(w.engine, TARGETS, clock=w.clock)
    status = await monitor.status([vip.id, plain.id])
    assert status[vip.id].first_response.state == "ok" and status[vip.id].target.first_response_s == 30
    w.clock.advance(25)
    assert (await monitor.status([vip.id]))[vip.id].first_response.state == "warn"
    assert await monitor.sweep() == []
    w.clock.advance(10)  # 35 s: the gold complaint's 30 s first response is breached
    [breach] = await monitor.sweep()
    assert (breach.case_id, breach.timer, breach.target_s) == (vip.id, "first_response", 30)
    events = [e for e in await w.events.for_conversation(vip.conversation_id) if e["kind"] == "sla_breached"]
    assert [(e["data"]["case_id"], e["data"]["timer"], e["data"]["team"], e["data"]["tier"]) for e in events] == [
        (vip.id, "first_response", "complaints", "gold")]
    # two processes sweeping at once still record it once
    again = await asyncio.gather(monitor.sweep(), SlaMonitor(w.engine, TARGETS, clock=w.clock).sweep())
    assert again == [[], []]

    # The plain case is answered in time: its first response stops; resolution runs on.
    await w.queue.claim(plain.id, ada.id)
    await w.conversations.add_message(plain.conversation_id, "agent", "Hello, I am on it")
    w.clock.advance(300)
    plain_status = (await monitor.status([plain.id]))[plain.id]
    assert plain_status.first_response.state == "met" and plain_status.resolution.state == "ok"
    await w.queue.close(plain.id, ada.id, "resolved")
    w.clock.advance(7200)
    new = await monitor.sweep(closed_since=0.0)
    assert {(b.case_id, b.timer) for b in new} == {(vip.id, "resolution")}  # the closed one was resolved in time
    assert (await monitor.status([plain.id]))[plain.id].resolution.state == "met"
