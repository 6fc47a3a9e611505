"""Throughput with 1 and with 2 Rasa servers (each with its own action server), same run.

Why: issue 13 asks how throughput grows with instances. Both stacks run on PostgreSQL + Redis
(the scale-out mode: Rasa's tracker store and lock store shared), one web process each, the same
workload as benchmarks/latency.py (a greeting, then FAQ paraphrases) from 20 concurrent
conversations; the scenarios alternate (1, 2, 1, 2 ...) so that a busy minute hits both alike.
On one machine a second Rasa only helps when a core is idle: read the CPU column with it.

    $VENV/bin/python benchmarks/instances.py [--messages 200] [--rounds 2] [--no-docs]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import free_port, free_ports, fresh_database, machine, markdown_table, percentile, today, write_section  # noqa: E402
from latency import Outcome, TandemClient, conversations_script, run_scenario, warm_up  # noqa: E402

from core.settings import load_settings  # noqa: E402
from server.cli import prepare  # noqa: E402
from server.processes import Supervisor  # noqa: E402

SECTION = "Throughput with 1 and 2 Rasa servers (scale-out mode)"
CONCURRENCY = 20


def start(tmp: Path, instances: int, redis_db: int) -> tuple[Supervisor, TandemClient]:
    settings = load_settings(var_dir=tmp / f"var-{instances}", faq_adaptation=False, web_port=free_port(), rasa_port=free_ports(instances),
                             action_port=free_ports(instances), secret_key="bench-secret", rate_limits=False,
                             database_url=fresh_database(f"tandem_bench_instances_{instances}"),
                             redis_url=f"redis://127.0.0.1:6379/{redis_db}", rasa_instances=instances)
    supervisor = Supervisor(settings, model=prepare(settings))
    supervisor.start()
    pids = {s.name: s.process.pid for s in supervisor.services if s.process}
    return supervisor, TandemClient(settings.web_url, pids)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    script = conversations_script(args.messages)
    outcomes: dict[int, list[Outcome]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory(prefix="tandem-bench-instances-") as tmp_name:
        tmp = Path(tmp_name)
        stacks = {n: start(tmp, n, redis_db=8 + n) for n in (1, 2)}
        try:
            for _, client in stacks.values():
                asyncio.run(warm_up(client, ["hi", "how can I track my order?", "do you ship abroad?"] * 2))
            for round_ in range(args.rounds):
                for n, (_, client) in stacks.items():
                    outcome = asyncio.run(run_scenario(client, script, CONCURRENCY))
                    outcomes[n].append(outcome)
                    print(f"round {round_ + 1}, {n} Rasa: {outcome.throughput:.1f} msg/s, p50 "
                          f"{percentile(outcome.latencies_ms, 50):.0f} ms, {len(outcome.errors)} errors", flush=True)
        finally:
            for supervisor, _ in stacks.values():
                supervisor.stop()

    def row(n: int) -> list[str]:
        runs = outcomes[n]
        throughput = statistics.median(o.throughput for o in runs)
        base = statistics.median(o.throughput for o in outcomes[1])
        lat = [x for o in runs for x in o.latencies_ms]
        cpu = statistics.median(o.cpu_s * 1000 / o.sent for o in runs if o.sent)
        errors = sum(len(o.errors) for o in runs)
        return [f"{n} Rasa + {n} action server(s), 1 web", f"{throughput:.1f}", f"{throughput / base:.2f}x",
                f"{percentile(lat, 50):.0f}", f"{percentile(lat, 95):.0f}", f"{cpu:.0f}", str(errors)]

    table = markdown_table(["stack (PostgreSQL + Redis)", "messages/s (median)", "vs 1 Rasa", "p50 ms", "p95 ms",
                            "CPU ms / message", "errors"], [row(1), row(2)])
    body = (f"Command: `$VENV/bin/python benchmarks/instances.py --messages {args.messages} --rounds {args.rounds}` "
            f"({today()}; {machine()}). {CONCURRENCY} concurrent conversations, {args.messages} messages per scenario, "
            f"rounds alternating the two stacks.\n\n{table}\n")
    print("\n" + body)
    if not args.no_docs:
        write_section(SECTION, body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
