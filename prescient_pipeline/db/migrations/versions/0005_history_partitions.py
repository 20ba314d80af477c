"""market history partitioned by day; a table of refreshes

`market_snapshots` grows by one row per market per refresh (about 1.2 million a day at 50,000
markets). It becomes a table partitioned by day on `ts`, so reads of a time window touch only
that window's partitions and old days can be thinned a partition at a time. Existing rows move
into their day's partition. `market_refreshes` lists every full refresh (time, market count),
so "the latest refresh at or before T" is one index lookup, not a scan of the history.

Revision ID: 0005_history
Revises: 0005_venue
"""

import sqlalchemy as sa
from alembic import op

from prescient_pipeline.db.history_partitions import create_partitions

revision = "0005_history"
down_revision = "0005_venue"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "market_refreshes",
        sa.Column("ts", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("markets", sa.Integer(), nullable=False),
        sa.Column("events", sa.Integer()),
    )
    op.execute(
        "INSERT INTO market_refreshes (ts, markets) "
        "SELECT ts, count(*) FROM market_snapshots WHERE source = 'gamma' GROUP BY ts"
    )

    op.execute("ALTER TABLE market_snapshots RENAME TO market_snapshots_unpartitioned")
    op.execute("ALTER INDEX ix_market_snapshots_market_ts RENAME TO ix_market_snapshots_unpartitioned_market_ts")
    op.execute("ALTER INDEX ix_market_snapshots_ts RENAME TO ix_market_snapshots_unpartitioned_ts")
    op.execute("ALTER TABLE market_snapshots_unpartitioned RENAME CONSTRAINT market_snapshots_pkey "
               "TO market_snapshots_unpartitioned_pkey")
    # Every column as it stands (later migrations may have added some), partitioned by day.
    op.execute("CREATE TABLE market_snapshots (LIKE market_snapshots_unpartitioned INCLUDING DEFAULTS) "
               "PARTITION BY RANGE (ts)")
    op.execute("ALTER TABLE market_snapshots ADD CONSTRAINT market_snapshots_pkey PRIMARY KEY (snapshot_id, ts)")
    op.execute("ALTER SEQUENCE market_snapshots_snapshot_id_seq OWNED BY market_snapshots.snapshot_id")
    op.create_index("ix_market_snapshots_market_ts", "market_snapshots", ["market_id", "ts"])
    op.create_index("ix_market_snapshots_ts", "market_snapshots", ["ts"])

    conn = op.get_bind()
    days = conn.execute(sa.text(
        "SELECT DISTINCT (ts AT TIME ZONE 'UTC')::date FROM market_snapshots_unpartitioned"
    )).scalars().all()
    create_partitions(conn, days)
    op.execute("INSERT INTO market_snapshots SELECT * FROM market_snapshots_unpartitioned")
    op.execute("DROP TABLE market_snapshots_unpartitioned")


def downgrade() -> None:
    op.execute("CREATE TABLE market_snapshots_flat (LIKE market_snapshots INCLUDING DEFAULTS)")
    op.execute("INSERT INTO market_snapshots_flat SELECT * FROM market_snapshots")
    op.execute("ALTER SEQUENCE market_snapshots_snapshot_id_seq OWNED BY market_snapshots_flat.snapshot_id")
    op.execute("DROP TABLE market_snapshots")
    op.execute("ALTER TABLE market_snapshots_flat RENAME TO market_snapshots")
    op.execute("ALTER TABLE market_snapshots ADD CONSTRAINT market_snapshots_pkey PRIMARY KEY (snapshot_id)")
    op.create_index("ix_market_snapshots_market_ts", "market_snapshots", ["market_id", "ts"])
    op.create_index("ix_market_snapshots_ts", "market_snapshots", ["ts"])
    op.drop_table("market_refreshes")
