"""The figures computed straight from the source tables, with no pre-aggregation.

These are the definitions of docs/reports.md as single queries over the event log, cases and
tickets, as reports/metrics.py computed them before the rollup (reports/rollup.py). They are
kept as the oracle: tests check that the rollup's figures equal these on the same history,
also after late events and later changes; benchmarks/reports_scale.py times both ("before" and
"after" in one run).
"""
from __future__ import annotations

from typing import Any, Callable

import sqlalchemy as sa

from reports.metrics import (
    DAY, Containment, Escalations, Faq, FaqEntry, Filters, FirstContact, Handling, Waiting, _day, _dialect, _events, _json_text,
    _json_true, _percentiles, _ratio, day_label,
)
from reports.schema import case_routing, cases, conversations, events, tickets


def _counted_conversations(f: Filters) -> Any:
    """Conversations started in the window in which the customer wrote at least once."""
    # A message is never older than its conversation, so the event scan starts at the window.
    wrote = sa.select(events.c.conversation_id).where(events.c.kind == "message_in", events.c.at >= f.start)
    query = sa.select(conversations.c.id, conversations.c.created_at).where(
        conversations.c.created_at >= f.start, conversations.c.created_at < f.end, conversations.c.id.in_(wrote)
    )
    if f.channel:
        query = query.where(conversations.c.channel == f.channel)
    return query


def _cased(f: Filters) -> Any:
    """Conversations with a case (a case is never older than its conversation)."""
    return sa.select(cases.c.conversation_id).where(cases.c.created_at >= f.start)


def containment(conn: sa.engine.Connection, f: Filters) -> Containment:
    base = _counted_conversations(f).subquery()
    had_case = base.c.id.in_(_cased(f))
    had_ticket = base.c.id.in_(sa.select(tickets.c.conversation_id).where(tickets.c.created_at >= f.start))
    bot_only = sa.case((sa.and_(~had_case, ~had_ticket), 1), else_=0)
    day = _day(base.c.created_at, _dialect(conn))
    rows = conn.execute(
        sa.select(day.label("day"), sa.func.count(), sa.func.sum(bot_only)).group_by("day").order_by("day")
    ).all()
    by_day = [(day_label(int(d)), int(n), int(b or 0)) for d, n, b in rows]
    total, bot = sum(r[1] for r in by_day), sum(r[2] for r in by_day)
    return Containment(total, bot, _ratio(bot, total), by_day)


def _cases(f: Filters, *columns: Any) -> Any:
    """Cases opened in the window, narrowed by channel, (current) team and (last) agent."""
    query = sa.select(*columns).select_from(cases.outerjoin(case_routing, case_routing.c.case_id == cases.c.id)).where(
        cases.c.created_at >= f.start, cases.c.created_at < f.end
    )
    if f.channel:
        query = query.where(cases.c.channel == f.channel)
    if f.team:
        query = query.where(case_routing.c.team == f.team)
    if f.agent_id is not None:
        query = query.where(cases.c.agent_id == f.agent_id)
    return query


def escalations(conn: sa.engine.Connection, f: Filters) -> Escalations:
    base = _counted_conversations(f).subquery()
    had_case = base.c.id.in_(_cased(f))
    total, escalated = conn.execute(
        sa.select(sa.func.count(), sa.func.sum(sa.case((had_case, 1), else_=0))).select_from(base)
    ).one()
    day = _day(cases.c.created_at, _dialect(conn))
    rows = conn.execute(
        _cases(f, day.label("day"), cases.c.reason, sa.func.count()).group_by("day", cases.c.reason).order_by("day", cases.c.reason)
    ).all()
    by_day = [(day_label(int(d)), str(reason), int(n)) for d, reason, n in rows]
    reasons: dict[str, int] = {}
    for _, reason, n in by_day:
        reasons[reason] = reasons.get(reason, 0) + n
    return Escalations(int(total or 0), int(escalated or 0), _ratio(int(escalated or 0), int(total or 0)), reasons, by_day)

def _while_open(f: Filters, kind: str, aggregate: Callable[[Any], Any]) -> Any:
    """Per case opened in the window: `aggregate` over its conversation's `kind` events while it
    was open. A grouped join, not a per-case subquery: one hash join on 100k cases (benchmarks)."""
    c = cases.alias("open_case")
    during = sa.and_(
        events.c.conversation_id == c.c.conversation_id, events.c.kind == kind, events.c.at >= c.c.created_at,
        sa.or_(c.c.closed_at.is_(None), events.c.at <= c.c.closed_at),
    )
    return (
        sa.select(c.c.id.label("case_id"), aggregate(events.c.at).label("value"))
        .select_from(c.join(events, during))
        .where(c.c.created_at >= f.start, c.c.created_at < f.end, events.c.at >= f.start, events.c.kind == kind)
        .group_by(c.c.id)
        .subquery()
    )


def waiting(conn: sa.engine.Connection, f: Filters, target_s: float) -> Waiting:
    first = _while_open(f, "agent_message", sa.func.min)
    per_case = (
        _cases(f, (first.c.value - cases.c.created_at).label("wait"), cases.c.status, cases.c.resolution)
        .outerjoin(first, first.c.case_id == cases.c.id)
        .subquery()
    )
    left = sa.and_(per_case.c.wait.is_(None), per_case.c.status == "cancelled", per_case.c.resolution == "customer_left")
    total, answered, abandoned, within = conn.execute(sa.select(
        sa.func.count(), sa.func.count(per_case.c.wait), sa.func.sum(sa.case((left, 1), else_=0)),
        sa.func.sum(sa.case((per_case.c.wait <= target_s, 1), else_=0)),
    )).one()
    p50, p90 = _percentiles(conn, per_case.c.wait, (50, 90))
    answered, abandoned, within = int(answered or 0), int(abandoned or 0), int(within or 0)
    return Waiting(int(total or 0), answered, abandoned, p50, p90, within, _ratio(within, answered + abandoned), target_s)


def _came_back(f: Filters, window_s: float, same_topic: bool) -> Any:
    """Cases (opened in the window) after which the same conversation got another case within
    `window_s` of closing, on the same topic (team, else reason) if `same_topic`."""
    first, later = cases.alias("first_case"), cases.alias("later_case")
    condition = [
        later.c.conversation_id == first.c.conversation_id, later.c.id != first.c.id,
        later.c.created_at > first.c.closed_at, later.c.created_at <= first.c.closed_at + window_s,
    ]
    joined = first.join(later, sa.and_(*condition))
    if same_topic:
        first_routing, later_routing = case_routing.alias("first_routing"), case_routing.alias("later_routing")
        joined = joined.outerjoin(first_routing, first_routing.c.case_id == first.c.id).outerjoin(
            later_routing, later_routing.c.case_id == later.c.id)
        condition = [sa.func.coalesce(later_routing.c.team, later.c.reason) == sa.func.coalesce(first_routing.c.team, first.c.reason)]
    else:
        condition = []
    return (
        sa.select(first.c.id.label("case_id")).select_from(joined)
        .where(first.c.created_at >= f.start, first.c.created_at < f.end, later.c.created_at >= f.start, *condition)
        .group_by(first.c.id)
        .subquery()
    )


def handling(conn: sa.engine.Connection, f: Filters, reopen_window_s: float) -> Handling:
    transfers = _while_open(f, "transferred", sa.func.count)
    back = _came_back(f, reopen_window_s, same_topic=False)
    per_case = (
        _cases(
            f, (cases.c.closed_at - cases.c.claimed_at).label("handle"), (cases.c.closed_at - cases.c.created_at).label("resolution"),
            sa.func.coalesce(transfers.c.value, 0).label("transfers"), sa.case((back.c.case_id.is_not(None), 1), else_=0).label("reopened"),
        )
        .outerjoin(transfers, transfers.c.case_id == cases.c.id)
        .outerjoin(back, back.c.case_id == cases.c.id)
        .where(cases.c.status == "closed", cases.c.closed_at.is_not(None))
        .subquery()
    )
    closed, handle_mean, resolution_mean, moved, moved_cases, again = conn.execute(sa.select(
        sa.func.count(), sa.func.avg(per_case.c.handle), sa.func.avg(per_case.c.resolution), sa.func.sum(per_case.c.transfers),
        sa.func.sum(sa.case((per_case.c.transfers > 0, 1), else_=0)), sa.func.sum(per_case.c.reopened),
    )).one()
    h50, h90 = _percentiles(conn, per_case.c.handle, (50, 90))
    r50, r90 = _percentiles(conn, per_case.c.resolution, (50, 90))
    closed, again = int(closed or 0), int(again or 0)
    return Handling(
        closed, h50, h90, None if handle_mean is None else float(handle_mean), r50, r90,
        None if resolution_mean is None else float(resolution_mean), int(moved or 0), int(moved_cases or 0), again, _ratio(again, closed),
    )


def first_contact(conn: sa.engine.Connection, f: Filters, window_days: float, as_of: float) -> FirstContact:
    window = window_days * DAY
    back = _came_back(f, window, same_topic=True)
    came_back = sa.case((back.c.case_id.is_not(None), 1), else_=0)
    query = (
        _cases(f, cases.c.closed_at, came_back).outerjoin(back, back.c.case_id == cases.c.id)
        .where(cases.c.status == "closed", cases.c.closed_at.is_not(None))
    )
    rows = conn.execute(query).all()
    judged = [back for closed, back in rows if closed + window <= as_of]
    first = sum(1 for back in judged if not back)
    return FirstContact(len(judged), first, _ratio(first, len(judged)), len(rows) - len(judged), window_days)


def faq(conn: sa.engine.Connection, f: Filters) -> Faq:
    dialect = _dialect(conn)
    faq_id = _json_text(events.c.data, "faq_id", dialect).label("faq_id")
    served = dict(conn.execute(_events(f, faq_id, sa.func.count()).where(events.c.kind == "answered").group_by(faq_id)).all())
    helpful_flag = _json_true(events.c.data, "helpful", dialect)
    votes = conn.execute(
        _events(f, faq_id, sa.func.sum(sa.case((helpful_flag, 1), else_=0)), sa.func.sum(sa.case((helpful_flag, 0), else_=1)))
        .where(events.c.kind == "feedback").group_by(faq_id)
    ).all()
    voted = {fid: (int(up or 0), int(down or 0)) for fid, up, down in votes}
    ids = sorted({k for k in served if k} | {k for k in voted if k})
    entries = sorted(
        (FaqEntry(i, int(served.get(i, 0)), *voted.get(i, (0, 0))) for i in ids), key=lambda e: (-e.served, e.faq_id)
    )
    day = _day(events.c.at, dialect)
    missed = [(day_label(int(d)), int(n)) for d, n in conn.execute(
        _events(f, day.label("day"), sa.func.count()).where(events.c.kind == "missed").group_by("day").order_by("day")
    ).all()]
    return Faq(
        sum(e.served for e in entries), sum(e.helpful for e in entries), sum(e.unhelpful for e in entries), entries,
        sum(n for _, n in missed), missed,
    )


FIGURES = {"containment": containment, "escalations": escalations, "faq": faq, "waiting": waiting,
           "handling": handling, "first_contact": first_contact}
