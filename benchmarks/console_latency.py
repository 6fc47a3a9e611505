"""Console latency under load: N simultaneous customer conversations on the web widget.

Measures, at the clients (wall clock, one machine):
  1. escalation -> console: from a customer sending "I want to talk to a person" on the widget
     websocket to the `case_opened` event arriving at a logged-in console websocket
     (includes Rasa + the action server + storing the case);
  2. agent -> customer: from an agent's POST /api/agent/cases/<id>/messages to the message
     arriving on that customer's widget websocket.

Usage:  $VENV/bin/python benchmarks/console_latency.py [--conversations 50] [--rounds 2]
Starts its own Tandem (trained model, action server, web) in a temp directory on free ports.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import websockets

from benchmarks.common import machine, markdown_table, percentile, today, write_section

ESCALATE = "I want to talk to a person"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Console:
    """A logged-in console websocket that timestamps every case_opened it sees."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url.replace("http", "ws", 1) + "/api/agent/ws"
        self.headers = {"Authorization": f"Bearer {token}"}  # staff tokens never go in URLs
        self.opened: dict[str, float] = {}
        self.after_store: dict[str, float] = {}  # wall-clock ms from the case row's created_at to here
        self._task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()

    async def run(self) -> None:
        async with websockets.connect(self.url, max_size=None, extra_headers=self.headers) as ws:
            async for raw in ws:
                event = json.loads(raw)
                if event.get("type") == "hello":
                    self.ready.set()
                elif event.get("type") == "case_opened":
                    self.opened.setdefault(event["case"]["conversation_id"], time.perf_counter())
                    self.after_store.setdefault(event["case"]["conversation_id"], (time.time() - event["case"]["created_at"]) * 1000)

    def start(self) -> None:
        self._task = asyncio.create_task(self.run())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass


class Customer:
    """A widget conversation: a websocket that timestamps agent messages by text."""

    def __init__(self, web: str, http: httpx.AsyncClient) -> None:
        self.web = web
        self.http = http
        self.conversation_id = ""
        self.arrived: dict[str, float] = {}
        self.kinds: list[str] = []  # kinds of bot/system messages received (bot_unavailable, queued, ...)
        self.ws: Any = None
        self._task: asyncio.Task[None] | None = None

    async def open(self) -> None:
        session = (await self.http.post("/widget/session", json={"site_key": "demo"})).json()
        self.conversation_id = session["conversation_id"]
        self.ws = await websockets.connect(self.web.replace("http", "ws", 1) + f"/widget/ws?token={session['token']}", max_size=None)
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for raw in self.ws:
            frame = json.loads(raw)
            if frame.get("type") == "message" and frame["message"].get("sender") in ("bot", "system"):
                self.kinds.append(frame["message"].get("kind") or frame["message"]["text"][:40])
            if frame.get("type") == "message" and frame["message"].get("sender") == "agent":
                self.arrived.setdefault(frame["message"]["text"], time.perf_counter())

    async def say(self, text: str) -> None:
        await self.ws.send(json.dumps({"type": "message", "text": text}))

    async def close(self) -> None:
        if self._task:
            self._task.cancel()
        await self.ws.close()


async def wait_for(predicate: Any, timeout: float) -> bool:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.005)
    return False


async def one_round(web: str, n: int, round_no: int, spread: float) -> tuple[list[float], list[float], list[float], int]:
    async with httpx.AsyncClient(base_url=web, timeout=120, limits=httpx.Limits(max_connections=200)) as http:
        login = (await http.post("/api/agent/login", json={"username": "agent", "password": "agent"})).json()
        headers = {"Authorization": f"Bearer {login['token']}"}
        console = Console(web, login["token"])
        console.start()
        await asyncio.wait_for(console.ready.wait(), 10)
        customers = [Customer(web, http) for _ in range(n)]
        await asyncio.gather(*(c.open() for c in customers))

        sent: dict[str, float] = {}

        async def escalate(c: Customer, delay: float) -> None:
            await asyncio.sleep(delay)
            sent[c.conversation_id] = time.perf_counter()
            await c.say(ESCALATE)

        await asyncio.gather(*(escalate(c, spread * i / n) for i, c in enumerate(customers)))
        await wait_for(lambda: all(c.conversation_id in console.opened for c in customers), 180)
        started = min(sent.values())
        print(f"escalations seen by the console: {len(console.opened)} of {n}, last after {(max(console.opened.values(), default=started) - started):.1f} s")
        to_console = [(console.opened[c.conversation_id] - sent[c.conversation_id]) * 1000 for c in customers if c.conversation_id in console.opened]

        waiting = (await http.get("/api/agent/cases", params={"status": "waiting"}, headers=headers)).json()["cases"]
        case_of = {c["conversation_id"]: c["id"] for c in waiting}
        failed = [c for c in customers if c.conversation_id not in case_of]
        if failed:
            kinds = [k for c in failed for k in c.kinds]
            print(f"{len(failed)} of {n} conversations did not escalate; what they got: {sorted(set(kinds))}")
        customers = [c for c in customers if c.conversation_id in case_of]
        await asyncio.gather(*(http.post(f"/api/agent/cases/{case_of[c.conversation_id]}/claim", headers=headers) for c in customers))
        await asyncio.sleep(0.5)

        replied: dict[str, float] = {}

        async def reply(c: Customer) -> None:
            text = f"round {round_no}: hello {c.conversation_id[:8]}"
            replied[c.conversation_id] = time.perf_counter()
            response = await http.post(f"/api/agent/cases/{case_of[c.conversation_id]}/messages", json={"text": text}, headers=headers)
            assert response.status_code == 201, response.text

        await asyncio.gather(*(reply(c) for c in customers))
        texts = {c.conversation_id: f"round {round_no}: hello {c.conversation_id[:8]}" for c in customers}
        await wait_for(lambda: all(texts[c.conversation_id] in c.arrived for c in customers), 60)
        to_customer = [
            (c.arrived[texts[c.conversation_id]] - replied[c.conversation_id]) * 1000 for c in customers if texts[c.conversation_id] in c.arrived
        ]
        await asyncio.gather(*(http.post(f"/api/agent/cases/{case_of[c.conversation_id]}/close", json={"resolution": "resolved"}, headers=headers)
                               for c in customers))
        for c in customers:
            await c.close()
        await console.stop()
        lost = 2 * len(customers) - len(to_console) - len(to_customer)
        stored = [console.after_store[c.conversation_id] for c in customers if c.conversation_id in console.after_store]
        return to_console, stored, to_customer, lost + 2 * len(failed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--spread", type=float, default=0.0, help="seconds over which the escalations are spread (0: all at once)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args()

    from server.cli import prepare
    from server.processes import Supervisor
    from core.settings import load_settings

    with tempfile.TemporaryDirectory(prefix="tandem-console-bench-") as tmp:
        settings = load_settings(var_dir=Path(tmp), web_port=free_port(), rasa_port=free_port(), action_port=free_port(), secret_key="bench",
                                 faq_adaptation=False,  # no training child mid-run
                                 rate_limits=False)  # many customers from 127.0.0.1 on purpose
        model = prepare(settings)
        supervisor = Supervisor(settings, model=model)
        supervisor.start()
        try:
            all_console: list[float] = []
            all_customer: list[float] = []
            all_stored: list[float] = []
            lost = 0
            for round_no in range(args.rounds):
                a, stored, b, missing = asyncio.run(one_round(settings.web_url, args.conversations, round_no, args.spread))
                all_console += a
                all_stored += stored
                all_customer += b
                lost += missing
                print(f"round {round_no + 1}: escalation->console p50 {percentile(a, 50):.0f} ms, agent->customer p50 {percentile(b, 50):.0f} ms")
        finally:
            supervisor.stop()

    rows = [
        ["customer escalates -> case in console (ms)", len(all_console), f"{percentile(all_console, 50):.0f}", f"{percentile(all_console, 95):.0f}", f"{max(all_console):.0f}"],
        ["case stored -> case in console (ms)", len(all_stored), f"{percentile(all_stored, 50):.0f}", f"{percentile(all_stored, 95):.0f}", f"{max(all_stored):.0f}"],
        ["agent sends -> customer's widget (ms)", len(all_customer), f"{percentile(all_customer, 50):.0f}", f"{percentile(all_customer, 95):.0f}", f"{max(all_customer):.0f}"],
    ]
    table = markdown_table(["path", "samples", "p50", "p95", "max"], rows)
    print(table)
    print(f"events not received: {lost}")
    body = f"""Command: `$VENV/bin/python -m benchmarks.console_latency --conversations {args.conversations} --rounds {args.rounds} --spread {args.spread}`
({today()}, {machine()}; SQLite, in-process bus, one web process).

{args.conversations} widget conversations are open at once and escalate ("{ESCALATE}") within {args.spread:g} s; a console
websocket logged in as an agent timestamps each `case_opened`. The agent then claims all cases
and replies to all {args.conversations} at once over the HTTP API; each customer's widget websocket
timestamps the reply. Times are taken at the clients.

{table}

Events not received: {lost}. The escalation path is dominated by Rasa and the action server
handling {args.conversations} messages at once (NLU, FAQ search, the escalate action); the case itself
is stored and published in a few milliseconds after that. The agent->customer path is an HTTP
request that stores the message, appends it to Rasa's tracker (best effort) and publishes it.
"""
    if not args.no_write:
        write_section(f"Agent console latency ({args.conversations} conversations, escalations within {args.spread:g} s)", body)


if __name__ == "__main__":
    main()
