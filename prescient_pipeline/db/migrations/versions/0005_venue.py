"""augmented negRisk flags: events.neg_risk_augmented, markets.neg_risk_other

An augmented negRisk event lists placeholder and "Other" outcomes beside its named ones; only the
named ones may be traded, and they never form a complete basket.

Revision ID: 0005_venue
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_venue"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("events", sa.Column("neg_risk_augmented", sa.Boolean(), nullable=False,
                                      server_default=sa.text("false")))
    op.add_column("markets", sa.Column("neg_risk_other", sa.Boolean(), nullable=False,
                                       server_default=sa.text("false")))


def downgrade() -> None:
    op.drop_column("markets", "neg_risk_other")
    op.drop_column("events", "neg_risk_augmented")
