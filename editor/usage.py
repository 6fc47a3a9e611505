"""How often each FAQ entry was served and what customers thought of it (thumbs up/down).

Counts `answered` events (faq_id) and `feedback` events (faq_id, helpful) in the conversation
log, so the editors' list can show which entries work and which need rewriting.
"""
from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from conversations.transcripts import events


@dataclass
class Usage:
    served: int = 0
    helpful: int = 0
    unhelpful: int = 0

    def to_dict(self) -> dict[str, int]:
        return {"served": self.served, "helpful": self.helpful, "unhelpful": self.unhelpful}


def usage_by_faq(engine: sa.engine.Engine) -> dict[str, Usage]:
    stats: dict[str, Usage] = {}
    for event in events(engine, ("answered", "feedback"), newest_first=False):
        faq_id = event.data.get("faq_id")
        if not isinstance(faq_id, str):
            continue
        usage = stats.setdefault(faq_id, Usage())
        if event.kind == "answered":
            usage.served += 1
        elif event.data.get("helpful") is True:
            usage.helpful += 1
        elif event.data.get("helpful") is False:
            usage.unhelpful += 1
    return stats
