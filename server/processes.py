"""Start, watch, restart and stop Tandem's three processes (Rasa, action server, web).

Used by `./tandem up` and by the test suite, so tests exercise exactly what a newcomer runs.
"""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

from core.settings import Settings, to_plain

RASA_DATA = ("data/nlu.yml", "data/rules.yml")
PRIVATE_UMASK = 0o077  # var/ holds conversations, password hashes and the secret: owner only


def private_var_dir(settings: Settings) -> None:
    """Create var/ owner-only, and take group/other access off anything an older Tandem left there."""
    var = settings.var_dir
    var.mkdir(mode=0o700, parents=True, exist_ok=True)
    for path in [var, *var.rglob("*")]:
        try:
            mode = path.lstat().st_mode
            if not path.is_symlink() and mode & 0o077:
                path.chmod(mode & 0o700)
        except FileNotFoundError:  # a journal file that came and went
            pass


def write_credentials(settings: Settings) -> Path:
    """Rasa's credentials.yml: only Tandem's REST channel, which checks the Rasa token."""
    path = settings.var_dir / "credentials.yml"
    _write_private(path, yaml.safe_dump({"server.rasa_server.TokenRestInput": None}))
    return path


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (endpoints.yml may hold a database password)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    path.chmod(0o600)


def write_endpoints(settings: Settings, instance: int = 0) -> Path:
    """Rasa's endpoints.yml, generated from the settings (tracker store, lock store, actions):
    one file per Rasa instance, each calling its own action server."""
    from sqlalchemy.engine import make_url

    endpoints: dict = {"action_endpoint": {"url": f"http://{settings.host}:{settings.action_port + instance}/webhook"}}
    url = make_url(settings.sqlalchemy_url)
    if url.get_backend_name() == "sqlite":
        endpoints["tracker_store"] = {"type": "server.rasa_tracker_store.SQLiteTrackerStore",  # WAL, pooled
                                      "db": str(settings.var_dir / "rasa-tracker.db"), "busy_timeout_s": settings.db_busy_timeout_s}
    else:
        endpoints["tracker_store"] = {
            "type": "SQL", "dialect": "postgresql", "url": url.host or "127.0.0.1", "port": url.port or 5432,
            "db": url.database, "username": url.username or "", "password": url.password or "",
        }
    if settings.redis_url:
        redis_url = make_url(settings.redis_url.replace("redis://", "redis+x://", 1))
        endpoints["lock_store"] = {
            "type": "redis", "url": redis_url.host or "127.0.0.1", "port": redis_url.port or 6379,
            "db": int(redis_url.database or 0), "key_prefix": "tandem",
        }
    path = settings.var_dir / ("endpoints.yml" if instance == 0 else f"endpoints-{instance + 1}.yml")
    _write_private(path, yaml.safe_dump(endpoints, sort_keys=False))
    return path


def training_fingerprint(settings: Settings) -> str:
    """A hash of everything `rasa train` reads, so an unchanged project skips even loading Rasa."""
    import hashlib

    digest = hashlib.sha256()
    for name in ("config.yml", "domain.yml", *RASA_DATA):
        digest.update(name.encode() + b"\0" + (settings.root / name).read_bytes())
    return digest.hexdigest()[:16]


def train_model(settings: Settings, out: Path | None = None) -> Path:
    """Train unless a model of exactly this config and data exists (then return that one)."""
    out = out or settings.models_dir
    stamp = out / f".fingerprint-{training_fingerprint(settings)}"
    if stamp.exists():
        known = out / stamp.read_text().strip()
        if known.exists():
            return known
    command = [
        sys.executable, "-m", "rasa", "train", "--config", "config.yml", "--domain", "domain.yml",
        "--data", *RASA_DATA, "--out", str(out),
    ]
    subprocess.run(command, cwd=settings.root, check=True, env=_env(settings))
    models = sorted(out.glob("*.tar.gz"), key=lambda p: p.stat().st_mtime)
    if not models:
        raise RuntimeError("rasa train produced no model")
    stamp.write_text(models[-1].name)
    return models[-1]


SETTINGS_FILE = "settings.effective.yml"
ENV_SETTINGS = ("DATABASE_URL", "REDIS_URL")  # read by load_settings besides TANDEM_*


def write_settings_file(settings: Settings) -> Path:
    """Every setting exactly as this process has them (tandem.yml, environment and a caller's
    overrides applied), for the child processes: they read this file and nothing else."""
    path = settings.var_dir / SETTINGS_FILE
    _write_private(path, yaml.safe_dump(to_plain(settings), sort_keys=True, allow_unicode=True))
    return path


def _env(settings: Settings) -> dict[str, str]:
    """The child's environment: the parent's, minus its settings variables, plus TANDEM_CONFIG
    naming the effective settings file (so a child cannot disagree with its parent)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_") and k not in ENV_SETTINGS}
    # Idle OpenMP threads spin instead of sleeping by default: on 2 busy cores that made one
    # embedding cost 20x its CPU time (docs/benchmarks.md). Passive waiting fixes it.
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    # numpy's BLAS runs MiniLM (knowledge/minilm_numpy.py): a second spinning BLAS thread made one
    # message's embedding cost twice the CPU on 2 shared cores (docs/performance.md).
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    env.update(
        PYTHONWARNINGS="ignore", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1",
        PYTHONPATH=str(settings.root), SQLALCHEMY_SILENCE_UBER_WARNING="1", TANDEM_CONFIG=str(write_settings_file(settings)),
    )
    env.setdefault("PTB_TIMEDELTA", "true")  # python-telegram-bot 22: durations as timedelta, no warnings
    return env


@dataclass
class Service:
    """One child process and what the supervisor knows about it."""

    name: str
    command: list[str]
    health_url: str
    health_params: dict[str, str] = field(default_factory=dict, repr=False)  # may carry Rasa's token
    process: subprocess.Popen | None = None
    log_path: Path | None = None
    state: str = "stopped"  # starting | ready | backoff | failed | stopped
    supervised: bool = False  # ready once: from then on a death means restart, not a failed start
    started_at: float = 0.0
    ready_at: float | None = None
    restart_at: float = 0.0
    fast_failures: int = 0  # consecutive deaths soon after (re)starting
    restarts: int = 0
    last_exit: int | None = None

    def healthy(self) -> bool:
        try:
            return httpx.get(self.health_url, params=self.health_params, timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False


def describe_exit(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


def _notify_log(message: str) -> None:
    logging.getLogger("tandem.supervisor").warning("%s", message)


@dataclass
class Supervisor:
    """Owns the child processes: starts them, restarts any that dies, stops them all on stop().

    Once a service has been ready, a watcher thread restarts it when it dies, after a delay that
    doubles with each consecutive fast failure (a death within `supervise_stable_s` of starting),
    and gives up on it after `supervise_give_up_after` of those: restarting cannot fix a broken
    configuration, and saying so beats a restart loop. The other services keep running meanwhile
    (the web process offers customers a person while Rasa or the action server is away).
    """

    settings: Settings
    model: Path | None = None
    services: list[Service] = field(default_factory=list)
    notify: Callable[[str], None] = _notify_log  # `up` prints these; tests read var/logs/supervisor.log
    gave_up: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self._stop_watching = threading.Event()
        self._watcher: threading.Thread | None = None

    def plan(self) -> list[Service]:
        """Per Rasa instance an action server and a Rasa server ("actions"/"rasa", then
        "actions-2"/"rasa-2", ...), then the web process."""
        s = self.settings
        credentials = write_credentials(s)
        model = str(self.model or s.models_dir)
        py = sys.executable
        services: list[Service] = []
        for i in range(s.rasa_instances):
            suffix = "" if i == 0 else f"-{i + 1}"
            endpoints = write_endpoints(s, i)
            action_port, rasa_port = s.action_port + i, s.rasa_port + i
            services.append(Service(f"actions{suffix}", [py, "-m", "rasa_sdk", "--actions", "actions", "--port", str(action_port)],
                                    f"http://{s.host}:{action_port}/health"))
            # server.rasa_server adds --auth-token itself, so the token never shows in `ps`.
            services.append(Service(f"rasa{suffix}", [py, "-m", "server.rasa_server", "--enable-api", "-i", s.host, "--port", str(rasa_port),
                                                      "--model", model, "--endpoints", str(endpoints), "--credentials", str(credentials)],
                                    f"http://{s.host}:{rasa_port}/status", {"token": s.rasa_token()}))
        services.append(Service("web", [py, "-m", "server.web"], f"{s.web_url}/health"))
        return services

    def service(self, name: str) -> Service:
        return next(s for s in self.services if s.name == name)

    # -- starting ----------------------------------------------------------------------------
    def _spawn(self, service: Service) -> None:
        logs = self.settings.var_dir / "logs"
        logs.mkdir(mode=0o700, parents=True, exist_ok=True)
        service.log_path = logs / f"{service.name}.log"
        # Logs hold what customers wrote: owner-only, like everything in var/.
        fd = os.open(service.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "ab") as handle:
            service.process = subprocess.Popen(
                service.command, cwd=self.settings.root, env=_env(self.settings), stdout=handle, stderr=subprocess.STDOUT,
                start_new_session=True, umask=PRIVATE_UMASK,
            )
        service.state, service.started_at, service.ready_at = "starting", time.monotonic(), None

    def start(self, only: tuple[str, ...] | None = None, timeout: float | None = None) -> None:
        """Start the services (or `only` those), wait until they answer, then watch them."""
        with self._lock:
            for planned in self.plan():
                if only and planned.name not in only:
                    continue
                existing = next((s for s in self.services if s.name == planned.name), None)
                if existing and existing.process and existing.process.poll() is None:
                    continue
                service = existing or planned
                if existing is None:
                    self.services.append(service)
                service.command, service.health_url, service.health_params = planned.command, planned.health_url, planned.health_params
                service.supervised, service.fast_failures = False, 0
                self._spawn(service)
        self.wait_ready(self.settings.start_timeout_s if timeout is None else timeout, only)
        self._watch()

    def _pending(self, only: tuple[str, ...] | None) -> list[Service]:
        return [s for s in self.services if (not only or s.name in only) and s.state not in ("ready", "stopped")]

    def wait_ready(self, timeout: float, only: tuple[str, ...] | None = None) -> None:
        """Until the services answer their health checks; a failed first start stops everything."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                pending = self._pending(only)
                for service in pending:
                    if service.state == "failed":
                        raise RuntimeError(f"{service.name}: the supervisor gave up on it (see {service.log_path})")
                    if not service.supervised and service.process and service.process.poll() is not None:
                        tail = service.log_path.read_text(errors="replace")[-3000:] if service.log_path else ""
                        code = service.process.returncode
                        self.stop()
                        raise RuntimeError(f"{service.name} exited with {code}:\n{tail}")
                    if service.state == "starting" and service.process and service.process.poll() is None and service.healthy():
                        self._ready(service)
                pending = self._pending(only)
            if not pending:
                return
            if time.monotonic() > deadline:
                names = ", ".join(s.name for s in pending)
                self.stop()
                raise TimeoutError(f"{names} not ready after {timeout:.0f}s (logs in {self.settings.var_dir / 'logs'})")
            time.sleep(0.3)

    def _ready(self, service: Service) -> None:
        service.state, service.ready_at = "ready", time.monotonic()
        if service.supervised:
            self._say(f"{service.name} is back (pid {service.process.pid if service.process else '?'}, "
                      f"{service.ready_at - service.started_at:.1f}s to start)")
        service.supervised = True

    # -- watching ----------------------------------------------------------------------------
    def _watch(self) -> None:
        if self._watcher is None or not self._watcher.is_alive():
            self._stop_watching.clear()
            self._watcher = threading.Thread(target=self._watch_loop, name="tandem-supervisor", daemon=True)
            self._watcher.start()

    def _watch_loop(self) -> None:
        while not self._stop_watching.wait(0.25):
            try:
                with self._lock:
                    for service in self.services:
                        self._check(service)
            except Exception:  # noqa: BLE001 - the watcher must outlive any one bad check
                logging.getLogger("tandem.supervisor").exception("supervisor check failed")

    def _check(self, service: Service) -> None:
        """One look at one service: notice a death, schedule or make a restart, notice recovery."""
        if not service.supervised or service.state in ("failed", "stopped"):
            return
        s = self.settings
        now = time.monotonic()
        if service.state in ("starting", "ready") and service.process and service.process.poll() is not None:
            code = service.process.returncode
            service.last_exit = code
            _kill_group(service.process)  # anything it left behind would hold its port
            fast = now - service.started_at < s.supervise_stable_s
            service.fast_failures = service.fast_failures + 1 if fast else 0
            if service.fast_failures >= s.supervise_give_up_after:
                service.state = "failed"
                self.gave_up.append(service.name)
                self._say(
                    f"GAVE UP on {service.name}: it died {service.fast_failures} times in a row within "
                    f"{s.supervise_stable_s:.0f}s of starting (last: {describe_exit(code)}). Restarting cannot fix that; "
                    f"see {service.log_path}, fix the cause and start Tandem again."
                )
                return
            delay = min(s.supervise_backoff_s * 2 ** max(service.fast_failures - 1, 0), s.supervise_max_backoff_s)
            service.state, service.restart_at = "backoff", now + delay
            self._say(f"{service.name} died ({describe_exit(code)}, after {now - service.started_at:.0f}s); "
                      f"restarting in {delay:.1f}s (attempt {service.restarts + 1})")
            return
        if service.state == "backoff" and now >= service.restart_at:
            service.restarts += 1
            self._spawn(service)
            return
        if service.state == "starting":
            if now - service.started_at > s.start_timeout_s:
                self._say(f"{service.name} did not answer within {s.start_timeout_s:.0f}s of starting; killing it")
                _kill_group(service.process)
            elif service.healthy():
                self._ready(service)

    def _say(self, message: str) -> None:
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}"
        try:
            logs = self.settings.var_dir / "logs"
            logs.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(logs / "supervisor.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            with os.fdopen(fd, "a") as handle:
                handle.write(line + "\n")
        except OSError:
            pass
        self.notify(message)

    # -- stopping ----------------------------------------------------------------------------
    def restart(self, name: str, hard: bool = False) -> None:
        """Stop one service (SIGKILL if hard) and start it again, waiting until it answers; tests use it."""
        self.stop_service(name, hard)
        self.start(only=(name,))

    def stop_service(self, name: str, hard: bool = False) -> None:
        """Stop one service and keep it stopped (an outage on purpose) until start(only=(name,))."""
        with self._lock:
            self._stop_one(self.service(name), hard)

    def _stop_one(self, service: Service, hard: bool = False) -> None:
        with self._lock:
            service.state, service.supervised = "stopped", False
            process = service.process
            if process is None or process.poll() is not None:
                return
            try:
                os.killpg(process.pid, signal.SIGKILL if hard else signal.SIGTERM)
                process.wait(timeout=15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                _kill_group(process)
                process.wait(timeout=5)

    def stop(self) -> None:
        self._stop_watching.set()
        with self._lock:
            for service in reversed(self.services):
                self._stop_one(service)
            self.services.clear()
        if self._watcher is not None and self._watcher is not threading.current_thread():
            self._watcher.join(timeout=5)


def _kill_group(process: subprocess.Popen | None) -> None:
    """SIGKILL the process group the service runs in (its own session)."""
    if process is None:
        return
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
