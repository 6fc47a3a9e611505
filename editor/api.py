"""The editors' HTTP API and page: manage the FAQ entries the bot answers from.

    POST   /api/editor/login                      {username, password} (editor accounts only)
    GET    /api/editor/faqs?status=&category=&q=&limit=&offset=   list with served/feedback counts
    POST   /api/editor/faqs                       create (id optional: made from category+question)
    GET    /api/editor/faqs/<id>                  one entry
    PUT    /api/editor/faqs/<id>                  {..., expected_version} -> 409 if it changed meanwhile
    DELETE /api/editor/faqs/<id>?expected_version=
    GET    /api/editor/faqs/<id>/history          every version, who and when
    GET    /api/editor/faqs/<id>/diff?from=&to=   field-by-field diff of two versions
    POST   /api/editor/faqs/<id>/rollback         {version}
    GET    /api/editor/categories
    POST   /api/editor/import?format=csv|yaml&apply=0|1[&encoding=auto|utf-8|gb18030]   raw file body; all or nothing
    GET    /api/editor/export?format=csv|yaml
    POST   /api/editor/try                        {text, entry?}: top 5 + answer/clarify/miss (the bot's rule)
    GET    /api/editor/calibration                the knowledge base's self-calibration, in words
    GET    /api/editor/gaps?threshold=&examples=  unanswered questions grouped by meaning
    GET    /api/editor/suggestions                draft entries from agents' answers
    GET    /editor                                the editor page (static files in static/editor)

Every endpoint but login needs an editor's bearer token. The store and the embedder are
synchronous, so every call into them runs in a worker thread.
"""
from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json, text

from core.auth import staff
from core.pages import SCRIPT, STYLE, StaffPage
from core.http import MAX_INT, ApiError, read_json
from core.ratelimit import client_address, limiter
from editor import importing
from knowledge.models import encode_query, score_stretch
from knowledge.scoring import stretch
from knowledge.base import KnowledgeBase, Match
from knowledge.decision import Thresholds, decide
from editor.diff import diff_snapshots
from editor.gaps import knowledge_gaps
from knowledge.store import STATUSES, Faq, FaqStore, NotFound, StoreError, VersionConflict, validate
from editor.suggestions import suggestions
from editor.usage import usage_by_faq

bp = Blueprint("editor_api")
PAGE = StaffPage(Path(__file__).resolve().parent / "static" / "editor", "editor.html", {"editor.js": SCRIPT, "editor.css": STYLE}, "editor")
editors_only = staff("editor")


async def _kb(request: Request) -> KnowledgeBase:
    await request.app.ctx.knowledge_ready
    return request.app.ctx.knowledge


async def _store(request: Request) -> FaqStore:
    return (await _kb(request)).store


def _engine(store: FaqStore) -> sa.engine.Engine:
    return store.engine


def _store_error(exc: StoreError) -> ApiError:
    if isinstance(exc, NotFound):
        return ApiError(404, str(exc))
    return ApiError(400, str(exc))


def _version_arg(value: Any, name: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: {"version": 1e400}
        raise ApiError(400, f"'{name}' must be a whole number") from None
    if not 0 <= number <= MAX_INT:
        raise ApiError(400, f"'{name}' must be a whole number from 0 to {MAX_INT}")
    return number


def _conflict(faq_id: str, exc: VersionConflict, current: Faq | None) -> HTTPResponse:
    who = f" by {current.updated_by} at {time.strftime('%H:%M:%S', time.localtime(current.updated_at))}" if current else ""
    message = (
        f"Not saved: this entry was changed{who} while you were editing it ({exc}). "
        "Reload it to see their version, then apply your change again."
    )
    return json({"error": message, "status": 409, "current": current.to_dict() if current else None}, status=409)


# -- login ----------------------------------------------------------------------------------
@bp.post("/api/editor/login")
async def login(request: Request) -> HTTPResponse:
    """Same accounts and sessions as /api/agent/login, but only editors get in here."""
    data = read_json(request)
    username, password = data.get("username"), data.get("password")
    if not isinstance(username, str) or not isinstance(password, str):
        raise ApiError(400, "'username' and 'password' are required")
    accounts = request.app.ctx.accounts
    rates = limiter(request)  # the same buckets as /api/agent/login: one door, one count
    checks = rates.login(username, client_address(request))
    await rates.enforce("login attempts", *checks)
    try:
        token, account, expires = await accounts.login(username, password)
    except Exception as exc:
        if type(exc).__name__ == "AuthError":
            raise ApiError(401, str(exc)) from None
        raise
    await rates.refund(*checks)
    if account.role != "editor":
        await accounts.logout(token)
        raise ApiError(403, f"a {account.role} account cannot edit the knowledge base")
    return json({"token": token, "expires_at": expires, "account": account.__dict__})


# -- entries --------------------------------------------------------------------------------
@bp.get("/api/editor/faqs")
@editors_only
async def list_faqs(request: Request, me: Any) -> HTTPResponse:
    status = request.args.get("status") or None
    if status and status not in STATUSES:
        raise ApiError(400, f"status must be one of {', '.join(STATUSES)}")
    limit = _version_arg(request.args.get("limit"), "limit") or 200
    offset = _version_arg(request.args.get("offset"), "offset") or 0
    if not 1 <= limit <= 1000 or offset < 0:
        raise ApiError(400, "limit must be 1..1000 and offset >= 0")
    store = await _store(request)
    found = await asyncio.to_thread(
        store.list, status=status, category=request.args.get("category") or None, search=request.args.get("q") or None
    )
    usage = await asyncio.to_thread(usage_by_faq, _engine(store))
    page = found[offset : offset + limit]
    items = [{**f.to_dict(), "usage": usage[f.id].to_dict() if f.id in usage else {"served": 0, "helpful": 0, "unhelpful": 0}} for f in page]
    return json({"faqs": items, "total": len(found), "offset": offset, "limit": limit})


@bp.get("/api/editor/categories")
@editors_only
async def categories(request: Request, me: Any) -> HTTPResponse:
    store = await _store(request)
    return json({"categories": await asyncio.to_thread(store.categories)})


@bp.post("/api/editor/faqs")
@editors_only
async def create_faq(request: Request, me: Any) -> HTTPResponse:
    data = read_json(request)
    if not data.get("id") and isinstance(data.get("question"), str) and isinstance(data.get("category"), str):
        data["id"] = f"{importing.slug(data['category'], 30)}-{importing.slug(data['question'])}"
    store = await _store(request)
    try:
        faq = await asyncio.to_thread(store.create, data, me.username)
    except StoreError as exc:
        raise ApiError(409 if "already exists" in str(exc) else 400, str(exc)) from None
    return json({"faq": faq.to_dict()}, status=201)


@bp.get("/api/editor/faqs/<faq_id:str>")
@editors_only
async def show_faq(request: Request, faq_id: str, me: Any) -> HTTPResponse:
    store = await _store(request)
    try:
        return json({"faq": (await asyncio.to_thread(store.get, faq_id)).to_dict()})
    except StoreError as exc:
        raise _store_error(exc) from None


@bp.put("/api/editor/faqs/<faq_id:str>")
@editors_only
async def update_faq(request: Request, faq_id: str, me: Any) -> HTTPResponse:
    data = read_json(request)
    expected = _version_arg(data.pop("expected_version", None), "expected_version")
    if expected is None:
        raise ApiError(400, "'expected_version' is required: the version you loaded, so nobody's change is overwritten")
    store = await _store(request)
    try:
        faq = await asyncio.to_thread(store.update, faq_id, data, me.username, expected)
    except VersionConflict as exc:
        current = await asyncio.to_thread(store.get, faq_id, True)
        return _conflict(faq_id, exc, current)
    except StoreError as exc:
        raise _store_error(exc) from None
    return json({"faq": faq.to_dict()})


@bp.delete("/api/editor/faqs/<faq_id:str>")
@editors_only
async def delete_faq(request: Request, faq_id: str, me: Any) -> HTTPResponse:
    expected = _version_arg(request.args.get("expected_version"), "expected_version")
    store = await _store(request)
    try:
        await asyncio.to_thread(store.delete, faq_id, me.username, expected)
    except VersionConflict as exc:
        return _conflict(faq_id, exc, await asyncio.to_thread(store.get, faq_id, True))
    except StoreError as exc:
        raise _store_error(exc) from None
    return json({"ok": True, "deleted": faq_id})


@bp.get("/api/editor/faqs/<faq_id:str>/history")
@editors_only
async def history(request: Request, faq_id: str, me: Any) -> HTTPResponse:
    store = await _store(request)
    try:
        versions = await asyncio.to_thread(store.history, faq_id)
    except StoreError as exc:
        raise _store_error(exc) from None
    return json({"faq_id": faq_id, "versions": versions})


@bp.get("/api/editor/faqs/<faq_id:str>/diff")
@editors_only
async def diff(request: Request, faq_id: str, me: Any) -> HTTPResponse:
    old_v = _version_arg(request.args.get("from"), "from")
    new_v = _version_arg(request.args.get("to"), "to")
    if old_v is None or new_v is None:
        raise ApiError(400, "'from' and 'to' versions are required")
    store = await _store(request)
    try:
        old = await asyncio.to_thread(store.version, faq_id, old_v)
        new = await asyncio.to_thread(store.version, faq_id, new_v)
    except StoreError as exc:
        raise _store_error(exc) from None
    return json({"faq_id": faq_id, "from": old_v, "to": new_v, "changes": diff_snapshots(old["snapshot"], new["snapshot"])})


@bp.post("/api/editor/faqs/<faq_id:str>/rollback")
@editors_only
async def rollback(request: Request, faq_id: str, me: Any) -> HTTPResponse:
    data = read_json(request)
    version = _version_arg(data.get("version"), "version")
    if version is None:
        raise ApiError(400, "'version' (the version to return to) is required")
    store = await _store(request)
    try:
        faq = await asyncio.to_thread(store.rollback, faq_id, version, me.username)
    except StoreError as exc:
        raise _store_error(exc) from None
    return json({"faq": faq.to_dict()})


# -- bulk -----------------------------------------------------------------------------------
@bp.post("/api/editor/import")
@editors_only
async def import_file(request: Request, me: Any) -> HTTPResponse:
    """Check a CSV/YAML file; with apply=1 and no errors, write it in one transaction."""
    fmt = request.args.get("format", "csv")
    if fmt not in importing.FORMATS:
        raise ApiError(400, f"format must be one of {', '.join(importing.FORMATS)}")
    encoding = (request.args.get("encoding") or "auto").lower().replace("_", "-")
    encoding = {"utf8": "utf-8", "utf-8-sig": "utf-8", "gbk": "gb18030", "gb2312": "gb18030"}.get(encoding, encoding)
    if encoding not in importing.ENCODINGS:
        raise ApiError(400, f"encoding must be one of {', '.join(importing.ENCODINGS)} (gbk and gb2312 are read as gb18030)")
    body = request.body or b""
    report = await asyncio.to_thread(importing.parse, body, fmt, encoding)
    result = report.to_dict()
    if len(body) > importing.MAX_IMPORT_BYTES:
        return json({**result, "error": report.errors[0].message, "status": 413}, status=413)
    if not report.ok:
        return json({**result, "error": f"nothing imported: {len(report.errors)} problem(s) in the file", "status": 422}, status=422)
    if request.args.get("apply") not in ("1", "true", "yes"):
        return json({**result, "applied": 0, "checked": True})
    store = await _store(request)
    try:
        applied = await asyncio.to_thread(store.upsert_many, report.entries, me.username)
    except StoreError as exc:
        raise ApiError(400, f"nothing imported: {exc}") from None
    return json({**result, "applied": applied})


@bp.get("/api/editor/export")
@editors_only
async def export_file(request: Request, me: Any) -> HTTPResponse:
    fmt = request.args.get("format", "csv")
    if fmt not in importing.FORMATS:
        raise ApiError(400, f"format must be one of {', '.join(importing.FORMATS)}")
    store = await _store(request)
    entries = await asyncio.to_thread(store.list, status=request.args.get("status") or None)
    body = await asyncio.to_thread(importing.export_csv if fmt == "csv" else importing.export_yaml, entries)
    mime = "text/csv; charset=utf-8" if fmt == "csv" else "application/yaml; charset=utf-8"
    return text(body, content_type=mime, headers={"Content-Disposition": f'attachment; filename="faqs.{fmt}"'})


# -- try a question -------------------------------------------------------------------------
def _with_entry(kb: KnowledgeBase, question: str, entry: dict[str, Any] | None) -> tuple[list[Match], bool]:
    """Top 5 for the question; if the editor is writing an entry, score it as if it were live."""
    kb.refresh(force=True)
    vector = encode_query(kb.embedder, question)
    matches = kb.search_vector(vector, 6)
    if entry is None:
        return matches[:5], False
    texts = [t for t in [entry["question"], *entry["paraphrases"]] if t.strip()]
    vectors = kb.embedder.encode(texts)
    scores = stretch(vectors @ vector, score_stretch(kb.encoder_name))  # the scale search_vector reports
    best = int(np.argmax(scores))
    own = Match(entry["id"], float(scores[best]), entry["question"], entry["answer"], entry["category"], texts[best])
    # As the bot will answer right after the publish: by cosine, until the knowledge base's head is
    # retrained with this entry (knowledge/entry_head.py), so no re-ranking here.
    merged = [dataclasses.replace(m, rank_score=None) for m in matches if m.faq_id != entry["id"]] + [own]
    return sorted(merged, key=lambda m: m.rank, reverse=True)[:5], True


@bp.post("/api/editor/try")
@editors_only
async def try_question(request: Request, me: Any) -> HTTPResponse:
    data = read_json(request)
    question = data.get("text")
    if not isinstance(question, str) or not question.strip() or len(question) > 2000:
        raise ApiError(400, "'text' must be a customer question of 1 to 2,000 characters")
    entry = data.get("entry")
    if entry is not None:
        if not isinstance(entry, dict):
            raise ApiError(400, "'entry' must be an object (the entry being edited)")
        try:
            given = {k: v for k, v in entry.items() if v not in ("", None, [])}
            entry = validate({"id": "unsaved-entry", "category": "draft", "answer": "(no answer yet)", **given})
        except StoreError as exc:
            raise ApiError(400, f"entry: {exc}") from None
    kb = await _kb(request)
    matches, with_entry = await asyncio.to_thread(_with_entry, kb, question.strip(), entry)
    calibration = await asyncio.to_thread(kb.calibration)
    th = Thresholds.from_settings(request.app.ctx.settings, calibration)
    decision = decide(matches, th)  # exactly the bot's rule (actions/policy.py calls the same function)
    return json({
        "text": question.strip(),
        "matches": [{**m.__dict__, "score": round(m.score, 4),
                     "rank_score": None if m.rank_score is None else round(m.rank_score, 4), "editing": with_entry and m.faq_id == entry["id"]} for m in matches],
        "decision": decision.to_dict(),
        "threshold": th.faq_threshold,
        "clarify_margin": th.clarify_margin,
        "thresholds": th.to_dict(),
        "calibration": calibration.to_dict() if calibration else None,
    })


@bp.get("/api/editor/calibration")
@editors_only
async def calibration(request: Request, me: Any) -> HTTPResponse:
    """What the knowledge base's own paraphrases and Tandem's off-topic set say about its thresholds."""
    kb = await _kb(request)
    found = await asyncio.to_thread(kb.calibration)
    th = Thresholds.from_settings(request.app.ctx.settings, found)
    # Pending until the calibration covers what is published, not only what this process has
    # indexed so far (a big import takes this process a while to embed).
    published = await asyncio.to_thread(kb.store.revision)
    pending = found is None or found.revision < max(kb.index.revision, published)
    head = kb.head()
    adaptation = await asyncio.to_thread(kb.adaptation_state)
    return json({"calibration": found.to_dict() if found else None, "thresholds": th.to_dict(),
                 "adaptation": adaptation,
                 "revision": kb.index.revision, "pending": pending,
                 "head": None if head is None else {"revision": head.revision, "entries": len(head.entries),
                                                    "seconds": round(head.seconds, 2)},
                 "head_pending": kb.head_pending(),
                 "mode": request.app.ctx.settings.faq_calibration})


# -- learning from what the bot missed --------------------------------------------------------
@bp.get("/api/editor/gaps")
@editors_only
async def gaps(request: Request, me: Any) -> HTTPResponse:
    try:
        threshold = float(request.args.get("threshold", 0.7))
    except ValueError:
        raise ApiError(400, "'threshold' must be a number between 0 and 1") from None
    if not 0 < threshold <= 1:
        raise ApiError(400, "'threshold' must be a number between 0 and 1")
    show = _version_arg(request.args.get("examples"), "examples") or 5
    if not 1 <= show <= 50:
        raise ApiError(400, "'examples' (per group) must be 1..50")
    kb = await _kb(request)
    factor = score_stretch(kb.encoder_name)
    raw = threshold if factor == 1.0 else 1 - (1 - threshold) / factor  # the common scale -> this encoder's cosine
    found = await asyncio.to_thread(knowledge_gaps, _engine(kb.store), kb.embedder.encode, raw)
    return json({"gaps": [g.to_dict(show) for g in found], "threshold": threshold})


@bp.get("/api/editor/suggestions")
@editors_only
async def list_suggestions(request: Request, me: Any) -> HTTPResponse:
    store = await _store(request)
    entries = await asyncio.to_thread(store.list)
    used = {tag for faq in entries for tag in faq.tags}
    found = await asyncio.to_thread(suggestions, _engine(store), used)
    return json({"suggestions": [s.to_dict() for s in found]})


# -- the page -------------------------------------------------------------------------------
@bp.get("/editor")
async def page(request: Request) -> HTTPResponse:
    return await PAGE.html()


@bp.get("/editor/<name:str>")
async def page_file(request: Request, name: str) -> HTTPResponse:
    return await PAGE.asset(name)
