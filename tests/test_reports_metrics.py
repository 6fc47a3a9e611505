"""Every report figure against a hand-made history whose right answers are worked out below,
on SQLite and on PostgreSQL (docs/reports.md defines the figures)."""
from __future__ import annotations

import datetime as dt
import json
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
from handoff.schema import accounts, case_routing, cases
from reports import csat, metrics, qa
from reports.schema import ensure_indexes
from tests.conftest import postgres_url

DAY = 86400.0
T = dt.datetime(2026, 11, 2, tzinfo=dt.timezone.utc).timestamp()  # day 0, midnight UTC
C3 = T + 1500 + 2 * DAY  # the second case of conversation c5 (a same-topic return)
WINDOW = metrics.Filters(T, T + 10 * DAY)


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.engine.Engine]:
    url = "" if request.param == "sqlite" else postgres_url("tandem_reports_metrics")
    settings = load_settings(var_dir=tmp_path, database_url=url)
    create_schema(settings)
    engine = sync_engine(settings)
    ensure_indexes(engine)
    try:
        yield engine
    finally:
        engine.dispose()


def _history(engine: sa.engine.Engine) -> dict[str, int]:
    """Seven conversations (c3 silent), six cases; returns the agents' ids."""
    with engine.begin() as conn:
        ids = {}
        for name in ("alex", "sam"):
            ids[name] = int(conn.execute(accounts.insert().values(
                username=name, display_name=name.title(), password_hash="x", role="agent", created_at=T)).inserted_primary_key[0])
        started = {"c1": ("web", T + 10), "c2": ("web", T + 20), "c3": ("telegram", T + 30), "c4": ("web", T + 40),
                   "c5": ("telegram", T + 50), "c6": ("web", T + 60), "c7": ("web", T + DAY + 10)}
        for cid, (channel, at) in started.items():
            conn.execute(conversations.insert().values(id=cid, channel=channel, mode="bot", customer_name="", profile="{}",
                                                       created_at=at, updated_at=at))
        evs: list[tuple[str, str, float, dict[str, Any]]] = []
        for cid, (_, at) in started.items():
            if cid != "c3":
                evs.append((cid, "message_in", at + 1, {}))
        evs += [
            ("c1", "answered", T + 12, {"faq_id": "orders-track"}), ("c1", "feedback", T + 13, {"faq_id": "orders-track", "helpful": True}),
            ("c2", "answered", T + 22, {"faq_id": "orders-track"}), ("c2", "feedback", T + 23, {"faq_id": "orders-track", "helpful": False}),
            ("c2", "missed", T + 24, {"reason": "low_score"}), ("c4", "answered", T + 42, {"faq_id": "refunds-policy"}),
            ("c7", "missed", T + DAY + 20, {"reason": "nlu_fallback"}),
            ("c4", "agent_message", T + 160, {}), ("c4", "agent_message", T + 300, {}),
            ("c5", "agent_message", T + 1030, {}), ("c5", "transferred", T + 1100, {}), ("c5", "agent_message", T + 1250, {}),
            ("c5", "agent_message", C3 + 90, {}),
            ("c7", "agent_message", T + DAY + 300, {}),
        ]
        conn.execute(conversation_events.insert(), [
            {"conversation_id": c, "kind": k, "channel": started[c][0], "data": json.dumps(d), "at": at} for c, k, at, d in evs
        ])
        rows = [  # id, conversation, reason, team, agent, status, resolution, created, claimed, closed
            (1, "c4", "sentiment", "billing", "alex", "closed", "resolved", T + 100, T + 130, T + 760),
            (2, "c5", "customer_request", "shipping", "sam", "closed", "resolved", T + 1000, T + 1200, T + 1500),
            (3, "c5", "customer_request", "shipping", "sam", "closed", "resolved", C3, C3 + 60, C3 + 260),
            (4, "c6", "frustration", "billing", None, "cancelled", "customer_left", T + 200, None, T + 500),
            (5, "c7", "sentiment", "billing", "alex", "closed", "resolved", T + DAY + 100, T + DAY + 150, T + DAY + 900),
            (6, "c7", "customer_request", "shipping", None, "cancelled", "ticket", T + 3 * DAY, None, T + 3 * DAY + 50),
        ]
        for case_id, cid, reason, team, agent, status, resolution, created, claimed, closed in rows:
            conn.execute(cases.insert().values(
                id=case_id, conversation_id=cid, channel=started[cid][0], status=status, reason=reason, detail="", signals="{}",
                priority=0, agent_id=ids[agent] if agent else None, created_at=created, claimed_at=claimed, closed_at=closed,
                resolution=resolution))
            conn.execute(case_routing.insert().values(case_id=case_id, team=team, severity=0, announced=True))
    csat.record_rating(engine, "c1", 5, "", now=T + 14)
    csat.record_rating(engine, "c2", 2, "meh", now=T + 25)
    csat.record_rating(engine, "c4", 4, "", now=T + 800)
    csat.record_rating(engine, "c5", 3, "", now=C3 + 300)
    return ids


def test_every_figure_matches_the_hand_computed_answer(engine: sa.engine.Engine) -> None:
    ids = _history(engine)
    day0, day1 = "2026-11-02", "2026-11-03"
    with engine.connect() as conn:
        c = metrics.containment(conn, WINDOW)
        assert (c.conversations, c.bot_only) == (6, 2)  # c3 never wrote; c1, c2 had no case
        assert c.rate == pytest.approx(2 / 6)
        assert c.by_day == [(day0, 5, 2), (day1, 1, 0)]

        e = metrics.escalations(conn, WINDOW)
        assert (e.conversations, e.escalated) == (6, 4)
        assert e.rate == pytest.approx(4 / 6)
        assert e.reasons == {"sentiment": 2, "customer_request": 3, "frustration": 1}
        assert (day0, "customer_request", 1) in e.by_day and ("2026-11-05", "customer_request", 1) in e.by_day

        w = metrics.waiting(conn, WINDOW, target_s=60)
        # first replies 60 (case 1), 30 (case 2), 90 (case 3), 200 (case 5); case 4 abandoned; case 6 went to a ticket
        assert (w.cases, w.answered, w.abandoned) == (6, 4, 1)
        assert (w.first_reply_p50, w.first_reply_p90) == (60.0, 200.0)
        assert w.within_target == 2 and w.service_level == pytest.approx(2 / 5)

        h = metrics.handling(conn, WINDOW, reopen_window_s=7 * DAY)
        assert h.closed == 4
        assert (h.handle_p50, h.handle_p90, h.handle_mean) == (300.0, 750.0, pytest.approx(470.0))
        assert (h.resolution_p50, h.resolution_p90, h.resolution_mean) == (500.0, 800.0, pytest.approx(555.0))
        assert (h.transfers, h.transferred_cases) == (1, 1)
        assert h.reopened == 2 and h.reopen_rate == pytest.approx(0.5)  # case 2 (by case 3) and case 5 (by case 6)

        fcr = metrics.first_contact(conn, WINDOW, window_days=7, as_of=T + 30 * DAY)
        # case 2 came back about shipping (case 3); case 5's return (case 6) was another topic
        assert (fcr.judged, fcr.resolved_first, fcr.pending) == (4, 3, 0) and fcr.rate == pytest.approx(0.75)
        early = metrics.first_contact(conn, WINDOW, window_days=7, as_of=T + 8.5 * DAY)
        assert (early.judged, early.resolved_first, early.pending) == (3, 2, 1)  # case 3's week is not over

        q = metrics.faq(conn, WINDOW)
        assert [(x.faq_id, x.served, x.helpful, x.unhelpful) for x in q.entries] == [("orders-track", 2, 1, 1), ("refunds-policy", 1, 0, 0)]
        assert (q.served, q.helpful, q.unhelpful, q.missed) == (3, 1, 1, 2)
        assert q.missed_by_day == [(day0, 1), (day1, 1)]

        s = metrics.satisfaction(conn, WINDOW, low_score=2)
        assert (s.bot.ratings, s.bot.mean, s.bot.satisfied, s.bot.low, s.bot.csat) == (2, 3.5, 1, 1, 0.5)
        assert (s.agent.ratings, s.agent.mean, s.agent.satisfied, s.agent.csat) == (2, 3.5, 1, 0.5)
        assert [(a, n, r, m) for a, n, r, m, _ in s.by_agent] == [(ids["alex"], "Alex", 1, 4.0), (ids["sam"], "Sam", 1, 3.0)]
        assert (day0, "bot", 2, 3.5, 0.5) in s.by_day

        # filters
        tg = metrics.containment(conn, metrics.Filters(T, T + 10 * DAY, channel="telegram"))
        assert (tg.conversations, tg.bot_only) == (1, 0)
        billing = metrics.Filters(T, T + 10 * DAY, team="billing")
        wb = metrics.waiting(conn, billing, target_s=60)
        assert (wb.cases, wb.answered, wb.abandoned, wb.within_target) == (3, 2, 1, 1)
        assert metrics.satisfaction(conn, billing, 2).agent.ratings == 1
        assert metrics.handling(conn, metrics.Filters(T, T + 10 * DAY, agent_id=ids["sam"]), 7 * DAY).closed == 2
        assert metrics.containment(conn, metrics.Filters(T + DAY, T + 2 * DAY)).conversations == 1


def test_a_conversation_is_rated_once_and_the_rating_reaches_the_case_and_agent(engine: sa.engine.Engine) -> None:
    ids = _history(engine)
    rating = csat.rating_for(engine, "c5")
    assert rating is not None and (rating.case_id, rating.agent_id) == (3, ids["sam"])  # the latest handled case
    with pytest.raises(csat.AlreadyRated):
        csat.record_rating(engine, "c5", 5)
    with pytest.raises(csat.UnknownConversation):
        csat.record_rating(engine, "nope", 5)
    for bad in (0, 6, "5", 4.5, True, None):
        with pytest.raises(csat.RatingError):
            csat.record_rating(engine, "c6", bad)
    with engine.connect() as conn:
        given = conn.execute(sa.select(sa.func.count()).where(conversation_events.c.kind == "rating_given")).scalar_one()
    assert given == 4


def test_qa_sampling_is_seeded_without_duplicates_and_scores_reach_the_reports(engine: sa.engine.Engine) -> None:
    ids = _history(engine)
    first = qa.sample(engine, T, T + 10 * DAY, per_bucket=1, seed=7, low_score=2, long_handle_s=700, now=T + 20 * DAY)
    # case 5 handled 750 s (long), case 1 escalated by sentiment, one of cases 2 and 3 at random
    assert sorted((r.bucket, r.case_id) for r in first if r.bucket != "random") == [("escalated", 1), ("long_handle", 5)]
    randoms = [r.case_id for r in first if r.bucket == "random"]
    assert len(randoms) == 1 and randoms[0] in (2, 3)
    again = qa.sample(engine, T, T + 10 * DAY, per_bucket=5, seed=7, low_score=2, long_handle_s=700)
    assert [r.case_id for r in again] == [5 - randoms[0]]  # only the one left; nothing queued twice
    assert qa.sample(engine, T, T + 10 * DAY, per_bucket=5, seed=7, low_score=2, long_handle_s=700) == []

    criteria = qa.rubric(engine)
    assert [c.weight for c in criteria] == [1.0, 2.0, 3.0, 1.0, 2.0]
    by_case = {r.case_id: r for r in first + again}
    done = qa.score_review(engine, by_case[1].id, ids["sam"], {str(c.id): s for c, s in zip(criteria, (5, 3, 1, 5, 3))}, "ok", now=T + 21 * DAY)
    assert done.score == pytest.approx(400 / 9)  # (1*1 + 2*.5 + 3*0 + 1*1 + 2*.5) / 9 * 100
    qa.score_review(engine, by_case[5].id, ids["sam"], {c.id: 5 for c in criteria}, "", now=T + 21 * DAY)
    with pytest.raises(qa.Conflict):
        qa.score_review(engine, by_case[5].id, ids["sam"], {c.id: 5 for c in criteria}, "")
    with pytest.raises(qa.QaError):
        qa.score_review(engine, by_case[2].id, ids["sam"], {criteria[0].id: 5}, "")  # not every criterion
    with pytest.raises(qa.QaError):
        qa.score_review(engine, by_case[2].id, ids["sam"], {c.id: 6 for c in criteria}, "")
    with engine.connect() as conn:
        scores = metrics.qa_scores(conn, metrics.Filters(T, T + 30 * DAY))
    assert scores.reviews == 2 and scores.mean == pytest.approx((400 / 9 + 100) / 2)
    assert scores.by_agent == [(ids["alex"], "Alex", 2, pytest.approx((400 / 9 + 100) / 2))]
    assert scores.by_team == [("billing", 2, pytest.approx((400 / 9 + 100) / 2))]
    mine = qa.reviews(engine, "done", ids["alex"])
    assert {r.case_id for r in mine} == {1, 5}

    edited = qa.replace_rubric(engine, [{"id": criteria[2].id, "name": "Solved it", "weight": 5}, {"name": "Empathy", "weight": 1}])
    assert [(c.name, c.weight) for c in edited] == [("Solved it", 5.0), ("Empathy", 1.0)]
    for bad in ([], [{"name": "", "weight": 1}], [{"name": "x", "weight": 0}], [{"id": 9999, "name": "x"}], "x"):
        with pytest.raises(qa.QaError):
            qa.replace_rubric(engine, bad)


def test_knowledge_gap_clusters_over_time(tmp_path: Path) -> None:
    """editor/gaps.py's clusters, counted per day, inside the window only (real embedder)."""
    from conversations.store import messages
    from knowledge.embedder import Embedder

    settings = load_settings(var_dir=tmp_path)
    create_schema(settings)
    engine = sync_engine(settings)
    asked = [("g1", T + 100, "Can I buy a gift card for my sister?"), ("g2", T + DAY + 100, "Do you sell gift cards?"),
             ("g3", T + DAY + 200, "Is there a student discount on laptops?"), ("g4", T - DAY, "Do you sell gift vouchers?")]
    with engine.begin() as conn:
        for cid, at, text in asked:
            conn.execute(conversations.insert().values(id=cid, channel="web", mode="bot", customer_name="", profile="{}", created_at=at, updated_at=at))
            conn.execute(messages.insert().values(conversation_id=cid, sender="customer", text=text, data="{}", created_at=at))
            conn.execute(conversation_events.insert().values(conversation_id=cid, kind="missed", channel="web", data='{"reason": "low_score"}', at=at + 1))
    found = metrics.gap_trend(engine, WINDOW, Embedder().encode, threshold=0.6)
    engine.dispose()
    assert [(g.count, g.by_day) for g in found] == [(2, [("2026-11-02", 1), ("2026-11-03", 1)]), (1, [("2026-11-03", 1)])]
    assert "gift card" in found[0].question and "discount" in found[1].question  # g4 is before the window
