"""Load on the web widget's websocket channel: many customers chatting at the same time.

Why: every widget customer holds a websocket on the web process, and each message goes
through the router to Rasa and the action server. This measures how a burst of simultaneous
widget customers is served: messages per second, latency of a turn (send -> the turn's
acknowledgement, which carries the replies), how long connecting takes, and that each
customer sees each message exactly once.

The stack is started exactly as tests/conftest.py does (free ports, a temporary var dir,
prepare(), Supervisor), unless --url points at a running one. All customers connect first,
then send at the same moment; every wait is bounded by --timeout.

    $VENV/bin/python benchmarks/widget_load.py                          # 100 customers x 4 messages, writes docs
    $VENV/bin/python benchmarks/widget_load.py --customers 20 --messages 2 --no-docs
    $VENV/bin/python benchmarks/widget_load.py --url http://127.0.0.1:8000 --no-docs
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import httpx
import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, free_port, machine, markdown_table, peak_rss_mb, percentile, today, write_section  # noqa: E402

from knowledge.base import load_faq_file  # noqa: E402

SECTION = "Web widget: simultaneous websocket customers"
GREETINGS = ("hi", "hello", "good morning", "hey there")


@dataclass
class Customer:
    """What one simulated widget customer saw."""

    latencies: list[float] = field(default_factory=list)
    outcomes: Counter = field(default_factory=Counter)
    connect_s: float | None = None
    duplicates: int = 0
    error: str | None = None


def script_for(customers: int, messages: int, seed: int = 11) -> list[list[str]]:
    """Per customer: a greeting, then FAQ questions (fixed seed: every run sends the same texts)."""
    rng = random.Random(seed)
    questions = [entry["question"] for entry in load_faq_file(ROOT / "data" / "faq.yml")]
    return [[rng.choice(GREETINGS)] + [rng.choice(questions) for _ in range(messages - 1)] for _ in range(customers)][:customers]


async def frame_of(ws: Any, deadline: float, kinds: tuple[str, ...], seen: set[int], customer: Customer) -> dict[str, Any]:
    """The next frame of one of `kinds`; counts live message frames that repeat an id.

    (A turn's replies come both live and inside its ack by design; only a repeated *live*
    frame would make a message appear twice.)"""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise asyncio.TimeoutError
        frame = json.loads(await asyncio.wait_for(ws.recv(), left))
        if frame["type"] == "message":
            message_id = frame["message"]["id"]
            customer.duplicates += message_id in seen
            seen.add(message_id)
        if frame["type"] in kinds:
            return frame


async def run_customer(
    base: str, http: httpx.AsyncClient, texts: Sequence[str], go: asyncio.Event, ready: asyncio.Queue[None], timeout: float
) -> Customer:
    customer = Customer()
    started = time.monotonic()
    try:
        session = (await http.post("/widget/session", json={"site_key": "demo"})).json()
        url = base.replace("http", "ws", 1) + f"/widget/ws?token={session['token']}"
        async with websockets.connect(url, open_timeout=timeout, close_timeout=5, max_queue=None) as ws:
            seen: set[int] = set()
            await frame_of(ws, started + timeout, ("history",), seen, customer)
            customer.connect_s = time.monotonic() - started
            ready.put_nowait(None)
            await go.wait()
            for number, text in enumerate(texts):
                sent = time.monotonic()
                await ws.send(json.dumps({"type": "message", "text": text, "ref": str(number)}))
                frame = await frame_of(ws, sent + timeout, ("ack", "error"), seen, customer)
                customer.latencies.append(time.monotonic() - sent)
                customer.outcomes[classify(frame)] += 1
    except (asyncio.TimeoutError, OSError, websockets.exceptions.WebSocketException, KeyError, ValueError) as exc:
        customer.error = f"{type(exc).__name__}: {exc}"[:200]
        if customer.connect_s is None:
            ready.put_nowait(None)
    return customer


async def run_rest_customer(
    http: httpx.AsyncClient, texts: Sequence[str], go: asyncio.Event, ready: asyncio.Queue[None], timeout: float
) -> Customer:
    """The same customer over the REST channel (the baseline: same router, no websocket)."""
    customer = Customer()
    started = time.monotonic()
    try:
        created = (await http.post("/api/conversations")).json()
        headers = {"Authorization": f"Bearer {created['token']}"}
        customer.connect_s = time.monotonic() - started
        ready.put_nowait(None)
        await go.wait()
        for text in texts:
            sent = time.monotonic()
            response = await http.post(f"/api/conversations/{created['conversation_id']}/messages", json={"text": text}, headers=headers)
            customer.latencies.append(time.monotonic() - sent)
            body = response.json()
            frame = {"type": "ack" if response.status_code == 200 else "error", "messages": body.get("replies", []), "mode": body.get("mode")}
            customer.outcomes[classify(frame)] += 1
    except (httpx.HTTPError, KeyError, ValueError) as exc:
        customer.error = f"{type(exc).__name__}: {exc}"[:200]
        if customer.connect_s is None:
            ready.put_nowait(None)
    return customer


def classify(frame: dict[str, Any]) -> str:
    if frame["type"] == "error":
        return "error frame"
    messages = frame.get("messages") or []
    if any(m.get("faq_id") for m in messages):
        return "FAQ answer"
    if any(m.get("kind") == "bot_unavailable" for m in messages):
        return "bot unavailable"
    if frame.get("mode") != "bot":
        return "escalated"
    return "other reply" if messages else "no reply"


async def load(base: str, customers: int, messages: int, timeout: float, channel: str = "widget") -> tuple[list[Customer], float]:
    script = script_for(customers, messages)
    go = asyncio.Event()
    ready: asyncio.Queue[None] = asyncio.Queue()
    limits = httpx.Limits(max_connections=customers, max_keepalive_connections=customers)
    async with httpx.AsyncClient(base_url=base, timeout=timeout, limits=limits) as http:
        if channel == "widget":
            tasks = [asyncio.create_task(run_customer(base, http, texts, go, ready, timeout)) for texts in script]
        else:
            tasks = [asyncio.create_task(run_rest_customer(http, texts, go, ready, timeout)) for texts in script]
        for _ in range(customers):  # bounded: every customer reports ready or failed within `timeout`
            await asyncio.wait_for(ready.get(), timeout + 5)
        started = time.monotonic()
        go.set()
        results = await asyncio.gather(*tasks)
        return list(results), time.monotonic() - started


async def warm_up(base: str, timeout: float) -> None:
    """One short conversation first, so model loading is not measured as latency."""
    await load(base, 1, 3, timeout)


async def settle(base: str, timeout: float, limit_s: float = 240.0) -> None:
    """Wait (bounded) until Rasa has worked off the previous run's backlog.

    Rasa keeps computing replies the web process already gave up on (after rasa_timeout_s),
    so a run started right after an overloaded one would measure that backlog, not itself.
    """
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        results, _ = await load(base, 1, 1, timeout)
        probe = results[0]
        if not probe.error and probe.latencies and probe.latencies[0] < 3.0 and "bot unavailable" not in probe.outcomes:
            return
        await asyncio.sleep(5)


Run = tuple[str, int, list[Customer], float, float]  # channel, customers, results, wall time, load average


def report(runs: list[Run], messages: int, web_rss: float | None) -> tuple[str, dict[str, Any]]:
    rows, notes, numbers = [], [], {}
    for channel, customers, results, wall, load_avg in runs:
        row, outcome_line, numbers[f"{channel}-{customers}"] = summarise(results, wall, customers, messages)
        rows.append([channel, *row, f"{load_avg:.1f}"])
        notes.append(f"- {channel}, {customers} customers: {outcome_line}")
    table = markdown_table(
        ["channel", "customers", "messages", "wall time", "messages/s", "p50 turn", "p95 turn", "max turn", "connect p50 / p95",
         "shown twice", "failed customers", "machine load"],
        rows,
    )
    lines = [table, "", "Outcome of each turn:", *notes, ""]
    if web_rss is not None:
        lines.append(f"Peak memory of the web process over the whole run: {web_rss:.0f} MiB.")
    return "\n".join(lines), numbers


def summarise(results: list[Customer], wall: float, customers: int, messages: int) -> tuple[list[object], str, dict[str, Any]]:
    latencies = [x for c in results for x in c.latencies]
    connects = [c.connect_s for c in results if c.connect_s is not None]
    outcomes: Counter = Counter()
    for c in results:
        outcomes.update(c.outcomes)
    failed = [c.error for c in results if c.error]
    numbers = {
        "customers": customers,
        "messages_planned": customers * messages,
        "messages_done": len(latencies),
        "throughput": len(latencies) / wall if wall else 0.0,
        "p50": percentile(latencies, 50),
        "p95": percentile(latencies, 95),
        "max": max(latencies) if latencies else float("nan"),
        "connect_p50": percentile(connects, 50),
        "connect_p95": percentile(connects, 95),
        "duplicates": sum(c.duplicates for c in results),
        "failed_customers": len(failed),
    }
    row: list[object] = [
        customers, f"{numbers['messages_done']}/{numbers['messages_planned']}", f"{wall:.1f} s", f"{numbers['throughput']:.1f}",
        f"{numbers['p50'] * 1000:.0f} ms", f"{numbers['p95'] * 1000:.0f} ms", f"{numbers['max'] * 1000:.0f} ms",
        f"{numbers['connect_p50'] * 1000:.0f} / {numbers['connect_p95'] * 1000:.0f} ms", numbers["duplicates"], len(failed),
    ]
    outcome_line = ", ".join(f"{k}: {v}" for k, v in sorted(outcomes.items()))
    if failed:
        outcome_line += "; failures (first 3): " + "; ".join(failed[:3])
    return row, outcome_line, numbers


def start_stack(var_dir: Path) -> Any:
    """A Tandem of its own, the way the test suite starts one."""
    from server.cli import prepare
    from server.processes import Supervisor
    from core.settings import load_settings

    settings = load_settings(  # throttling off: 100 customers from one address is the point here
        faq_adaptation=False,  # and no training child mid-run
        var_dir=var_dir, web_port=free_port(), rasa_port=free_port(), action_port=free_port(), secret_key=secrets.token_hex(16),
        rate_limits=False,
    )
    supervisor = Supervisor(settings, model=prepare(settings))
    supervisor.start()
    return supervisor


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=100)
    parser.add_argument("--reference", type=int, default=20, help="also run this many customers for comparison (0: skip)")
    parser.add_argument("--messages", type=int, default=4, help="per customer: a greeting, then FAQ questions")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds any one wait may take")
    parser.add_argument("--url", default="", help="a running Tandem's web URL (default: start one)")
    parser.add_argument("--no-docs", action="store_true", help="print only; leave docs/benchmarks.md alone")
    parser.add_argument("--no-rest", action="store_true", help="skip the REST-channel baseline run")
    parser.add_argument("--var-dir", default="", help="keep the started stack's var dir (logs, database) here")
    args = parser.parse_args(argv)
    if args.customers < 1 or args.messages < 1:
        parser.error("--customers and --messages must be at least 1")

    with tempfile.TemporaryDirectory(prefix="tandem-widget-load-") as tmp:
        supervisor = None if args.url else start_stack(Path(args.var_dir) if args.var_dir else Path(tmp) / "var")
        try:
            base = args.url.rstrip("/") or supervisor.settings.web_url
            asyncio.run(warm_up(base, args.timeout))
            runs: list[Run] = []
            channels = ("widget",) if args.no_rest else ("widget", "rest")
            for customers in [args.customers] + ([args.reference] if args.reference > 0 else []):
                for channel in channels:
                    asyncio.run(settle(base, args.timeout))
                    load_avg = os.getloadavg()[0]
                    results, wall = asyncio.run(load(base, customers, args.messages, args.timeout, channel=channel))
                    runs.append((channel, customers, results, wall, load_avg))
                    print(f"{channel} x {customers}: {len([x for c in results for x in c.latencies])} turns in {wall:.1f} s", flush=True)
            web = next((s for s in supervisor.services if s.name == "web"), None) if supervisor else None
            web_rss = peak_rss_mb(web.process.pid) if web and web.process else None
        finally:
            if supervisor:
                supervisor.stop()

    body, numbers = report(runs, args.messages, web_rss)
    print(body)
    if not args.no_docs:
        command = f"$VENV/bin/python benchmarks/widget_load.py --customers {args.customers} --messages {args.messages} --reference {args.reference}"
        write_section(SECTION, "\n".join([
            f"Command: `{command}` (run {today()} on {machine()}).",
            "",
            f"{args.customers} widget customers open a session and a websocket each (all connected before the",
            f"clock starts), then all send at once: a greeting and {args.messages - 1} FAQ questions, one after the other,",
            "each waiting for its turn's acknowledgement (which carries the replies) before the next. One web process,",
            "one Rasa server, one action server, SQLite, in-process bus; everything on this one machine.",
            "A *turn* is send -> ack; *connect* is POST /widget/session + websocket handshake + history frame;",
            "*shown twice* counts live message frames a customer received more than once (expected 0).",
            "The *rest* rows send the same texts through the REST channel on the same stack: the baseline that",
            "shows what the websocket adapter itself costs. Before each run the script waits until a single probe",
            "message is answered in under 3 s, so no run inherits Rasa's backlog from the previous one.",
            "*machine load* is the 1-minute load average when the run started (this machine is shared; other",
            "work was running). *bot unavailable* turns are the router's answer when Rasa does not reply within",
            "rasa_timeout_s (20 s) or refuses the connection: the customer is offered a person instead.",
            "",
            body,
        ]))
    complete = all(n["failed_customers"] == 0 and n["messages_done"] == n["messages_planned"] for n in numbers.values())
    return 0 if complete else 1


if __name__ == "__main__":
    raise SystemExit(main())
