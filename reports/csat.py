"""Customer satisfaction: one 1-5 rating (and an optional comment) per conversation.

The rating is linked to the conversation's most recent case that an agent handled, so it
counts for that agent; with no such case it is a rating of the bot. The `rating_given` event is
written in the same transaction as the row, so the log and the table never disagree.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa

from reports.schema import cases, conversations, csat, events

MAX_COMMENT = 2000


class RatingError(ValueError):
    """Bad input: the caller answers 400."""


class UnknownConversation(LookupError):
    """No such conversation: 404."""


class AlreadyRated(Exception):
    """The conversation has its one rating already: 409."""


@dataclass(frozen=True)
class Rating:
    id: int
    conversation_id: str
    channel: str
    score: int
    comment: str
    case_id: int | None
    agent_id: int | None
    created_at: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def validate(score: Any, comment: Any) -> tuple[int, str]:
    """A score 1..5 (an integer, not a bool or "4") and a comment of at most MAX_COMMENT characters."""
    if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5:
        raise RatingError("'score' must be an integer from 1 to 5")
    if comment is None:
        comment = ""
    if not isinstance(comment, str):
        raise RatingError("'comment' must be a string")
    comment = comment.strip()
    if len(comment) > MAX_COMMENT:
        raise RatingError(f"'comment' is too long ({len(comment)} characters; limit {MAX_COMMENT})")
    return score, comment


def record_rating(engine: sa.engine.Engine, conversation_id: str, score: Any, comment: Any = "", now: float | None = None) -> Rating:
    """Store the conversation's rating; raises RatingError, UnknownConversation or AlreadyRated."""
    score, comment = validate(score, comment)
    now = time.time() if now is None else now
    with engine.begin() as conn:
        row = conn.execute(sa.select(conversations.c.channel).where(conversations.c.id == conversation_id)).first()
        if row is None:
            raise UnknownConversation(conversation_id)
        channel = str(row[0])
        handled = conn.execute(
            sa.select(cases.c.id, cases.c.agent_id)
            .where(cases.c.conversation_id == conversation_id, cases.c.agent_id.is_not(None))
            .order_by(cases.c.created_at.desc(), cases.c.id.desc()).limit(1)
        ).first()
        case_id, agent_id = (int(handled[0]), int(handled[1])) if handled else (None, None)
        try:  # the unique constraint decides a race between two answers; the transaction rolls back
            result = conn.execute(csat.insert().values(
                conversation_id=conversation_id, channel=channel, score=score, comment=comment,
                case_id=case_id, agent_id=agent_id, created_at=now,
            ))
        except sa.exc.IntegrityError:
            raise AlreadyRated(conversation_id) from None
        conn.execute(events.insert().values(
            conversation_id=conversation_id, kind="rating_given", channel=channel,
            data=json.dumps({"score": score, "case_id": case_id, "agent_id": agent_id, "commented": bool(comment)}), at=now,
        ))
    return Rating(int(result.inserted_primary_key[0]), conversation_id, channel, score, comment, case_id, agent_id, now)


def add_comment(engine: sa.engine.Engine, conversation_id: str, comment: Any, now: float | None = None) -> bool:
    """The optional comment given after the score (the chat asks for it next); once only:
    False when the conversation has no rating or its comment is set already."""
    if not isinstance(comment, str):
        raise RatingError("'comment' must be a string")
    comment = comment.strip()
    if not comment:
        return False
    if len(comment) > MAX_COMMENT:
        raise RatingError(f"'comment' is too long ({len(comment)} characters; limit {MAX_COMMENT})")
    now = time.time() if now is None else now
    with engine.begin() as conn:
        row = conn.execute(sa.select(csat.c.channel).where(csat.c.conversation_id == conversation_id, csat.c.comment == "")).first()
        if row is None:
            return False
        done = conn.execute(csat.update().where(csat.c.conversation_id == conversation_id, csat.c.comment == "").values(comment=comment))
        if not done.rowcount:
            return False
        conn.execute(events.insert().values(
            conversation_id=conversation_id, kind="rating_commented", channel=str(row[0]), data=json.dumps({"length": len(comment)}), at=now,
        ))
    return True


def rating_for(engine: sa.engine.Engine, conversation_id: str) -> Rating | None:
    with engine.connect() as conn:
        row = conn.execute(sa.select(csat).where(csat.c.conversation_id == conversation_id)).mappings().first()
    if row is None:
        return None
    return Rating(row["id"], row["conversation_id"], row["channel"], row["score"], row["comment"], row["case_id"],
                  row["agent_id"], row["created_at"])


@dataclass(frozen=True)
class AgentCsat:
    """One agent's own satisfaction figures (the console's "My quality" view)."""

    count: int
    mean: float | None  # mean score 1..5; None with no rating
    csat: float | None  # share of 4s and 5s
    low: int  # ratings at or below the low score
    recent: list[dict[str, Any]]  # the latest ratings: score, comment, case, when

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def agent_summary(engine: sa.engine.Engine, agent_id: int, low_score: int, recent: int = 20) -> AgentCsat:
    """Ratings about cases this agent handled (record_rating linked them), all time."""
    with engine.connect() as conn:
        count, total, good, low = conn.execute(sa.select(
            sa.func.count(csat.c.id), sa.func.sum(csat.c.score),
            sa.func.sum(sa.case((csat.c.score >= 4, 1), else_=0)), sa.func.sum(sa.case((csat.c.score <= low_score, 1), else_=0)),
        ).where(csat.c.agent_id == agent_id)).one()
        rows = conn.execute(
            sa.select(csat.c.score, csat.c.comment, csat.c.case_id, csat.c.channel, csat.c.created_at)
            .where(csat.c.agent_id == agent_id).order_by(csat.c.created_at.desc(), csat.c.id.desc()).limit(recent)
        ).mappings().all()
    count = int(count or 0)
    return AgentCsat(
        count, round(float(total) / count, 3) if count else None, round(float(good or 0) / count, 4) if count else None,
        int(low or 0), [dict(r) for r in rows],
    )
