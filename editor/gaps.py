"""Knowledge gaps: what customers asked that the bot could not answer, grouped by meaning.

Sources are the `missed` (low FAQ score, NLU fallback, out of scope) and `escalated` events of
the conversation log; the customer's words are the last customer message before the event.
Similar questions are grouped greedily by cosine similarity of their embeddings, so editors
see "23 people asked about gift cards" instead of 23 separate lines.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import sqlalchemy as sa

from conversations.transcripts import events, is_question_like, transcripts

Embed = Callable[[Sequence[str]], np.ndarray]
# Escalations whose last customer line is the request itself; the question is the line before.
REQUEST_REASONS = ("customer_request",)


@dataclass(frozen=True)
class MissedQuestion:
    conversation_id: str
    message_id: int
    text: str
    at: float
    kind: str  # missed | escalated
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"conversation_id": self.conversation_id, "message_id": self.message_id, "text": self.text,
                "at": self.at, "kind": self.kind, "reason": self.reason}


@dataclass
class Gap:
    """A group of similar unanswered questions; examples newest first."""

    examples: list[MissedQuestion] = field(default_factory=list)
    centroid: np.ndarray | None = None

    @property
    def count(self) -> int:
        return len(self.examples)

    @property
    def latest_at(self) -> float:
        return max(e.at for e in self.examples)

    def to_dict(self, show: int = 5) -> dict[str, Any]:
        return {
            "count": self.count,
            "conversations": len({e.conversation_id for e in self.examples}),
            "latest_at": self.latest_at,
            "question": self.examples[0].text,
            "examples": [e.to_dict() for e in self.examples[:show]],
            "reasons": sorted({e.reason for e in self.examples if e.reason}),
        }


def missed_questions(engine: sa.engine.Engine, limit: int = 2000) -> list[MissedQuestion]:
    """The customer question behind each of the newest `limit` missed/escalated events."""
    found = events(engine, ("missed", "escalated"), limit=limit)
    lines = transcripts(engine, (e.conversation_id for e in found))
    questions: dict[int, MissedQuestion] = {}
    for event in found:
        reason = str(event.data.get("reason") or event.data.get("kind") or "")
        before = [l for l in lines.get(event.conversation_id, []) if l.sender == "customer" and l.at <= event.at]
        if event.kind == "escalated" and reason in REQUEST_REASONS and before:
            before = before[:-1]
        candidates = [l for l in before if is_question_like(l.text)]
        if not candidates:
            continue
        line = candidates[-1]
        if line.id not in questions:  # one question can be behind a miss and, later, an escalation
            questions[line.id] = MissedQuestion(event.conversation_id, line.id, line.text, line.at, event.kind, reason)
    return sorted(questions.values(), key=lambda q: q.at, reverse=True)


def cluster(questions: Sequence[MissedQuestion], embed: Embed, threshold: float = 0.7) -> list[Gap]:
    """Greedy grouping, newest question first: join the most similar group if its centroid is at
    least `threshold` (cosine) away, else start a new group. Groups are returned newest first."""
    if not questions:
        return []
    vectors = embed([q.text for q in questions])
    gaps: list[Gap] = []
    sums: list[np.ndarray] = []
    for question, vector in zip(questions, vectors):
        if gaps:
            centroids = np.stack([s / (np.linalg.norm(s) or 1.0) for s in sums])
            scores = centroids @ vector
            best = int(np.argmax(scores))
            if scores[best] >= threshold:
                gaps[best].examples.append(question)
                sums[best] = sums[best] + vector
                continue
        gaps.append(Gap([question]))
        sums.append(vector.astype(np.float64))
    return sorted(gaps, key=lambda g: g.latest_at, reverse=True)


def knowledge_gaps(engine: sa.engine.Engine, embed: Embed, threshold: float = 0.7, limit: int = 2000) -> list[Gap]:
    return cluster(missed_questions(engine, limit), embed, threshold)
