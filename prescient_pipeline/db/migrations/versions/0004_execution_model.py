"""market rules, fee parameters and book depth; fills record their evidence

Markets and their snapshots keep the venue's tick size, minimum order size, fee parameters,
protocol version and the top levels of the book. Trades record how they were priced (depth,
top of book or history), the levels taken, the mid and the slippage against it. Positions keep
the mark at entry (what exits compare with) and their value at the bid.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

PRICE = sa.Numeric(12, 8)
SHARES = sa.Numeric(24, 8)
RATIO = sa.Numeric(18, 8)
MONEY = sa.Numeric(20, 6)


def _market_columns() -> list[sa.Column]:
    return [
        sa.Column("protocol_version", sa.Text()),
        sa.Column("tick_size", PRICE),
        sa.Column("min_order_size", SHARES),
        sa.Column("fees_enabled", sa.Boolean()),
        sa.Column("fee_rate", RATIO),
        sa.Column("fee_exponent", RATIO),
        sa.Column("fee_taker_only", sa.Boolean()),
        sa.Column("bids", postgresql.JSONB(astext_type=sa.Text())),
        sa.Column("asks", postgresql.JSONB(astext_type=sa.Text())),
    ]


def upgrade() -> None:
    for column in _market_columns():
        op.add_column("markets", column)
    op.add_column("market_snapshots", sa.Column("last_trade_price", PRICE))
    for column in _market_columns():
        op.add_column("market_snapshots", column)
    op.add_column("trades", sa.Column("evidence", sa.Text()))
    op.add_column("trades", sa.Column("levels", postgresql.JSONB(astext_type=sa.Text())))
    op.add_column("trades", sa.Column("mid_price", PRICE))
    op.add_column("trades", sa.Column("slippage", MONEY))
    op.add_column("trades", sa.Column("requested_amount", MONEY))
    op.create_check_constraint("ck_trades_evidence", "trades", "evidence IN ('depth', 'top_of_book', 'history')")
    op.add_column("portfolio_positions", sa.Column("entry_mark", PRICE))
    op.add_column("portfolio_positions", sa.Column("liquidation_value", MONEY))
    op.add_column("portfolios", sa.Column("liquidation_value", MONEY))


def downgrade() -> None:
    op.drop_column("portfolios", "liquidation_value")
    op.drop_column("portfolio_positions", "liquidation_value")
    op.drop_column("portfolio_positions", "entry_mark")
    op.drop_constraint("ck_trades_evidence", "trades")
    for name in ("requested_amount", "slippage", "mid_price", "levels", "evidence"):
        op.drop_column("trades", name)
    for column in reversed(_market_columns()):
        op.drop_column("market_snapshots", column.name)
        op.drop_column("markets", column.name)
    op.drop_column("market_snapshots", "last_trade_price")
