"""The managers' door: the reports page, figures as JSON/CSV/SVG, CSAT and quality review.

    GET  /reports                                  the page (static files in static/)
    GET  /api/reports/options                      channels, teams, agents for the filters
    GET  /api/reports/summary?start=&end=&channel=&team=&agent=    every figure as JSON
    GET  /api/reports/csv/<figure>?...             one figure as CSV (FIGURES in metrics.py)
    GET  /api/reports/charts/<chart>?...            one chart (SVG) (CHARTS below)
    POST /api/conversations/<id>/rating            {score 1-5, comment?}  (customer token)
    GET  /api/reports/qa/rubric    PUT (manager) {criteria: [{id?, name, description, weight}]}
    POST /api/reports/qa/sample    {start, end, per_bucket, seed}          (supervisor, manager)
    GET  /api/reports/qa/queue     GET /api/reports/qa/reviews/<id>        (supervisor, manager)
    POST /api/reports/qa/reviews/<id>  {scores: {criterion id: 1-5}, comment}  (supervisor)
    GET  /api/reports/qa/mine      an agent's own finished reviews
    GET  /api/reports/mine         an agent's own quality: CSAT figures + finished reviews (agent, supervisor)

Dates are UTC days (YYYY-MM-DD), both ends included; the default is the last 30 days.
"""
from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json, raw

from core import tokens
from core.auth import staff
from core.pages import SCRIPT, STYLE, StaffPage
from core.http import ApiError, read_json
from reports import charts, csat, metrics, qa
from reports.schema import accounts, case_routing, conversations, qa_criteria

bp = Blueprint("reports")
PAGE = StaffPage(Path(__file__).resolve().parent / "static", "reports.html", {"reports.js": SCRIPT, "reports.css": STYLE}, "reports")
READERS = ("manager", "supervisor")
CHARTS = ("containment", "escalation_reasons", "escalations_by_day", "csat_trend", "faq_served", "unanswered", "qa_agents")
MAX_DAYS = 366


def _engine(request: Request) -> sa.engine.Engine:
    """The sync engine for the report queries (run in worker threads), built by server/services.py."""
    engine: sa.engine.Engine = request.app.ctx.reports_engine
    return engine


def _day(value: str, name: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except (TypeError, ValueError):
        raise ApiError(400, f"'{name}' must be a date YYYY-MM-DD") from None


def filters_from(request: Request) -> metrics.Filters:
    """Filters from the query string; every bad value is a 400 naming the parameter."""
    args = request.args
    today = dt.datetime.now(dt.timezone.utc).date()
    end = _day(args.get("end"), "end") if args.get("end") else today
    start = _day(args.get("start"), "start") if args.get("start") else end - dt.timedelta(days=29)
    if start > end:
        raise ApiError(400, "'start' must not be after 'end'")
    if (end - start).days >= MAX_DAYS:
        raise ApiError(400, f"a report covers at most {MAX_DAYS} days")
    agent = args.get("agent") or None
    if agent is not None and (not agent.isdigit() or len(agent) > 9):
        raise ApiError(400, "'agent' must be an account id")
    for name in ("channel", "team"):
        if len(args.get(name) or "") > 40:
            raise ApiError(400, f"'{name}' is too long")
    midnight = dt.datetime.combine(start, dt.time(), dt.timezone.utc).timestamp()
    after = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), dt.timezone.utc).timestamp()
    return metrics.Filters(midnight, after, args.get("channel") or None, args.get("team") or None, int(agent) if agent else None)


def _figures(engine: sa.engine.Engine, f: metrics.Filters, settings: Any, names: tuple[str, ...]) -> dict[str, Any]:
    now = time.time()
    with engine.connect() as conn:
        return {name: metrics.figure(conn, name, f, settings, now) for name in names}


def _plain(value: Any) -> Any:
    """Dataclasses (and their properties like csat, helpful_rate) as JSON-ready values."""
    import dataclasses

    if dataclasses.is_dataclass(value):
        out = {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        for extra in ("csat", "helpful_rate"):
            if hasattr(type(value), extra):
                out[extra] = getattr(value, extra)
        return out
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


# -- the page --------------------------------------------------------------------------------
@bp.get("/reports")
async def page(request: Request) -> HTTPResponse:
    return await PAGE.html()


@bp.get("/reports/<name:str>")
async def page_file(request: Request, name: str) -> HTTPResponse:
    return await PAGE.asset(name)


# -- figures ---------------------------------------------------------------------------------
@bp.get("/api/reports/options")
@staff(*READERS)
async def options(request: Request, me: Any) -> HTTPResponse:
    engine = _engine(request)

    def read() -> dict[str, Any]:
        with engine.connect() as conn:
            channels = sorted(c for c in conn.execute(sa.select(conversations.c.channel).distinct()).scalars() if c)
            teams = sorted(t for t in conn.execute(sa.select(case_routing.c.team).distinct()).scalars() if t)
            agents = [{"id": i, "name": n} for i, n in conn.execute(
                sa.select(accounts.c.id, accounts.c.display_name).where(accounts.c.role.in_(("agent", "supervisor"))).order_by(accounts.c.display_name))]
        return {"channels": channels, "teams": teams, "agents": agents, "figures": list(metrics.FIGURES), "charts": list(CHARTS),
                "me": {"username": me.username, "display_name": me.display_name, "role": me.role}}

    return json(await asyncio.to_thread(read))


@bp.get("/api/reports/summary")
@staff(*READERS)
async def summary(request: Request, me: Any) -> HTTPResponse:
    f = filters_from(request)
    found = await asyncio.to_thread(_figures, _engine(request), f, request.app.ctx.settings, metrics.FIGURES)
    return json({"filters": _plain(f), "figures": _plain(found)})


@bp.get("/api/reports/csv/<name:str>")
@staff(*READERS)
async def figure_csv(request: Request, name: str, me: Any) -> HTTPResponse:
    if name not in metrics.FIGURES:
        raise ApiError(404, f"no figure '{name}'; one of {', '.join(metrics.FIGURES)}")
    f = filters_from(request)
    found = await asyncio.to_thread(_figures, _engine(request), f, request.app.ctx.settings, (name,))
    out = io.StringIO()
    writer = csv.writer(out)
    for row in found[name].csv():
        # A cell starting with = + - @ would be a formula in a spreadsheet: quote it as text.
        writer.writerow(["'" + c if isinstance(c, str) and c[:1] in ("=", "+", "-", "@") else c for c in row])
    day = dt.datetime.fromtimestamp(f.start, dt.timezone.utc).strftime("%Y-%m-%d")
    return raw(out.getvalue().encode(), content_type="text/csv; charset=utf-8",
               headers={"Content-Disposition": f'attachment; filename="tandem-{name}-{day}.csv"'})


def draw(name: str, figures: dict[str, Any]) -> str:
    """One chart from the figures (names in CHARTS)."""
    if name == "containment":
        c = figures["containment"]
        return charts.line_chart("Containment by day (%)", [d for d, _, _ in c.by_day],
                                 {"bot only": [100.0 * b / n if n else None for _, n, b in c.by_day]})
    if name == "escalation_reasons":
        e = figures["escalations"]
        return charts.bar_chart("Escalations by reason", sorted(e.reasons.items(), key=lambda kv: -kv[1]))
    if name == "escalations_by_day":
        e = figures["escalations"]
        days = sorted({d for d, _, _ in e.by_day})
        reasons = sorted(e.reasons)
        per = {(d, r): n for d, r, n in e.by_day}
        return charts.line_chart("Escalations by day", days, {r: [float(per.get((d, r), 0)) for d in days] for r in reasons[:6]})
    if name == "csat_trend":
        s = figures["satisfaction"]
        days = sorted({d for d, *_ in s.by_day})
        per = {(d, w): m for d, w, _, m, _ in s.by_day}
        return charts.line_chart("CSAT mean score by day", days, {w: [per.get((d, w)) for d in days] for w in ("bot", "agent")})
    if name == "faq_served":
        q = figures["faq"]
        return charts.bar_chart("FAQ answers served", [(e.faq_id, float(e.served)) for e in q.entries])
    if name == "unanswered":
        q = figures["faq"]
        return charts.line_chart("Unanswered questions by day", [d for d, _ in q.missed_by_day], {"unanswered": [float(n) for _, n in q.missed_by_day]})
    if name == "qa_agents":
        a = figures["qa"]
        return charts.bar_chart("QA score by agent (0-100)", [(n, m) for _, n, _, m in a.by_agent])
    raise KeyError(name)


@bp.get("/api/reports/charts/<name:str>")
@staff(*READERS)
async def chart(request: Request, name: str, me: Any) -> HTTPResponse:
    if name not in CHARTS:
        raise ApiError(404, f"no chart '{name}'; one of {', '.join(CHARTS)}")
    f = filters_from(request)
    needs = {"containment": ("containment",), "escalation_reasons": ("escalations",), "escalations_by_day": ("escalations",),
             "csat_trend": ("satisfaction",), "faq_served": ("faq",), "unanswered": ("faq",), "qa_agents": ("qa",)}[name]
    found = await asyncio.to_thread(_figures, _engine(request), f, request.app.ctx.settings, needs)
    return raw(draw(name, found).encode(), content_type="image/svg+xml; charset=utf-8",
               headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})


@bp.get("/api/reports/gaps")
@staff(*READERS)
async def gaps(request: Request, me: Any) -> HTTPResponse:
    f = filters_from(request)
    try:
        threshold = float(request.args.get("threshold", 0.7))
    except ValueError:
        raise ApiError(400, "'threshold' must be a number between 0 and 1") from None
    if not 0 < threshold <= 1:
        raise ApiError(400, "'threshold' must be a number between 0 and 1")
    await request.app.ctx.knowledge_ready  # the embedder loads in a worker thread at start-up
    embed = request.app.ctx.knowledge.embedder.encode
    found = await asyncio.to_thread(metrics.gap_trend, _engine(request), f, embed, threshold)
    return json({"gaps": _plain(found[:50]), "threshold": threshold})


# -- CSAT ------------------------------------------------------------------------------------
@bp.post("/api/conversations/<conversation_id:str>/rating")
async def rate(request: Request, conversation_id: str) -> HTTPResponse:
    tokens.require(request, request.app.ctx.settings.secret(), conversation_id)
    body = read_json(request, max_bytes=16 * 1024)
    unknown = set(body) - {"score", "comment"}
    if unknown:
        raise ApiError(400, f"unknown fields: {', '.join(sorted(unknown))}")
    try:
        rating = await asyncio.to_thread(csat.record_rating, _engine(request), conversation_id, body.get("score"), body.get("comment", ""))
    except csat.RatingError as exc:
        raise ApiError(400, str(exc)) from None
    except csat.UnknownConversation:
        raise ApiError(404, "no such conversation") from None
    except csat.AlreadyRated:
        raise ApiError(409, "this conversation has been rated already") from None
    return json({"rating": {"score": rating.score, "comment": rating.comment, "created_at": rating.created_at}}, status=201)


# -- quality review --------------------------------------------------------------------------
def _qa_call(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except qa.QaError as exc:
        raise ApiError(400, str(exc)) from None
    except qa.NotFound as exc:
        raise ApiError(404, str(exc)) from None
    except qa.Conflict as exc:
        raise ApiError(409, str(exc)) from None


def _review_id(review_id: int) -> None:
    """Ids beyond a database integer are unknown, not a driver overflow (a 5xx)."""
    if not 0 < review_id < 2**31:
        raise ApiError(404, f"no review {review_id}")


@bp.get("/api/reports/qa/rubric")
@staff("manager", "supervisor", "agent")
async def get_rubric(request: Request, me: Any) -> HTTPResponse:
    found = await asyncio.to_thread(qa.rubric, _engine(request))
    return json({"criteria": [c.to_dict() for c in found]})


@bp.put("/api/reports/qa/rubric")
@staff("manager")
async def put_rubric(request: Request, me: Any) -> HTTPResponse:
    body = read_json(request)
    found = await asyncio.to_thread(_qa_call, qa.replace_rubric, _engine(request), body.get("criteria"))
    return json({"criteria": [c.to_dict() for c in found]})


@bp.post("/api/reports/qa/sample")
@staff(*READERS)
async def sample(request: Request, me: Any) -> HTTPResponse:
    body = read_json(request)
    settings = request.app.ctx.settings
    start, end = body.get("start"), body.get("end")
    if not isinstance(start, str) or not isinstance(end, str):
        raise ApiError(400, "'start' and 'end' must be dates YYYY-MM-DD")
    first, last = _day(start, "start"), _day(end, "end")
    seed = body.get("seed", int(time.time()))
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ApiError(400, "'seed' must be an integer")
    lo = dt.datetime.combine(first, dt.time(), dt.timezone.utc).timestamp()
    hi = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), dt.timezone.utc).timestamp()
    found = await asyncio.to_thread(_qa_call, qa.sample, _engine(request), lo, hi, body.get("per_bucket", 5), seed,
                                    settings.csat_low_score, settings.qa_long_handle_s)
    return json({"queued": [r.to_dict() for r in found], "seed": seed}, status=201)


@bp.get("/api/reports/qa/queue")
@staff(*READERS)
async def queue(request: Request, me: Any) -> HTTPResponse:
    status = request.args.get("status", "queued")
    if status not in ("queued", "done"):
        raise ApiError(400, "'status' must be queued or done")
    found = await asyncio.to_thread(qa.reviews, _engine(request), status)
    return json({"reviews": [r.to_dict() for r in found]})


@bp.get("/api/reports/qa/reviews/<review_id:int>")
@staff(*READERS)
async def review(request: Request, review_id: int, me: Any) -> HTTPResponse:
    _review_id(review_id)
    engine = _engine(request)
    found = await asyncio.to_thread(_qa_call, qa.get_review, engine, review_id)
    lines = await asyncio.to_thread(qa.transcript, engine, found.conversation_id)
    return json({"review": found.to_dict(), "transcript": lines})


@bp.post("/api/reports/qa/reviews/<review_id:int>")
@staff("supervisor")
async def score(request: Request, review_id: int, me: Any) -> HTTPResponse:
    _review_id(review_id)
    body = read_json(request)
    found = await asyncio.to_thread(_qa_call, qa.score_review, _engine(request), review_id, me.id, body.get("scores"), body.get("comment", ""))
    return json({"review": found.to_dict()})


@bp.get("/api/reports/qa/mine")
@staff("agent", "supervisor")
async def mine(request: Request, me: Any) -> HTTPResponse:
    found = await asyncio.to_thread(qa.reviews, _engine(request), "done", me.id)
    return json({"reviews": [r.to_dict() for r in found]})


@bp.get("/api/reports/mine")
@staff("agent", "supervisor")
async def my_quality(request: Request, me: Any) -> HTTPResponse:
    """The console's "My quality" view: the caller's own CSAT and QA reviews, nobody else's."""
    engine = _engine(request)
    low = request.app.ctx.settings.csat_low_score

    def read() -> dict[str, Any]:
        qa.rubric(engine)  # stores the default rubric on first use
        with engine.connect() as conn:  # retired criteria too: old reviews name them
            criteria = {str(i): str(n) for i, n in conn.execute(sa.select(qa_criteria.c.id, qa_criteria.c.name))}
        done = qa.reviews(engine, "done", me.id)
        scored = [r.score for r in done if r.score is not None]
        return {
            "agent": {"id": me.id, "name": me.display_name},
            "csat": csat.agent_summary(engine, me.id, low).to_dict(),
            "qa": {"count": len(done), "mean": round(sum(scored) / len(scored), 2) if scored else None},
            "reviews": [r.to_dict() for r in done],
            "criteria": criteria,
        }

    return json(_plain(await asyncio.to_thread(read)))
