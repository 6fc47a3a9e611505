"""Draft FAQ entries from agents' answers: when a handed-off conversation is handed back, the
agent's reply to the customer's question is offered to editors as a draft (question + answer).

Computed on demand from the conversation log (`handed_back` events) and the transcripts, so no
hook in the router is needed. A suggestion disappears once an entry tagged `case-<id>` exists,
which is what the editor page sets when an editor turns the suggestion into an entry.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import sqlalchemy as sa

from editor.gaps import REQUEST_REASONS
from editor.importing import slug
from conversations.transcripts import Line, events, is_question_like, transcripts

SKIPPED_RESOLUTIONS = ("spam", "duplicate")
SMALL_TALK = ("hi", "hello", "hey", "thanks", "thank you", "ok", "okay", "bye", "you're welcome")


@dataclass(frozen=True)
class Suggestion:
    case_id: int
    conversation_id: str
    agent: str
    question: str
    answer: str
    at: float

    @property
    def tag(self) -> str:
        return f"case-{self.case_id}"

    def draft(self) -> dict[str, Any]:
        """The entry an editor starts from (a draft until they publish it)."""
        return {
            "id": f"agent-{slug(self.question, 50)}-{self.case_id}",
            "category": "from-agents",
            "question": self.question,
            "answer": self.answer,
            "paraphrases": [],
            "tags": [self.tag],
            "status": "draft",
        }

    def to_dict(self) -> dict[str, Any]:
        return {"case_id": self.case_id, "conversation_id": self.conversation_id, "agent": self.agent,
                "question": self.question, "answer": self.answer, "at": self.at, "draft": self.draft()}


def is_substantive(text: str) -> bool:
    """An agent line that answers something, not a greeting or 'one moment'."""
    words = text.strip().lower().rstrip("!.").split()
    return len(words) >= 5 and " ".join(words) not in SMALL_TALK


def from_transcript(lines: list[Line], since: float, until: float, skip: frozenset[int] = frozenset()) -> tuple[str, str] | None:
    """(question, answer): the last customer question before the agent's first substantive
    message in [since, until], and the agent's substantive messages from there on. Lines in
    `skip` (a customer asking for a person) are not questions."""
    agent_lines = [i for i, l in enumerate(lines) if l.sender == "agent" and since <= l.at <= until and is_substantive(l.text)]
    if not agent_lines:
        return None
    first = agent_lines[0]
    questions = [l for l in lines[:first] if l.sender == "customer" and l.id not in skip and is_question_like(l.text)]
    if not questions:
        return None
    answer = "\n\n".join(lines[i].text.strip() for i in agent_lines)
    return questions[-1].text.strip(), answer[:10_000]


def _requests_for_a_person(engine: sa.engine.Engine, lines: dict[str, list[Line]]) -> frozenset[int]:
    """Ids of the customer lines that asked for a person (the line before such an escalation)."""
    found = set()
    for event in events(engine, ("escalated",)):
        if event.conversation_id in lines and event.data.get("reason") in REQUEST_REASONS:
            before = [l for l in lines[event.conversation_id] if l.sender == "customer" and l.at <= event.at]
            if before:
                found.add(before[-1].id)
    return frozenset(found)


def suggestions(engine: sa.engine.Engine, used_tags: Iterable[str] = (), limit: int = 200) -> list[Suggestion]:
    """Drafts from the newest hand-backs, skipping cases already turned into entries."""
    used = set(used_tags)
    backs = [e for e in events(engine, ("handed_back",), limit=limit * 2) if e.data.get("resolution") not in SKIPPED_RESOLUTIONS]
    claims = {e.data.get("case_id"): e.at for e in events(engine, ("claimed",), limit=limit * 4)}
    lines = transcripts(engine, (e.conversation_id for e in backs))
    skip = _requests_for_a_person(engine, lines)
    found: list[Suggestion] = []
    for back in backs:
        case_id = back.data.get("case_id")
        if not isinstance(case_id, int) or f"case-{case_id}" in used:
            continue
        pair = from_transcript(lines.get(back.conversation_id, []), claims.get(case_id, 0.0), back.at, skip)
        if pair:
            found.append(Suggestion(case_id, back.conversation_id, str(back.data.get("agent") or ""), pair[0], pair[1], back.at))
        if len(found) >= limit:
            break
    return found
