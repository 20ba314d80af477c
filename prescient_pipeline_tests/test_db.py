from pathlib import Path

from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url

from prescient_pipeline.db import migrate, schema
from prescient_pipeline.db.urls import libpq_url, sqlalchemy_url, with_database


def test_urls_are_normalised_for_psycopg2_and_libpq():
    assert sqlalchemy_url("postgresql://u:p@h:5/db") == "postgresql+psycopg2://u:p@h:5/db"
    assert sqlalchemy_url("postgres://u@h/db") == "postgresql+psycopg2://u@h/db"
    assert sqlalchemy_url("postgresql+psycopg://u@h/db") == "postgresql+psycopg2://u@h/db"
    assert libpq_url("postgresql+psycopg2://u@h/db") == "postgresql://u@h/db"
    moved = make_url(with_database("postgresql://u:p@h:5/a?host=/tmp/s", "b"))
    assert (moved.database, moved.password, moved.query["host"]) == ("b", "p", "/tmp/s")


def test_a_path_with_spaces_reaches_libpq_and_sqlalchemy_alike():
    # SQLAlchemy writes the space as `+`, which libpq would take literally: a PRESCIENT_HOME with
    # a space in it then could not reach its embedded server's socket or password file.
    from psycopg2.extensions import parse_dsn

    from prescient_pipeline.db.embedded import server_url

    url = server_url(Path("/tmp/my home/sock"), Path("/tmp/my home/pgpass"))
    assert (parse_dsn(url)["host"], parse_dsn(url)["passfile"]) == ("/tmp/my home/sock", "/tmp/my home/pgpass")
    moved = with_database(url, "prescient")
    assert parse_dsn(moved)["host"] == make_url(sqlalchemy_url(moved)).query["host"] == "/tmp/my home/sock"
    assert parse_dsn(libpq_url("postgresql://u@h/db?application_name=a%2Bb"))["application_name"] == "a+b"


def test_every_table_exists_after_upgrade(engine):
    names = set(inspect(engine).get_table_names())
    assert {t.name for t in schema.metadata.sorted_tables} <= names
    assert "alembic_version" in names


def test_upgrade_is_idempotent(engine):
    before, after = migrate.upgrade(engine)
    assert before == after == migrate.head_revision()


def test_schema_matches_the_migrations(engine):
    """Autogenerate finds nothing to do: the models and the migrations agree."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from prescient_pipeline.db.history_partitions import compared_by_alembic

    with engine.connect() as conn:  # as migrations/env.py compares: partitions are data
        diff = compare_metadata(MigrationContext.configure(conn, opts={"include_name": compared_by_alembic}),
                                schema.metadata)
    assert diff == []


def test_tables_updated_in_place_leave_room_for_heap_only_updates(engine):
    """The migrations give each table the storage parameters the models declare."""
    declared = {t.name: t.dialect_options["postgresql"]["with"] for t in schema.metadata.sorted_tables
                if t.dialect_options["postgresql"]["with"]}
    assert set(declared) == {"events", "markets", "portfolios", "portfolio_positions"}
    with engine.connect() as conn:
        stored = dict(conn.execute(text(
            "SELECT relname, reloptions FROM pg_class WHERE relname = ANY(:names) AND relkind = 'r'"
        ), {"names": list(declared)}).all())
    assert stored == {name: [f"{k}={v}" for k, v in options.items()] for name, options in declared.items()}


def test_deleting_a_portfolio_cascades(engine):
    with engine.begin() as conn:
        pid = conn.execute(
            schema.portfolios.insert()
            .values(name="p", strategy_type="momentum", initial_balance=100, current_balance=100)
            .returning(schema.portfolios.c.portfolio_id)
        ).scalar_one()
        conn.execute(
            schema.portfolio_history.insert().values(
                portfolio_id=pid, snapshot_date="2026-01-01", timestamp=text("now()"), cash=100,
                positions_value=0, total_value=100, initial_balance=100, net_transfers=0,
                realized_pnl=0, unrealized_pnl=0, fees=0, open_positions=0, trade_count=0,
            )
        )
        conn.execute(schema.portfolios.delete().where(schema.portfolios.c.portfolio_id == pid))
        assert conn.execute(text("SELECT count(*) FROM portfolio_history")).scalar() == 0
