"""The managers' figures, each one SQL query (SQLAlchemy Core) over the event log, cases and CSAT.

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

from reports.schema import accounts, case_routing, cases, conversations, csat, events, qa_reviews, tickets

DAY = 86400.0
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


def _day(column: Any, dialect: str) -> Any:
    """UTC day number of an epoch-seconds column (CAST rounds on PostgreSQL, so floor there)."""
    if dialect == "postgresql":
        return sa.cast(sa.func.floor(column / DAY), sa.Integer)
    return sa.cast(column / DAY, sa.Integer)


def _json_text(column: Any, key: str, dialect: str) -> Any:
    if dialect == "postgresql":
        return sa.func.json_extract_path_text(sa.cast(column, sa.JSON), key)
    return sa.func.json_extract(column, f"$.{key}")


def _json_true(column: Any, key: str, dialect: str) -> Any:
    if dialect == "postgresql":
        return sa.func.json_extract_path_text(sa.cast(column, sa.JSON), key) == "true"
    return sa.func.json_type(column, f"$.{key}") == "true"


def _dialect(conn: sa.engine.Connection) -> str:
    return conn.dialect.name


# -- conversations ---------------------------------------------------------------------------
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


# -- cases -----------------------------------------------------------------------------------
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
