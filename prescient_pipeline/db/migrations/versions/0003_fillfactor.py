"""leave room in pages of tables updated in place, for heap-only updates

Every refresh rewrites each row of `markets` and `events`; every price update rewrites each
open position and its portfolio. None of those updates changes an indexed column, so with free
room on the page PostgreSQL updates the row without new index entries. Pages written from now
on keep the room; `VACUUM FULL` applies it to existing ones.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TABLES = ("events", "markets", "portfolios", "portfolio_positions")


def upgrade() -> None:
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} SET (fillfactor = 70)")


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} RESET (fillfactor)")
