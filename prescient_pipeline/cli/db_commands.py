"""`prescient db upgrade`."""

from __future__ import annotations

from . import Output


def register(sub, common) -> None:
    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    up = db_sub.add_parser("upgrade", parents=[common], help="apply migrations (idempotent)")
    up.set_defaults(handler=_upgrade)


def _upgrade(args) -> Output:
    from ..db.engine import get_engine
    from ..db.migrate import upgrade
    from ..db.urls import redact

    engine = get_engine()
    before, after = upgrade(engine)
    url = redact(engine.url.render_as_string(hide_password=False))
    text = f"database {url}: " + (f"already at {after}" if before == after else f"upgraded {before or 'empty'} -> {after}")
    return Output({"database": url, "before": before, "after": after, "changed": before != after}, text)
