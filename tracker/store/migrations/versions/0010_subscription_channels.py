"""One profile, a different mode per channel: a subscriber may follow a profile once per
channel set (Telegram instantly, email as a daily digest), so ``subscriptions`` loses its
unique (subscriber, profile) constraint for a plain index on the same columns; and
``opt_outs`` remembers the subscriptions ended from an unsubscribe link, so a subscriber
file that still lists them does not bring them back.

Nothing is carried over: every existing subscription is still one per profile.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tracker.store.db import JSONType, UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subscriptions") as batch:
        batch.drop_constraint("uq_subscriptions_profile", type_="unique")
        batch.create_index("ix_subscriptions_subscriber_profile", ["subscriber_id", "profile"])
    op.create_table(
        "opt_outs",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("subscriber_id", sa.Integer(), sa.ForeignKey("subscribers.id"), nullable=False),
        sa.Column("profile", sa.String(100), nullable=False),
        sa.Column("channels", JSONType, nullable=False),
        sa.Column("mode", sa.String(10), nullable=False),
        sa.Column("token", sa.String(64), nullable=False, unique=True),
        sa.Column("at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_opt_outs_subscriber_id", "opt_outs", ["subscriber_id"])


def downgrade() -> None:
    op.drop_index("ix_opt_outs_subscriber_id", "opt_outs")
    op.drop_table("opt_outs")
    # a profile followed twice (once per channel set) keeps its oldest subscription
    subscriptions = sa.table("subscriptions", sa.column("id"), sa.column("subscriber_id"),
                             sa.column("profile"))
    keep = (sa.select(sa.func.min(subscriptions.c.id))
            .group_by(subscriptions.c.subscriber_id, subscriptions.c.profile))
    op.get_bind().execute(subscriptions.delete().where(subscriptions.c.id.not_in(keep)))
    with op.batch_alter_table("subscriptions") as batch:
        batch.drop_index("ix_subscriptions_subscriber_profile")
        batch.create_unique_constraint("uq_subscriptions_profile", ["subscriber_id", "profile"])
