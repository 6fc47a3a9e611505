"""The business's identity and texts: editors read and change them; channels show them.

    GET  /api/editor/persona   editor: configured values (tandem.yml), overrides, current texts
    PUT  /api/editor/persona   editor: {"greeting": "...", "name": "...", "refusal": null, ...}
                               (null returns a text to its configured value); 400 on bad input
    GET  /api/persona          public: the name and greeting the widget header shows

Overrides are stored in the shared database (core/persona.py), so the action server's replies,
the widget and Telegram all use a saved text within about a second, without retraining.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json as json_response

from core.auth import staff
from core.http import ApiError, read_json
from core.language import normalise_tag
from core.persona import EDITABLE, AsyncPersona, PersonaError, public_view
from core.settings import PLACEHOLDERS

bp = Blueprint("persona_api")
editors_only = staff("editor")
CORS = {"Access-Control-Allow-Origin": "*"}


def persona(request: Request) -> AsyncPersona:
    return request.app.ctx.persona


async def _view(request: Request) -> dict[str, Any]:
    source = persona(request)
    overrides = await source.overrides()
    current = source.defaults if not overrides else await source.current()
    return {
        "configured": dataclasses.asdict(source.defaults),
        "overrides": {k: v for k, v in overrides.items() if v is not None},
        "current": dataclasses.asdict(current),
        "rendered": {key: current.text(key) for key in EDITABLE},
        "editable": list(EDITABLE),
        "placeholders": ["{" + p + "}" for p in PLACEHOLDERS],
    }


@bp.get("/api/editor/persona")
@editors_only
async def get_persona(request: Request, me: Any) -> HTTPResponse:
    return json_response(await _view(request))


@bp.put("/api/editor/persona")
@editors_only
async def put_persona(request: Request, me: Any) -> HTTPResponse:
    changes = read_json(request, max_bytes=64 * 1024)
    try:
        await persona(request).save(changes, by=getattr(me, "username", ""))
    except PersonaError as exc:
        raise ApiError(400, str(exc)) from None
    return json_response(await _view(request))


@bp.get("/api/persona")
async def public_persona(request: Request) -> HTTPResponse:
    lang = normalise_tag(request.args.get("lang")) or "en"
    return json_response(public_view(await persona(request).current(), lang), headers=CORS)
