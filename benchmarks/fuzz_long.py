"""The long fuzz run: the CI suite's generators (tests/hostile.py), random (not derandomized),
many examples per route, every role, plus websocket frames; then login timing.

    ./tandem venv  # the venv
    PYTHONPATH=. $VENV/bin/python benchmarks/fuzz_long.py --examples 200 --frames 1000 [--seed N]

Starts its own stack (Rasa, actions, web) in a temporary folder, like the tests. Prints the
status counts, every 5xx with its request, frame failures, and the medians of a wrong password
for a real user vs an unknown user name (they must match: docs/security.md).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from server.cli import prepare  # noqa: E402
from server.processes import Supervisor  # noqa: E402
from tests.conftest import stack_settings  # noqa: E402
from tests.hostile import (FRAMES, GENERIC_FAILURE, Credentials, Tally, app_routes, credentials, draw_attempt,  # noqa: E402
                           prepare_accounts, send)


def fuzz_http(http: httpx.Client, creds: Credentials, examples: int, run_seed: int, tally: Tally) -> None:
    for route in app_routes(stack_settings(Path(tempfile.gettempdir()))):
        if route.websocket:
            continue

        @seed(run_seed)
        @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(st.data())
        def one(data: st.DataObject) -> None:
            attempt = draw_attempt(data, route, creds, http)
            try:
                response = send(http, attempt)
            except httpx.HTTPError as exc:
                tally.server_errors.append(f"transport error {exc!r} for {attempt.describe()}")
                return
            tally.statuses[response.status_code] += 1
            if response.status_code >= 500:
                tally.server_errors.append(f"{response.status_code} {response.text[:200]} for {attempt.describe()}")

        started = time.monotonic()
        one()
        print(f"  {route.key}: done in {time.monotonic() - started:.1f}s", flush=True)


def fuzz_frames(base: str, creds: Credentials, count: int, run_seed: int, tally: Tally) -> None:
    drawn: list[str | bytes] = []

    @seed(run_seed)
    @settings(max_examples=count, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(FRAMES)
    def collect(frame: str | bytes) -> None:
        drawn.append(frame)

    collect()

    async def run(url: str, headers: dict[str, str]) -> None:
        import websockets

        for start in range(0, len(drawn), 100):  # reconnect every 100 frames, like a real client would
            batch = drawn[start:start + 100]
            async with websockets.connect(url, extra_headers=headers, max_size=None) as ws:
                await asyncio.wait_for(ws.recv(), 30)
                for frame in batch:
                    await ws.send(frame)
                    tally.frames += 1
                await ws.send(json.dumps({"type": "ping"}))
                while True:
                    reply = json.loads(await asyncio.wait_for(ws.recv(), 120))
                    if reply.get("type") == "error" and (GENERIC_FAILURE in str(reply.get("error")) or reply.get("status", 400) >= 500):
                        tally.frame_failures.append(str(reply))
                    if reply.get("type") == "pong":
                        break

    asyncio.run(run(f"{base}/widget/ws?token={creds.widget_token}", {}))
    asyncio.run(run(f"{base}/api/agent/ws", creds.headers("agent")))


def login_timing(http: httpx.Client, username: str, rounds: int) -> tuple[float, float]:
    """Median ms of a wrong password for a real account vs for a name that does not exist."""
    real, unknown = [], []
    for i in range(rounds):
        for name, bucket in random.sample([(username, real), (f"nobody-{i}", unknown)], 2):
            started = time.perf_counter()
            assert http.post("/api/agent/login", json={"username": name, "password": "wrong"}).status_code == 401
            bucket.append((time.perf_counter() - started) * 1000)
    return statistics.median(real), statistics.median(unknown)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--examples", type=int, default=200, help="generated requests per HTTP route")
    parser.add_argument("--frames", type=int, default=1000, help="generated frames per websocket")
    parser.add_argument("--seed", type=int, default=random.randrange(2**32))
    parser.add_argument("--login-rounds", type=int, default=40)
    args = parser.parse_args()
    print(f"seed {args.seed}", flush=True)
    with tempfile.TemporaryDirectory(prefix="tandem-fuzz-") as tmp:
        settings_ = stack_settings(Path(tmp))
        model = prepare(settings_)
        passwords = prepare_accounts(settings_)
        supervisor = Supervisor(settings_, model=model)
        supervisor.start()
        tally = Tally()
        try:
            http = httpx.Client(base_url=settings_.web_url, timeout=120)
            creds = credentials(http, passwords)
            started = time.monotonic()
            fuzz_http(http, creds, args.examples, args.seed, tally)
            http_s = time.monotonic() - started
            started = time.monotonic()
            fuzz_frames(settings_.web_url.replace("http://", "ws://"), creds, args.frames, args.seed, tally)
            frames_s = time.monotonic() - started
            real, unknown = login_timing(http, passwords["agent"][0], args.login_rounds)
            alive = http.get("/health").status_code
        finally:
            supervisor.stop()
    print(f"\nHTTP: {tally.requests} requests in {http_s:.0f}s; statuses {dict(sorted(tally.statuses.items()))}")
    print(f"5xx or transport errors: {len(tally.server_errors)}")
    for line in tally.server_errors[:20]:
        print("  ", line)
    print(f"websocket frames: {tally.frames} in {frames_s:.0f}s; failures {len(tally.frame_failures)}")
    for line in tally.frame_failures[:10]:
        print("  ", line)
    print(f"login, wrong password: real user median {real:.1f} ms, unknown user median {unknown:.1f} ms "
          f"(ratio {unknown / real:.2f}; {args.login_rounds} each)")
    print(f"/health after the run: {alive}")
    return 1 if tally.server_errors or tally.frame_failures else 0


if __name__ == "__main__":
    sys.exit(main())
