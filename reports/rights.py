"""Data rights of the managers' room: a customer's rating and the quality reviews of their conversations.

Scores before their reviews (foreign keys); the rubric is the business's, not a customer's.
"""
from __future__ import annotations

from core.rights import ChildRows, NoPersonalData, RightsRegistry, RowsWhere
from reports.schema import csat, csat_requests, qa_reviews, qa_scores


def register(registry: RightsRegistry) -> None:
    reviews = RowsWhere("reports", qa_reviews, "conversation_id")
    registry.register(
        ChildRows("reports", qa_scores, "review_id", reviews),
        reviews,
        RowsWhere("reports", csat, "conversation_id"),
        RowsWhere("reports", csat_requests, "conversation_id"),
        NoPersonalData("reports", "qa_criteria", "the quality rubric managers write"),
    )
