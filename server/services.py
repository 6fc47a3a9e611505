"""The composition root's one typed object: every long-lived service of the web process.

`build` makes each service once from the settings (one engine, one bus, one router, one
RoutingRules/Presence/BusinessHours/TicketStore shared by the router and the console) and
`Services.close` releases them. server/app.py hands them to the blueprints on `app.ctx`
under the names the rooms read; nothing is built lazily inside a route module.
"""
from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.channels.telegram import TelegramChannel
from bot.rasa_client import RasaClient
from bot.router import Router
from conversations.events import EventLog
from conversations.store import ConversationStore
from core.bus import Bus, make_bus
from core.db import async_engine, sync_engine
from core.persona import AsyncPersona
from core.ratelimit import RateLimiter, make_store
from core.settings import Settings
from customers.linking import link_telegram
from customers.store import CustomerStore
from handoff.accounts import Accounts
from handoff.assignment import CaseAssignment
from handoff.care import CareServices
from handoff.followup_flow import FollowupFlow
from handoff.history import CaseHistory
from handoff.timer_loop import TimerLoop
from handoff.timers import CaseTimers
from handoff.control import ConversationControl
from handoff.dispatch import Dispatcher
from handoff.notes import CannedResponses, NoteStore
from handoff.queue import CaseQueue
from handoff.services import ConsoleServices, WaitingRoom
from knowledge.base import AdaptPolicy, KnowledgeBase
from knowledge.store import FaqStore
from mail.outbox import Outbox
from privacy.data_rights import DataRights
from reports import rollup
from reports.csat_prompt import CsatPrompter
from reports.schema import ensure_indexes

log = logging.getLogger("tandem.web")


@dataclass
class Services:
    settings: Settings
    engine: AsyncEngine
    persona: AsyncPersona
    bus: Bus
    rasa: RasaClient
    events: EventLog
    accounts: Accounts
    queue: CaseQueue
    conversations: ConversationStore
    limiter: RateLimiter
    router: Router
    control: ConversationControl  # the router, as the human side sees it (handoff/control.py)
    console: ConsoleServices
    knowledge: KnowledgeBase
    knowledge_ready: asyncio.Future[None]
    care: CareServices  # customers, SLA timers, reassignment, follow-ups, mail (handoff/care.py)
    timer_loop: TimerLoop  # acts on time: reassignment, SLA breaches, follow-ups, mail, retention
    data_rights: DataRights  # export and erasure of one customer, retention (privacy/)
    csat_prompt: CsatPrompter  # satisfaction asked after a hand-back, a goodbye or a quiet spell
    reports_engine: sa.engine.Engine  # the reports' queries and their rollup run on it, in threads
    telegram: TelegramChannel | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def names(self) -> dict[str, object]:
        """Each service by the name the blueprints read it under (`request.app.ctx.<name>`)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "tasks"}

    async def start(self) -> None:
        """Background work of every web process: auto-assignment, Telegram, the model warm-up."""
        await self.console.dispatcher.start()
        if self.settings.telegram_token:
            link_user = functools.partial(link_telegram, self.care.customers, self.conversations)
            self.telegram = TelegramChannel(self.settings, self.router, self.engine, self.limiter, link_user)
            self.telegram.start()
        self.tasks.append(asyncio.create_task(self._warm_up()))
        self.csat_prompt.start()
        self.timer_loop.start()
        # The reports' pre-aggregation is built and checked in the background (reports/rollup.py).
        self.tasks.append(asyncio.create_task(rollup.keep_fresh(self.reports_engine, self.settings.reports_full_check_s)))

    async def _warm_up(self) -> None:
        """Load the embedding model now, so an editor's first preview does not wait for it."""
        try:
            await self.knowledge_ready
            await asyncio.to_thread(self.knowledge.embedder.encode, ["warm up"])
        except Exception:  # noqa: BLE001 - a failed warm-up only means the first preview is slower
            log.exception("could not warm up the embedding model")

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.timer_loop.stop()
        await self.csat_prompt.stop()
        self.csat_prompt.sync_engine.dispose()
        self.reports_engine.dispose()
        self.data_rights.dispose()
        await self.console.dispatcher.stop()
        if self.telegram is not None:
            await self.telegram.stop()
        await self.bus.stop()
        await self.limiter.close()
        await self.rasa.close()
        self.knowledge.close_adaptation()
        await self.engine.dispose()


async def build(settings: Settings) -> Services:
    """Every service once, in dependency order; the knowledge base opens in a worker thread."""
    engine = async_engine(settings)
    bus = make_bus(settings.redis_url)
    await bus.start()
    rasa = RasaClient(settings.rasa_urls, settings.rasa_timeout_s, settings.rasa_token(), settings.action_health_urls)
    events = EventLog(engine)
    queue = CaseQueue(engine, settings.aging_per_minute)
    conversations = ConversationStore(engine)
    waiting = WaitingRoom.build(engine, settings)
    router = Router(settings, conversations, queue, rasa, events, bus, waiting)
    assignment = CaseAssignment(queue, router, bus)
    console = ConsoleServices(
        rules=waiting.rules, presence=waiting.presence, tickets=waiting.tickets, notes=NoteStore(engine),
        canned=CannedResponses(engine), hours=waiting.hours,
        dispatcher=Dispatcher(settings, queue, waiting.presence, assignment), assignment=assignment,
    )
    # The web process searches too (agents' suggestions, editors' previews) and self-calibrates
    # after imports/publishes in its watcher's thread (knowledge/selfcalibration.py).
    knowledge = KnowledgeBase(FaqStore(sync_engine(settings)), settings.index_dir, auto_calibrate=True, language=settings.knowledge_language,
                              head=settings.faq_head, index_kind=settings.index_kind, adapt=AdaptPolicy.from_settings(settings, train=True))

    def open_and_watch() -> None:
        knowledge.open()
        knowledge.watch()

    ready: asyncio.Future[None] = asyncio.get_running_loop().run_in_executor(None, open_and_watch)
    persona = AsyncPersona(engine, settings.business)
    reports_engine = sync_engine(settings)
    await asyncio.to_thread(ensure_indexes, reports_engine)
    csat_prompt = CsatPrompter(settings, engine, sync_engine(settings), persona, router.say)
    router.hooks.append(csat_prompt)
    accounts = Accounts(engine, settings.agent_session_hours)
    data_rights = DataRights(sync_engine(settings), settings)
    customers = CustomerStore(engine)
    timers = CaseTimers(engine, settings, queue, waiting.presence)
    outbox = Outbox(engine, settings.mail)
    flow = FollowupFlow(settings, timers.followups, router, conversations, customers, waiting.tickets, outbox, persona, bus)
    care = CareServices(customers, timers, flow, outbox, CaseHistory(engine), data_rights.apply_retention)
    router.followup_answers = flow.answer  # a follow-up's answer is taken before anything else sees it
    timer_loop = TimerLoop(care, queue, accounts, console.notes, router, bus, persona, settings.dispatch_interval_s,
                           settings.customers.retention_interval_s)
    return Services(
        settings=settings, engine=engine, persona=persona, bus=bus, rasa=rasa,
        events=events, accounts=accounts, queue=queue, conversations=conversations,
        limiter=RateLimiter(settings, make_store(settings, engine)), router=router, control=router, console=console,
        knowledge=knowledge, knowledge_ready=ready, care=care, timer_loop=timer_loop, data_rights=data_rights,
        csat_prompt=csat_prompt, reports_engine=reports_engine,
    )
