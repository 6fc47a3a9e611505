"""The managers' figures, each a few SQL queries (SQLAlchemy Core) over pre-aggregated facts and CSAT.

The conversation and case figures read reports/rollup.py's facts (refreshed incrementally
before each read; the same definitions, computed once per case and conversation); the FAQ
figure reads its daily rollup for whole days and the event log for partial ones. The same
figures straight from the source tables are in tests/reports_oracle.py (the tests' oracle).

Every figure is defined in docs/reports.md; the functions here are that definition in code, so
read the two together. All functions take a sync Connection (call them from a worker thread)
and a `Filters`; they run unchanged on SQLite and PostgreSQL. Percentiles are nearest-rank and
computed in Python from the durations SQL returns, so both databases give the same number.
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import sqlalchemy as sa

from reports import rollup
from reports.sql import DAY, day as _day, json_text as _json_text, json_true as _json_true
from reports.schema import accounts, case_facts, case_routing, cases, conversation_facts, csat, events, faq_days, qa_reviews

Row = list[Any]


@dataclass(frozen=True)
class Filters:
    """A report's scope. `start` inclusive, `end` exclusive (epoch seconds, UTC).

    Conversation-level figures (containment, FAQ) ignore team and agent: a conversation the bot
    resolved has neither.
    """

    start: float
    end: float
    channel: str | None = None
    team: str | None = None
    agent_id: int | None = None


def day_label(day: int) -> str:
    return dt.datetime.fromtimestamp(day * DAY, dt.timezone.utc).strftime("%Y-%m-%d")


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest rank: the smallest value with at least p% of the values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100.0 * len(ordered)))
    return float(ordered[rank - 1])


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _dialect(conn: sa.engine.Connection) -> str:
    return conn.dialect.name


# -- conversations ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Containment:
    conversations: int
    bot_only: int
    rate: float | None
    by_day: list[tuple[str, int, int]]  # (day, conversations, bot only)

    def csv(self) -> list[Row]:
        return [["day", "conversations", "bot_only", "containment"]] + [
            [d, n, b, round(b / n, 4) if n else ""] for d, n, b in self.by_day
        ] + [["total", self.conversations, self.bot_only, "" if self.rate is None else round(self.rate, 4)]]


def _counted_facts(f: Filters, *columns: Any) -> Any:
    """The counted conversations from their facts (reports/rollup.py; same definition as above)."""
    v = conversation_facts
    query = sa.select(*columns).where(v.c.created_at >= f.start, v.c.created_at < f.end, v.c.wrote.is_(True))
    if f.channel:
        query = query.where(v.c.channel == f.channel)
    return query


def _facts(conn: sa.engine.Connection) -> None:
    """Bring the pre-aggregated facts up to date before reading them (reports/rollup.py)."""
    rollup.refresh(conn.engine)


def containment(conn: sa.engine.Connection, f: Filters) -> Containment:
    _facts(conn)
    v = conversation_facts
    bot_only = sa.case((sa.and_(v.c.had_case.is_(False), v.c.had_ticket.is_(False)), 1), else_=0)
    day = _day(v.c.created_at, _dialect(conn))
    rows = conn.execute(_counted_facts(f, day.label("day"), sa.func.count(), sa.func.sum(bot_only)).group_by("day").order_by("day")).all()
    by_day = [(day_label(int(d)), int(n), int(b or 0)) for d, n, b in rows]
    total, bot = sum(r[1] for r in by_day), sum(r[2] for r in by_day)
    return Containment(total, bot, _ratio(bot, total), by_day)


# -- cases -----------------------------------------------------------------------------------
def _case_facts(f: Filters, *columns: Any) -> Any:
    """Cases opened in the window from their facts: the same narrowing as _cases."""
    c = case_facts
    query = sa.select(*columns).where(c.c.created_at >= f.start, c.c.created_at < f.end)
    if f.channel:
        query = query.where(c.c.channel == f.channel)
    if f.team:
        query = query.where(c.c.team == f.team)
    if f.agent_id is not None:
        query = query.where(c.c.agent_id == f.agent_id)
    return query


@dataclass(frozen=True)
class Escalations:
    conversations: int
    escalated: int
    rate: float | None
    reasons: dict[str, int]  # cases opened, by the policy's reason code
    by_day: list[tuple[str, str, int]]  # (day, reason, cases)

    def csv(self) -> list[Row]:
        return [["day", "reason", "cases"]] + [list(r) for r in self.by_day] + [
            ["total", reason, n] for reason, n in sorted(self.reasons.items())
        ] + [["rate", "", "" if self.rate is None else round(self.rate, 4)]]


def escalations(conn: sa.engine.Connection, f: Filters) -> Escalations:
    _facts(conn)
    v, c = conversation_facts, case_facts
    total, escalated = conn.execute(_counted_facts(f, sa.func.count(), sa.func.sum(sa.case((v.c.had_case.is_(True), 1), else_=0)))).one()
    day = _day(c.c.created_at, _dialect(conn))
    rows = conn.execute(
        _case_facts(f, day.label("day"), c.c.reason, sa.func.count()).group_by("day", c.c.reason).order_by("day", c.c.reason)
    ).all()
    by_day = [(day_label(int(d)), str(reason), int(n)) for d, reason, n in rows]
    reasons: dict[str, int] = {}
    for _, reason, n in by_day:
        reasons[reason] = reasons.get(reason, 0) + n
    return Escalations(int(total or 0), int(escalated or 0), _ratio(int(escalated or 0), int(total or 0)), reasons, by_day)


@dataclass(frozen=True)
class Waiting:
    cases: int
    answered: int
    abandoned: int
    first_reply_p50: float | None
    first_reply_p90: float | None
    within_target: int
    service_level: float | None  # within_target / (answered + abandoned)
    target_s: float

    def csv(self) -> list[Row]:
        return [["cases", "answered", "abandoned", "first_reply_p50_s", "first_reply_p90_s", "within_target", "service_level", "target_s"],
                [self.cases, self.answered, self.abandoned, self.first_reply_p50, self.first_reply_p90, self.within_target,
                 "" if self.service_level is None else round(self.service_level, 4), self.target_s]]


def _percentiles(conn: sa.engine.Connection, column: Any, ps: Sequence[float]) -> list[float | None]:
    """Nearest-rank percentiles of a subquery column, NULLs ignored. PostgreSQL's percentile_disc
    is the same definition, computed without shipping every row to Python."""
    if _dialect(conn) == "postgresql":
        row = conn.execute(sa.select(*[sa.func.percentile_disc(p / 100.0).within_group(column) for p in ps])).one()
        return [None if v is None else float(v) for v in row]
    values = [float(v) for (v,) in conn.execute(sa.select(column).where(column.is_not(None)))]
    return [percentile(values, p) for p in ps]


def waiting(conn: sa.engine.Connection, f: Filters, target_s: float) -> Waiting:
    _facts(conn)
    c = case_facts
    per_case = _case_facts(f, (c.c.first_reply_at - c.c.created_at).label("wait"), c.c.status, c.c.resolution).subquery()
    left = sa.and_(per_case.c.wait.is_(None), per_case.c.status == "cancelled", per_case.c.resolution == "customer_left")
    total, answered, abandoned, within = conn.execute(sa.select(
        sa.func.count(), sa.func.count(per_case.c.wait), sa.func.sum(sa.case((left, 1), else_=0)),
        sa.func.sum(sa.case((per_case.c.wait <= target_s, 1), else_=0)),
    )).one()
    p50, p90 = _percentiles(conn, per_case.c.wait, (50, 90))
    answered, abandoned, within = int(answered or 0), int(abandoned or 0), int(within or 0)
    return Waiting(int(total or 0), answered, abandoned, p50, p90, within, _ratio(within, answered + abandoned), target_s)


@dataclass(frozen=True)
class Handling:
    closed: int
    handle_p50: float | None
    handle_p90: float | None
    handle_mean: float | None
    resolution_p50: float | None
    resolution_p90: float | None
    resolution_mean: float | None
    transfers: int
    transferred_cases: int
    reopened: int
    reopen_rate: float | None

    def csv(self) -> list[Row]:
        names = [f.name for f in self.__dataclass_fields__.values()]  # type: ignore[attr-defined]
        return [names, [getattr(self, n) for n in names]]


def handling(conn: sa.engine.Connection, f: Filters, reopen_window_s: float) -> Handling:
    _facts(conn)
    c = case_facts
    reopened = sa.case((c.c.next_case_at <= c.c.closed_at + reopen_window_s, 1), else_=0)
    per_case = (
        _case_facts(f, (c.c.closed_at - c.c.claimed_at).label("handle"), (c.c.closed_at - c.c.created_at).label("resolution"),
                    c.c.transfers.label("transfers"), reopened.label("reopened"))
        .where(c.c.status == "closed", c.c.closed_at.is_not(None))
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


@dataclass(frozen=True)
class FirstContact:
    judged: int  # closed cases whose return window has fully passed
    resolved_first: int
    rate: float | None
    pending: int  # closed cases still inside their return window
    window_days: float

    def csv(self) -> list[Row]:
        return [["judged", "resolved_first_contact", "fcr", "pending", "window_days"],
                [self.judged, self.resolved_first, "" if self.rate is None else round(self.rate, 4), self.pending, self.window_days]]


def first_contact(conn: sa.engine.Connection, f: Filters, window_days: float, as_of: float) -> FirstContact:
    _facts(conn)
    c = case_facts
    window = window_days * DAY
    came_back = sa.case((c.c.next_same_topic_at <= c.c.closed_at + window, 1), else_=0)
    rows = conn.execute(_case_facts(f, c.c.closed_at, came_back).where(c.c.status == "closed", c.c.closed_at.is_not(None))).all()
    judged = [back for closed, back in rows if closed + window <= as_of]
    first = sum(1 for back in judged if not back)
    return FirstContact(len(judged), first, _ratio(first, len(judged)), len(rows) - len(judged), window_days)


# -- the knowledge base ------------------------------------------------------------------------
@dataclass(frozen=True)
class FaqEntry:
    faq_id: str
    served: int
    helpful: int
    unhelpful: int

    @property
    def helpful_rate(self) -> float | None:
        return _ratio(self.helpful, self.helpful + self.unhelpful)


@dataclass(frozen=True)
class Faq:
    served: int
    helpful: int
    unhelpful: int
    entries: list[FaqEntry]  # most served first
    missed: int
    missed_by_day: list[tuple[str, int]]

    def csv(self) -> list[Row]:
        return [["faq_id", "served", "helpful", "unhelpful", "helpful_rate"]] + [
            [e.faq_id, e.served, e.helpful, e.unhelpful, "" if e.helpful_rate is None else round(e.helpful_rate, 4)] for e in self.entries
        ] + [["unanswered_day", "unanswered", "", "", ""]] + [[d, n, "", "", ""] for d, n in self.missed_by_day]


def _events(f: Filters, *columns: Any) -> Any:
    query = sa.select(*columns).where(events.c.at >= f.start, events.c.at < f.end)
    if f.channel:
        query = query.where(events.c.channel == f.channel)
    return query


FaqCounts = tuple[dict[str, int], dict[str, tuple[int, int]], dict[int, int]]  # served, (helpful, not), missed per day


def _faq_raw(conn: sa.engine.Connection, f: Filters) -> FaqCounts:
    """FAQ counts straight from the event log (the edges of a window that is not whole days)."""
    dialect = _dialect(conn)
    faq_id = _json_text(events.c.data, "faq_id", dialect).label("faq_id")
    served = {k: int(n) for k, n in conn.execute(_events(f, faq_id, sa.func.count()).where(events.c.kind == "answered").group_by(faq_id)).all()}
    helpful_flag = _json_true(events.c.data, "helpful", dialect)
    votes = conn.execute(
        _events(f, faq_id, sa.func.sum(sa.case((helpful_flag, 1), else_=0)), sa.func.sum(sa.case((helpful_flag, 0), else_=1)))
        .where(events.c.kind == "feedback").group_by(faq_id)
    ).all()
    voted = {fid: (int(up or 0), int(down or 0)) for fid, up, down in votes}
    day = _day(events.c.at, dialect)
    missed = {int(d): int(n) for d, n in conn.execute(
        _events(f, day.label("day"), sa.func.count()).where(events.c.kind == "missed").group_by("day")
    ).all()}
    return served, voted, missed


def _faq_days(conn: sa.engine.Connection, first_day: int, end_day: int, channel: str | None) -> FaqCounts:
    """FAQ counts of whole UTC days [first_day, end_day) from the daily rollup (reports/rollup.py)."""
    d = faq_days
    query = sa.select(d.c.faq_id, sa.func.sum(d.c.served), sa.func.sum(d.c.helpful), sa.func.sum(d.c.unhelpful)).where(
        d.c.day >= first_day, d.c.day < end_day, d.c.faq_id != "")
    missed_query = sa.select(d.c.day, sa.func.sum(d.c.missed)).where(d.c.day >= first_day, d.c.day < end_day, d.c.missed > 0)
    if channel:
        query, missed_query = query.where(d.c.channel == channel), missed_query.where(d.c.channel == channel)
    served: dict[str, int] = {}
    voted: dict[str, tuple[int, int]] = {}
    for fid, n, up, down in conn.execute(query.group_by(d.c.faq_id)).all():
        if n:
            served[fid] = int(n)
        if up or down:
            voted[fid] = (int(up or 0), int(down or 0))
    missed = {int(day): int(n) for day, n in conn.execute(missed_query.group_by(d.c.day)).all()}
    return served, voted, missed


def faq(conn: sa.engine.Connection, f: Filters) -> Faq:
    """Whole days from the rollup, the partial first/last day (if any) from the event log."""
    _facts(conn)
    first_day, end_day = math.ceil(f.start / DAY), math.floor(f.end / DAY)
    if first_day < end_day:
        parts = [_faq_days(conn, first_day, end_day, f.channel)]
        if f.start < first_day * DAY:
            parts.append(_faq_raw(conn, Filters(f.start, first_day * DAY, f.channel)))
        if end_day * DAY < f.end:
            parts.append(_faq_raw(conn, Filters(end_day * DAY, f.end, f.channel)))
    else:
        parts = [_faq_raw(conn, f)]
    served: dict[str, int] = {}
    voted: dict[str, tuple[int, int]] = {}
    missed_days: dict[int, int] = {}
    for part_served, part_voted, part_missed in parts:
        for k, n in part_served.items():
            served[k] = served.get(k, 0) + n
        for k, (up, down) in part_voted.items():
            old = voted.get(k, (0, 0))
            voted[k] = (old[0] + up, old[1] + down)
        for k, n in part_missed.items():
            missed_days[k] = missed_days.get(k, 0) + n
    ids = sorted({k for k in served if k} | {k for k in voted if k})
    entries = sorted(
        (FaqEntry(i, int(served.get(i, 0)), *voted.get(i, (0, 0))) for i in ids), key=lambda e: (-e.served, e.faq_id)
    )
    missed = [(day_label(d), n) for d, n in sorted(missed_days.items())]
    return Faq(
        sum(e.served for e in entries), sum(e.helpful for e in entries), sum(e.unhelpful for e in entries), entries,
        sum(n for _, n in missed), missed,
    )


@dataclass(frozen=True)
class GapTrend:
    question: str  # the newest question of the cluster
    count: int
    by_day: list[tuple[str, int]]


def gap_trend(engine: sa.engine.Engine, f: Filters, embed: Callable[[Sequence[str]], np.ndarray], threshold: float = 0.7) -> list[GapTrend]:
    """Knowledge-gap clusters (editor/gaps.py) of the window's unanswered questions, per day.

    Channel, team and agent filters do not apply: the gap finder reads the whole log.
    """
    from editor.gaps import cluster, missed_questions

    questions = [q for q in missed_questions(engine, limit=5000) if f.start <= q.at < f.end]
    found = []
    for gap in cluster(questions, embed, threshold):
        days: dict[str, int] = {}
        for example in gap.examples:
            label = day_label(int(example.at // DAY))
            days[label] = days.get(label, 0) + 1
        found.append(GapTrend(gap.examples[0].text, gap.count, sorted(days.items())))
    return sorted(found, key=lambda g: -g.count)


# -- satisfaction and quality ------------------------------------------------------------------
@dataclass(frozen=True)
class CsatStats:
    ratings: int
    mean: float | None
    satisfied: int  # scores 4 and 5
    low: int  # scores at or below the low mark

    @property
    def csat(self) -> float | None:
        return _ratio(self.satisfied, self.ratings)


@dataclass(frozen=True)
class Satisfaction:
    bot: CsatStats  # conversations the bot resolved alone (no case)
    agent: CsatStats  # ratings about a case an agent handled
    by_day: list[tuple[str, str, int, float, float]]  # (day, bot|agent, ratings, mean, csat)
    by_agent: list[tuple[int, str, int, float, float]]  # (agent id, name, ratings, mean, csat)

    def csv(self) -> list[Row]:
        rows: list[Row] = [["day", "who", "ratings", "mean", "csat"]]
        rows += [[d, w, n, round(m, 3), round(c, 4)] for d, w, n, m, c in self.by_day]
        rows += [["agent", name, n, round(m, 3), round(c, 4)] for _, name, n, m, c in self.by_agent]
        for who, stats in (("bot", self.bot), ("agent", self.agent)):
            rows.append(["total", who, stats.ratings, "" if stats.mean is None else round(stats.mean, 3),
                         "" if stats.csat is None else round(stats.csat, 4)])
        return rows


def _csat(f: Filters, *columns: Any) -> Any:
    query = sa.select(*columns).select_from(csat.outerjoin(case_routing, case_routing.c.case_id == csat.c.case_id)).where(
        csat.c.created_at >= f.start, csat.c.created_at < f.end
    )
    if f.channel:
        query = query.where(csat.c.channel == f.channel)
    if f.team:
        query = query.where(case_routing.c.team == f.team)
    if f.agent_id is not None:
        query = query.where(csat.c.agent_id == f.agent_id)
    return query


def satisfaction(conn: sa.engine.Connection, f: Filters, low_score: int) -> Satisfaction:
    who = sa.case((csat.c.case_id.is_(None), "bot"), else_="agent").label("who")
    good = sa.func.sum(sa.case((csat.c.score >= 4, 1), else_=0))
    bad = sa.func.sum(sa.case((csat.c.score <= low_score, 1), else_=0))
    mean = sa.func.avg(sa.cast(csat.c.score, sa.Float))
    totals = {w: CsatStats(int(n), float(m), int(g), int(b)) for w, n, m, g, b in conn.execute(
        _csat(f, who, sa.func.count(), mean, good, bad).group_by(who)
    ).all()}
    day = _day(csat.c.created_at, _dialect(conn))
    by_day = [(day_label(int(d)), w, int(n), float(m), int(g) / int(n)) for d, w, n, m, g in conn.execute(
        _csat(f, day.label("day"), who, sa.func.count(), mean, good).group_by("day", who).order_by("day", who)
    ).all()]
    agents = conn.execute(
        _csat(f, csat.c.agent_id, accounts.c.display_name, sa.func.count(), mean, good)
        .join(accounts, accounts.c.id == csat.c.agent_id)
        .group_by(csat.c.agent_id, accounts.c.display_name).order_by(accounts.c.display_name)
    ).all()
    none = CsatStats(0, None, 0, 0)
    return Satisfaction(
        totals.get("bot", none), totals.get("agent", none), by_day,
        [(int(a), str(name), int(n), float(m), int(g) / int(n)) for a, name, n, m, g in agents],
    )


@dataclass(frozen=True)
class QaScores:
    reviews: int
    mean: float | None
    by_agent: list[tuple[int, str, int, float]]  # (agent id, name, reviews, mean score 0..100)
    by_team: list[tuple[str, int, float]]

    def csv(self) -> list[Row]:
        return [["group", "name", "reviews", "mean_score"]] + [
            ["agent", name, n, round(m, 2)] for _, name, n, m in self.by_agent
        ] + [["team", team, n, round(m, 2)] for team, n, m in self.by_team]


def qa_scores(conn: sa.engine.Connection, f: Filters) -> QaScores:
    """Finished reviews whose review was written in the window."""
    r = qa_reviews
    query = sa.select(r.c.agent_id, r.c.team, r.c.score).where(
        r.c.status == "done", r.c.reviewed_at >= f.start, r.c.reviewed_at < f.end
    )
    if f.channel:
        query = query.where(r.c.case_id.in_(sa.select(cases.c.id).where(cases.c.channel == f.channel)))
    if f.team:
        query = query.where(r.c.team == f.team)
    if f.agent_id is not None:
        query = query.where(r.c.agent_id == f.agent_id)
    rows = conn.execute(query).all()
    names = dict(conn.execute(sa.select(accounts.c.id, accounts.c.display_name)).all())
    agents: dict[int, list[float]] = {}
    teams: dict[str, list[float]] = {}
    for agent_id, team, score in rows:
        if agent_id is not None:
            agents.setdefault(int(agent_id), []).append(float(score))
        teams.setdefault(team or "(none)", []).append(float(score))
    scores = [float(s) for *_, s in rows]
    return QaScores(
        len(rows), _mean(scores),
        sorted(((a, str(names.get(a, a)), len(v), sum(v) / len(v)) for a, v in agents.items()), key=lambda x: x[1]),
        sorted((t, len(v), sum(v) / len(v)) for t, v in teams.items()),
    )


@dataclass
class Report:
    """Every figure for one set of filters (the page's JSON and the benchmark's unit)."""

    filters: Filters
    figures: dict[str, Any] = field(default_factory=dict)


FIGURES = ("containment", "escalations", "faq", "waiting", "handling", "first_contact", "satisfaction", "qa")


def figure(conn: sa.engine.Connection, name: str, f: Filters, settings: Any, as_of: float) -> Any:
    """One named figure with the thresholds from settings (service level, FCR window, low CSAT).

    On PostgreSQL JIT compilation is switched off for the transaction: these are short
    analytical queries, and on 1M events JIT spent ~4 s compiling a query that runs in 0.5 s;
    work_mem is raised so the per-case hash aggregates stay in memory (docs/benchmarks.md,
    "Reports at scale").
    """
    if _dialect(conn) == "postgresql":
        conn.execute(sa.text("SET LOCAL jit = off"))
        conn.execute(sa.text("SET LOCAL work_mem = '32MB'"))
    if name == "containment":
        return containment(conn, f)
    if name == "escalations":
        return escalations(conn, f)
    if name == "faq":
        return faq(conn, f)
    if name == "waiting":
        return waiting(conn, f, settings.service_level_s)
    if name == "handling":
        return handling(conn, f, settings.fcr_days * DAY)
    if name == "first_contact":
        return first_contact(conn, f, settings.fcr_days, as_of)
    if name == "satisfaction":
        return satisfaction(conn, f, settings.csat_low_score)
    if name == "qa":
        return qa_scores(conn, f)
    raise KeyError(name)
