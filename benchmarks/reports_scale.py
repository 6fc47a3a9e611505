"""The managers' reports on a large generated history on PostgreSQL: 1,000,000 events and
100,000 cases (plus conversations, routing and CSAT), bulk-loaded with COPY; every figure is
timed over a 30-day window and over the whole 90 days with a team filter.

    $VENV/bin/python benchmarks/reports_scale.py [--events 1000000] [--cases 100000] [--runs 7] [--reuse]

Writes its section of docs/benchmarks.md. Goal: every report's p95 <= 1 s.
"""
from __future__ import annotations

import argparse
import io
import os
import json
import random
import time
from typing import Any

import common  # noqa: F401  (puts the project root on sys.path)
import sqlalchemy as sa

from common import machine, markdown_table, percentile, today, write_section
from core.db import sync_engine
from server.schema import create_schema
from core.settings import load_settings
from reports import metrics
from reports.schema import ensure_indexes

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
DB = "tandem_reports_scale"
DAY = 86400.0
TEAMS = ("billing", "shipping", "technical", "complaints")
REASONS = ("customer_request", "sentiment", "frustration", "misses", "out_of_scope")
CHANNELS = ("web", "telegram", "rest")


def fresh_database(name: str) -> str:
    admin = sa.create_engine(ADMIN, isolation_level="AUTOCOMMIT", future=True)
    with admin.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    admin.dispose()
    return f"postgresql://postgres@127.0.0.1:5432/{name}"


def copy(engine: sa.engine.Engine, table: str, columns: list[str], rows: Any) -> None:
    buffer = io.StringIO()
    for row in rows:
        buffer.write("\t".join("\\N" if v is None else str(v) for v in row) + "\n")
    buffer.seek(0)
    raw = engine.raw_connection()
    try:
        with raw.cursor() as cursor:
            cursor.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN", buffer)
        raw.commit()
    finally:
        raw.close()


def generate(engine: sa.engine.Engine, n_events: int, n_cases: int, start: float, seed: int = 11) -> None:
    rng = random.Random(seed)
    n_conv = n_cases * 5 // 2
    agents = list(range(1, 21))
    copy(engine, "accounts", ["id", "username", "display_name", "password_hash", "role", "created_at"],
         [(a, f"agent{a}", f"Agent {a}", "x", "agent", start) for a in agents])
    convs = [(f"c{i}", rng.choice(CHANNELS), start + rng.random() * 90 * DAY) for i in range(n_conv)]
    copy(engine, "conversations", ["id", "channel", "mode", "customer_name", "profile", "created_at", "updated_at"],
         [(c, ch, "bot", "", "{}", at, at) for c, ch, at in convs])
    case_rows, routing, evs = [], [], []
    rated: dict[str, None] = {}
    for k in range(1, n_cases + 1):
        cid, ch, at = convs[rng.randrange(n_conv)]
        created = at + rng.uniform(5, 300)
        cancelled = rng.random() < 0.1
        claimed = None if cancelled else created + rng.expovariate(1 / 90)
        closed = created + rng.uniform(60, 600) if cancelled else claimed + rng.expovariate(1 / 500)
        agent = None if cancelled else rng.choice(agents)
        case_rows.append((k, cid, ch, "cancelled" if cancelled else "closed", rng.choice(REASONS), "", "{}", 0, agent,
                          created, claimed, closed, "customer_left" if cancelled else "resolved"))
        routing.append((k, rng.choice(TEAMS), 0, "t"))
        if not cancelled:
            evs.append((cid, "agent_message", ch, "{}", claimed + rng.uniform(1, 60)))
            if rng.random() < 0.1:
                evs.append((cid, "transferred", ch, "{}", claimed + 30))
            if rng.random() < 0.4:
                rated[cid] = None
    copy(engine, "cases", ["id", "conversation_id", "channel", "status", "reason", "detail", "signals", "priority", "agent_id",
                           "created_at", "claimed_at", "closed_at", "resolution"], case_rows)
    copy(engine, "case_routing", ["case_id", "team", "severity", "announced"], routing)
    by_conv = {r[1]: r for r in case_rows}
    copy(engine, "csat", ["conversation_id", "channel", "score", "comment", "case_id", "agent_id", "created_at"],
         [(c, by_conv[c][2], rng.randint(1, 5), "", by_conv[c][0], by_conv[c][8], by_conv[c][11] + 30) for c in rated])
    faqs = [f"topic{i}-entry{j}" for i in range(10) for j in range(10)]
    while len(evs) < n_events:
        cid, ch, at = convs[rng.randrange(n_conv)]
        roll = rng.random()
        if roll < 0.45:
            evs.append((cid, "message_in", ch, "{}", at + rng.uniform(0, 600)))
        elif roll < 0.75:
            evs.append((cid, "answered", ch, json.dumps({"faq_id": rng.choice(faqs), "score": 0.8}), at + rng.uniform(0, 600)))
        elif roll < 0.85:
            evs.append((cid, "feedback", ch, json.dumps({"faq_id": rng.choice(faqs), "helpful": rng.random() < 0.7}), at + rng.uniform(0, 600)))
        else:
            evs.append((cid, "missed", ch, json.dumps({"reason": "low_score"}), at + rng.uniform(0, 600)))
    copy(engine, "conversation_events", ["conversation_id", "kind", "channel", "data", "at"], evs[:n_events])
    with engine.begin() as conn:
        conn.execute(sa.text("SELECT setval(pg_get_serial_sequence('cases', 'id'), (SELECT max(id) FROM cases))"))
        conn.execute(sa.text("ANALYZE"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--only", default="", help="comma-separated figures (default: all)")
    parser.add_argument("--reuse", action="store_true", help="time the history generated by the previous run")
    args = parser.parse_args()
    url = f"postgresql://postgres@127.0.0.1:5432/{DB}"
    settings = load_settings(database_url=url if args.reuse else fresh_database(DB))
    create_schema(settings)
    engine = sync_engine(settings)
    began = time.perf_counter()
    if args.reuse:
        with engine.connect() as conn:
            start = float(conn.execute(sa.text("SELECT min(created_at) FROM conversations")).scalar_one()) - 1
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
    def baseline() -> float:
        """A full count of the event log: the same-run yardstick for a loaded, shared machine."""
        t0 = time.perf_counter()
        with engine.connect() as conn:
            conn.execute(sa.text("SET LOCAL jit = off"))
            conn.execute(sa.text("SELECT count(*), sum(length(data)) FROM conversation_events")).one()
        return time.perf_counter() - t0

    base_times = [baseline() for _ in range(args.runs)]
    rows = []
    only = [n for n in (args.only or "").split(",") if n] or list(metrics.FIGURES)
    for scope, f in scopes.items():
        for name in only:
            times = []
            for _ in range(args.runs):
                t0 = time.perf_counter()
                with engine.connect() as conn:
                    metrics.figure(conn, name, f, settings, time.time())
                times.append(time.perf_counter() - t0)
            base_times.append(baseline())
            rows.append((scope, name, f"{percentile(times, 50) * 1000:.0f} ms", f"{percentile(times, 95) * 1000:.0f} ms",
                         f"{percentile(times, 50) / percentile(base_times, 50):.2f}"))
            print(rows[-1], flush=True)
    engine.dispose()
    load = os.getloadavg()
    body = (
        f"Command: `$VENV/bin/python benchmarks/reports_scale.py --events {args.events} --cases {args.cases} --runs {args.runs}` "
        f"({today()}; {machine()}).\n\n"
        f"Generated on PostgreSQL with COPY{' (previous run, --reuse)' if args.reuse else f' in {load_s:.0f} s'}: {counts['conversation_events']:,} events, {counts['cases']:,} cases, "
        f"{counts['conversations']:,} conversations, {counts['csat']:,} CSAT ratings over 90 days; the reports' indexes "
        f"(reports/schema.py) built in {index_s:.0f} s. Each figure is one `metrics.figure` call on a fresh connection, "
        f"{args.runs} runs; median and p95 (linear interpolation). Goal: p95 <= 1 s. *Baseline* = one full scan of the "
        f"event log (`SELECT count(*), sum(length(data)) FROM conversation_events`), median {percentile(base_times, 50) * 1000:.0f} ms "
        f"in this run; the last column is each figure's median / that baseline, which stays comparable when the shared "
        f"machine is busy (load average during the run: {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} on 2 cores).\n\n"
        + markdown_table(("scope", "figure", "median", "p95", "× baseline"), rows) + "\n\n"
        "What made it fit (reports/metrics.py, reports/schema.py): per-case correlated subqueries (first reply, "
        "transfers, reopened, came back) replaced by grouped hash joins; event scans bounded by the window (a "
        "conversation's events and cases are never older than it); counts and nearest-rank percentiles "
        "(`percentile_disc`) computed in PostgreSQL instead of shipping 100k rows to Python; JIT off and work_mem "
        "32 MB per report transaction (JIT alone cost ~4 s per query on this data); indexes on "
        "conversation_events (kind, at) and (conversation_id, kind, at), cases (created_at) and (conversation_id, "
        "created_at), conversations (created_at). No pre-aggregated tables yet: the next step if the 90-day "
        "figures must stay under 1 s on a busy machine is a daily rollup of the append-only event log.\n"
    )
    write_section("Reports at scale (issue 11)", body)


if __name__ == "__main__":
    main()
