"""Alembic environment: runs on the connection handed over by prescient_pipeline.db.migrate."""

from alembic import context

from prescient_pipeline.db.history_partitions import compared_by_alembic
from prescient_pipeline.db.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, compare_type=True,
                  include_name=compared_by_alembic)
with context.begin_transaction():
    context.run_migrations()
