"""Pre-aggregation for the reports: per-case and per-conversation facts, and FAQ counts per day.

On 1M events and 100k cases the figures' joins over the event log cost 1-3 s each (docs/
benchmarks.md, "Reports at scale"). The facts tables hold, once, what those joins derive:

- `report_case_facts`, one row per case: its own columns, its current team, the time of the
  first agent reply while it was open, its transfers, and the creation time of the next case of
  the same conversation after it closed (any topic, and same topic) -- so "reopened within N
  days" and "came back within N days" are comparisons, whatever N the settings say;
- `report_conversation_facts`, one row per conversation: channel, start, whether the customer
  wrote, had a case, had a ticket;
- `report_faq_days`, per UTC day, channel and FAQ entry: answers served, helpful and unhelpful
  votes, and per day and channel the unanswered questions (faq_id '').

**Kept correct, not just fast.** `refresh` runs before a figure is read (at most once a second
per engine) and brings the facts up to date incrementally. The quick check, on every report:

- every event with an id above the stored watermark marks its conversation dirty (late events
  included: the watermark is the row id, not the event's time), and is added to the FAQ days;
  the system logs an event with its changes to cases and conversations (escalated, claimed,
  transferred, handed_back, left_queue, ticket_opened, conversation_started, ...);
- so do new tickets (their own id watermark).

The full check (`keep_fresh`, in each web process's background: at start, then every
`reports_full_check_s`) also compares every case with its stored copy (status, agent, claim,
close, team, ...; new and erased cases) and counts conversations against their facts, for
changes made without an event. Either way, a dirty conversation's facts, and all of its cases'
facts, are computed again from the source.

Today's partial day is not special: its events are facts like any other once refreshed. The FAQ
days are added to under a compare-and-set of the watermark, so two web processes refreshing at
once never count an event twice. A window that does not start or end at midnight UTC reads its
edge days from the event log itself (metrics.faq).
"""
from __future__ import annotations

import threading
import time
import weakref
from typing import Any

import sqlalchemy as sa

from reports.sql import day as _day, json_text as _json_text, json_true as _json_true
from reports.schema import case_facts, case_routing, cases, conversation_facts, conversations, events, faq_days, rollup_state, tickets

BATCH = 500  # dirty conversations recomputed per statement
FULL_REBUILD = 20000  # more dirty conversations than this: recompute everything in one pass
REFRESH_EVERY_S = 1.0
# A report's own refresh does the full check only the first time in a process; after that the
# web process's background task (keep_fresh, every `reports_full_check_s`) does it, off the
# request path. Tests set this to 0 to make every refresh a full one.
FULL_CHECK_EVERY_S = float("inf")

# per engine: (last refresh, last full check), monotonic seconds, and the lock that makes a
# report wait for a refresh already running (the first build) instead of starting a second one
_last_refresh: "weakref.WeakKeyDictionary[sa.engine.Engine, tuple[float, float]]" = weakref.WeakKeyDictionary()
_running: "weakref.WeakKeyDictionary[sa.engine.Engine, threading.Lock]" = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def refresh(engine: sa.engine.Engine, force: bool = False, full: bool | None = None) -> None:
    """Bring the facts up to date (see the module docstring); cheap when little changed.

    The quick check (every call, at most once a second unless `force`) follows the event and
    ticket watermarks: every change the system makes to a case or conversation is logged as an
    event (escalated, claimed, transferred, handed_back, left_queue, ticket_opened, ...). The full
    check (once a minute per process, or `full=True`) also compares every case with its facts and
    counts conversations, for changes made behind the event log's back (a script, a restore).
    """
    with _lock:
        running = _running.setdefault(engine, threading.Lock())
    with running:
        now = time.monotonic()
        with _lock:
            last, last_full = _last_refresh.get(engine, (-1e9, -1e9))
            if not force and now - last < REFRESH_EVERY_S:
                return
            do_full = full if full is not None else (last_full < 0 or now - last_full >= FULL_CHECK_EVERY_S)
        try:
            with engine.begin() as conn:
                _refresh(conn, do_full)
        except sa.exc.IntegrityError:  # another process refreshed the same rows at the same moment
            with engine.begin() as conn:
                _refresh(conn, do_full)
        with _lock:
            _last_refresh[engine] = (now, now if do_full else last_full)


async def keep_fresh(engine: sa.engine.Engine, every_s: float) -> None:
    """The web process's background task: the first build (or full check) at start, then a full
    check every `every_s`, in a worker thread, so reports only pay the quick watermark check."""
    import asyncio
    import logging

    from reports.schema import ensure_indexes

    log = logging.getLogger(__name__)
    first = True
    while True:
        try:
            if first:
                await asyncio.to_thread(ensure_indexes, engine)
            await asyncio.to_thread(refresh, engine, True, True)
            first = False
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - a database hiccup: the next round (or a report) catches up
            log.exception("reports rollup refresh failed")
        await asyncio.sleep(every_s)


def _state(conn: sa.engine.Connection, name: str) -> int | None:
    value = conn.execute(sa.select(rollup_state.c.last_id).where(rollup_state.c.name == name)).scalar()
    return None if value is None else int(value)


def _advance(conn: sa.engine.Connection, name: str, old: int | None, new: int) -> bool:
    """Compare-and-set the watermark: False if another refresh moved it first."""
    if old is None:
        done = conn.execute(_insert(conn)(rollup_state).values(name=name, last_id=new, updated_at=time.time())
                            .on_conflict_do_nothing(index_elements=["name"]))
        return bool(done.rowcount)
    done = conn.execute(rollup_state.update().where(rollup_state.c.name == name, rollup_state.c.last_id == old)
                        .values(last_id=new, updated_at=time.time()))
    return bool(done.rowcount)


def _insert(conn: sa.engine.Connection) -> Any:
    """The dialect's INSERT with ON CONFLICT (PostgreSQL and SQLite both have it)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    return insert


def _refresh(conn: sa.engine.Connection, full: bool) -> None:
    dialect = conn.dialect.name
    dirty: set[str] = set()
    # 1. events since the watermark: FAQ days, and their conversations are dirty
    last_event = _state(conn, "events")
    top = conn.execute(sa.select(sa.func.max(events.c.id))).scalar()
    top = int(top or 0)
    if top != (last_event or 0) and _advance(conn, "events", last_event, top):
        lo = last_event or 0
        _add_faq_days(conn, lo, top, dialect)
        if last_event is not None:
            dirty |= {r for (r,) in conn.execute(sa.select(events.c.conversation_id).where(
                events.c.id > lo, events.c.id <= top).distinct())}
        else:
            dirty.add("*")  # first run: everything
    # 2. tickets since their watermark
    last_ticket = _state(conn, "tickets")
    top_ticket = int(conn.execute(sa.select(sa.func.max(tickets.c.id))).scalar() or 0)
    if top_ticket != (last_ticket or 0) and _advance(conn, "tickets", last_ticket, top_ticket):
        dirty |= {r for (r,) in conn.execute(sa.select(tickets.c.conversation_id).where(tickets.c.id > (last_ticket or 0)))}
    # 3. cases whose facts are missing or out of date
    f = case_facts
    stale = sa.or_(
        f.c.id.is_(None), f.c.status.is_distinct_from(cases.c.status), f.c.agent_id.is_distinct_from(cases.c.agent_id),
        f.c.claimed_at.is_distinct_from(cases.c.claimed_at), f.c.closed_at.is_distinct_from(cases.c.closed_at),
        f.c.created_at.is_distinct_from(cases.c.created_at), f.c.team.is_distinct_from(case_routing.c.team),
        f.c.resolution.is_distinct_from(cases.c.resolution), f.c.conversation_id.is_distinct_from(cases.c.conversation_id),
    )
    if full and "*" not in dirty:
        dirty |= {r for (r,) in conn.execute(
            sa.select(cases.c.conversation_id).select_from(
                cases.outerjoin(case_routing, case_routing.c.case_id == cases.c.id).outerjoin(f, f.c.id == cases.c.id)
            ).where(stale).distinct())}
        # facts of cases that no longer exist (erased)
        gone = [r for (r,) in conn.execute(sa.select(f.c.conversation_id).where(~sa.exists().where(cases.c.id == f.c.id)).distinct())]
        dirty |= set(gone)
        # 4. conversations without facts (counts first: the anti-join only when they differ)
        have = conn.execute(sa.select(sa.func.count()).select_from(conversation_facts)).scalar_one()
        total = conn.execute(sa.select(sa.func.count()).select_from(conversations)).scalar_one()
        if have != total:
            dirty |= {r for (r,) in conn.execute(sa.select(conversations.c.id).where(
                ~sa.exists().where(conversation_facts.c.id == conversations.c.id)))}
            dirty |= {r for (r,) in conn.execute(sa.select(conversation_facts.c.id).where(
                ~sa.exists().where(conversations.c.id == conversation_facts.c.id)))}
    if not dirty:
        return
    if "*" in dirty or len(dirty) > FULL_REBUILD:
        conn.execute(case_facts.delete())
        conn.execute(conversation_facts.delete())
        _insert_facts(conn, None)
        return
    ids = sorted(dirty)
    for i in range(0, len(ids), BATCH):
        chunk = ids[i:i + BATCH]
        conn.execute(case_facts.delete().where(case_facts.c.conversation_id.in_(chunk)))
        conn.execute(conversation_facts.delete().where(conversation_facts.c.id.in_(chunk)))
        _insert_facts(conn, chunk)


def _insert_facts(conn: sa.engine.Connection, chunk: list[str] | None) -> None:
    """Compute the facts of these conversations (None: all) from the source tables."""
    c, r = cases.alias("c"), case_routing.alias("r")
    e = events.alias("e")
    later, later_routing = cases.alias("later"), case_routing.alias("later_routing")
    while_open = sa.and_(e.c.conversation_id == c.c.conversation_id, e.c.at >= c.c.created_at,
                         sa.or_(c.c.closed_at.is_(None), e.c.at <= c.c.closed_at))
    first_reply = sa.select(sa.func.min(e.c.at)).where(while_open, e.c.kind == "agent_message").scalar_subquery()
    transfers = sa.select(sa.func.count()).select_from(e).where(while_open, e.c.kind == "transferred").scalar_subquery()
    after = sa.and_(later.c.conversation_id == c.c.conversation_id, later.c.id != c.c.id, later.c.created_at > c.c.closed_at)
    next_case = sa.select(sa.func.min(later.c.created_at)).where(after).scalar_subquery()
    next_same = (
        sa.select(sa.func.min(later.c.created_at))
        .select_from(later.outerjoin(later_routing, later_routing.c.case_id == later.c.id))
        .where(after, sa.func.coalesce(later_routing.c.team, later.c.reason) == sa.func.coalesce(r.c.team, c.c.reason))
        .scalar_subquery()
    )
    select = sa.select(
        c.c.id, c.c.conversation_id, c.c.channel, r.c.team, c.c.reason, c.c.agent_id, c.c.status, c.c.resolution,
        c.c.created_at, c.c.claimed_at, c.c.closed_at, first_reply, sa.func.coalesce(transfers, 0), next_case, next_same,
    ).select_from(c.outerjoin(r, r.c.case_id == c.c.id))
    if chunk is not None:
        select = select.where(c.c.conversation_id.in_(chunk))
    conn.execute(case_facts.insert().from_select(
        ["id", "conversation_id", "channel", "team", "reason", "agent_id", "status", "resolution", "created_at", "claimed_at",
         "closed_at", "first_reply_at", "transfers", "next_case_at", "next_same_topic_at"], select))
    v = conversations.alias("v")
    wrote = sa.exists().where(e.c.conversation_id == v.c.id, e.c.kind == "message_in")
    had_case = sa.exists().where(cases.c.conversation_id == v.c.id)
    had_ticket = sa.exists().where(tickets.c.conversation_id == v.c.id)
    select = sa.select(v.c.id, v.c.channel, v.c.created_at, wrote, had_case, had_ticket)
    if chunk is not None:
        select = select.where(v.c.id.in_(chunk))
    conn.execute(conversation_facts.insert().from_select(["id", "channel", "created_at", "wrote", "had_case", "had_ticket"], select))


def _add_faq_days(conn: sa.engine.Connection, lo: int, hi: int, dialect: str) -> None:
    """Add the events with lo < id <= hi to the per-day FAQ counts (called under the watermark's CAS)."""
    faq_id = sa.func.coalesce(_json_text(events.c.data, "faq_id", dialect), "")
    helpful = _json_true(events.c.data, "helpful", dialect)
    day = _day(events.c.at, dialect)
    rows = conn.execute(
        sa.select(
            day.label("day"), sa.func.coalesce(events.c.channel, "").label("channel"),
            sa.case((events.c.kind == "missed", ""), else_=faq_id).label("faq_id"),
            sa.func.sum(sa.case((events.c.kind == "answered", 1), else_=0)),
            sa.func.sum(sa.case((sa.and_(events.c.kind == "feedback", helpful), 1), else_=0)),
            # not helpful = anything but JSON true (metrics.faq's definition), a missing flag included
            sa.func.sum(sa.case((events.c.kind == "feedback", sa.case((helpful, 0), else_=1)), else_=0)),
            sa.func.sum(sa.case((events.c.kind == "missed", 1), else_=0)),
        )
        .where(events.c.id > lo, events.c.id <= hi, events.c.kind.in_(("answered", "feedback", "missed")))
        .group_by("day", "channel", "faq_id")
    ).all()
    if not rows:
        return
    values = [{"day": int(d), "channel": ch, "faq_id": fid or "", "served": int(s or 0), "helpful": int(h or 0),
               "unhelpful": int(u or 0), "missed": int(m or 0)} for d, ch, fid, s, h, u, m in rows]
    stmt = _insert(conn)(faq_days)
    stmt = stmt.on_conflict_do_update(
        index_elements=["day", "channel", "faq_id"],
        set_={name: getattr(faq_days.c, name) + getattr(stmt.excluded, name) for name in ("served", "helpful", "unhelpful", "missed")},
    )
    for i in range(0, len(values), 1000):
        conn.execute(stmt, values[i:i + 1000])
