"""Message latency, throughput and memory of Tandem next to a bare `rasa init` bot.

Why: Tandem puts a web process (conversations in SQL, the router, pub/sub) and an action server
(FAQ embedding + FAISS) around Rasa. This measures what that costs per message, against the
cheapest possible Rasa deployment: the default moodbot answering on its REST webhook.

Both run in the same script on 127.0.0.1: Tandem exactly as tests/conftest.py starts it (free
ports, a temporary var dir, prepare(), Supervisor), and a bot made with `rasa init --no-prompt`
served by `rasa run --enable-api`. Each scenario sends the same bounded list of messages (a
greeting, then FAQ paraphrases from data/faq.yml) from 1 or from 20 concurrent conversations.

    $VENV/bin/python benchmarks/latency.py                 # 200 messages per scenario, writes docs
    $VENV/bin/python benchmarks/latency.py --messages 40 --no-docs
    $VENV/bin/python benchmarks/latency.py --lang zh --no-bare --messages 60   # the Chinese path (issue 16)
    $VENV/bin/python benchmarks/latency.py --lang en --no-bare --messages 60   # ... and today's, alike

`--lang zh` serves the Chinese demo FAQ (data/faq.zh.yml: the knowledge base picks
multilingual-e5-small) and sends Chinese greetings and paraphrases; `--no-bare` skips the moodbot.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, children_of, cpu_seconds, free_port, machine, markdown_table, peak_rss_mb, percentile, today, write_section  # noqa: E402

from server.cli import prepare  # noqa: E402
from server.processes import Supervisor  # noqa: E402
from core.settings import Settings, load_settings  # noqa: E402
from knowledge.base import load_faq_file  # noqa: E402
from before_stack import BeforeStack, start_before  # noqa: E402

SECTION = "Message latency: Tandem REST channel vs a bare Rasa bot"
GREETINGS = ("hi", "hello there", "good morning", "hey")
GREETINGS_ZH = ("你好", "您好，在吗", "早上好", "哈喽")
FAQ_FILES = {"en": ROOT / "data" / "faq.yml", "zh": ROOT / "data" / "faq.zh.yml"}
TURNS_PER_CONVERSATION = 5  # a greeting, then four FAQ questions
CONCURRENCY = (1, 20)
WARMUP_MESSAGES = 6
REQUEST_TIMEOUT_S = 120.0


# -- the workload ----------------------------------------------------------------------------
def conversations_script(messages: int, seed: int = 7, lang: str = "en") -> list[list[str]]:
    """Conversations of a greeting followed by FAQ paraphrases, `messages` texts in total.

    Paraphrases (not the canonical questions) so the NLU sees varied wording; a fixed seed so
    every system and every run gets exactly the same texts.
    """
    rng = random.Random(seed)
    paraphrases = [p for entry in load_faq_file(FAQ_FILES[lang]) for p in entry.get("paraphrases") or []]
    greetings = GREETINGS_ZH if lang == "zh" else GREETINGS
    script: list[list[str]] = []
    left = messages
    while left > 0:
        turns = [rng.choice(greetings)] + [rng.choice(paraphrases) for _ in range(TURNS_PER_CONVERSATION - 1)]
        script.append(turns[:left])
        left -= len(script[-1])
    return script


@dataclass
class Outcome:
    """What one scenario measured."""

    system: str
    concurrency: int
    latencies_ms: list[float] = field(default_factory=list)  # successful bot replies only
    errors: list[str] = field(default_factory=list)
    failed_ms: list[float] = field(default_factory=list)  # how long the failures took
    wall_s: float = 0.0
    kinds: dict[str, int] = field(default_factory=dict)  # Tandem only: faq / greeting-etc / escalated ...
    cpu_by_process: dict[str, float] = field(default_factory=dict)  # CPU seconds used during the scenario

    @property
    def cpu_s(self) -> float:
        return sum(self.cpu_by_process.values())

    @property
    def sent(self) -> int:
        return len(self.latencies_ms) + len(self.errors)

    @property
    def throughput(self) -> float:
        return len(self.latencies_ms) / self.wall_s if self.wall_s else 0.0

    def count(self, kind: str) -> None:
        self.kinds[kind] = self.kinds.get(kind, 0) + 1


class Client:
    """One system under test: open a conversation, send a message (returns a reply kind)."""

    name: str
    pids: dict[str, int]  # the server processes (by name) whose CPU time is charged to this system

    async def open(self, http: httpx.AsyncClient) -> Any:
        raise NotImplementedError

    async def send(self, http: httpx.AsyncClient, conversation: Any, text: str) -> tuple[str, Any]:
        """Send one message; returns (reply kind, the conversation to use for the next turn)."""
        raise NotImplementedError


class BotUnavailable(RuntimeError):
    """Tandem answered HTTP 200 but with its 'assistant unavailable' message: not a bot reply."""


class EmptyReply(RuntimeError):
    """The customer got nothing back: a failure, whatever the status code says."""


@dataclass
class TandemConversation:
    conversation_id: str
    token: str


class TandemClient(Client):
    """Tandem's REST channel, as a customer's app uses it."""

    def __init__(self, base_url: str, pids: dict[str, int]) -> None:
        self.name = "Tandem (REST channel)"
        self.base_url = base_url
        self.pids = pids
        self.open_ms: list[float] = []

    async def open(self, http: httpx.AsyncClient) -> TandemConversation:
        started = time.perf_counter()
        response = await http.post(f"{self.base_url}/api/conversations")
        self.open_ms.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
        body = response.json()
        return TandemConversation(body["conversation_id"], body["token"])

    async def send(self, http: httpx.AsyncClient, conversation: TandemConversation, text: str) -> tuple[str, Any]:
        response = await http.post(
            f"{self.base_url}/api/conversations/{conversation.conversation_id}/messages",
            json={"text": text}, headers={"Authorization": f"Bearer {conversation.token}"},
        )
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}: {response.text[:200]}")
        body = response.json()
        replies = body.get("replies") or []
        if any(r.get("kind") == "bot_unavailable" for r in replies):
            # The web process gave up waiting for Rasa (rasa_timeout_s) and said so: a failure.
            raise BotUnavailable("bot_unavailable reply: Rasa did not answer within rasa_timeout_s")
        if body.get("mode") != "bot":
            # A person was asked for: later messages would go to the agent queue, not to Rasa,
            # so the rest of this conversation continues in a fresh one (the count says how often).
            return "escalated", await self.open(http)
        if not replies:
            raise EmptyReply("HTTP 200 with no reply at all")
        if any(r.get("faq_id") for r in replies):
            return "faq answer", conversation
        return "other bot reply", conversation


class BareRasaClient(Client):
    """Rasa's built-in REST webhook of the default moodbot."""

    def __init__(self, base_url: str, pid: int) -> None:
        self.name = "bare Rasa (rasa init moodbot, REST webhook)"
        self.base_url = base_url
        self.pids = {"rasa": pid}

    async def open(self, http: httpx.AsyncClient) -> str:
        return uuid.uuid4().hex

    async def send(self, http: httpx.AsyncClient, conversation: str, text: str) -> tuple[str, Any]:
        response = await http.post(f"{self.base_url}/webhooks/rest/webhook", json={"sender": conversation, "message": text})
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}: {response.text[:200]}")
        if not response.json():
            raise EmptyReply("HTTP 200 with no reply at all")
        return "bot reply", conversation


async def run_scenario(client: Client, script: Sequence[Sequence[str]], concurrency: int) -> Outcome:
    """`concurrency` customers each take the next conversation of the script until none is left."""
    outcome = Outcome(client.name, concurrency)
    limits = httpx.Limits(max_connections=concurrency + 5, max_keepalive_connections=concurrency + 5)
    async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT_S, limits=limits) as http:
        # Conversations are opened before the clock starts: the bare bot has no such step.
        opened = [await client.open(http) for _ in script]
        pending = list(zip(opened, script))

        async def customer() -> None:
            while pending:
                conversation, turns = pending.pop(0)
                for text in turns:
                    started = time.perf_counter()
                    try:
                        kind, conversation = await client.send(http, conversation, text)
                    except (httpx.HTTPError, RuntimeError, ValueError) as exc:
                        outcome.errors.append(f"{type(exc).__name__}: {exc}")
                        outcome.failed_ms.append((time.perf_counter() - started) * 1000)
                        continue
                    outcome.latencies_ms.append((time.perf_counter() - started) * 1000)
                    outcome.count(kind)

        cpu_before = {name: cpu_seconds(pid) for name, pid in client.pids.items()}
        started = time.perf_counter()
        await asyncio.gather(*(customer() for _ in range(concurrency)))
        outcome.wall_s = time.perf_counter() - started
        outcome.cpu_by_process = {name: cpu_seconds(pid) - cpu_before[name] for name, pid in client.pids.items()}
    return outcome


async def warm_up(client: Client, texts: Sequence[str]) -> None:
    """First messages pay for lazy initialisation (TensorFlow graphs, model loads): not measured."""
    async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT_S) as http:
        conversation = await client.open(http)
        for text in texts:
            try:
                _, conversation = await client.send(http, conversation, text)
            except EmptyReply:
                pass  # a warm-up turn the bot has nothing to say to still warms it up


# -- the bare Rasa bot -----------------------------------------------------------------------
def bare_env() -> dict[str, str]:
    """No Tandem on the path; no telemetry or downloads."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_") and k != "PYTHONPATH"}
    env.update(RASA_TELEMETRY_ENABLED="false", TF_CPP_MIN_LOG_LEVEL="2", HF_HUB_OFFLINE="1",
               TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1", SQLALCHEMY_SILENCE_UBER_WARNING="1")
    return env


def rasa_executable() -> str:
    return str(Path(sys.executable).parent / "rasa")


def start_bare_init(folder: Path, log: Path) -> subprocess.Popen:
    """`rasa init --no-prompt` (creates and trains the moodbot), in the background."""
    handle = open(log, "ab")  # noqa: SIM115 - owned by the child
    return subprocess.Popen(
        [rasa_executable(), "init", "--no-prompt", "--init-dir", str(folder)], cwd=folder, env=bare_env(),
        stdout=handle, stderr=subprocess.STDOUT, start_new_session=True,
    )


def start_bare_server(folder: Path, port: int, log: Path) -> subprocess.Popen:
    handle = open(log, "ab")  # noqa: SIM115 - owned by the child
    return subprocess.Popen(
        [rasa_executable(), "run", "--enable-api", "-i", "127.0.0.1", "-p", str(port)], cwd=folder, env=bare_env(),
        stdout=handle, stderr=subprocess.STDOUT, start_new_session=True,
    )


def wait_http(url: str, process: subprocess.Popen, log: Path, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: server exited with {process.returncode}:\n{log.read_text(errors='replace')[-2000:]}")
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} not ready after {timeout:.0f}s (log: {log})")


def stop(process: subprocess.Popen | None) -> None:
    """SIGTERM to the process group we created, SIGKILL if it does not go within 15 s."""
    if process is None or process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)
    except ProcessLookupError:
        pass


# -- memory ----------------------------------------------------------------------------------
MEMORY_HEADERS = ["process", "pid", "peak RSS (VmHWM)", "PSS now", "torch loaded"]


def pss_mb(pid: int) -> float | None:
    """Proportional set size now (shared pages divided among the processes mapping them), MiB."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return None
    found = re.search(r"^Pss:\s+(\d+)\s+kB", text, re.MULTILINE)
    return int(found.group(1)) / 1024 if found else None


def torch_loaded(pid: int) -> str:
    try:
        return "yes" if "libtorch" in Path(f"/proc/{pid}/maps").read_text() else "no"
    except OSError:
        return "?"


def memory_row(name: str, pid: int) -> list[str]:
    """Peak RSS of the process (and of any children it forked, listed apart), PSS, torch."""
    own = peak_rss_mb(pid)
    kids = [peak_rss_mb(child) or 0.0 for child in children_of(pid)]
    extra = f" (+{sum(kids):.0f} MiB in {len(kids)} child processes)" if kids else ""
    pss = pss_mb(pid)
    return [name, str(pid), f"{own:.0f} MiB{extra}" if own is not None else "gone",
            f"{pss:.0f} MiB" if pss is not None else "-", torch_loaded(pid)]


def memory_totals(tandem: "TandemClient", before: BeforeStack | None, bare_pid: int) -> list[list[str]]:
    """Per system: the sum of its processes' peak RSS and of their PSS."""
    systems = [(tandem.name, list(tandem.pids.values()))]
    if before is not None:
        systems.insert(0, (f"Tandem before ({before.ref})", list(before.pids.values())))
    systems.append(("bare Rasa (rasa run)", [bare_pid]))
    rows = []
    for name, pids in systems:
        rss = sum(peak_rss_mb(p) or 0.0 for p in pids)
        pss = sum(pss_mb(p) or 0.0 for p in pids)
        rows.append([name, f"{rss / 1024:.2f} GiB", f"{pss / 1024:.2f} GiB"])
    return rows


def tracker_size(settings: Settings, tandem: "TandemClient") -> str:
    """Bytes of a stored user event with and without the carried embedding (one FAQ question)."""
    import json

    async def one() -> str:
        async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT_S) as http:
            conversation = await tandem.open(http)
            await tandem.send(http, conversation, "how can I track my order?")
            tracker = (await http.get(f"{settings.rasa_url}/conversations/{conversation.conversation_id}/tracker",
                                      params={"token": settings.rasa_token()})).json()
        users = [e for e in tracker.get("events", []) if e.get("event") == "user"]
        if not users or "text_embedding" not in (users[-1].get("parse_data") or {}):
            return "no embedding in the parse data"
        event = users[-1]
        full = len(json.dumps(event))
        bare = len(json.dumps({**event, "parse_data": {k: v for k, v in event["parse_data"].items() if k != "text_embedding"}}))
        whole = len(json.dumps(tracker))
        return (f"a user event is {full} bytes of JSON with the vector, {bare} without (+{full - bare} bytes, "
                f"{(full - bare) / bare:.0%}); this 1-question conversation's whole tracker is {whole} bytes")

    return asyncio.run(one())


# -- report ----------------------------------------------------------------------------------
def latency_row(outcome: Outcome) -> list[str]:
    lat = outcome.latencies_ms
    every = lat + outcome.failed_ms
    return [
        outcome.system, str(outcome.concurrency), f"{len(lat)}/{outcome.sent}",
        f"{percentile(lat, 50):.0f}", f"{percentile(lat, 95):.0f}", f"{statistics.fmean(lat):.0f}" if lat else "-",
        f"{percentile(every, 95):.0f}",
        f"{outcome.throughput:.1f}", f"{outcome.cpu_s * 1000 / outcome.sent:.0f}" if outcome.sent else "-",
    ]


def ratio(tandem: Outcome, bare: Outcome, p: float) -> str:
    a, b = percentile(tandem.latencies_ms, p), percentile(bare.latencies_ms, p)
    return f"{a / b:.1f}x" if b else "-"


def cpu_ratio(tandem: Outcome, bare: Outcome) -> str:
    if not tandem.sent or not bare.sent or not bare.cpu_s:
        return "-"
    return f"{(tandem.cpu_s / tandem.sent) / (bare.cpu_s / bare.sent):.1f}x"


def stack_settings(tmp: Path, lang: str = "en") -> Settings:
    """Like tests/conftest.py: every port free, a throwaway var dir, a fixed secret. Throttling is
    off: every simulated customer comes from 127.0.0.1, which is a flood by design."""
    return load_settings(var_dir=tmp, web_port=free_port(), rasa_port=free_port(), action_port=free_port(),
                         secret_key="bench-secret", database_url="", redis_url="", rate_limits=False, faq_file=FAQ_FILES[lang],
                         faq_adaptation=False)  # no training child mid-run; its per-message cost: docs/performance.md section 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=200, help="messages per scenario (default 200)")
    parser.add_argument("--no-docs", action="store_true", help="print only; do not touch docs/")
    parser.add_argument("--omp-spin", action="store_true",
                        help="run every server with OpenMP's default spinning wait instead of Tandem's shipped "
                             "OMP_WAIT_POLICY=PASSIVE (to see what that setting is worth); own section")
    parser.add_argument("--lang", choices=sorted(FAQ_FILES), default="en", help="the demo FAQ and customer texts (zh: issue 16)")
    parser.add_argument("--no-bare", action="store_true", help="Tandem only: no bare moodbot baseline")
    parser.add_argument("--bare-dir", type=Path, default=None,
                        help="keep the moodbot here and reuse it when it is already trained (rasa init takes minutes; "
                             "a run must stay within 5)")
    parser.add_argument("--before", metavar="REF", default="",
                        help="also start Tandem at this git ref (benchmarks/before_stack.py) and measure it in the same run "
                             "(issue 13: before vs after)")
    args = parser.parse_args(argv)
    section = SECTION
    if args.no_bare:
        section = f"Cost per message by knowledge-base language (issue 16): {args.lang}"
    # Tandem ships OMP_WAIT_POLICY=PASSIVE (server/processes.py); the bare bot gets the same env.
    os.environ["OMP_WAIT_POLICY"] = "ACTIVE" if args.omp_spin else "PASSIVE"
    if args.omp_spin:
        section = f"{SECTION}, with spinning OpenMP threads (OMP_WAIT_POLICY=ACTIVE)"
    if args.messages < 1 or args.messages > 5000:
        parser.error("--messages must be between 1 and 5000")

    script = conversations_script(args.messages, lang=args.lang)
    warm_texts = [t for turns in conversations_script(WARMUP_MESSAGES, seed=99, lang=args.lang) for t in turns]
    started = time.perf_counter()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="tandem-bench-latency-") as tmp_name:
        tmp = Path(tmp_name)
        bare_dir, bare_log = (args.bare_dir.resolve() if args.bare_dir else tmp / "moodbot"), tmp / "moodbot.log"
        bare_dir.mkdir(parents=True, exist_ok=True)
        bare_trained = any((bare_dir / "models").glob("*.tar.gz"))
        bare_port = free_port()
        supervisor: Supervisor | None = None
        before_stack: BeforeStack | None = None
        before_client: TandemClient | None = None
        bare_init: subprocess.Popen | None = None
        bare_server: subprocess.Popen | None = None
        try:
            t0 = time.perf_counter()
            if not args.no_bare and not bare_trained:
                print("creating and training the bare moodbot (rasa init) in the background ...", flush=True)
                bare_init = start_bare_init(bare_dir, bare_log)

            print("preparing Tandem (schema, seed, model, index) ...", flush=True)
            settings = stack_settings(tmp / "tandem-var", args.lang)
            model = prepare(settings)
            supervisor = Supervisor(settings, model=model)
            supervisor.start()
            print(f"Tandem up on {settings.web_url}", flush=True)

            tandem = TandemClient(settings.web_url, {s.name: s.process.pid for s in supervisor.services if s.process})
            if args.before:
                print(f"starting Tandem at {args.before} next to it ...", flush=True)
                before_stack = start_before(args.before, tmp / "before", FAQ_FILES[args.lang].name, tmp / "before.log")
                before_client = TandemClient(before_stack.url, before_stack.pids)
                before_client.name = f"Tandem before ({args.before})"
            if args.no_bare:
                asyncio.run(warm_up(tandem, warm_texts))
                outcomes_only: dict[tuple[str, int], Outcome] = {}
                for concurrency in CONCURRENCY:
                    print(f"{tandem.name} ({args.lang}): {args.messages} messages, {concurrency} concurrent ...", flush=True)
                    outcome = asyncio.run(run_scenario(tandem, script, concurrency))
                    outcomes_only[(tandem.name, concurrency)] = outcome
                    print("  " + " | ".join(latency_row(outcome)), flush=True)
                memory_only = [memory_row(f"Tandem {s.name}", s.process.pid) for s in supervisor.services if s.process]
                return _report_tandem_only(args, section, outcomes_only, memory_only, tandem, started)
            if bare_init is not None and bare_init.wait(timeout=900) != 0:
                raise RuntimeError(f"rasa init failed:\n{bare_log.read_text(errors='replace')[-2000:]}")
            print(f"moodbot trained ({time.perf_counter() - t0:.0f}s since start); starting rasa run ...", flush=True)
            bare_server = start_bare_server(bare_dir, bare_port, bare_log)
            bare_url = f"http://127.0.0.1:{bare_port}"
            wait_http(f"{bare_url}/status", bare_server, bare_log)

            bare = BareRasaClient(bare_url, bare_server.pid)
            systems: list[Client] = ([before_client] if before_client else []) + [tandem, bare]
            for client in systems:
                asyncio.run(warm_up(client, warm_texts))

            outcomes: dict[tuple[str, int], Outcome] = {}
            for concurrency in CONCURRENCY:  # interleaved, so drifting machine load hits both alike
                for client in systems:
                    print(f"{client.name}: {args.messages} messages, {concurrency} concurrent ...", flush=True)
                    outcome = asyncio.run(run_scenario(client, script, concurrency))
                    outcomes[(client.name, concurrency)] = outcome
                    print("  " + " | ".join(latency_row(outcome)), flush=True)
                    for error in outcome.errors[:3]:
                        print(f"  error: {error}", flush=True)

            tracker_cost = tracker_size(settings, tandem)
            memory = [memory_row(f"Tandem {s.name}", s.process.pid) for s in supervisor.services if s.process]
            if before_stack is not None:
                memory += [memory_row(f"Tandem before {name}", pid) for name, pid in before_stack.pids.items()]
            memory.append(memory_row("bare Rasa (rasa run)", bare_server.pid))
            totals = memory_totals(tandem, before_stack, bare_server.pid)
        finally:
            if before_stack is not None:
                before_stack.stop()
            if supervisor is not None:
                supervisor.stop()
            stop(bare_server)
            stop(bare_init)
    load_after = os.getloadavg()
    elapsed = time.perf_counter() - started

    latency_table = markdown_table(
        ["system", "concurrent conversations", "ok/sent", "p50 ms", "p95 ms", "mean ms", "p95 ms incl. failures",
         "ok messages/s",
         "server CPU ms per message sent"],
        [latency_row(outcomes[(client.name, c)]) for c in CONCURRENCY for client in systems],
    )
    ratio_table = markdown_table(
        ["system", "concurrent conversations", "p50 Tandem / bare", "p95 Tandem / bare", "throughput bare / Tandem",
         "CPU per message Tandem / bare"],
        [[system.name, str(c), ratio(outcomes[(system.name, c)], outcomes[(bare.name, c)], 50),
          ratio(outcomes[(system.name, c)], outcomes[(bare.name, c)], 95),
          f"{outcomes[(bare.name, c)].throughput / outcomes[(system.name, c)].throughput:.2f}x"
          if outcomes[(system.name, c)].throughput else "-",
          cpu_ratio(outcomes[(system.name, c)], outcomes[(bare.name, c)])]
         for system in systems if system is not bare for c in CONCURRENCY],
    )
    memory_table = markdown_table(MEMORY_HEADERS, memory)
    totals_table = markdown_table(["system", "peak RSS, sum of processes", "PSS now, sum (shared pages split)"], totals)
    kinds = "; ".join(
        f"{system.name}, {c} concurrent: " + ", ".join(f"{k} {v}" for k, v in sorted(outcomes[(system.name, c)].kinds.items()))
        for system in systems if system is not bare for c in CONCURRENCY
    )
    cpu_split = "; ".join(
        f"{system.name}, {c} concurrent: " + ", ".join(
            f"{name} {seconds * 1000 / max(1, outcomes[(system.name, c)].sent):.0f}"
            for name, seconds in outcomes[(system.name, c)].cpu_by_process.items())
        for system in systems if system is not bare for c in CONCURRENCY
    )
    failures = "; ".join(
        f"{o.system}, {o.concurrency} concurrent: " + ", ".join(f"{n} x {e}" for e, n in Counter(o.errors).most_common(3))
        for o in outcomes.values() if o.errors
    ) or "none"
    opened = f"{percentile(tandem.open_ms, 50):.0f} ms p50, {percentile(tandem.open_ms, 95):.0f} ms p95"
    load_text = (f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after "
                 f"(1-minute; the machine was shared with other work)")

    print("\n" + latency_table + "\n\n" + ratio_table + "\n\n" + memory_table + "\n\n" + totals_table)
    print(f"\ntracker: {tracker_cost}")
    print(f"\nfailures: {failures}")
    print(f"\nTandem CPU ms per message by process: {cpu_split}")
    print(f"\nTandem replies: {kinds}\nTandem POST /api/conversations: {opened}\n{load_text}; total {elapsed:.0f} s")

    if not args.no_docs:
        flag = ((" --omp-spin" if args.omp_spin else "") + (f" --before {args.before}" if args.before else "")
                + (f" --bare-dir {args.bare_dir}" if args.bare_dir else ""))
        trained = "the moodbot trained before the run (--bare-dir)" if bare_init is None else "including training the moodbot"
        body = f"""Command: `$VENV/bin/python benchmarks/latency.py --messages {args.messages}{flag}` ({today()}; {machine()};
{load_text}; {elapsed:.0f} s, {trained}).

Both systems run on 127.0.0.1 in the same run. Tandem starts as in tests/conftest.py (free ports,
a temporary var dir with SQLite, `prepare()`, `Supervisor`: Rasa + action server + web process);
each message is `POST /api/conversations/<id>/messages` (stored, routed to Rasa, FAQ answers from the
action server's embedding search, stored and published before the HTTP reply). The baseline is
`rasa init --no-prompt` (the default moodbot, trained in the run or kept by `--bare-dir`) under `rasa run --enable-api`,
each message `POST /webhooks/rest/webhook`. Each scenario sends the same {args.messages} texts in
conversations of {TURNS_PER_CONVERSATION} turns (a greeting, then paraphrases from data/faq.yml; fixed seed), from 1 or
20 concurrent customers; latency is one message's HTTP round trip, throughput is successful
messages / wall time; "server CPU ms/message" is the user+system CPU time the system's server
processes used during the scenario (Tandem: Rasa + actions + web) divided by the messages sent, a cost
figure that a busy machine distorts far less than wall-clock latency. Conversations are opened before the clock starts (Tandem's
`POST /api/conversations`: {opened}); {WARMUP_MESSAGES} warm-up messages per system are not counted.
Scenarios are interleaved (with `--before REF`: Tandem at REF, Tandem, bare, at 1 then at 20), so drifting load hits all alike.

{latency_table}

Failures (not in the latency percentiles, but in "p95 incl. failures"): {failures}.

Ratio against the bare Rasa baseline:

{ratio_table}

What Tandem's replies were: {kinds} ("escalated": NLU took a paraphrase for a request for a person
or a complaint; that conversation continued in a fresh one; empty replies and Tandem's "assistant
unavailable" message count as failures, not as replies). The bare moodbot's NLU knows none of
these questions and answers from its tiny domain, so it does strictly less work per message: no
action server call, no embedding, no SQL writes; the ratio is the price of everything Tandem adds.

Tandem's CPU ms per message, by process: {cpu_split}.

Memory of each process, read just before shutdown: peak RSS (VmHWM; file pages shared between
processes, such as the memory-mapped MiniLM weights, count in each), PSS (shared pages split
between the processes that map them) and whether torch is loaded:

{memory_table}

{totals_table}

Tracker cost of carrying the message's embedding in the parse data: {tracker_cost}.
"""
        write_section(section, body)
        print(f"wrote the '{section}' section of docs/benchmarks.md")
    return 0


def _report_tandem_only(args: Any, section: str, outcomes: dict[tuple[str, int], Outcome], memory: list[list[str]],
                        tandem: Any, started: float) -> int:
    """Tandem alone on one language's demo knowledge base: latency, CPU per message by process, memory."""
    table = markdown_table(
        ["system", "concurrent conversations", "ok/sent", "p50 ms", "p95 ms", "mean ms", "p95 ms incl. failures", "ok messages/s",
         "server CPU ms per message sent"],
        [latency_row(outcomes[(tandem.name, c)]) for c in CONCURRENCY])
    cpu_split = "; ".join(
        f"{c} concurrent: " + ", ".join(f"{name} {seconds * 1000 / max(1, outcomes[(tandem.name, c)].sent):.0f}"
                                        for name, seconds in outcomes[(tandem.name, c)].cpu_by_process.items())
        for c in CONCURRENCY)
    kinds = "; ".join(f"{c} concurrent: " + ", ".join(f"{k} {v}" for k, v in sorted(outcomes[(tandem.name, c)].kinds.items()))
                      for c in CONCURRENCY)
    memory_table = markdown_table(MEMORY_HEADERS, memory)
    elapsed = time.perf_counter() - started
    print("\n" + table + "\n\n" + memory_table + f"\n\nCPU ms per message by process: {cpu_split}\nreplies: {kinds}\n{elapsed:.0f} s")
    if not args.no_docs:
        write_section(section, (
            f"Command: `$VENV/bin/python benchmarks/latency.py --lang {args.lang} --no-bare --messages {args.messages}` "
            f"({today()}; {machine()}; {elapsed:.0f} s). Tandem alone on data/{'faq.zh.yml' if args.lang == 'zh' else 'faq.yml'} "
            f"({'multilingual-e5-small' if args.lang == 'zh' else 'all-MiniLM-L6-v2'} chosen by the knowledge base), the same "
            f"scenarios as above with {'Chinese' if args.lang == 'zh' else 'English'} greetings and paraphrases.\n\n{table}\n\n"
            f"CPU ms per message by process: {cpu_split}. Replies: {kinds}.\n\n{memory_table}\n"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
