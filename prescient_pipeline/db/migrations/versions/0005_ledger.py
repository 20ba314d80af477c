"""resolution checks of held markets; transfers outlive a deleted portfolio

`market_resolution_checks` records when Gamma last answered about each held market and since
when a held market is known nowhere. A transfer's log row keeps both portfolio names and loses
only the id of a deleted side (ON DELETE SET NULL instead of CASCADE), so the other side's
record stays readable.

Revision ID: 0005_ledger
Revises: 0005_venue
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_ledger"
down_revision = "0005_venue"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
LOG = "portfolio_rebalancing_log"
SIDES = ("from", "to")


def _replace_foreign_keys(ondelete: str) -> None:
    for side in SIDES:
        name = f"{LOG}_{side}_portfolio_id_fkey"
        op.drop_constraint(name, LOG, type_="foreignkey")
        op.create_foreign_key(name, LOG, "portfolios", [f"{side}_portfolio_id"], ["portfolio_id"], ondelete=ondelete)


def upgrade() -> None:
    op.create_table(
        "market_resolution_checks",
        sa.Column("market_id", sa.Text(), nullable=False),
        sa.Column("gamma_checked_at", TS),
        sa.Column("missing_since", TS),
        sa.PrimaryKeyConstraint("market_id"),
    )
    for side in SIDES:
        op.add_column(LOG, sa.Column(f"{side}_portfolio_name", sa.Text()))
        op.execute(
            f"UPDATE {LOG} l SET {side}_portfolio_name = p.name FROM portfolios p "
            f"WHERE p.portfolio_id = l.{side}_portfolio_id"
        )
    _replace_foreign_keys("SET NULL")


def downgrade() -> None:
    # Rows whose portfolio is gone cannot point at it again: they go, as CASCADE would have done.
    op.execute(f"DELETE FROM {LOG} WHERE from_portfolio_id IS NULL OR to_portfolio_id IS NULL")
    _replace_foreign_keys("CASCADE")
    for side in reversed(SIDES):
        op.drop_column(LOG, f"{side}_portfolio_name")
    op.drop_table("market_resolution_checks")
