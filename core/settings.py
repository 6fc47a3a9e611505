"""One settings object for every Tandem process.

Values come from `tandem.yml` at the project root (or the file named by TANDEM_CONFIG), and an
environment variable overrides any of them: `TANDEM_<FIELD>` in upper case (e.g.
TANDEM_WEB_PORT=9000), plus the conventional `DATABASE_URL` and `REDIS_URL`.
"""
from __future__ import annotations

import dataclasses
import os
import json
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

import yaml

ROOT = Path(__file__).resolve().parents[1]
# The generated signing key per var/ folder, read once (Settings is frozen, so it cannot hold it).
_SECRETS: dict[Path, bytes] = {}


@dataclass(frozen=True)
class CustomerSettings:
    """Customer records and data rights (customers/, docs/customers.md)."""

    # Widget site key -> secret the embedding site signs verified identities with (HMAC-SHA256).
    identity_secrets: dict[str, str] = field(default_factory=dict, hash=False)
    identity_max_lifetime_s: float = 86400.0  # a signed identity valid longer than this is refused
    identity_clock_skew_s: float = 60.0  # tolerated difference between the site's clock and ours
    retention_days: int = 0  # conversations untouched this long are erased; 0 keeps them forever
    retention_interval_s: float = 3600.0  # how often the web process's timer loop applies retention


@dataclass(frozen=True)
class MailSettings:
    """Outbound e-mail over SMTP (mail/). Empty host: mail is stored but not sent."""

    host: str = ""
    port: int = 587
    security: str = "starttls"  # none | starttls | ssl
    user: str = ""
    password: str = ""
    from_address: str = ""
    timeout_s: float = 20.0
    max_attempts: int = 6  # then the mail is marked failed (kept, never silently dropped)
    backoff_s: float = 30.0  # first retry after this, doubling each time
    ticket_subject: str = "Re: your request #{ticket_id}"  # {ticket_id} is filled in
    followup_subject: str = "Was your problem solved? (request #{case_id})"


@dataclass(frozen=True)
class SlaTarget:
    """First-response and resolution targets for cases of one team and tier ("*" matches any)."""

    team: str = "*"
    tier: str = "*"
    first_response_s: float = 300.0
    resolution_s: float = 86400.0


@dataclass(frozen=True)
class SlaSettings:
    """SLA timers (handoff/sla.py): the most specific matching target wins."""

    targets: tuple[SlaTarget, ...] = (SlaTarget(),)
    warn_fraction: float = 0.8  # warn once this share of the target has elapsed


@dataclass(frozen=True)
class ReassignSettings:
    """Moving a case away from an agent who went quiet (handoff/reassign.py)."""

    wait_s: float = 180.0  # the customer has waited this long for the assigned agent's reply
    team_wait_s: dict[str, float] = field(default_factory=dict, hash=False)  # per-team override of wait_s
    target: str = "agent"  # agent: the next free agent of the team, else the queue | queue: always the queue
    # An agent who is online or away but whose console stopped checking in keeps a chat this long after
    # claiming it or last checking in before it moves (a reconnecting console is not "gone").
    offline_grace_s: float = 60.0


@dataclass(frozen=True)
class FollowupSettings:
    """Follow-ups (回访) after closing a case (handoff/followup.py)."""

    delay_s: float = 86400.0  # default time from closing to asking
    answer_timeout_s: float = 259200.0  # an unanswered question is closed as no_answer after this
    auto_teams: tuple[str, ...] = ("complaints",)  # closing a case of these teams schedules one unless the agent says no


@dataclass(frozen=True)
class Tier:
    """One customer tier (the customer record's `tier`): how it is treated in the queue and by the policy."""

    priority: int = 0  # routing priority points added to the tier's cases (handoff/routing.py)
    escalate_sooner: bool = False  # the escalation policy brings a person in at once (actions/policy.py)


@dataclass(frozen=True)
class OpeningHours:
    """One line of the business's opening hours, in `business_timezone`."""

    days: str = "mon-fri"  # a day ("sat") or a range of days ("mon-fri", "fri-mon")
    open: str = "09:00"
    close: str = "17:00"  # "24:00" is midnight at the end of the day


DEFAULT_TEAMS: dict[str, tuple[str, ...]] = {
    "billing": ("payments", "refunds", "loyalty"),
    "shipping": ("orders", "shipping", "returns"),
    "technical": ("account", "warranty", "contact"),
    "complaints": ("complaints",),
}
DEFAULT_TIERS: dict[str, Tier] = {
    "platinum": Tier(30, True), "gold": Tier(20, True), "vip": Tier(20, True), "silver": Tier(10, False),
}


@dataclass(frozen=True)
class Business:
    """Who the assistant speaks for and the texts it says (tandem.yml `business:`).

    The defaults here name no business: the demo's shop is set in tandem.yml. Texts may use {name} (the business's name) and
    {covers} (what the assistant covers); editors may override each text at run time
    (editor/persona_api.py, core/persona.py) with no retraining.
    """

    name: str = "Support"
    covers: str = "questions about our products and services"
    greeting: str = "Hi! I'm the {name} assistant. Ask me about {covers}, or type 'agent' to reach a person."
    goodbye: str = "Goodbye, and thanks for contacting {name}!"
    welcome: str = "You're welcome! Anything else I can help with?"  # the reply to thanks
    glad: str = "Great! Anything else I can help with?"  # the reply to yes
    deny: str = "Sorry about that. Could you tell me a bit more, or type 'agent' to talk to a person?"
    bot_challenge: str = "I'm {name}'s virtual assistant, a bot. A person from our team can take over whenever you like: just type 'agent'."
    refusal: str = "Sorry, I can't help with that. I can help with {covers}. Could you put your question another way, or type 'agent' to reach a person?"
    rephrase: str = "I'm not sure I found the right answer. Could you put it another way, with a few more details?"
    handoff: str = "I'm connecting you with a member of our support team. Please stay here; they'll see everything we've discussed."
    back_to_bot: str = "You're back with the {name} assistant. Is there anything else I can help you with?"
    # Satisfaction (CSAT, reports/csat_prompt.py): asked once per conversation, 1-5 buttons.
    csat_question: str = "How satisfied are you with the help you got today? 1 = very unsatisfied, 5 = very satisfied."
    csat_comment: str = "Thank you! Is there anything you'd like to add? Type a comment, or tap 'No comment'."
    csat_no_comment: str = "No comment"  # the button that skips the comment
    csat_thanks: str = "Thank you for your feedback!"
    # The same texts (and name, covers) for Chinese customers (tandem.yml `business: zh:`); a text
    # missing here falls back to core/texts.py's domain-neutral Chinese default (issue 16).
    zh: dict[str, str] = field(default_factory=dict, hash=False)

    # Case care (handoff/timer_loop.py, handoff/followup_flow.py): reassignment and follow-up texts.
    reassigned_agent: str = "Sorry for the wait. Another member of our team is taking over your chat."
    reassigned_queue: str = "Sorry for the wait. Your chat is back in the queue for the next free person from our team."
    followup_question: str = "Hello again from {name}. Last time you contacted us about a problem: is it solved now?"
    followup_yes: str = "Yes, it's solved"  # the answer buttons' titles (typing them counts too)
    followup_no: str = "No, not yet"
    followup_solved: str = "Thank you for letting us know. We're glad it's solved!"
    followup_reopened: str = "Sorry to hear that. We've reopened your request for our team; a person will be with you soon."
    followup_mail_hint: str = "You can answer in the chat where we talked, with the buttons under this question."

    TEXTS = ("greeting", "goodbye", "welcome", "glad", "deny", "bot_challenge", "refusal", "rephrase", "handoff", "back_to_bot",
             "csat_question", "csat_comment", "csat_no_comment", "csat_thanks",
             "reassigned_agent", "reassigned_queue", "followup_question", "followup_yes", "followup_no", "followup_solved",
             "followup_reopened", "followup_mail_hint")

    def text(self, key: str, lang: str = "en") -> str:
        """One text with {name} and {covers} filled in, in the customer's language (en | zh)."""
        if lang == "zh":
            from core.texts import BUSINESS_ZH

            name = self.zh.get("name") or self.name
            covers = self.zh.get("covers") or BUSINESS_ZH["covers"]
            if key in ("name", "covers"):
                return name if key == "name" else covers
            return render(self.zh.get(key) or BUSINESS_ZH.get(key) or str(getattr(self, key)), name, covers)
        return render(str(getattr(self, key)), self.name, self.covers)


PLACEHOLDERS = ("name", "covers")


def render(template: str, name: str, covers: str) -> str:
    return template.replace("{name}", name).replace("{covers}", covers)


def business_from(value: Any) -> Business:
    """A `business:` mapping from tandem.yml -> Business; unknown keys are an error, not ignored."""
    if isinstance(value, Business):
        return value
    if isinstance(value, str):  # TANDEM_BUSINESS: a YAML/JSON mapping
        value = yaml.safe_load(value) or {}
    if not isinstance(value, Mapping):
        raise ValueError("business: expected a mapping (name, covers, greeting, ...)")
    known = {f.name for f in fields(Business)}
    unknown = set(value) - known
    if unknown:
        raise ValueError(f"unknown business settings: {', '.join(sorted(unknown))}")
    zh = value.get("zh") or {}
    if not isinstance(zh, Mapping):
        raise ValueError("business.zh: expected a mapping of Chinese texts (greeting, refusal, ...)")
    unknown_zh = set(zh) - (known - {"zh"})
    if unknown_zh:
        raise ValueError(f"unknown business.zh settings: {', '.join(sorted(unknown_zh))}")
    return Business(**{k: str(v) for k, v in value.items() if v is not None and k != "zh"},
                    zh={str(k): str(v) for k, v in zh.items() if v is not None})


@dataclass(frozen=True)
class Settings:
    """Everything a Tandem process may need to know; frozen so no one mutates it behind our back."""

    root: Path = ROOT
    var_dir: Path = ROOT / "var"
    host: str = "127.0.0.1"
    web_port: int = 8000
    rasa_port: int = 5005
    action_port: int = 5055
    # Rasa servers (each with its own action server) this supervisor starts: instance i listens on
    # rasa_port + i and calls the action server on action_port + i. More than one is for scale-out
    # (PostgreSQL tracker store and Redis lock store shared by all); see docs/performance.md.
    rasa_instances: int = 1
    database_url: str = ""  # empty: sqlite file in var_dir
    redis_url: str = ""  # empty: in-process pub/sub and Rasa's in-memory lock store
    models_dir: Path = ROOT / "models"
    faq_file: Path = ROOT / "data" / "faq.yml"
    # Retrieval: answer when the best FAQ scores at least this (cosine similarity).
    faq_threshold: float = 0.55
    # "auto": answer/clarify floors come from the knowledge base's own self-calibration
    # (knowledge/selfcalibration.py, recomputed after each import/publish) once one exists;
    # "off": faq_threshold and clarify_floor below are used as they are (`./tandem calibrate`).
    faq_calibration: str = "auto"
    # Sentence encoder per knowledge base (knowledge/models.py, docs/multilingual.md): auto (E5 when
    # the entries are Chinese, else MiniLM) | en (MiniLM) | zh | multi (multilingual-e5-small).
    knowledge_language: str = "auto"
    # Re-rank the cosine with a head trained on the knowledge base's own paraphrases after each
    # publish (knowledge/entry_head.py; background, hot-swapped; docs/knowledge.md).
    faq_head: bool = True
    # Fine-tune MiniLM on the knowledge base's paraphrases in a child process after publishes
    # (knowledge/adaptation.py; hot-swapped in every answering process; docs/knowledge.md):
    # started when the knowledge base has been quiet `adapt_delay_s`, at most every `adapt_interval_s`.
    faq_adaptation: bool = True
    adapt_delay_s: float = 30.0
    adapt_interval_s: float = 600.0
    adapt_steps: int = 200
    adapt_threads: int = 1  # the training child's torch threads: one core stays free for customers
    # FAISS index: auto (flat, then IVF from 20,000 vectors) | flat | hnsw (docs/knowledge.md, "Scale").
    index_kind: str = "auto"
    # Consecutive misses (low FAQ score or NLU fallback) before a person is brought in.
    max_misses: int = 2
    # Escalation policy (actions/policy.py; calibrated by `./tandem calibrate`, docs/evaluation.md).
    # The one answer/clarify/miss rule (knowledge/decision.py), for the bot and the editor's preview:
    clarify_margin: float = 0.02  # top two FAQs closer than this -> "Did you mean A or B?"
    clarify_floor: float = 0.45  # ... when both score at least this
    sentiment_threshold: float = -0.5  # mean sentiment over sentiment_turns turns at or below -> a person
    sentiment_turns: int = 2
    strong_negative: float = -0.8  # one message this negative with a frustration cue -> a person
    frustration_threshold: float = 2.0  # frustration points (cues, repeats, misses, falling trend)
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
    # DEMO ONLY: `up` creates agent/agent, agent2/agent2, supervisor/supervisor, editor/editor, manager/manager.
    # Off unless tandem.yml (the demo's) turns it on; turned off, those logins are locked.
    demo_accounts: bool = False
    # The supervisor (server/processes.py): a service that dies is restarted after supervise_backoff_s,
    # doubled per consecutive fast failure (a run shorter than supervise_stable_s) up to
    # supervise_max_backoff_s; after supervise_give_up_after fast failures in a row it gives up.
    start_timeout_s: float = 240.0
    supervise_backoff_s: float = 0.5
    supervise_max_backoff_s: float = 30.0
    supervise_stable_s: float = 60.0
    supervise_give_up_after: int = 5
    # Agent routing (handoff/routing.py, docs/agents.md): team -> the FAQ categories it answers
    # (categories come from the FAQ ids the bot considered: orders-..., refunds-...).
    teams: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_TEAMS), hash=False)
    # Customer tiers: routing priority points and earlier escalation (one setting for both).
    tiers: dict[str, Tier] = field(default_factory=lambda: dict(DEFAULT_TIERS), hash=False)
    agent_capacity: int = 3  # default maximum of simultaneous chats per agent
    team_fallback_s: float = 120.0  # a case waits this long for its team, then any team may take it
    aging_per_minute: float = 1.0  # priority points a waiting case gains per minute: no one starves
    presence_timeout_s: float = 60.0  # a console that has not checked in for this long is offline
    dispatch_interval_s: float = 2.0  # auto-assignment and queue-position sweep period
    queue_update_interval_s: float = 15.0  # least time between two position updates to one customer
    # Empty: always open. Else a list of {days: mon-fri, open: "09:00", close: "17:00"}.
    business_hours: tuple[OpeningHours, ...] = ()
    business_timezone: str = "UTC"  # IANA zone of business_hours, e.g. Europe/Berlin
    # Nested groups: a mapping in tandem.yml, or JSON in TANDEM_<GROUP> (e.g. TANDEM_MAIL='{"host": ...}').
    customers: CustomerSettings = field(default_factory=CustomerSettings)
    mail: MailSettings = field(default_factory=MailSettings)
    sla: SlaSettings = field(default_factory=SlaSettings)
    reassign: ReassignSettings = field(default_factory=ReassignSettings)
    followup: FollowupSettings = field(default_factory=FollowupSettings)
    # Managers' reports (reports/, docs/reports.md).
    service_level_s: float = 60.0  # service level: share of cases with a first human reply within this
    fcr_days: float = 7.0  # first-contact resolution: the customer must not come back within this
    csat_low_score: int = 2  # CSAT at or below this counts as "low" (QA sampling, reports)
    qa_long_handle_s: float = 900.0  # handle time at or above this puts a case in the QA "long" bucket
    # CSAT prompt (reports/csat_prompt.py): a bot conversation quiet this long is asked for its
    # rating (0: never on idle; hand-back and goodbye still ask); the sweep looks this often.
    csat_idle_minutes: float = 30.0
    csat_sweep_interval_s: float = 30.0
    # The reports' rollup (reports/rollup.py): each web process compares every case with its facts
    # this often in the background (reports themselves only check the event watermark).
    reports_full_check_s: float = 60.0
    # Throttling (core/ratelimit.py): at most N per window, refilled evenly (N/window per second).
    # Off only for load tests that flood from one address on purpose (benchmarks/).
    rate_limits: bool = True
    rate_limit_store: str = "auto"  # auto: Redis when redis_url is set, else the database | memory | sql | redis
    rate_login_per_account: int = 10  # failed logins per user name (known or not: no enumeration)
    rate_login_per_address: int = 50  # failed logins per client address
    rate_login_window_s: float = 900.0
    rate_conversations_per_address: int = 60  # new conversations (REST, widget) per client address
    rate_conversations_window_s: float = 60.0
    rate_messages_per_conversation: int = 30  # customer messages per conversation / Telegram chat
    rate_messages_per_address: int = 300  # customer messages per client address (REST, widget; NAT-shared)
    rate_messages_window_s: float = 60.0
    # Reverse proxies in front of the web process (X-Forwarded-For hops to trust); 0: the TCP
    # peer is the client. Behind a proxy this must be set, or every customer shares one address.
    proxies_count: int = 0
    # The business's identity and the bot's texts (the demo shop is only the default).
    business: Business = field(default_factory=Business)

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
    def rasa_urls(self) -> tuple[str, ...]:
        return tuple(f"http://{self.host}:{self.rasa_port + i}" for i in range(self.rasa_instances))

    @property
    def action_health_urls(self) -> tuple[str, ...]:
        return tuple(f"http://{self.host}:{self.action_port + i}/health" for i in range(self.rasa_instances))

    @property
    def web_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.web_port}"

    @property
    def index_dir(self) -> Path:
        return self.var_dir / "index"

    def secret(self) -> bytes:
        """The signing key: configured, or created once (0600 from the first byte) in var/ and reused.

        Read from disk once per process and settings object (every request signs or checks a token)."""
        if self.secret_key:
            return self.secret_key.encode()
        cached = _SECRETS.get(self.var_dir)
        if cached is None:
            cached = _SECRETS[self.var_dir] = self._read_or_create_secret()
        return cached

    def _read_or_create_secret(self) -> bytes:
        path = self.var_dir / "secret.key"
        if not path.exists():
            import secrets

            self.var_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            tmp = path.with_name(f"secret.key.{os.getpid()}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32))
            tmp.replace(path)
        return path.read_text().strip().encode()

    def rasa_token(self) -> str:
        """The token Rasa's HTTP API and REST channel demand: derived from the secret, so every
        process agrees on it, none stores it, and it changes when the secret does."""
        import hashlib
        import hmac

        return hmac.new(self.secret(), b"tandem rasa api token", hashlib.sha256).hexdigest()

    def replace(self, **changes: Any) -> "Settings":
        return dataclasses.replace(self, **changes)


def _coerce_typed(kind: Any, value: Any, where: str) -> Any:
    """Build a nested settings value (dataclass, dict[K, V], tuple[X, ...]) from YAML/JSON data."""
    if dataclasses.is_dataclass(kind):
        if isinstance(value, kind):
            return value
        if isinstance(value, str):
            value = json.loads(value)
        if not isinstance(value, Mapping):
            raise ValueError(f"{where}: expected a mapping")
        hints = typing.get_type_hints(kind)
        unknown = set(value) - set(hints)
        if unknown:
            raise ValueError(f"unknown settings: {', '.join(f'{where}.{k}' for k in sorted(unknown))}")
        return kind(**{k: _coerce_typed(hints[k], v, f"{where}.{k}") for k, v in value.items()})
    origin = typing.get_origin(kind)
    if origin is dict:
        key_type, value_type = typing.get_args(kind)
        if isinstance(value, str):
            value = json.loads(value)
        if not isinstance(value, Mapping):
            raise ValueError(f"{where}: expected a mapping")
        return {_coerce_typed(key_type, k, where): _coerce_typed(value_type, v, f"{where}.{k}") for k, v in value.items()}
    if origin is tuple:
        item_type = typing.get_args(kind)[0]
        if isinstance(value, str):
            value = json.loads(value)
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{where}: expected a list")
        return tuple(_coerce_typed(item_type, v, f"{where}[{i}]") for i, v in enumerate(value))
    name = getattr(kind, "__name__", str(kind))
    return _coerce(name, value)


def _coerce(kind: Any, value: Any) -> Any:
    """Turn YAML/env values into the field's declared type (fields are str/int/float/Path)."""
    kind = str(kind)
    if value is None:
        return value
    if kind == "Business":
        return business_from(value)
    if kind == "bool" and isinstance(value, bool):
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
    hints = typing.get_type_hints(Settings)
    nested = {k for k, kind in hints.items() if dataclasses.is_dataclass(kind) or typing.get_origin(kind) in (dict, tuple)}
    settings = Settings(**{
        k: _coerce_typed(hints[k], v, k) if k in nested else _coerce(known[k], v) for k, v in values.items()
    })
    if not 1 <= settings.rasa_instances <= 16:
        raise ValueError(f"rasa_instances: expected 1 to 16, not {settings.rasa_instances}")
    return settings


def to_plain(value: Any) -> Any:
    """Settings (or any part of them) as plain YAML data that load_settings reads back unchanged."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value
