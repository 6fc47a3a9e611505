"""The one retrieval decision: answer, ask "did you mean A or B?", or refuse (a miss).

The bot (actions/policy.py) and the editors' "try a question" (editor/api.py) both call
`decide()`, so a preview is exactly what a customer would get for the same text and knowledge
base. Escalation (mood, requests for a person, repeated misses) is the policy's business and is
not decided here; this module only knows the matches and the thresholds.

Thresholds come from the settings (tandem.yml: `faq_threshold`, `clarify_margin`,
`clarify_floor`) or, with `faq_calibration: auto`, from the knowledge base's own self-calibration
(knowledge/selfcalibration.py), recomputed after every import or publish.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, Sequence

ANSWER, CLARIFY, MISS = "answer", "clarify", "miss"


class Scored(Protocol):
    """Anything with an entry id and a score (knowledge.base.Match, actions.policy.Candidate).

    `score` is the entry's cosine (the threshold and the clarify floor apply to it); a `rank`
    attribute, when present, is what orders the entries and what the clarify margin is measured
    on (the cosine re-ranked by the knowledge base's head, knowledge/entry_head.py)."""

    faq_id: str
    score: float


def rank_of(match: Scored) -> float:
    return float(getattr(match, "rank", match.score))


@dataclass(frozen=True)
class Option:
    faq_id: str
    score: float
    question: str = ""


@dataclass(frozen=True)
class Thresholds:
    """answer at `faq_threshold`; clarify when the two best entries are within `clarify_margin`
    (the best is not clearly ahead) and both reach `clarify_floor` (both are plausible)."""

    faq_threshold: float = 0.55
    clarify_margin: float = 0.02
    clarify_floor: float = 0.45
    source: str = "settings"  # settings | calibration (revision N)

    @classmethod
    def from_settings(cls, settings: Any, calibration: Any | None = None) -> "Thresholds":
        """The live thresholds: the knowledge base's own calibration when enabled and present."""
        mode = str(getattr(settings, "faq_calibration", "off")).lower()
        if calibration is not None and mode == "auto" and getattr(calibration, "usable", False):
            return cls(
                faq_threshold=float(calibration.faq_threshold),
                clarify_margin=float(getattr(settings, "clarify_margin", cls.clarify_margin)),
                clarify_floor=float(calibration.clarify_floor),
                source=f"calibration (revision {calibration.revision})",
            )
        return cls(
            faq_threshold=float(getattr(settings, "faq_threshold", cls.faq_threshold)),
            clarify_margin=float(getattr(settings, "clarify_margin", cls.clarify_margin)),
            clarify_floor=float(getattr(settings, "clarify_floor", cls.clarify_floor)),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Verdict:
    """`action` is answer | clarify | miss; `reason` says why in an editor's words, `values` the numbers."""

    action: str
    reason: str
    faq_id: str | None = None
    options: tuple[Option, ...] = ()
    code: str = ""
    values: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.action, "reason": self.reason, "faq_id": self.faq_id, "code": self.code,
                "options": [asdict(o) for o in self.options], "alternatives": [o.faq_id for o in self.options[1:]],
                "values": dict(self.values)}


def _distinct(matches: Sequence[Scored]) -> list[Scored]:
    seen: set[str] = set()
    out: list[Scored] = []
    for match in sorted(matches, key=rank_of, reverse=True):
        if match.faq_id not in seen:
            seen.add(match.faq_id)
            out.append(match)
    return out


def decide(matches: Sequence[Scored], th: Thresholds, allow_clarify: bool = True) -> Verdict:
    """Answer, clarify or miss for these matches (any order; one entry counted once).

    `allow_clarify` is False right after the bot asked "did you mean": it never asks twice in a row.
    """
    ranked = _distinct(matches)
    by_rank = True
    if ranked and ranked[0].score < th.faq_threshold and max(m.score for m in ranked) >= th.faq_threshold:
        # The head promoted an entry its cosine does not back, over one that reaches the threshold
        # (typically a new entry with one or two texts, little known to the head): the head never
        # turns an answer into a miss, so this question is decided on the cosine alone.
        ranked, by_rank = sorted(ranked, key=lambda m: m.score, reverse=True), False
    if not ranked:
        return Verdict(MISS, "the knowledge base has no entries to answer from", code="low_faq_confidence",
                       values={"best_score": 0.0, "threshold": th.faq_threshold})
    top = ranked[0]
    second = ranked[1] if len(ranked) > 1 else None
    if allow_clarify and second is not None:
        gap = rank_of(top) - rank_of(second) if by_rank else top.score - second.score
        if second.score >= th.clarify_floor and gap < th.clarify_margin:
            options = (Option(top.faq_id, top.score, getattr(top, "question", "")),
                       Option(second.faq_id, second.score, getattr(second, "question", "")))
            return Verdict(
                CLARIFY,
                f"'{top.faq_id}' ({top.score:.2f}) and '{second.faq_id}' ({second.score:.2f}) differ by {gap:.2f} < the clarify "
                f"margin {th.clarify_margin:.2f}, both >= {th.clarify_floor:.2f}: the customer is asked which one they mean",
                top.faq_id, options, "ambiguous_faq",
                {"scores": [round(top.score, 4), round(second.score, 4)], "margin": th.clarify_margin},
            )
    if top.score >= th.faq_threshold:
        return Verdict(ANSWER, f"best FAQ score {top.score:.2f} >= {th.faq_threshold:.2f} ('{top.faq_id}')", top.faq_id,
                       code="faq_score", values={"score": round(top.score, 4), "threshold": th.faq_threshold})
    return Verdict(
        MISS,
        f"best score {top.score:.2f} is below the threshold {th.faq_threshold:.2f}: the knowledge base does not cover it, "
        "so the bot says so and asks the customer to rephrase (misses in a row bring in a person)",
        code="low_faq_confidence", values={"best_score": round(top.score, 4), "threshold": th.faq_threshold},
    )
