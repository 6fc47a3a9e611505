"""Tandem's web process: one Sanic app made of blueprints (customer channels, agent API).

Everything the handlers need hangs off `app.ctx`, built in one place here from the settings.
"""
from __future__ import annotations

import asyncio
import itertools
import logging

from sanic import Request, Sanic
from sanic.response import HTTPResponse, json

from bot import persona_api
from bot.channels import rest, telegram
from bot.channels import widget as widget_channel
from bot.conversations import ConversationStore
from bot.rasa_client import RasaClient
from bot.router import Router
from core.bus import make_bus
from core.db import async_engine, create_schema, sync_engine
from core.eventlog import EventLog
from core.persona import AsyncPersona
from core.http import install_error_handler
from core.ratelimit import RateLimiter, make_store
from core.security import install_security_headers
from core.settings import Settings
from handoff import api as agent_api
from handoff import care_api, console_ws, timer_loop
from handoff.accounts import Accounts
from handoff.queue import CaseQueue
from knowledge import editor_api
from knowledge.base import KnowledgeBase
from knowledge.store import FaqStore
from customers import api as customers_api
from reports import api as reports_api

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
    app.blueprint(rest.bp)
    app.blueprint(widget_channel.bp)
    app.blueprint(agent_api.bp)
    app.blueprint(console_ws.bp)
    app.blueprint(editor_api.bp)
    app.blueprint(reports_api.bp)
    app.blueprint(persona_api.bp)
    app.blueprint(customers_api.bp)  # customers, merges, data rights (docs/customers.md)
    app.blueprint(care_api.bp)  # SLA timers and follow-ups (docs/agents.md)
    timer_loop.install(app)  # reassignment, SLA breaches, follow-ups, mail, retention
    telegram.install(app)  # webhook route + start/stop with the server when a token is set

    @app.before_server_start
    async def open_resources(app: Sanic, _loop: asyncio.AbstractEventLoop) -> None:
        await asyncio.to_thread(create_schema, settings)
        await asyncio.to_thread(settings.secret)
        engine = async_engine(settings)
        app.ctx.engine = engine
        app.ctx.persona = AsyncPersona(engine, settings.business)  # the business's texts + editors' overrides
        app.ctx.bus = make_bus(settings.redis_url)
        await app.ctx.bus.start()
        app.ctx.rasa = RasaClient(
            settings.rasa_url, settings.rasa_timeout_s, settings.rasa_token(), f"http://{settings.host}:{settings.action_port}/health"
        )
        app.ctx.events = EventLog(engine)
        app.ctx.accounts = Accounts(engine, settings.agent_session_hours)
        app.ctx.queue = CaseQueue(engine, settings.aging_per_minute)
        app.ctx.conversations = ConversationStore(engine)
        app.ctx.limiter = RateLimiter(settings, make_store(settings, engine))
        app.ctx.router = Router(settings, app.ctx.conversations, app.ctx.queue, app.ctx.rasa, app.ctx.events, app.ctx.bus)
        app.ctx.control = app.ctx.router
        # The web process searches the knowledge base too (agents' suggestions, editors'
        # previews); the model loads in a worker thread so the server starts serving at once.
        # It also self-calibrates the thresholds after imports/publishes (knowledge/selfcalibration.py),
        # in its watcher's background thread, so no edit ever waits for it.
        app.ctx.knowledge = KnowledgeBase(FaqStore(sync_engine(settings)), settings.index_dir, auto_calibrate=True)

        def open_and_watch() -> None:
            app.ctx.knowledge.open()
            app.ctx.knowledge.watch()

        app.ctx.knowledge_ready = asyncio.get_running_loop().run_in_executor(None, open_and_watch)

    @app.after_server_stop
    async def close_resources(app: Sanic, _loop: asyncio.AbstractEventLoop) -> None:
        await app.ctx.bus.stop()
        await app.ctx.limiter.close()
        await app.ctx.rasa.close()
        await app.ctx.engine.dispose()

    @app.get("/health")
    async def health(request: Request) -> HTTPResponse:
        return json({"ok": True, "rasa": await request.app.ctx.rasa.ready()})

    return app
