"""How long `./tandem up` takes until a customer gets an answer, first and second start, next to a
bare `rasa run` moodbot started in the same run (issue 13: "a second ./tandem up ready to answer
in <= 10 s").

Each run starts the real command (`./tandem up`, the same script a newcomer runs) in a throwaway
var dir on free ports, posts a REST conversation as soon as the web port answers and counts the
time until the first FAQ question gets its answer ("ready to answer"), then stops it with SIGINT
(Ctrl-C). The first start in a fresh var dir seeds the store and builds the index; the second
finds both and only starts processes. The model is trained once before timing (`./tandem train`),
as for anyone who has started Tandem before. The baseline is `rasa run` of the default moodbot
(`rasa init`, reused from --bare-dir) until its REST webhook answers "hello".

    $VENV/bin/python benchmarks/startup.py [--runs 3] [--bare-dir /tmp/p13-moodbot] [--no-docs]
"""
from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, free_port, machine, markdown_table, today, write_section  # noqa: E402
from latency import start_bare_init, start_bare_server, stop  # noqa: E402

SECTION = "Start-up: ./tandem up until the first answer, next to a bare rasa run"
QUESTION = "how can I track my order?"
TIMEOUT_S = 600.0


def ask_until_answered(web_url: str, process: subprocess.Popen, deadline: float) -> None:
    """A customer who keeps trying: open a conversation, ask, until a FAQ answer comes back."""
    with httpx.Client(timeout=30.0) as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"./tandem up exited with {process.returncode}")
            try:
                opened = http.post(f"{web_url}/api/conversations")
                if opened.is_success:
                    body = opened.json()
                    reply = http.post(f"{web_url}/api/conversations/{body['conversation_id']}/messages",
                                      json={"text": QUESTION}, headers={"Authorization": f"Bearer {body['token']}"})
                    if reply.status_code == 200 and any(r.get("faq_id") for r in reply.json().get("replies") or []):
                        return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
    raise TimeoutError("Tandem did not answer in time")


def tandem_start(var_dir: Path, log: Path) -> float:
    """Seconds from launching `./tandem up` to the first FAQ answer; then Ctrl-C and wait."""
    web_port = free_port()
    env = {**os.environ, "TANDEM_VAR_DIR": str(var_dir), "TANDEM_WEB_PORT": str(web_port),
           "TANDEM_RASA_PORT": str(free_port()), "TANDEM_ACTION_PORT": str(free_port()),
           "TANDEM_RATE_LIMITS": "false", "TANDEM_SECRET_KEY": "bench-secret"}
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    started = time.monotonic()
    with open(log, "ab") as handle:
        process = subprocess.Popen([str(ROOT / "tandem"), "up"], cwd=ROOT, env=env, stdout=handle,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        try:
            ask_until_answered(f"http://127.0.0.1:{web_port}", process, started + TIMEOUT_S)
            ready = time.monotonic() - started
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGINT)
                try:
                    process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
    return ready


def bare_start(folder: Path, log: Path) -> float:
    port = free_port()
    started = time.monotonic()
    process = start_bare_server(folder, port, log)
    try:
        deadline = started + TIMEOUT_S
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError("rasa run exited")
            try:
                reply = httpx.post(f"http://127.0.0.1:{port}/webhooks/rest/webhook",
                                   json={"sender": "startup", "message": "hello"}, timeout=30.0)
                if reply.status_code == 200 and reply.json():
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError("rasa run did not answer in time")
    finally:
        stop(process)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="first+second starts and bare starts each (default 3)")
    parser.add_argument("--bare-dir", type=Path, default=None, help="a trained moodbot to reuse (else rasa init here)")
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args(argv)

    subprocess.run([str(ROOT / "tandem"), "train"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    with tempfile.TemporaryDirectory(prefix="tandem-bench-startup-") as tmp_name:
        tmp = Path(tmp_name)
        log = tmp / "startup.log"
        bare = args.bare_dir
        if bare is None or not (bare / "models").is_dir():
            bare = args.bare_dir or tmp / "moodbot"
            bare.mkdir(parents=True, exist_ok=True)
            print(f"training the moodbot in {bare} ...", flush=True)
            init = start_bare_init(bare, log)
            if init.wait() != 0:
                raise SystemExit(f"rasa init failed (log {log})")
        first: list[float] = []
        second: list[float] = []
        bare_s: list[float] = []
        for run in range(args.runs):  # interleaved, so that a busy minute hits all three alike
            var_dir = tmp / f"var-{run}"
            first.append(tandem_start(var_dir, log))
            second.append(tandem_start(var_dir, log))
            bare_s.append(bare_start(bare, log))
            print(f"run {run + 1}: first up {first[-1]:.1f} s, second up {second[-1]:.1f} s, bare rasa run {bare_s[-1]:.1f} s", flush=True)

    rows = [["Tandem, first `./tandem up` (fresh var dir: seed, index)", *summary(first, bare_s)],
            ["Tandem, second `./tandem up` (all prepared)", *summary(second, bare_s)],
            ["bare `rasa run` (moodbot)", *summary(bare_s, bare_s)]]
    table = markdown_table(["start", "median s", "min s", "max s", "median / bare"], rows)
    body = (f"Command: `$VENV/bin/python benchmarks/startup.py --runs {args.runs}` ({today()}; {machine()}). "
            f"Launch to the first FAQ answer through the REST channel (Tandem) or the first reply of the REST "
            f"webhook (bare); the model trained before timing; {args.runs} runs interleaved.\n\n{table}\n")
    print("\n" + body)
    if not args.no_docs:
        write_section(SECTION, body)
    return 0


def summary(values: list[float], baseline: list[float]) -> list[str]:
    return [f"{statistics.median(values):.1f}", f"{min(values):.1f}", f"{max(values):.1f}",
            f"{statistics.median(values) / statistics.median(baseline):.2f}x"]


if __name__ == "__main__":
    raise SystemExit(main())
