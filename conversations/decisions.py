"""What the bot decided on one customer message, as typed objects on both sides of Rasa.

The action server (actions/) makes a `BotDecision` and sends it through Rasa as a custom
payload `{"tandem": {...}}`; the router (bot/) reads it back with `BotDecision.from_payload`.
The wire format is plain JSON because it crosses two processes and is kept in Rasa's tracker
(actions/policy.py reads earlier turns' decisions from there); the dataclasses are the contract,
so neither side reaches into untyped dicts. An unreadable payload is None, never a crash.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, cast

# answer / clarify / miss / escalate: a knowledge turn; reply: a conversation intent answered
# (greeting, thanks, goodbye, ...), which the router acts on too (a goodbye ends a bot-only chat).
Kind = Literal["answer", "clarify", "miss", "escalate", "reply"]
KINDS: tuple[Kind, ...] = ("answer", "clarify", "miss", "escalate", "reply")


@dataclass(frozen=True)
class Candidate:
    """An FAQ entry the search considered, with its score."""

    faq_id: str
    score: float
    question: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"faq_id": self.faq_id, "score": round(self.score, 4), "question": self.question}

    @classmethod
    def parse(cls, data: Any) -> "Candidate | None":
        if not isinstance(data, dict) or not isinstance(data.get("faq_id"), str):
            return None
        score = data.get("score")
        return cls(data["faq_id"], float(score) if isinstance(score, (int, float)) else 0.0, str(data.get("question") or ""))


@dataclass(frozen=True)
class Answered:
    faq_id: str
    score: float
    category: str = ""


@dataclass(frozen=True)
class Missed:
    kind: str  # low_score | nlu_fallback | off_topic | ...
    values: dict[str, Any] = field(default_factory=dict)  # best_score, confidence


@dataclass(frozen=True)
class Escalation:
    reason: str
    detail: str
    signals: dict[str, Any]  # reasons with values, frustration, sentiment, nlu, ...: the case keeps them


@dataclass(frozen=True)
class BotDecision:
    kind: Kind
    candidates: tuple[Candidate, ...] = ()
    nlu: dict[str, Any] = field(default_factory=dict)
    sentiment: dict[str, Any] = field(default_factory=dict)
    reasons: tuple[dict[str, Any], ...] = ()
    answered: Answered | None = None
    options: tuple[Candidate, ...] = ()  # clarify: the entries the customer chooses between
    missed: Missed | None = None
    escalation: Escalation | None = None
    intent: str = ""  # reply: the conversation intent that was answered
    query_vector: str = ""  # whose embedding of the text the search used: "rasa" (carried) | "action"

    # -- the action server's side --------------------------------------------------------
    def to_payload(self) -> dict[str, Any]:
        """The custom payload for CollectingDispatcher.utter_message(json_message=...)."""
        if self.kind == "reply":
            return {"tandem": {"decision": "reply", "reply": {"intent": self.intent}}}
        body: dict[str, Any] = {"decision": self.kind, "sentiment": self.sentiment}
        if self.kind != "escalate":
            body.update(candidates=[c.to_dict() for c in self.candidates], reasons=list(self.reasons))
        if self.nlu:
            body["nlu"] = self.nlu
        if self.query_vector:
            body["query_vector"] = self.query_vector
        if self.answered is not None:
            body["answer"] = {"faq_id": self.answered.faq_id, "score": round(self.answered.score, 4), "category": self.answered.category}
        if self.kind == "clarify":
            body["clarify"] = {"options": [o.to_dict() for o in self.options]}
        if self.missed is not None:
            body["miss"] = {"kind": self.missed.kind, **self.missed.values}
        if self.escalation is not None:
            body["escalate"] = {"reason": self.escalation.reason, "detail": self.escalation.detail, **self.escalation.signals}
        return {"tandem": body}

    # -- the router's side ---------------------------------------------------------------
    @classmethod
    def from_payload(cls, custom: Any) -> "BotDecision | None":
        """The decision in a Rasa custom payload, or None if it is not one of Tandem's."""
        body = custom.get("tandem") if isinstance(custom, dict) else None
        if not isinstance(body, dict):
            return None
        kind = body.get("decision")
        if kind not in KINDS:  # older payloads name the kind only by their key
            kind = next((k for k in ("escalate", "answer", "clarify", "miss", "reply") if k in body), None)
            if kind is None:
                return None
        answered = None
        if isinstance(body.get("answer"), dict) and isinstance(body["answer"].get("faq_id"), str):
            a = body["answer"]
            answered = Answered(a["faq_id"], float(a.get("score") or 0.0), str(a.get("category") or ""))
        missed = None
        if isinstance(body.get("miss"), dict):
            values = {k: v for k, v in body["miss"].items() if k != "kind"}
            missed = Missed(str(body["miss"].get("kind") or "unknown"), values)
        escalation = None
        if isinstance(body.get("escalate"), dict):
            e = body["escalate"]
            escalation = Escalation(str(e.get("reason") or "unknown"), str(e.get("detail") or ""), dict(e))
        options = body.get("clarify", {}).get("options", []) if isinstance(body.get("clarify"), dict) else []
        return cls(
            kind=cast(Kind, kind),
            candidates=_candidates(body.get("candidates")),
            nlu=body["nlu"] if isinstance(body.get("nlu"), dict) else {},
            sentiment=body["sentiment"] if isinstance(body.get("sentiment"), dict) else {},
            reasons=tuple(r for r in body.get("reasons") or () if isinstance(r, dict)) if isinstance(body.get("reasons"), list) else (),
            answered=answered, options=_candidates(options), missed=missed, escalation=escalation,
            intent=str(body["reply"].get("intent") or "") if isinstance(body.get("reply"), dict) else "",
            query_vector=str(body.get("query_vector") or ""),
        )


def _candidates(data: Any) -> tuple[Candidate, ...]:
    if not isinstance(data, list):
        return ()
    return tuple(c for c in (Candidate.parse(item) for item in data) if c is not None)
