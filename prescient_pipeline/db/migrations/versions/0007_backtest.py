"""backtest portfolios: a mode per portfolio, the replayed days, the observation a fill used

`portfolios.mode` is 'live' (every existing portfolio) or 'backtest', with the window a backtest
replays. `backtest_days` records each day a backtest portfolio replayed (a day is never replayed
twice). `trades.observed_at` is the time of the market observation a replayed fill was priced
from, so a check can prove no fill used an observation later than its signal.

Revision ID: 0007_backtest
Revises: 0006_histimport
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_backtest"
down_revision = "0006_histimport"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
MONEY = sa.Numeric(20, 6)


def upgrade() -> None:
    op.add_column("portfolios", sa.Column("mode", sa.Text(), nullable=False, server_default=sa.text("'live'")))
    op.add_column("portfolios", sa.Column("backtest_from", sa.Date()))
    op.add_column("portfolios", sa.Column("backtest_to", sa.Date()))
    op.create_check_constraint("ck_portfolios_mode", "portfolios", "mode IN ('live', 'backtest')")
    op.add_column("trades", sa.Column("observed_at", TS))
    op.create_table(
        "backtest_days",
        sa.Column("portfolio_id", sa.Integer(), sa.ForeignKey("portfolios.portfolio_id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("started_at", TS, nullable=False, server_default=sa.text("now()")),
        sa.Column("replayed_at", TS),
        sa.Column("total_value", MONEY),
        sa.Column("pnl", MONEY),
        sa.Column("fills", sa.Integer()),
        sa.Column("fees", MONEY),
        sa.Column("settlements", sa.Integer()),
        sa.Column("exits", sa.Integer()),
    )


def downgrade() -> None:
    op.drop_table("backtest_days")
    op.drop_column("trades", "observed_at")
    op.drop_constraint("ck_portfolios_mode", "portfolios", type_="check")
    op.drop_column("portfolios", "backtest_to")
    op.drop_column("portfolios", "backtest_from")
    op.drop_column("portfolios", "mode")
