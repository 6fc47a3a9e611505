"""Every room's tables, created in one place: the composition root knows all rooms, core/ none.

Importing a room's schema module registers its tables on core.db.metadata; creating them is
idempotent, so `./tandem up`, the web process and the tests all call it safely.
"""
from __future__ import annotations

import bot.channels.deliveries  # noqa: F401  (each import registers tables)
import bot.channels.updates  # noqa: F401
import conversations.events  # noqa: F401
import conversations.store  # noqa: F401
import core.persona  # noqa: F401
import core.ratelimit  # noqa: F401
import customers.schema  # noqa: F401
import handoff.followup  # noqa: F401
import handoff.schema  # noqa: F401
import handoff.sla  # noqa: F401
import knowledge.store  # noqa: F401
import mail.outbox  # noqa: F401
import reports.schema  # noqa: F401
from core.db import metadata, sync_engine
from core.settings import Settings


def create_schema(settings: Settings) -> None:
    """Create every registered table that does not exist yet (idempotent)."""
    engine = sync_engine(settings)
    try:
        metadata.create_all(engine)
    finally:
        engine.dispose()
