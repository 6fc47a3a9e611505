"""What the bot would do with a customer's question, given the search results and the thresholds.

Editors' "try a question" shows this next to the top matches, so they can see whether an entry
they are writing will actually be served. It is a pure function of the matches and settings so
that the bot's actions can use the very same rule (see docs/knowledge.md, "Try a question").
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

from knowledge.base import Match

ANSWER, CLARIFY, ESCALATE = "answer", "clarify", "escalate"


@dataclass(frozen=True)
class Decision:
    """`action` is answer | clarify | escalate; `reason` says why in an editor's words."""

    action: str
    reason: str
    faq_id: str | None = None
    alternatives: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["alternatives"] = list(self.alternatives)
        return data


def decide(matches: Sequence[Match], threshold: float, margin: float, max_misses: int = 2) -> Decision:
    """Answer when the best entry reaches `threshold`; clarify when the runner-up also does and
    is within `margin` of it (the customer could mean either); otherwise it is a miss, and
    `max_misses` misses in a row bring a person in."""
    if not matches or matches[0].score < threshold:
        best = matches[0].score if matches else 0.0
        return Decision(
            ESCALATE,
            f"best score {best:.2f} is below the threshold {threshold:.2f}: the bot asks the customer to "
            f"rephrase, and {max_misses} such misses in a row hand the conversation to a person",
        )
    top = matches[0]
    close = [m for m in matches[1:] if m.score >= threshold and top.score - m.score <= margin]
    if close:
        return Decision(
            CLARIFY,
            f"'{top.faq_id}' ({top.score:.2f}) and '{close[0].faq_id}' ({close[0].score:.2f}) both reach the threshold "
            f"{threshold:.2f} and are within the clarify margin {margin:.2f}: the customer is asked which one they mean",
            top.faq_id,
            tuple(m.faq_id for m in close),
        )
    return Decision(ANSWER, f"'{top.faq_id}' scores {top.score:.2f} >= threshold {threshold:.2f}", top.faq_id)
