"""Tables of the human side: accounts (agents, supervisors, editors), their sessions, and cases."""
from __future__ import annotations

import sqlalchemy as sa

from core.db import metadata

accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("username", sa.String(80), nullable=False, unique=True),
    sa.Column("display_name", sa.String(120), nullable=False),
    sa.Column("password_hash", sa.String(200), nullable=False),
    sa.Column("role", sa.String(20), nullable=False),  # agent | supervisor | editor | manager
    sa.Column("created_at", sa.Float, nullable=False),
)

sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), nullable=False, index=True),
    sa.Column("expires_at", sa.Float, nullable=False),
)

cases = sa.Table(
    "cases",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("conversation_id", sa.String(64), nullable=False, index=True),
    sa.Column("channel", sa.String(20), nullable=False),
    sa.Column("status", sa.String(12), nullable=False, index=True),  # waiting | assigned | closed | cancelled
    sa.Column("reason", sa.String(40), nullable=False),
    sa.Column("detail", sa.Text, nullable=False, default=""),
    sa.Column("signals", sa.Text, nullable=False, default="{}"),
    sa.Column("priority", sa.Integer, nullable=False, default=0),
    sa.Column("agent_id", sa.Integer, sa.ForeignKey("accounts.id"), nullable=True, index=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("claimed_at", sa.Float, nullable=True),
    sa.Column("closed_at", sa.Float, nullable=True),
    sa.Column("resolution", sa.String(40), nullable=True),
)

# -- routing, presence and the console (docs/agents.md) -------------------------------------
# Separate tables (not new columns on `cases`) so existing databases upgrade by create_all.

agent_status = sa.Table(
    "agent_status",
    metadata,
    sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), primary_key=True),
    sa.Column("status", sa.String(10), nullable=False, default="offline"),  # online | away | offline
    sa.Column("teams", sa.Text, nullable=False, default=""),  # comma-separated team names
    sa.Column("capacity", sa.Integer, nullable=False, default=3),
    sa.Column("seen_at", sa.Float, nullable=False, default=0.0),  # last console check-in
    sa.Column("last_assigned_at", sa.Float, nullable=False, default=0.0),  # idle-longest ordering
    sa.Column("updated_at", sa.Float, nullable=False, default=0.0),
)

case_routing = sa.Table(
    "case_routing",
    metadata,
    sa.Column("case_id", sa.Integer, sa.ForeignKey("cases.id"), primary_key=True),
    sa.Column("team", sa.String(40), nullable=True, index=True),
    sa.Column("tier", sa.String(40), nullable=True),
    sa.Column("severity", sa.Integer, nullable=False, default=0),
    sa.Column("assigned_by", sa.String(12), nullable=True),  # claim | auto | transfer | takeover
    sa.Column("announced", sa.Boolean, nullable=False, default=True),  # customer told who joined
    sa.Column("notified_position", sa.Integer, nullable=True),
    sa.Column("notified_at", sa.Float, nullable=True),
)

case_notes = sa.Table(
    "case_notes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("conversation_id", sa.String(64), nullable=False, index=True),
    sa.Column("case_id", sa.Integer, sa.ForeignKey("cases.id"), nullable=True),
    sa.Column("author_id", sa.Integer, sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("kind", sa.String(12), nullable=False, default="note"),  # note | transfer
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

canned_responses = sa.Table(
    "canned_responses",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("title", sa.String(120), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("created_by", sa.Integer, sa.ForeignKey("accounts.id"), nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
)

tickets = sa.Table(
    "tickets",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("conversation_id", sa.String(64), nullable=False, index=True),
    sa.Column("channel", sa.String(20), nullable=False),
    sa.Column("case_id", sa.Integer, sa.ForeignKey("cases.id"), nullable=True),
    sa.Column("status", sa.String(10), nullable=False, index=True),  # draft | open | answered | closed
    sa.Column("contact", sa.String(200), nullable=False, default=""),
    sa.Column("team", sa.String(40), nullable=True),
    sa.Column("reason", sa.String(40), nullable=False, default=""),
    sa.Column("detail", sa.Text, nullable=False, default=""),
    sa.Column("transcript", sa.Text, nullable=False, default="[]"),  # JSON snapshot at opening
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

ticket_replies = sa.Table(
    "ticket_replies",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("ticket_id", sa.Integer, sa.ForeignKey("tickets.id"), nullable=False, index=True),
    sa.Column("author_id", sa.Integer, sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("message_id", sa.Integer, nullable=True),  # the conversation message that carried it
)
