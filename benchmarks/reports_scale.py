"""The managers' reports on a large generated history on PostgreSQL: 1,000,000 events and
100,000 cases (plus conversations, routing and CSAT), generated inside PostgreSQL; every figure is
timed over a 30-day window and over the whole 90 days (with and without a team filter), before
(tests/reports_oracle.py, straight from the source tables) and after the rollup (reports/rollup.py).

    $VENV/bin/python benchmarks/reports_scale.py [--events 1000000] [--cases 100000] [--runs 5] [--reuse] [--no-write]

Writes its section of docs/benchmarks.md. Goal: every report's p95 <= 1 s.
"""
from __future__ import annotations

import argparse
import os
import time
from typing import Any

import common  # noqa: F401  (puts the project root on sys.path)
import sqlalchemy as sa

from common import fresh_database, machine, markdown_table, percentile, today, write_section
from core.db import sync_engine
from server.schema import create_schema
from core.settings import load_settings
from reports import metrics, rollup
from tests import reports_oracle as direct
from reports.schema import ensure_indexes

DB = "tandem_reports_scale"
DAY = 86400.0
TEAMS = ("billing", "shipping", "technical", "complaints")
REASONS = ("customer_request", "sentiment", "frustration", "misses", "out_of_scope")
CHANNELS = ("web", "telegram", "rest")


def generate(engine: sa.engine.Engine, n_events: int, n_cases: int, start: float, seed: float = 0.11) -> None:
    """The history, generated inside PostgreSQL (generate_series + random(), seeded): no rows
    travel through Python, so 1M events load in well under a minute (the 5-minute rule)."""
    n_conv = n_cases * 5 // 2
    params = {"start": start, "n_conv": n_conv, "n_cases": n_cases, "day": DAY}
    channels = "(ARRAY['web','telegram','rest'])[1 + floor(random() * 3)::int]"
    steps = [
        "SELECT setseed(:seed)",
        "INSERT INTO accounts (id, username, display_name, password_hash, role, created_at) "
        "SELECT a, 'agent' || a, 'Agent ' || a, 'x', 'agent', :start FROM generate_series(1, 20) a",
        f"INSERT INTO conversations (id, channel, mode, customer_name, profile, created_at, updated_at) "
        f"SELECT 'c' || i, {channels}, 'bot', '', '{{}}', t, t FROM "
        f"(SELECT i, :start + random() * 90 * :day AS t FROM generate_series(0, :n_conv - 1) i) g",
        # cases: a random conversation each; 10% cancelled (customer left), else claimed after
        # ~90 s (exponential) and closed after ~500 s by one of 20 agents
        "CREATE TEMP TABLE gen_cases AS SELECT k, 'c' || floor(random() * :n_conv)::int AS cid, random() < 0.1 AS cancelled, "
        "random() * 295 + 5 AS delay, -ln(1 - random()) * 90 AS wait, -ln(1 - random()) * 500 AS handle, random() * 540 + 60 AS gone, "
        "1 + floor(random() * 20)::int AS agent, (ARRAY['customer_request','sentiment','frustration','misses','out_of_scope'])"
        "[1 + floor(random() * 5)::int] AS reason, (ARRAY['billing','shipping','technical','complaints'])[1 + floor(random() * 4)::int] AS team, "
        "random() AS r_transfer, random() AS r_rated, 1 + floor(random() * 5)::int AS score, random() * 59 + 1 AS reply "
        "FROM generate_series(1, :n_cases) k",
        "INSERT INTO cases (id, conversation_id, channel, status, reason, detail, signals, priority, agent_id, created_at, claimed_at, closed_at, resolution) "
        "SELECT g.k, g.cid, c.channel, CASE WHEN g.cancelled THEN 'cancelled' ELSE 'closed' END, g.reason, '', '{}', 0, "
        "CASE WHEN g.cancelled THEN NULL ELSE g.agent END, c.created_at + g.delay, "
        "CASE WHEN g.cancelled THEN NULL ELSE c.created_at + g.delay + g.wait END, "
        "CASE WHEN g.cancelled THEN c.created_at + g.delay + g.gone ELSE c.created_at + g.delay + g.wait + g.handle END, "
        "CASE WHEN g.cancelled THEN 'customer_left' ELSE 'resolved' END FROM gen_cases g JOIN conversations c ON c.id = g.cid",
        "INSERT INTO case_routing (case_id, team, severity, announced) SELECT k, team, 0, 't' FROM gen_cases",
        "INSERT INTO conversation_events (conversation_id, kind, channel, data, at) "
        "SELECT c.conversation_id, 'agent_message', c.channel, '{}', c.claimed_at + g.reply FROM cases c JOIN gen_cases g ON g.k = c.id "
        "WHERE c.status = 'closed'",
        "INSERT INTO conversation_events (conversation_id, kind, channel, data, at) "
        "SELECT c.conversation_id, 'transferred', c.channel, '{}', c.claimed_at + 30 FROM cases c JOIN gen_cases g ON g.k = c.id "
        "WHERE c.status = 'closed' AND g.r_transfer < 0.1",
        "INSERT INTO csat (conversation_id, channel, score, comment, case_id, agent_id, created_at) "
        "SELECT DISTINCT ON (c.conversation_id) c.conversation_id, c.channel, g.score, '', c.id, c.agent_id, c.closed_at + 30 "
        "FROM cases c JOIN gen_cases g ON g.k = c.id WHERE c.status = 'closed' AND g.r_rated < 0.4 ORDER BY c.conversation_id, c.id DESC",
    ]
    with engine.begin() as conn:
        for sql in steps:
            conn.execute(sa.text(sql), {**params, "seed": seed})
        have = conn.execute(sa.text("SELECT count(*) FROM conversation_events")).scalar_one()
        # the rest: customer messages 45%, answers 30%, feedback 10%, misses 15%, within 10 minutes of the start
        conn.execute(sa.text(
            "INSERT INTO conversation_events (conversation_id, kind, channel, data, at) "
            "SELECT c.id, e.kind, c.channel, CASE e.kind "
            "  WHEN 'answered' THEN '{\"faq_id\": \"topic' || e.topic || '-entry' || e.entry || '\", \"score\": 0.8}' "
            "  WHEN 'feedback' THEN '{\"faq_id\": \"topic' || e.topic || '-entry' || e.entry || '\", \"helpful\": ' || "
            "       CASE WHEN e.r2 < 0.7 THEN 'true' ELSE 'false' END || '}' "
            "  WHEN 'missed' THEN '{\"reason\": \"low_score\"}' ELSE '{}' END, c.created_at + e.offset_s "
            "FROM (SELECT 'c' || floor(random() * :n_conv)::int AS cid, "
            "      CASE WHEN r < 0.45 THEN 'message_in' WHEN r < 0.75 THEN 'answered' WHEN r < 0.85 THEN 'feedback' ELSE 'missed' END AS kind, "
            "      floor(random() * 10)::int AS topic, floor(random() * 10)::int AS entry, random() AS r2, random() * 600 AS offset_s "
            "      FROM (SELECT random() AS r FROM generate_series(1, :rest)) x) e "
            "JOIN conversations c ON c.id = e.cid"
        ), {**params, "rest": max(0, n_events - int(have))})
        conn.execute(sa.text("SELECT setval(pg_get_serial_sequence('cases', 'id'), (SELECT max(id) FROM cases))"))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("ANALYZE"))


def timed(engine: sa.engine.Engine, fn: Any, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        with engine.connect() as conn:
            if conn.dialect.name == "postgresql":  # what metrics.figure sets for every report transaction
                conn.execute(sa.text("SET LOCAL jit = off"))
                conn.execute(sa.text("SET LOCAL work_mem = '32MB'"))
            fn(conn)
        times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", default="", help="comma-separated figures (default: all)")
    parser.add_argument("--reuse", action="store_true", help="time the history generated by the previous run")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args()
    url = f"postgresql://postgres@127.0.0.1:5432/{DB}"
    settings = load_settings(database_url=url if args.reuse else fresh_database(DB))
    create_schema(settings)
    engine = sync_engine(settings)
    began = time.perf_counter()
    if args.reuse:
        with engine.connect() as conn:
            start = float(conn.execute(sa.text("SELECT min(created_at) FROM conversations")).scalar_one()) - 1
        with engine.begin() as conn:  # the rollup is built again below, timed
            for table in ("report_case_facts", "report_conversation_facts", "report_faq_days", "report_rollup_state"):
                conn.execute(sa.text(f"DELETE FROM {table}"))
    else:
        start = time.time() - 90 * DAY
        generate(engine, args.events, args.cases, start)
    load_s = time.perf_counter() - began
    began = time.perf_counter()
    ensure_indexes(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("ANALYZE"))
    index_s = time.perf_counter() - began
    with engine.connect() as conn:
        counts = {t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one()
                  for t in ("conversation_events", "cases", "conversations", "csat")}
    scopes = {
        "last 30 days": metrics.Filters(start + 60 * DAY, start + 90 * DAY),
        "90 days, team billing": metrics.Filters(start, start + 91 * DAY, team="billing"),
        "90 days, all": metrics.Filters(start, start + 91 * DAY),
    }
    only = [n for n in (args.only or "").split(",") if n] or list(metrics.FIGURES)
    now = time.time()

    def direct_fn(name: str, f: metrics.Filters) -> Any:
        fn = direct.FIGURES[name]
        extra = {"waiting": (settings.service_level_s,), "handling": (settings.fcr_days * DAY,),
                 "first_contact": (settings.fcr_days, now)}.get(name, ())
        return lambda conn: fn(conn, f, *extra)

    # before: straight from the source tables (tests/reports_oracle.py, what metrics.py did until now)
    before: dict[tuple[str, str], list[float]] = {}
    for scope, f in scopes.items():
        for name in only:
            if name in direct.FIGURES:
                before[(scope, name)] = timed(engine, direct_fn(name, f), args.runs)
                print("before", scope, name, f"{percentile(before[(scope, name)], 95) * 1000:.0f} ms", flush=True)
    # the rollup: first build, then an incremental refresh after a burst of new activity
    t0 = time.perf_counter()
    rollup.refresh(engine, force=True, full=True)
    build_s = time.perf_counter() - t0
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO conversation_events (conversation_id, kind, channel, data, at) "
            "SELECT 'c' || (i * 97 % 1000), 'message_in', 'web', '{}', :now FROM generate_series(1, 1000) i"), {"now": now})
        conn.execute(sa.text("UPDATE cases SET status = 'closed', closed_at = closed_at + 1 WHERE id <= 100"))
    t0 = time.perf_counter()
    rollup.refresh(engine, force=True, full=True)
    incremental_s = time.perf_counter() - t0
    quick, full = [], []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        rollup.refresh(engine, force=True, full=False)
        quick.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        rollup.refresh(engine, force=True, full=True)
        full.append(time.perf_counter() - t0)
    # after: metrics.figure, refresh included (forced, so every run pays the change check)
    rows = []
    for scope, f in scopes.items():
        for name in only:
            def after_fn(conn: Any, name: str = name, f: metrics.Filters = f) -> Any:
                rollup.refresh(engine, force=True, full=False)
                return metrics.figure(conn, name, f, settings, now)
            times = timed(engine, after_fn, args.runs)
            was = before.get((scope, name))
            rows.append((scope, name,
                         f"{percentile(was, 50) * 1000:.0f} ms" if was else "–", f"{percentile(was, 95) * 1000:.0f} ms" if was else "–",
                         f"{percentile(times, 50) * 1000:.0f} ms", f"{percentile(times, 95) * 1000:.0f} ms"))
            print(rows[-1], flush=True)
    engine.dispose()
    load = os.getloadavg()
    body = (
        f"Command: `$VENV/bin/python benchmarks/reports_scale.py --events {args.events} --cases {args.cases} --runs {args.runs}` "
        f"({today()}; {machine()}).\n\n"
        f"Generated inside PostgreSQL (generate_series, seeded){' (previous run, --reuse)' if args.reuse else f' in {load_s:.0f} s'}: "
        f"{counts['conversation_events']:,} events, {counts['cases']:,} cases, "
        f"{counts['conversations']:,} conversations, {counts['csat']:,} CSAT ratings over 90 days; indexes (reports/schema.py) "
        f"in {index_s:.0f} s. *Before* = the figures straight from the source tables (tests/reports_oracle.py, what "
        f"reports/metrics.py computed until now); *after* = `metrics.figure` on the rollup (reports/rollup.py), each run "
        f"including a forced quick `rollup.refresh` (the watermark check a report pays at most once a second). {args.runs} runs each, "
        f"same run, same data; median and p95 (linear interpolation). Goal: p95 <= 1 s. Load average during the run: "
        f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} on 2 cores (shared with other test runs).\n\n"
        + markdown_table(("scope", "figure", "before median", "before p95", "after median", "after p95"), rows) + "\n\n"
        f"The rollup's first build (every case's and conversation's facts, every event into the FAQ days) took "
        f"{build_s:.1f} s; a full refresh after 1,000 new events and 100 changed cases {incremental_s * 1000:.0f} ms; with nothing "
        f"new, the quick check (watermarks, every report at most once a second) median {percentile(quick, 50) * 1000:.0f} ms, "
        f"p95 {percentile(quick, 95) * 1000:.0f} ms, and the full check (every case against its facts, in each web process's background "
        f"task every reports_full_check_s, 60 s, never on a report's path) median {percentile(full, 50) * 1000:.0f} ms, p95 {percentile(full, 95) * 1000:.0f} ms.\n"
    )
    if not args.no_write:
        write_section("Reports at scale (issue 11)", body)
    print(body)


if __name__ == "__main__":
    main()
