"""Quality review: a rubric managers edit, a review queue sampled from closed cases, scores.

Sampling buckets (docs/reports.md): low_csat (the case's rating at or below the low mark),
long_handle (handle time at or above qa_long_handle_s), escalated (the bot escalated on its
own, i.e. any reason but the customer asking for a person), random (everything else). A seeded
random.Random picks from each bucket in that order, so a sample is reproducible; the unique
case_id in qa_reviews means a case is never queued twice.

A review's score is the weighted mean of its criterion scores (1..5) mapped to 0..100:
sum(w * (s - 1) / 4) / sum(w) * 100.
"""
from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import sqlalchemy as sa

from reports.schema import accounts, case_routing, cases, csat, messages, qa_criteria, qa_reviews, qa_scores

BUCKETS = ("low_csat", "long_handle", "escalated", "random")
DEFAULT_RUBRIC = (
    ("Greeting", "Introduced themselves and acknowledged the customer.", 1.0),
    ("Understood the problem", "Asked what was needed and restated the problem correctly.", 2.0),
    ("Solved it", "The customer's problem was solved or a clear next step was given.", 3.0),
    ("Tone", "Polite, clear and calm, also with an upset customer.", 1.0),
    ("Followed policy", "Refunds, identity checks and promises within the rules.", 2.0),
)
MAX_CRITERIA = 20


class QaError(ValueError):
    """Bad input: 400."""


class NotFound(LookupError):
    """No such review: 404."""


class Conflict(Exception):
    """The review is already scored: 409."""


@dataclass(frozen=True)
class Criterion:
    id: int
    name: str
    description: str
    weight: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Review:
    id: int
    case_id: int
    conversation_id: str
    agent_id: int | None
    agent_name: str
    team: str | None
    bucket: str
    status: str
    score: float | None
    comment: str
    reviewer_id: int | None
    sampled_at: float
    reviewed_at: float | None
    scores: dict[int, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "scores": {str(k): v for k, v in self.scores.items()}}


def weighted_score(scores: dict[int, int], weights: dict[int, float]) -> float:
    total = sum(weights[c] for c in scores)
    return sum(weights[c] * (s - 1) / 4 for c, s in scores.items()) / total * 100


# -- the rubric ------------------------------------------------------------------------------
def rubric(engine: sa.engine.Engine) -> list[Criterion]:
    """The active criteria; a first call on an empty table stores the editable default rubric."""
    with engine.begin() as conn:
        if conn.execute(sa.select(sa.func.count()).select_from(qa_criteria)).scalar_one() == 0:
            now = time.time()
            conn.execute(qa_criteria.insert(), [
                {"name": n, "description": d, "weight": w, "position": i, "active": True, "updated_at": now}
                for i, (n, d, w) in enumerate(DEFAULT_RUBRIC)
            ])
        rows = conn.execute(
            sa.select(qa_criteria).where(qa_criteria.c.active.is_(True)).order_by(qa_criteria.c.position, qa_criteria.c.id)
        ).mappings().all()
    return [Criterion(r["id"], r["name"], r["description"], float(r["weight"])) for r in rows]


def _clean_criterion(item: Any) -> tuple[int | None, str, str, float]:
    if not isinstance(item, dict):
        raise QaError("each criterion must be an object {name, description?, weight, id?}")
    name, description, weight, cid = item.get("name"), item.get("description", ""), item.get("weight", 1), item.get("id")
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > 80:
        raise QaError("a criterion needs a 'name' of 1-80 characters")
    if not isinstance(description, str) or len(description) > 1000:
        raise QaError("'description' must be a string of at most 1000 characters")
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 < weight <= 100:
        raise QaError("'weight' must be a number above 0 and at most 100")
    if cid is not None and (isinstance(cid, bool) or not isinstance(cid, int)):
        raise QaError("'id' must be an integer (an existing criterion) or left out (a new one)")
    return cid, name.strip(), description.strip(), float(weight)


def replace_rubric(engine: sa.engine.Engine, items: Any) -> list[Criterion]:
    """Set the rubric to `items` in order: known ids are updated, new ones added, the rest retired."""
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_CRITERIA:
        raise QaError(f"'criteria' must be a list of 1 to {MAX_CRITERIA} criteria")
    cleaned = [_clean_criterion(i) for i in items]
    rubric(engine)  # the default exists before it can be edited
    now = time.time()
    with engine.begin() as conn:
        known = {int(i) for i in conn.execute(sa.select(qa_criteria.c.id)).scalars()}
        keep: list[int] = []
        for position, (cid, name, description, weight) in enumerate(cleaned):
            values = {"name": name, "description": description, "weight": weight, "position": position, "active": True, "updated_at": now}
            if cid is not None:
                if cid not in known:
                    raise QaError(f"no criterion with id {cid}")
                conn.execute(qa_criteria.update().where(qa_criteria.c.id == cid).values(**values))
                keep.append(cid)
            else:
                keep.append(int(conn.execute(qa_criteria.insert().values(**values)).inserted_primary_key[0]))
        conn.execute(qa_criteria.update().where(qa_criteria.c.id.not_in(keep)).values(active=False, updated_at=now))
    return rubric(engine)


# -- sampling --------------------------------------------------------------------------------
def sample(engine: sa.engine.Engine, start: float, end: float, per_bucket: int, seed: int, low_score: int,
           long_handle_s: float, now: float | None = None) -> list[Review]:
    """Queue up to `per_bucket` not-yet-reviewed closed cases (opened in [start, end)) from each bucket."""
    if isinstance(per_bucket, bool) or not isinstance(per_bucket, int) or not 1 <= per_bucket <= 500:
        raise QaError("'per_bucket' must be an integer from 1 to 500")
    now = time.time() if now is None else now
    reviewed = sa.select(qa_reviews.c.case_id)
    query = (
        sa.select(cases.c.id, cases.c.conversation_id, cases.c.agent_id, cases.c.reason, cases.c.claimed_at, cases.c.closed_at,
                  case_routing.c.team, sa.func.min(csat.c.score).label("csat"))
        .select_from(cases.outerjoin(case_routing, case_routing.c.case_id == cases.c.id).outerjoin(csat, csat.c.case_id == cases.c.id))
        .where(cases.c.status == "closed", cases.c.agent_id.is_not(None), cases.c.created_at >= start, cases.c.created_at < end,
               cases.c.id.not_in(reviewed))
        .group_by(cases.c.id, cases.c.conversation_id, cases.c.agent_id, cases.c.reason, cases.c.claimed_at, cases.c.closed_at, case_routing.c.team)
        .order_by(cases.c.id)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
    buckets: dict[str, list[Any]] = {b: [] for b in BUCKETS}
    for row in rows:
        handle = (row["closed_at"] - row["claimed_at"]) if row["claimed_at"] is not None else None
        if row["csat"] is not None and row["csat"] <= low_score:
            buckets["low_csat"].append(row)
        elif handle is not None and handle >= long_handle_s:
            buckets["long_handle"].append(row)
        elif row["reason"] != "customer_request":
            buckets["escalated"].append(row)
        else:
            buckets["random"].append(row)
    rng = random.Random(seed)
    chosen: list[tuple[str, Any]] = []
    for bucket in BUCKETS:
        pool = buckets[bucket]
        chosen += [(bucket, row) for row in rng.sample(pool, min(per_bucket, len(pool)))]
    created: list[int] = []
    with engine.begin() as conn:
        for bucket, row in chosen:
            exists = conn.execute(sa.select(qa_reviews.c.id).where(qa_reviews.c.case_id == row["id"])).first()
            if exists:  # queued by someone else meanwhile
                continue
            result = conn.execute(qa_reviews.insert().values(
                case_id=row["id"], conversation_id=row["conversation_id"], agent_id=row["agent_id"], team=row["team"],
                bucket=bucket, status="queued", comment="", sampled_at=now,
            ))
            created.append(int(result.inserted_primary_key[0]))
    return [r for r in reviews(engine) if r.id in set(created)]


# -- reviewing -------------------------------------------------------------------------------
def reviews(engine: sa.engine.Engine, status: str | None = None, agent_id: int | None = None, limit: int = 500) -> list[Review]:
    query = sa.select(qa_reviews, accounts.c.display_name).select_from(
        qa_reviews.outerjoin(accounts, accounts.c.id == qa_reviews.c.agent_id)
    ).order_by(qa_reviews.c.id).limit(limit)
    if status:
        query = query.where(qa_reviews.c.status == status)
    if agent_id is not None:
        query = query.where(qa_reviews.c.agent_id == agent_id)
    with engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
        ids = [r["id"] for r in rows]
        scored: dict[int, dict[int, int]] = {}
        if ids:
            for rid, cid, score in conn.execute(sa.select(qa_scores.c.review_id, qa_scores.c.criterion_id, qa_scores.c.score)
                                                .where(qa_scores.c.review_id.in_(ids))):
                scored.setdefault(int(rid), {})[int(cid)] = int(score)
    return [Review(
        r["id"], r["case_id"], r["conversation_id"], r["agent_id"], r["display_name"] or "", r["team"], r["bucket"], r["status"],
        r["score"], r["comment"], r["reviewer_id"], r["sampled_at"], r["reviewed_at"], scored.get(r["id"], {}),
    ) for r in rows]


def get_review(engine: sa.engine.Engine, review_id: int) -> Review:
    query = sa.select(qa_reviews, accounts.c.display_name).select_from(
        qa_reviews.outerjoin(accounts, accounts.c.id == qa_reviews.c.agent_id)
    ).where(qa_reviews.c.id == review_id)
    with engine.connect() as conn:
        r = conn.execute(query).mappings().first()
        if r is None:
            raise NotFound(f"no review {review_id}")
        scores = {int(c): int(s) for c, s in conn.execute(
            sa.select(qa_scores.c.criterion_id, qa_scores.c.score).where(qa_scores.c.review_id == review_id))}
    return Review(r["id"], r["case_id"], r["conversation_id"], r["agent_id"], r["display_name"] or "", r["team"], r["bucket"],
                  r["status"], r["score"], r["comment"], r["reviewer_id"], r["sampled_at"], r["reviewed_at"], scores)


def score_review(engine: sa.engine.Engine, review_id: int, reviewer_id: int, scores: Any, comment: Any, now: float | None = None) -> Review:
    """Score every active criterion 1..5 and comment; a review is scored once (409 after)."""
    if not isinstance(scores, dict):
        raise QaError("'scores' must be an object {criterion id: 1..5}")
    if not isinstance(comment, str) or len(comment) > 4000:
        raise QaError("'comment' must be a string of at most 4000 characters")
    criteria = {c.id: c.weight for c in rubric(engine)}
    parsed: dict[int, int] = {}
    for key, value in scores.items():
        try:
            cid = int(key)
        except (TypeError, ValueError):
            raise QaError(f"unknown criterion {key!r}") from None
        if cid not in criteria:
            raise QaError(f"unknown or retired criterion {key!r}")
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 5:
            raise QaError(f"the score for criterion {cid} must be an integer from 1 to 5")
        parsed[cid] = value
    missing = sorted(set(criteria) - set(parsed))
    if missing:
        raise QaError(f"every criterion needs a score; missing {missing}")
    total = weighted_score(parsed, criteria)
    now = time.time() if now is None else now
    with engine.begin() as conn:
        updated = conn.execute(
            qa_reviews.update().where(qa_reviews.c.id == review_id, qa_reviews.c.status == "queued")
            .values(status="done", score=total, comment=comment.strip(), reviewer_id=reviewer_id, reviewed_at=now)
        )
        if updated.rowcount != 1:
            if conn.execute(sa.select(qa_reviews.c.id).where(qa_reviews.c.id == review_id)).first() is None:
                raise NotFound(f"no review {review_id}")
            raise Conflict(f"review {review_id} is already scored")
        conn.execute(qa_scores.insert(), [{"review_id": review_id, "criterion_id": c, "score": s, "weight": criteria[c]} for c, s in parsed.items()])
    return get_review(engine, review_id)


def transcript(engine: sa.engine.Engine, conversation_id: str, limit: int = 2000) -> list[dict[str, Any]]:
    """The conversation as the reviewer reads it (messages are owned by bot/; read only)."""
    query = sa.select(messages).where(messages.c.conversation_id == conversation_id).order_by(messages.c.id).limit(limit)
    with engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
    out = []
    for r in rows:
        data = json.loads(r["data"] or "{}")
        out.append({"id": r["id"], "sender": r["sender"], "text": r["text"], "at": r["created_at"], "agent_name": data.get("agent_name", "")})
    return out

