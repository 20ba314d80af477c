"""imported market history: grid times in market_refreshes, resolutions, imported days

`market_refreshes` gains a `source`: 'gamma' for live refreshes (every existing row) and
'history' for the grid times of imported history, which may share a timestamp with a live
refresh, so the key becomes (ts, source). `market_resolutions` holds how each imported market
resolved; `history_imports` which days were imported (a completed day is not imported again).

Revision ID: 0006_histimport
Revises: 0005_history
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0006_histimport"
down_revision = "0005_history"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("market_refreshes",
                  sa.Column("source", sa.Text(), nullable=False, server_default=sa.text("'gamma'")))
    op.create_check_constraint("ck_market_refreshes_source", "market_refreshes", "source IN ('gamma', 'history')")
    op.drop_constraint("market_refreshes_pkey", "market_refreshes", type_="primary")
    op.create_primary_key("market_refreshes_pkey", "market_refreshes", ["ts", "source"])

    op.create_table(
        "market_resolutions",
        sa.Column("market_id", sa.Text(), primary_key=True),
        sa.Column("closed_time", sa.DateTime(timezone=True)),
        sa.Column("outcome_prices", JSONB()),
        sa.Column("uma_resolution_status", sa.Text()),
        sa.Column("resolved", sa.Boolean(), nullable=False),
        sa.Column("winner", sa.Text()),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("winner IN ('YES', 'NO', 'SPLIT')", name="ck_market_resolutions_winner"),
    )
    op.create_table(
        "history_imports",
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("fidelity", sa.Integer(), nullable=False),
        sa.Column("min_volume", sa.Numeric(20, 6)),
        sa.Column("markets", sa.Integer(), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("through", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True)),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
        sa.CheckConstraint("fidelity >= 1", name="ck_history_imports_fidelity"),
    )


def downgrade() -> None:
    op.drop_table("history_imports")
    op.drop_table("market_resolutions")
    op.execute("DELETE FROM market_refreshes WHERE source <> 'gamma'")
    op.drop_constraint("market_refreshes_pkey", "market_refreshes", type_="primary")
    op.create_primary_key("market_refreshes_pkey", "market_refreshes", ["ts"])
    op.drop_constraint("ck_market_refreshes_source", "market_refreshes", type_="check")
    op.drop_column("market_refreshes", "source")
