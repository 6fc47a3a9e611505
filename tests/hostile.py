"""Shared by the fuzz suite, the authorization table (tests/) and benchmarks/fuzz_long.py.

A "hostile" web process runs on its own database and var/ folder (it shares the session stack's
Rasa and action server, like the Telegram and scale-out tests do), so generated writes (FAQ
imports, deletions, presence, transfers) never change what other tests see.

Every route of the Sanic app has a rule in RULES; `app_routes()` reads the app's own route list,
so a route added without a rule fails tests/test_authorization.py.
"""
from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
from hypothesis import strategies as st

from core.settings import Settings

ROLES = ("anonymous", "customer", "agent", "supervisor", "editor", "manager")
STAFF = ("agent", "supervisor", "editor", "manager")
AGENTS = frozenset({"agent", "supervisor"})
EVERY_STAFF = frozenset(STAFF)
READERS = frozenset({"manager", "supervisor"})

# route -> who may use it. "public": anyone (pages, files, login, health); "customer": the
# conversation's own token; a frozenset: those staff roles; "telegram": the webhook secret only.
RULES: dict[str, Any] = {
    "POST /api/conversations": "public",
    "OPTIONS /widget/session": "public",
    "POST /widget/session": "public",
    "GET /widget/ws": "widget",
    "GET /demo": "public",
    "GET /api/agent/me": EVERY_STAFF,
    "POST /api/agent/logout": EVERY_STAFF,
    "GET /api/agent/cases": AGENTS,
    "POST /api/agent/login": "public",
    "GET /console": "public",
    "GET /api/agent/ws": "console",
    "GET /api/agent/canned": AGENTS,
    "POST /api/agent/canned": AGENTS,
    "GET /api/agent/tickets": AGENTS,
    "GET /api/agent/agents": AGENTS,
    "POST /api/agent/presence": AGENTS,
    "GET /api/editor/export": frozenset({"editor"}),
    "POST /api/editor/login": "public",
    "GET /api/editor/categories": frozenset({"editor"}),
    "GET /api/editor/gaps": frozenset({"editor"}),
    "GET /api/editor/faqs": frozenset({"editor"}),
    "POST /api/editor/faqs": frozenset({"editor"}),
    "GET /api/editor/suggestions": frozenset({"editor"}),
    "GET /editor": "public",
    "POST /api/editor/import": frozenset({"editor"}),
    "POST /api/editor/try": frozenset({"editor"}),
    "GET /telegram/status": "public",
    "POST /telegram/webhook": "telegram",
    "GET /health": "public",
    "GET /api/conversations/<conversation_id:str>/messages": "customer",
    "POST /api/conversations/<conversation_id:str>/messages": "customer",
    "GET /widget/<name:str>": "public",
    "GET /api/agent/cases/<case_id:int>": AGENTS,
    "POST /api/agent/cases/<case_id:int>/claim": AGENTS,
    "POST /api/agent/cases/<case_id:int>/messages": AGENTS,
    "POST /api/agent/cases/<case_id:int>/close": AGENTS,
    "GET /console/static/<name:str>": "public",
    "GET /api/agent/cases/<case_id:int>/context": AGENTS,
    "PUT /api/agent/agents/<account_id:int>": frozenset({"supervisor"}),
    "POST /api/agent/cases/<case_id:int>/transfer": AGENTS,
    "GET /api/agent/cases/<case_id:int>/suggestions": AGENTS,
    "POST /api/agent/tickets/<ticket_id:int>/close": AGENTS,
    "GET /api/agent/cases/<case_id:int>/notes": AGENTS,
    "POST /api/agent/cases/<case_id:int>/notes": AGENTS,
    "DELETE /api/agent/canned/<canned_id:int>": frozenset({"supervisor"}),
    "POST /api/agent/tickets/<ticket_id:int>/reply": AGENTS,
    "GET /api/agent/tickets/<ticket_id:int>": AGENTS,
    "POST /api/agent/cases/<case_id:int>/takeover": frozenset({"supervisor"}),
    "GET /api/editor/faqs/<faq_id:str>/history": frozenset({"editor"}),
    "GET /api/editor/faqs/<faq_id:str>": frozenset({"editor"}),
    "DELETE /api/editor/faqs/<faq_id:str>": frozenset({"editor"}),
    "PUT /api/editor/faqs/<faq_id:str>": frozenset({"editor"}),
    "GET /api/editor/faqs/<faq_id:str>/diff": frozenset({"editor"}),
    "POST /api/editor/faqs/<faq_id:str>/rollback": frozenset({"editor"}),
    "GET /editor/<name:str>": "public",
    "GET /api/editor/calibration": frozenset({"editor"}),
    "GET /api/editor/persona": frozenset({"editor"}),
    "PUT /api/editor/persona": frozenset({"editor"}),
    "GET /api/persona": "public",
    # managers' door (reports/api.py): readers are managers and supervisors
    "GET /reports": "public",
    "GET /reports/<name:str>": "public",
    "GET /api/reports/options": READERS,
    "GET /api/reports/summary": READERS,
    "GET /api/reports/csv/<name:str>": READERS,
    "GET /api/reports/charts/<name:str>": READERS,
    "GET /api/reports/gaps": READERS,
    "POST /api/conversations/<conversation_id:str>/rating": "customer",
    "GET /api/reports/qa/rubric": frozenset({"manager", "supervisor", "agent"}),
    "PUT /api/reports/qa/rubric": frozenset({"manager"}),
    "POST /api/reports/qa/sample": READERS,
    "GET /api/reports/qa/queue": READERS,
    "GET /api/reports/qa/reviews/<review_id:int>": READERS,
    "POST /api/reports/qa/reviews/<review_id:int>": frozenset({"supervisor"}),
    "GET /api/reports/qa/mine": AGENTS,
    "GET /api/reports/mine": AGENTS,
    # customers and case care (customers/api.py, handoff/care_api.py; issue 12)
    "GET /api/agent/cases/<case_id:int>/customer": AGENTS,
    "GET /api/agent/customers": AGENTS,
    "GET /api/agent/customers/<customer_id:int>": AGENTS,
    "PUT /api/agent/customers/<customer_id:int>": AGENTS,
    "POST /api/agent/customers/merge": AGENTS,
    "GET /api/agent/customers/<customer_id:int>/export": frozenset({"supervisor"}),
    "POST /api/agent/customers/<customer_id:int>/erase": frozenset({"supervisor"}),
    "GET /api/agent/sla": AGENTS,
    "GET /api/agent/followups": AGENTS,
    "POST /api/agent/cases/<case_id:int>/followup": AGENTS,
    "POST /api/agent/followups/<followup_id:int>/cancel": AGENTS,
}
WEBSOCKETS = {"GET /widget/ws", "GET /api/agent/ws"}
PARAM = re.compile(r"<(\w+):(\w+)>")


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # Sanic's pattern, with a leading slash: /api/agent/cases/<case_id:int>
    websocket: bool

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def params(self) -> list[tuple[str, str]]:
        return PARAM.findall(self.path)


def app_routes(settings: Settings) -> list[Route]:
    """Every (method, path) the real app serves, read from its own router."""
    from server.app import create_app

    app = create_app(settings)
    found = []
    for route in app.router.routes:
        for method in sorted(route.methods):
            found.append(Route(method, "/" + route.path, bool(getattr(route.ctx, "websocket", False))))
    return sorted(set(found), key=lambda r: r.key)


@dataclass
class Credentials:
    """One token per role on the hostile web process, plus real ids to put in paths."""

    base_url: str
    staff_tokens: dict[str, str]
    customer_token: str
    conversation_id: str
    widget_token: str
    ids: dict[str, Any] = field(default_factory=dict)
    passwords: dict[str, tuple[str, str]] = field(default_factory=dict)

    def headers(self, role: str) -> dict[str, str]:
        if role == "anonymous":
            return {}
        token = self.customer_token if role == "customer" else self.staff_tokens[role]
        return {"Authorization": f"Bearer {token}"}

    def fresh_headers(self, http: httpx.Client, role: str) -> dict[str, str]:
        """A new session of `role` (for logout, which ends the one it is given)."""
        if role not in STAFF:
            return self.headers(role)
        username, password = self.passwords[role]
        token = http.post("/api/agent/login", json={"username": username, "password": password}).json()["token"]
        return {"Authorization": f"Bearer {token}"}


async def _create_accounts(settings: Settings) -> dict[str, tuple[str, str]]:
    from core.db import async_engine
    from handoff.accounts import Accounts

    engine = async_engine(settings)
    try:
        accounts = Accounts(engine, settings.agent_session_hours)
        made = {}
        for role in STAFF:
            username, password = f"fuzz-{role}", f"fuzz-{role}-password"
            await accounts.create(username, password, role, f"Fuzz {role.title()}")
            made[role] = (username, password)
        return made
    finally:
        await engine.dispose()


def prepare_accounts(settings: Settings) -> dict[str, tuple[str, str]]:
    return asyncio.run(_create_accounts(settings))


def credentials(http: httpx.Client, passwords: dict[str, tuple[str, str]]) -> Credentials:
    """Log every role in and make the real objects whose ids the paths need."""
    tokens = {}
    for role, (username, password) in passwords.items():
        response = http.post("/api/agent/login", json={"username": username, "password": password})
        assert response.status_code == 200, response.text
        tokens[role] = response.json()["token"]
    conversation = http.post("/api/conversations").json()
    widget = http.post("/widget/session", json={"site_key": "demo"}).json()
    auth = {"Authorization": f"Bearer {conversation['token']}"}
    http.post(f"/api/conversations/{conversation['conversation_id']}/messages", json={"text": "I want to talk to a person"}, headers=auth)
    agent = {"Authorization": f"Bearer {tokens['agent']}"}
    cases = http.get("/api/agent/cases", params={"status": "open"}, headers=agent).json()["cases"]
    case_id = next((c["id"] for c in cases if c["conversation_id"] == conversation["conversation_id"]), 1)
    me = http.get("/api/agent/me", headers=agent).json()["account"]["id"]
    canned = http.post("/api/agent/canned", json={"title": "t", "text": "x"}, headers=agent).json()["canned"]["id"]
    editor = {"Authorization": f"Bearer {tokens['editor']}"}
    faq = http.get("/api/editor/faqs", params={"limit": 1}, headers=editor).json()["faqs"][0]["id"]
    return Credentials(
        str(http.base_url), tokens, conversation["token"], conversation["conversation_id"], widget["token"],
        ids={"case_id": case_id, "account_id": me, "canned_id": canned, "ticket_id": 1, "review_id": 1, "faq_id": faq,
             "customer_id": 1, "followup_id": 1,
             "conversation_id": conversation["conversation_id"]},
        passwords=passwords,
    )


def real_path(route: Route, creds: Credentials, name_files: dict[str, str] | None = None) -> str:
    files = name_files or {"/widget/": "tandem-widget.js", "/console/": "console.js", "/editor/": "editor.js",
                           "/reports/": "reports.js", "/api/reports/csv/": "containment", "/api/reports/charts/": "containment"}

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "name":
            return next(v for k, v in files.items() if route.path.startswith(k))
        return quote(str(creds.ids[name]), safe="")

    return PARAM.sub(value, route.path)


# -- generated input -----------------------------------------------------------------------------
FIELDS = ("text", "payload", "name", "username", "password", "site_key", "token", "resolution", "status", "teams",
          "capacity", "agent_id", "team", "note", "title", "version", "expected_version", "entry", "question", "answer",
          "category", "id", "paraphrases", "tags", "type", "ref", "typing", "message_id", "helpful", "update_id", "message")
QUERY_KEYS = ("after", "status", "format", "apply", "q", "limit", "offset", "category", "threshold", "examples", "from", "to",
              "expected_version", "token", "page")
HUGE = st.sampled_from([2**31, 2**63 - 1, 2**63, -(2**63) - 1, 10**30, -1, 0, 2**53 + 1])
INTS = st.one_of(st.integers(min_value=-5, max_value=5), HUGE, st.integers())
NASTY_TEXT = st.sampled_from([
    "", " ", "\x00", "\ud800", "\udfff x", "\u202egnp.exe", "%", "_", "%%", "\\", "'; DROP TABLE faqs; --", "../../etc/passwd",
    "<svg/onload=alert(1)>", '"><svg/onload=alert(1)>@e.com', "=HYPERLINK(\"x\")", "x" * 5000, "é" * 300, "😀" * 100,
    "1e400", "NaN", "-0", "0x10", "demo", "online", "resolved", "csv", "yaml", "1", "true",
])
TEXT = st.one_of(NASTY_TEXT, st.text(max_size=60), st.text(alphabet=st.characters(codec="utf-8"), max_size=30))
SCALARS = st.one_of(st.none(), st.booleans(), INTS, st.floats(allow_nan=True, allow_infinity=True), TEXT)
JSON_VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(TEXT, inner, max_size=4)), max_leaves=12)


def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


BODIES = st.one_of(
    st.dictionaries(st.sampled_from(FIELDS), JSON_VALUES, max_size=6).map(lambda d: json.dumps(d).encode()),
    JSON_VALUES.map(lambda v: json.dumps(v).encode()),
    st.sampled_from([b"", b"{", b"{not json", b"\xff\xfe\xfd", b"null", b"[]", b'{"text": 1e400}', b'{"text": "\\ud800"}',
                     b'{"version": 1e400}', b'{"agent_id": 99999999999999999999999}', b'{"a": NaN}', b"1" * 5000,
                     _deep(50_000).encode(), ('{"text": ' * 40 + "1" + "}" * 40).encode()]),
    st.binary(max_size=200),
)
TOKENS = st.one_of(st.sampled_from(["", "nonsense", "é.x", "a.b.c", "x" * 600, "Bearer", "0" * 64 + "." + "0" * 32]),
                   st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=80))
RAW_HEADER = st.one_of(st.binary(min_size=1, max_size=40).filter(lambda b: b"\r" not in b and b"\n" not in b and b"\x00" not in b),
                       st.sampled_from([b"\xff\xfe", "é".encode(), b"Bearer \xc3\xa9", b"Bearer \xff"]))
PATH_STRINGS = st.one_of(TEXT, st.binary(max_size=12).map(lambda b: "".join(f"%{x:02X}" for x in b)),
                         st.sampled_from(["..", ".", "%2e%2e", "%ED%A0%80", "%00", "%FF", "..%2f..%2fetc%2fpasswd"]))


@dataclass
class Attempt:
    method: str
    url: str
    headers: dict[str, Any]
    body: bytes

    def describe(self) -> str:
        return f"{self.method} {self.url} headers={self.headers!r} body={self.body[:300]!r}"


def draw_attempt(data: Any, route: Route, creds: Credentials, http: httpx.Client) -> Attempt:
    """One generated request for `route`: a role's credentials (or junk), ids, args and a body."""
    role = data.draw(st.sampled_from(ROLES), label="role")
    real = data.draw(st.booleans(), label="real ids")

    def param(match: re.Match[str]) -> str:
        name, kind = match.groups()
        if kind == "int":
            return str(data.draw(INTS, label=name))
        raw = data.draw(PATH_STRINGS, label=name)
        if has_surrogate(raw):
            return "%ED%A0%80" + quote(raw.encode("utf-8", "surrogatepass").hex())  # the bytes of a lone surrogate
        return raw if "%" in raw else quote(raw, safe="")

    if not route.params:
        path = route.path
    else:
        path = real_path(route, creds) if real else PARAM.sub(param, route.path)
    args = data.draw(st.dictionaries(st.sampled_from(QUERY_KEYS), st.one_of(TEXT, INTS.map(str)), max_size=3), label="query")
    query = "&".join(f"{quote(k)}={quote(v, safe='') if not has_surrogate(v) else '%ED%A0%80'}" for k, v in args.items())
    if route.key == "POST /api/agent/logout":
        headers: dict[str, Any] = creds.fresh_headers(http, role)
    else:
        headers = creds.headers(role)
    mangle = data.draw(st.sampled_from(["keep", "token", "raw", "drop"]), label="auth")
    if mangle == "token":
        headers = {"Authorization": "Bearer " + data.draw(TOKENS, label="token")}
    elif mangle == "raw":
        headers = {"Authorization": data.draw(RAW_HEADER, label="raw authorization")}
    elif mangle == "drop":
        headers = {}
    if route.key == "POST /telegram/webhook" and data.draw(st.booleans(), label="secret header"):
        headers["X-Telegram-Bot-Api-Secret-Token"] = data.draw(RAW_HEADER, label="secret")
    if data.draw(st.booleans(), label="content type"):
        headers["Content-Type"] = data.draw(st.sampled_from(["application/json", "text/plain", "multipart/form-data", "x/\xff"]))
    body = data.draw(BODIES, label="body") if route.method in ("POST", "PUT", "DELETE") else b""
    return Attempt(route.method, path + (f"?{query}" if query else ""), headers, body)


def has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _wire(value: str | bytes) -> bytes:
    """What HTTP/1.1 can carry in a header value: no control bytes, no surrounding blanks (the
    client library refuses those itself); bytes >= 0x80 (non-ASCII, non-UTF-8) stay."""
    raw = value.encode("latin-1", "replace") if isinstance(value, str) else value
    return bytes(b for b in raw if b >= 0x20 and b != 0x7F).strip() or b"x"


def send(http: httpx.Client, attempt: Attempt) -> httpx.Response:
    headers = {k: _wire(v) for k, v in attempt.headers.items()}
    return http.request(attempt.method, attempt.url, headers=headers, content=attempt.body)


@dataclass
class Tally:
    """What a fuzz run saw: status counts and every request answered >= 500."""

    statuses: Counter[int] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    frames: int = 0
    frame_failures: list[str] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())


# -- websocket frames --------------------------------------------------------------------------
FRAMES = st.one_of(
    st.dictionaries(st.sampled_from(FIELDS), JSON_VALUES, max_size=5).map(json.dumps),
    st.fixed_dictionaries({"type": st.sampled_from(["message", "button", "typing", "feedback", "ping", "presence", "auth", "x"])},
                          optional={k: JSON_VALUES for k in ("text", "payload", "title", "typing", "message_id", "helpful",
                                                              "case_id", "status", "ref", "token")}).map(json.dumps),
    JSON_VALUES.map(json.dumps),
    st.sampled_from([_deep(100_000), '{"type": "message", "text": "\\ud800"}', '{"type": "feedback", "message_id": 1e400, "helpful": true}',
                     '{"type": "typing", "case_id": 99999999999999999999}', "{", "", "null"]),
    st.text(max_size=80),
    st.binary(max_size=80),
)
GENERIC_FAILURE = "something went wrong on our side"
