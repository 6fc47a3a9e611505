"""One settings object for every Tandem process.

Values come from `tandem.yml` at the project root (or the file named by TANDEM_CONFIG), and an
environment variable overrides any of them: `TANDEM_<FIELD>` in upper case (e.g.
TANDEM_WEB_PORT=9000), plus the conventional `DATABASE_URL` and `REDIS_URL`.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

import yaml

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Settings:
    """Everything a Tandem process may need to know; frozen so no one mutates it behind our back."""

    root: Path = ROOT
    var_dir: Path = ROOT / "var"
    host: str = "127.0.0.1"
    web_port: int = 8000
    rasa_port: int = 5005
    action_port: int = 5055
    database_url: str = ""  # empty: sqlite file in var_dir
    redis_url: str = ""  # empty: in-process pub/sub and Rasa's in-memory lock store
    models_dir: Path = ROOT / "models"
    faq_file: Path = ROOT / "data" / "faq.yml"
    # Retrieval: answer when the best FAQ scores at least this (cosine similarity).
    faq_threshold: float = 0.55
    # "Clarify" instead of answering when the two best FAQ entries both reach the threshold and
    # score within this margin of each other (editors' "try a question"; docs/knowledge.md).
    faq_clarify_margin: float = 0.05
    # Consecutive misses (low FAQ score or NLU fallback) before a person is brought in.
    max_misses: int = 2
    # Escalation policy (actions/policy.py; calibrated by `./tandem calibrate`, docs/evaluation.md).
    clarify_margin: float = 0.03  # top two FAQs closer than this -> "Did you mean A or B?"
    clarify_floor: float = 0.45  # ... when both score at least this
    sentiment_threshold: float = -0.5  # mean sentiment over sentiment_turns turns at or below -> a person
    sentiment_turns: int = 2
    strong_negative: float = -0.8  # one message this negative with a frustration cue -> a person
    frustration_threshold: float = 2.0  # frustration points (cues, repeats, misses, falling trend)
    priority_tiers: str = "gold,vip"  # customer tiers (metadata/slot "tier") escalated sooner
    rasa_timeout_s: float = 20.0
    # SQLite: how long a write waits for another process's lock before the request gets a 503.
    db_busy_timeout_s: float = 10.0
    agent_session_hours: float = 8.0
    max_message_chars: int = 4000
    public_url: str = ""  # empty: http://host:web_port
    secret_key: str = ""  # signs customer conversation tokens; empty: generated once into var/
    # Web widget: the site keys allowed to embed it (comma-separated); "demo" serves /demo.
    widget_site_keys: str = "demo"
    # Telegram: empty token disables the channel. mode: polling (development) | webhook.
    telegram_token: str = ""
    telegram_mode: str = "polling"
    telegram_webhook_secret: str = ""
    telegram_api_url: str = "https://api.telegram.org/bot"  # tests point it at a local fake
    demo_accounts: bool = True  # `up` creates agent/agent, supervisor/supervisor, editor/editor
    # Agent routing (handoff/routing.py, docs/agents.md). Teams: "team:category,category;...";
    # FAQ categories come from the FAQ ids the bot considered (orders-..., refunds-...).
    routing_teams: str = (
        "billing:payments,refunds,loyalty;shipping:orders,shipping,returns;"
        "technical:account,warranty,contact;complaints:complaints"
    )
    agent_capacity: int = 3  # default maximum of simultaneous chats per agent
    team_fallback_s: float = 120.0  # a case waits this long for its team, then any team may take it
    aging_per_minute: float = 1.0  # priority points a waiting case gains per minute: no one starves
    tier_priority: str = "platinum:30,gold:20,silver:10"  # customer tier -> priority points
    presence_timeout_s: float = 60.0  # a console that has not checked in for this long is offline
    dispatch_interval_s: float = 2.0  # auto-assignment and queue-position sweep period
    queue_update_interval_s: float = 15.0  # least time between two position updates to one customer
    business_hours: str = ""  # empty: always open; e.g. "mon-fri 09:00-17:00; sat 10:00-13:00"
    business_timezone: str = "UTC"  # IANA zone of business_hours, e.g. Europe/Berlin

    @property
    def sqlalchemy_url(self) -> str:
        """Synchronous SQLAlchemy URL (knowledge store, CLI, Rasa's tracker store config)."""
        url = self.database_url or f"sqlite:///{self.var_dir / 'tandem.db'}"
        if url.startswith("postgres://"):
            url = "postgresql://" + url[len("postgres://"):]
        return url

    @property
    def async_sqlalchemy_url(self) -> str:
        """Asynchronous SQLAlchemy URL for the web process (aiosqlite / asyncpg drivers)."""
        url = self.sqlalchemy_url
        if url.startswith("sqlite:///"):
            return "sqlite+aiosqlite:///" + url[len("sqlite:///"):]
        if url.startswith("postgresql://"):
            return "postgresql+asyncpg://" + url[len("postgresql://"):]
        return url

    @property
    def is_postgres(self) -> bool:
        return self.sqlalchemy_url.startswith("postgresql")

    @property
    def rasa_url(self) -> str:
        return f"http://{self.host}:{self.rasa_port}"

    @property
    def action_url(self) -> str:
        return f"http://{self.host}:{self.action_port}/webhook"

    @property
    def web_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.web_port}"

    @property
    def index_dir(self) -> Path:
        return self.var_dir / "index"

    def secret(self) -> bytes:
        """The signing key: configured, or created once (0600) in var/ and reused."""
        if self.secret_key:
            return self.secret_key.encode()
        path = self.var_dir / "secret.key"
        if not path.exists():
            import secrets

            self.var_dir.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(secrets.token_hex(32))
            tmp.chmod(0o600)
            tmp.replace(path)
        return path.read_text().strip().encode()

    def replace(self, **changes: Any) -> "Settings":
        return dataclasses.replace(self, **changes)


def _coerce(kind: Any, value: Any) -> Any:
    """Turn YAML/env values into the field's declared type (fields are str/int/float/Path)."""
    kind = str(kind)
    if value is None:
        return value
    if "Path" in kind:
        path = Path(str(value))
        return path if path.is_absolute() else ROOT / path
    if kind == "bool":
        return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes", "on")
    if kind == "int":
        return int(value)
    if kind == "float":
        return float(value)
    return str(value)


def load_settings(env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Read tandem.yml, then environment variables, then explicit overrides (tests use those)."""
    env = os.environ if env is None else env
    config_file = Path(env.get("TANDEM_CONFIG", ROOT / "tandem.yml"))
    values: dict[str, Any] = {}
    if config_file.exists():
        loaded = yaml.safe_load(config_file.read_text(encoding="utf-8")) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{config_file}: expected a mapping of settings")
        values.update(loaded)
    known = {f.name: f.type for f in fields(Settings)}
    for name in known:
        key = f"TANDEM_{name.upper()}"
        if key in env:
            values[name] = env[key]
    if env.get("DATABASE_URL"):
        values["database_url"] = env["DATABASE_URL"]
    if env.get("REDIS_URL"):
        values["redis_url"] = env["REDIS_URL"]
    values.update(overrides)
    unknown = set(values) - set(known)
    if unknown:
        raise ValueError(f"unknown settings: {', '.join(sorted(unknown))}")
    return Settings(**{k: _coerce(known[k], v) for k, v in values.items()})
