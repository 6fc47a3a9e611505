"""Routing rules: which team a case belongs to and how urgent it is.

Pure functions over the escalation's signals (reason, the FAQ candidates the bot considered,
NLU intent, sentiment) and the customer's profile, so they are unit-tested without a database.
The effective order of the queue adds aging on top (handoff/queue.py): a case gains
`aging_per_minute` points per minute waited, so a low-priority case cannot starve.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.settings import Settings

# Reasons and intents that name a team directly, whatever the FAQ candidates say.
REASON_TEAMS = {"complaint": "complaints", "negative_sentiment": "complaints", "frustration": "complaints"}
# Sensitive topics (actions/policy.py) go to the people trained for them.
TOPIC_TEAMS = {"legal": "complaints", "cancellation": "complaints", "fraud": "billing", "safety": "technical"}
INTENT_TEAMS = {"complain": "complaints"}
SEVERITY_POINTS = 10  # priority points per severity step
NEGATIVE_LABELS = ("negative", "very_negative", "angry", "neg")


@dataclass(frozen=True)
class Classification:
    team: str | None
    tier: str | None
    severity: int  # 0 calm .. 3 very upset
    priority: int


def category_of(faq_id: str) -> str:
    """FAQ ids are `<category>-<slug>`; the prefix is the category."""
    return faq_id.split("-", 1)[0].lower() if faq_id else ""


def sentiment_severity(sentiment: Any) -> int:
    """0..3 from whatever sentiment data is present: a score in [-1, 1] or {label, score}."""
    if isinstance(sentiment, (int, float)):
        score = float(sentiment)
    elif isinstance(sentiment, dict):
        label = str(sentiment.get("label", "")).lower()
        raw = sentiment.get("score", sentiment.get("compound"))
        if isinstance(raw, (int, float)) and label in NEGATIVE_LABELS:
            score = -abs(float(raw))
        elif isinstance(raw, (int, float)) and not label:
            score = float(raw)
        else:
            score = -0.6 if label in NEGATIVE_LABELS else 0.0
    else:
        return 0
    if score <= -0.75:
        return 3
    if score <= -0.5:
        return 2
    if score <= -0.25:
        return 1
    return 0


class RoutingRules:
    """Teams, tiers and priorities, from the settings."""

    def __init__(self, settings: Settings) -> None:
        self.teams = {name.lower(): tuple(c.lower() for c in categories) for name, categories in settings.teams.items()}
        self.tier_points = {name.lower(): tier.priority for name, tier in settings.tiers.items()}
        self._team_of_category = {c: team for team, cats in self.teams.items() for c in cats}

    def team_names(self) -> list[str]:
        return list(self.teams)

    def team_for(self, reason: str, signals: dict[str, Any]) -> str | None:
        """The reason, then the intent, then the best FAQ candidate's category; None = any team."""
        if reason in REASON_TEAMS and REASON_TEAMS[reason] in self.teams:
            return REASON_TEAMS[reason]
        if reason == "sensitive_topic":
            topics = [r.get("values", {}).get("topic") for r in signals.get("reasons", []) if isinstance(r, dict)]
            for topic in topics:
                if TOPIC_TEAMS.get(topic or "") in self.teams:
                    return TOPIC_TEAMS[topic]
        intent = ((signals.get("nlu") or {}).get("intent") or "") if isinstance(signals.get("nlu"), dict) else ""
        if intent in INTENT_TEAMS and INTENT_TEAMS[intent] in self.teams:
            return INTENT_TEAMS[intent]
        category = str(signals.get("category") or "")
        if not category:
            for candidate in signals.get("candidates") or []:
                if isinstance(candidate, dict) and candidate.get("faq_id"):
                    category = category_of(str(candidate["faq_id"]))
                    break
        return self._team_of_category.get(category.lower())

    def classify(self, reason: str, signals: dict[str, Any] | None, profile: dict[str, Any] | None) -> Classification:
        signals = signals or {}
        profile = profile or {}
        tier = str(profile.get("tier") or "").lower() or None
        severity = sentiment_severity(signals.get("sentiment"))
        if reason == "complaint":
            severity = max(severity, 1)
        priority = self.tier_points.get(tier or "", 0) + severity * SEVERITY_POINTS
        return Classification(self.team_for(reason, signals), tier, severity, priority)
