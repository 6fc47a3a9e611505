"""Data rights of the knowledge room: FAQ entries are the business's text, not customers'."""
from __future__ import annotations

from core.rights import NoPersonalData, RightsRegistry


def register(registry: RightsRegistry) -> None:
    registry.register(
        NoPersonalData("knowledge", "faqs", "FAQ entries written by editors"),
        NoPersonalData("knowledge", "faq_versions", "versions of editors' FAQ entries"),
        NoPersonalData("knowledge", "kb_calibration", "thresholds computed from the FAQ's own texts"),
        NoPersonalData("knowledge", "kb_adaptations", "the sentence encoder fine-tuned on the FAQ's own texts"),
        NoPersonalData("knowledge", "kb_adaptation_claims", "which FAQ revision is being adapted"),
    )
