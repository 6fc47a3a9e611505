"""Data rights of the managers' room: a customer's rating and the quality reviews of their conversations.

Scores before their reviews (foreign keys); the rubric is the business's, not a customer's.
"""
from __future__ import annotations

from core.rights import ChildRows, NoPersonalData, RightsRegistry, RowsWhere
from reports.schema import case_facts, conversation_facts, csat, csat_requests, qa_reviews, qa_scores


def register(registry: RightsRegistry) -> None:
    reviews = RowsWhere("reports", qa_reviews, "conversation_id")
    registry.register(
        ChildRows("reports", qa_scores, "review_id", reviews),
        reviews,
        RowsWhere("reports", csat, "conversation_id"),
        RowsWhere("reports", csat_requests, "conversation_id"),
        NoPersonalData("reports", "qa_criteria", "the quality rubric managers write"),
        # the reports' pre-aggregation (reports/rollup.py): per-case and per-conversation facts go with their conversation
        RowsWhere("reports", case_facts, "conversation_id"),
        RowsWhere("reports", conversation_facts, "id"),
        NoPersonalData("reports", "report_faq_days", "answers, votes and misses counted per day, channel and FAQ entry"),
        NoPersonalData("reports", "report_rollup_state", "the rollup's watermarks (event and ticket ids)"),
    )
