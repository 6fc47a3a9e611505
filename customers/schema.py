"""Tables of the customers room.

Conversations are linked through `customer_conversations` (not a column on `conversations`), so
this room never alters another room's table and existing databases upgrade by create_all.
Cases and tickets reach the customer through their conversation.
"""
from __future__ import annotations

import sqlalchemy as sa

from core.db import metadata

customers = sa.Table(
    "customers",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False, default=""),
    sa.Column("email", sa.String(254), nullable=False, default="", index=True),
    sa.Column("phone", sa.String(40), nullable=False, default=""),
    sa.Column("tier", sa.String(40), nullable=False, default=""),
    sa.Column("notes", sa.Text, nullable=False, default=""),
    sa.Column("merged_into", sa.Integer, nullable=True, index=True),  # set on the record a merge absorbed
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

# One row per (channel, external id): a Telegram user id, a site's verified user id ("site:<key>").
customer_identities = sa.Table(
    "customer_identities",
    metadata,
    sa.Column("channel", sa.String(80), nullable=False),
    sa.Column("external_id", sa.String(200), nullable=False),
    sa.Column("customer_id", sa.Integer, sa.ForeignKey("customers.id"), nullable=False, index=True),
    sa.Column("verified", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.PrimaryKeyConstraint("channel", "external_id", name="pk_customer_identities"),
)

customer_conversations = sa.Table(
    "customer_conversations",
    metadata,
    sa.Column("conversation_id", sa.String(64), primary_key=True),  # a conversation has one customer
    sa.Column("customer_id", sa.Integer, sa.ForeignKey("customers.id"), nullable=False, index=True),
    sa.Column("linked_at", sa.Float, nullable=False),
    sa.Column("how", sa.String(20), nullable=False, default=""),  # identity | telegram | agent | merge
)
