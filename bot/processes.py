"""Start, watch and stop Tandem's three processes (Rasa, action server, web).

Used by `./tandem up` and by the test suite, so tests exercise exactly what a newcomer runs.
"""
from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

from core.settings import Settings

RASA_DATA = ("data/nlu.yml", "data/rules.yml")


def write_endpoints(settings: Settings) -> Path:
    """Rasa's endpoints.yml, generated from the settings (tracker store, lock store, actions)."""
    from sqlalchemy.engine import make_url

    endpoints: dict = {"action_endpoint": {"url": settings.action_url}}
    url = make_url(settings.sqlalchemy_url)
    if url.get_backend_name() == "sqlite":
        endpoints["tracker_store"] = {"type": "SQL", "dialect": "sqlite", "db": str(settings.var_dir / "rasa-tracker.db")}
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
    path = settings.var_dir / "endpoints.yml"
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(endpoints, sort_keys=False))
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


def _env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    # Idle OpenMP threads spin instead of sleeping by default: on 2 busy cores that made one
    # embedding cost 20x its CPU time (docs/benchmarks.md). Passive waiting fixes it.
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    env.update(
        PYTHONWARNINGS="ignore", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1",
        PYTHONPATH=str(settings.root), SQLALCHEMY_SILENCE_UBER_WARNING="1",
        TANDEM_VAR_DIR=str(settings.var_dir), TANDEM_WEB_PORT=str(settings.web_port),
        TANDEM_RASA_PORT=str(settings.rasa_port), TANDEM_ACTION_PORT=str(settings.action_port),
        TANDEM_FAQ_THRESHOLD=str(settings.faq_threshold), TANDEM_HOST=settings.host,
        TANDEM_MODELS_DIR=str(settings.models_dir),
        # the business's identity as this process has it (tandem.yml or a caller's override)
        TANDEM_BUSINESS=json.dumps(dataclasses.asdict(settings.business)),
    )
    if settings.database_url:
        env["DATABASE_URL"] = settings.database_url
    if settings.redis_url:
        env["REDIS_URL"] = settings.redis_url
    if settings.secret_key:
        env["TANDEM_SECRET_KEY"] = settings.secret_key
    if settings.public_url:
        env["TANDEM_PUBLIC_URL"] = settings.public_url
    if settings.telegram_token:
        env.update(
            TANDEM_TELEGRAM_TOKEN=settings.telegram_token, TANDEM_TELEGRAM_MODE=settings.telegram_mode,
            TANDEM_TELEGRAM_WEBHOOK_SECRET=settings.telegram_webhook_secret, TANDEM_TELEGRAM_API_URL=settings.telegram_api_url,
        )
    env.setdefault("PTB_TIMEDELTA", "true")  # python-telegram-bot 22: durations as timedelta, no warnings
    return env


@dataclass
class Service:
    name: str
    command: list[str]
    health_url: str
    process: subprocess.Popen | None = None
    log_path: Path | None = None


@dataclass
class Supervisor:
    """Owns the child processes; stops all of them, in reverse order, on stop() or Ctrl-C."""

    settings: Settings
    model: Path | None = None
    services: list[Service] = field(default_factory=list)

    def plan(self) -> list[Service]:
        s = self.settings
        endpoints = write_endpoints(s)
        model = str(self.model or s.models_dir)
        py = sys.executable
        return [
            Service("actions", [py, "-m", "rasa_sdk", "--actions", "actions", "--port", str(s.action_port)],
                    f"http://{s.host}:{s.action_port}/health"),
            Service("rasa", [py, "-m", "rasa", "run", "--enable-api", "-i", s.host, "--port", str(s.rasa_port),
                             "--model", model, "--endpoints", str(endpoints)],
                    f"{s.rasa_url}/status"),
            Service("web", [py, "-m", "bot.web"], f"{s.web_url}/health"),
        ]

    def start(self, only: tuple[str, ...] | None = None, timeout: float = 240.0) -> None:
        logs = self.settings.var_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        for service in self.plan():
            if only and service.name not in only:
                continue
            service.log_path = logs / f"{service.name}.log"
            handle = open(service.log_path, "ab")  # noqa: SIM115 - owned by the child process
            service.process = subprocess.Popen(
                service.command, cwd=self.settings.root, env=_env(self.settings), stdout=handle, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            self.services.append(service)
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        pending = list(self.services)
        while pending:
            for service in list(pending):
                if service.process and service.process.poll() is not None:
                    tail = service.log_path.read_text(errors="replace")[-3000:] if service.log_path else ""
                    self.stop()
                    raise RuntimeError(f"{service.name} exited with {service.process.returncode}:\n{tail}")
                try:
                    if httpx.get(service.health_url, timeout=2.0).status_code == 200:
                        pending.remove(service)
                except httpx.HTTPError:
                    pass
            if pending and time.monotonic() > deadline:
                names = ", ".join(s.name for s in pending)
                self.stop()
                raise TimeoutError(f"{names} not ready after {timeout:.0f}s (logs in {self.settings.var_dir / 'logs'})")
            time.sleep(0.3)

    def restart(self, name: str, hard: bool = False) -> None:
        """Stop one service (SIGKILL if hard) and start it again; tests use it."""
        service = next(s for s in self.services if s.name == name)
        self._stop_one(service, hard)
        self.services.remove(service)
        self.start(only=(name,))

    def _stop_one(self, service: Service, hard: bool = False) -> None:
        process = service.process
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGKILL if hard else signal.SIGTERM)
            process.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait(timeout=5)

    def stop(self) -> None:
        for service in reversed(self.services):
            self._stop_one(service)
        self.services.clear()
