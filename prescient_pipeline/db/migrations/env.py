"""Alembic environment: runs on the connection handed over by prescient_pipeline.db.migrate."""

from alembic import context

from prescient_pipeline.db.history_partitions import is_partition
from prescient_pipeline.db.schema import metadata


def include_name(name, type_, parent_names) -> bool:
    # A day's partition of market_snapshots is data, not schema: the parent is compared.
    return not (type_ == "table" and is_partition(name))


connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, compare_type=True, include_name=include_name)
with context.begin_transaction():
    context.run_migrations()
