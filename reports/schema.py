"""Tables of the managers' room (csat, qa_*), and the other rooms' tables the reports read.

The reports sit above the rooms whose data they read (docs/architecture.md), so they import
those rooms' own table definitions rather than declaring copies.
"""
from __future__ import annotations

import sqlalchemy as sa

from core.db import metadata
from conversations.events import conversation_events
from conversations.store import conversations, messages
from handoff.schema import accounts, case_routing, cases, tickets

csat = sa.Table(
    "csat",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    # One answer per conversation: the database refuses a second one, whatever process asks.
    sa.Column("conversation_id", sa.String(64), nullable=False, unique=True),
    sa.Column("channel", sa.String(20), nullable=False, default=""),
    sa.Column("score", sa.Integer, nullable=False),  # 1..5
    sa.Column("comment", sa.Text, nullable=False, default=""),
    sa.Column("case_id", sa.Integer, nullable=True, index=True),  # the case the rating is about, if any
    sa.Column("agent_id", sa.Integer, nullable=True, index=True),  # who handled that case
    sa.Column("created_at", sa.Float, nullable=False, index=True),
    sa.CheckConstraint("score BETWEEN 1 AND 5", name="ck_csat_score"),
)

# One CSAT prompt per conversation (reports/csat_prompt.py): inserting the row is the claim, so
# of two web instances (or two sweeps, or a hand-back racing the idle sweep) exactly one asks.
csat_requests = sa.Table(
    "csat_requests",
    metadata,
    sa.Column("conversation_id", sa.String(64), primary_key=True),
    sa.Column("channel", sa.String(20), nullable=False, default=""),
    sa.Column("trigger", sa.String(16), nullable=False),  # hand_back | goodbye | idle
    sa.Column("case_id", sa.Integer, nullable=True),  # the case handed back, if any
    sa.Column("message_id", sa.Integer, nullable=True),  # the prompt message, once stored
    sa.Column("status", sa.String(12), nullable=False, default="asked"),  # asked | commenting | done
    sa.Column("asked_at", sa.Float, nullable=False),
    sa.Column("answered_at", sa.Float, nullable=True),
)

qa_criteria = sa.Table(
    "qa_criteria",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(80), nullable=False),
    sa.Column("description", sa.Text, nullable=False, default=""),
    sa.Column("weight", sa.Float, nullable=False, default=1.0),
    sa.Column("position", sa.Integer, nullable=False, default=0),
    # Retired criteria stay (old reviews refer to them) but are no longer offered.
    sa.Column("active", sa.Boolean, nullable=False, default=True),
    sa.Column("updated_at", sa.Float, nullable=False),
)

qa_reviews = sa.Table(
    "qa_reviews",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    # A case is sampled at most once, however often the queue is refilled.
    sa.Column("case_id", sa.Integer, nullable=False, unique=True),
    sa.Column("conversation_id", sa.String(64), nullable=False, index=True),
    sa.Column("agent_id", sa.Integer, nullable=True, index=True),
    sa.Column("team", sa.String(40), nullable=True),
    sa.Column("bucket", sa.String(16), nullable=False),  # random | low_csat | escalated | long_handle
    sa.Column("status", sa.String(10), nullable=False, default="queued", index=True),  # queued | done
    sa.Column("reviewer_id", sa.Integer, nullable=True),
    sa.Column("score", sa.Float, nullable=True),  # weighted, 0..100
    sa.Column("comment", sa.Text, nullable=False, default=""),
    sa.Column("sampled_at", sa.Float, nullable=False),
    sa.Column("reviewed_at", sa.Float, nullable=True, index=True),
)

qa_scores = sa.Table(
    "qa_scores",
    metadata,
    sa.Column("review_id", sa.Integer, sa.ForeignKey("qa_reviews.id"), primary_key=True),
    sa.Column("criterion_id", sa.Integer, sa.ForeignKey("qa_criteria.id"), primary_key=True),
    sa.Column("score", sa.Integer, nullable=False),  # 1..5
    sa.Column("weight", sa.Float, nullable=False),  # the criterion's weight when scored
)

# -- the reports' pre-aggregation (reports/rollup.py: what they hold and how they stay correct)
case_facts = sa.Table(
    "report_case_facts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),  # cases.id
    sa.Column("conversation_id", sa.String(64), nullable=False, index=True),
    sa.Column("channel", sa.String(20), nullable=True),
    sa.Column("team", sa.String(40), nullable=True),
    sa.Column("reason", sa.String(40), nullable=True),
    sa.Column("agent_id", sa.Integer, nullable=True),
    sa.Column("status", sa.String(12), nullable=True),
    sa.Column("resolution", sa.String(40), nullable=True),
    sa.Column("created_at", sa.Float, nullable=False, index=True),
    sa.Column("claimed_at", sa.Float, nullable=True),
    sa.Column("closed_at", sa.Float, nullable=True),
    sa.Column("first_reply_at", sa.Float, nullable=True),  # first agent_message while open
    sa.Column("transfers", sa.Integer, nullable=False, default=0),  # transferred events while open
    sa.Column("next_case_at", sa.Float, nullable=True),  # the conversation's next case after this one closed
    sa.Column("next_same_topic_at", sa.Float, nullable=True),  # ... on the same topic (team, else reason)
)

conversation_facts = sa.Table(
    "report_conversation_facts",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),  # conversations.id
    sa.Column("channel", sa.String(20), nullable=True),
    sa.Column("created_at", sa.Float, nullable=False, index=True),
    sa.Column("wrote", sa.Boolean, nullable=False),  # a message_in event
    sa.Column("had_case", sa.Boolean, nullable=False),
    sa.Column("had_ticket", sa.Boolean, nullable=False),
)

faq_days = sa.Table(
    "report_faq_days",
    metadata,
    sa.Column("day", sa.Integer, primary_key=True),  # UTC day number
    sa.Column("channel", sa.String(20), primary_key=True),
    sa.Column("faq_id", sa.String(200), primary_key=True),  # '' holds the day's unanswered count
    sa.Column("served", sa.Integer, nullable=False, default=0),
    sa.Column("helpful", sa.Integer, nullable=False, default=0),
    sa.Column("unhelpful", sa.Integer, nullable=False, default=0),
    sa.Column("missed", sa.Integer, nullable=False, default=0),
)

rollup_state = sa.Table(
    "report_rollup_state",
    metadata,
    sa.Column("name", sa.String(20), primary_key=True),  # "events" | "tickets"
    sa.Column("last_id", sa.Integer, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

# Other rooms' tables, read here (reports/ may import them: docs/architecture.md).
events = conversation_events

# Indexes the report queries need on other rooms' tables (docs/benchmarks.md, "Reports at
# scale"). Declared on the shared metadata so fresh databases get them from create_all;
# ensure_indexes adds them to databases created before this room existed.
_EXTRA_INDEXES = (
    sa.Index("ix_events_kind_at", conversation_events.c.kind, conversation_events.c.at),
    sa.Index("ix_events_conv_kind_at", conversation_events.c.conversation_id, conversation_events.c.kind, conversation_events.c.at),
)
_OWNED_ELSEWHERE = (
    ("ix_cases_created_at", "cases", ("created_at",)),
    ("ix_cases_conv_created", "cases", ("conversation_id", "created_at")),
    ("ix_conversations_created_at", "conversations", ("created_at",)),
    ("ix_conversations_updated_at", "conversations", ("updated_at",)),  # the CSAT idle sweep (reports/csat_prompt.py)
)


def ensure_indexes(engine: sa.engine.Engine) -> None:
    """Create the reports' indexes if missing (idempotent; run once per process)."""
    with engine.begin() as conn:
        for index in _EXTRA_INDEXES:
            index.create(conn, checkfirst=True)
        for name, table, columns in _OWNED_ELSEWHERE:
            conn.execute(sa.text(f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({', '.join(columns)})"))

__all__ = ["accounts", "case_facts", "case_routing", "cases", "conversation_facts", "conversations", "csat", "csat_requests", "events", "faq_days",
           "messages", "qa_criteria", "qa_reviews", "qa_scores", "rollup_state", "tickets"]
