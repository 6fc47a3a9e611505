"""What throttling costs per request: one limiter hit on each store, next to the write every
customer message makes anyway (ConversationStore.add_message) on the same database.

Why: every customer message now takes two hits (its conversation and its address) before it
reaches the router; on the embedded default they are SQL writes. The baseline is measured in
the same run, so the ratio holds on a busy machine.

    $VENV/bin/python benchmarks/ratelimit.py                # 2000 hits per store, writes docs
    $VENV/bin/python benchmarks/ratelimit.py --hits 300 --no-docs
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Awaitable, Callable, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, machine, markdown_table, today, write_section  # noqa: E402

sys.path.insert(0, str(ROOT))
from conversations.store import ConversationStore  # noqa: E402
from core.db import async_engine
from server.schema import create_schema# noqa: E402
from core.ratelimit import MemoryStore, RateLimiter, RedisStore, SqlStore, Store  # noqa: E402
from core.settings import load_settings  # noqa: E402

SECTION = "Throttling: cost of a limiter hit per store"
POSTGRES = "postgresql://postgres@127.0.0.1:5432/tandem_bench_ratelimit"
REDIS = "redis://127.0.0.1:6379/15"


async def timed(n: int, call: Callable[[int], Awaitable[object]]) -> list[float]:
    samples = []
    for i in range(n):
        began = time.perf_counter()
        await call(i)
        samples.append((time.perf_counter() - began) * 1000)
    return samples


async def measure(hits: int) -> list[list[str]]:
    rows: list[list[str]] = []
    with tempfile.TemporaryDirectory(prefix="tandem-bench-rl-") as tmp:
        for database in ("sqlite", "postgresql"):
            url = "" if database == "sqlite" else POSTGRES
            if database == "postgresql":
                import sqlalchemy as sa

                admin = sa.create_engine("postgresql://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT")
                with admin.connect() as conn:
                    conn.execute(sa.text("DROP DATABASE IF EXISTS tandem_bench_ratelimit WITH (FORCE)"))
                    conn.execute(sa.text("CREATE DATABASE tandem_bench_ratelimit"))
                admin.dispose()
            settings = load_settings(var_dir=Path(tmp) / database, database_url=url, faq_adaptation=False, rate_messages_per_conversation=10**9,
                                     rate_messages_per_address=10**9)
            await asyncio.to_thread(create_schema, settings)
            engine = async_engine(settings)
            conversations = ConversationStore(engine)
            conversation = await conversations.create("rest")
            baseline = await timed(hits, lambda i: conversations.add_message(conversation.id, "customer", f"message {i}"))
            base = statistics.median(baseline)
            stores: list[tuple[str, Store]] = [("sql (" + database + ")", SqlStore(engine))]
            if database == "sqlite":
                stores = [("memory", MemoryStore())] + stores + [("redis", RedisStore(REDIS))]
            for name, store in stores:
                limiter = RateLimiter(settings, store)
                samples = await timed(hits, lambda i: limiter.hit(*limiter.message(f"c{i % 50}", f"10.0.{i % 7}.1")))
                median = statistics.median(samples)
                rows.append([name, database, f"{median:.3f}", f"{sorted(samples)[int(len(samples) * 0.95)]:.3f}",
                             f"{base:.3f}", f"{median / base:.2f}x"])
                await store.close()
            await engine.dispose()
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hits", type=int, default=2000)
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args(argv)
    rows = asyncio.run(measure(args.hits))
    headers = ["store", "database", "median ms per message (2 checks)", "p95 ms", "add_message median ms (baseline)", "ratio"]
    table = markdown_table(headers, rows)
    print(table)
    if not args.no_docs:
        body = (
            f"{today()}, {machine()}. `benchmarks/ratelimit.py --hits {args.hits}`: one customer message's throttling "
            "(its conversation and its address: two limiter hits) on each store, sequentially, against the one write "
            "`ConversationStore.add_message` makes for every message anyway, on the same database in the same run.\n\n"
            + table + "\n\nThe embedded default (`rate_limit_store: auto` without Redis) is the SQL row on SQLite; with "
            "`redis_url` set it is Redis. \"database\" is the one the baseline writes to.\n"
        )
        write_section(SECTION, body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
