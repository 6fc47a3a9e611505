"""Data rights of the mail room: the outbox holds addresses and texts sent to customers."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from core.rights import RightsContext, RightsRegistry, Subject, plain
from mail.outbox import mail_outbox


@dataclass(frozen=True)
class OutboxRows:
    """Mails of the subject's conversations, or sent to one of their addresses."""

    room: str = "mail"
    table: str = "mail_outbox"

    def _where(self, subject: Subject) -> sa.sql.ColumnElement | None:
        parts = []
        if subject.conversation_ids:
            parts.append(mail_outbox.c.conversation_id.in_(subject.conversation_ids))
        if subject.contacts:
            parts.append(sa.func.lower(mail_outbox.c.to_address).in_(subject.contacts))
        return sa.or_(*parts) if parts else None

    def export(self, ctx: RightsContext, subject: Subject) -> list[dict[str, Any]]:
        where = self._where(subject)
        return [] if where is None else [plain(r) for r in ctx.conn.execute(sa.select(mail_outbox).where(where)).mappings()]

    def erase(self, ctx: RightsContext, subject: Subject) -> int:
        where = self._where(subject)
        return 0 if where is None else int(ctx.conn.execute(mail_outbox.delete().where(where)).rowcount or 0)


def register(registry: RightsRegistry) -> None:
    registry.register(OutboxRows())
