"""Tandem's web process: one Sanic app made of the rooms' blueprints.

The app only composes: blueprints from each audience's room, the error handler, the security
headers, and the typed services of server/services.py, built once before the server starts
and handed to the blueprints on `app.ctx` (each under the name its room reads).
"""
from __future__ import annotations

import asyncio
import itertools
import logging

from sanic import Request, Sanic
from sanic.response import HTTPResponse, json

from bot.channels import rest, telegram
from bot.channels import widget as widget_channel
from core.http import install_error_handler
from core.security import install_security_headers
from core.settings import Settings
from editor import api as editor_api
from editor import persona_api
from handoff import api as agent_api
from handoff import care_api, console_ws, customers_api
from privacy import api as privacy_api
from reports import api as reports_api
from server import services as composition
from server.schema import create_schema

_app_numbers = itertools.count(1)


def create_app(settings: Settings) -> Sanic:
    app = Sanic(f"tandem_{next(_app_numbers)}")
    app.config.REQUEST_MAX_SIZE = 16 * 1024 * 1024
    app.config.KEEP_ALIVE_TIMEOUT = 30
    if settings.proxies_count > 0:  # client addresses (throttling) from X-Forwarded-For
        app.config.PROXIES_COUNT = settings.proxies_count
    app.ctx.settings = settings
    app.ctx.log = logging.getLogger("tandem.web")
    install_error_handler(app)
    install_security_headers(app, widget_channel.STATIC / "demo.html")
    for blueprint in (rest.bp, widget_channel.bp, telegram.bp, agent_api.bp, console_ws.bp, customers_api.bp, care_api.bp,
                      privacy_api.bp, editor_api.bp, reports_api.bp, persona_api.bp):
        app.blueprint(blueprint)

    @app.before_server_start
    async def open_services(app: Sanic, _loop: asyncio.AbstractEventLoop) -> None:
        await asyncio.to_thread(create_schema, settings)
        await asyncio.to_thread(settings.secret)
        services = await composition.build(settings)
        app.ctx.services = services
        for name, service in services.names().items():
            setattr(app.ctx, name, service)

    @app.after_server_start
    async def start_services(app: Sanic, _loop: asyncio.AbstractEventLoop) -> None:
        await app.ctx.services.start()
        app.ctx.telegram = app.ctx.services.telegram

    @app.before_server_stop
    async def close_services(app: Sanic, _loop: asyncio.AbstractEventLoop) -> None:
        await app.ctx.services.close()

    @app.get("/health")
    async def health(request: Request) -> HTTPResponse:
        return json({"ok": True, "rasa": await request.app.ctx.rasa.ready()})

    return app
