"""`prescient db upgrade`, `prescient db prune`."""

from __future__ import annotations

from ..db.engine import get_engine
from ..db.migrate import upgrade
from ..db.urls import redact
from . import Output


def register(sub, common) -> None:
    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    up = db_sub.add_parser("upgrade", parents=[common], help="apply migrations (idempotent)")
    up.set_defaults(handler=_upgrade)
    prune = db_sub.add_parser("prune", parents=[common],
                              help="thin market history older than the retention window (what replays read stays)")
    prune.add_argument("--keep-days", type=int, default=None,
                       help="days kept whole (default PRESCIENT_HISTORY_KEEP_DAYS, 90)")
    prune.add_argument("--dry-run", action="store_true", help="count what would go; delete nothing")
    prune.set_defaults(handler=_prune)


def _upgrade(args) -> Output:
    engine = get_engine()
    before, after = upgrade(engine)
    url = redact(engine.url.render_as_string(hide_password=False))
    text = f"database {url}: " + (f"already at {after}" if before == after else f"upgraded {before or 'empty'} -> {after}")
    return Output({"database": url, "before": before, "after": after, "changed": before != after}, text)


def _prune(args) -> Output:
    from ..config import settings
    from ..db.migrate import ensure_schema
    from ..errors import InputError
    from ..services.retention import prune_history

    keep = settings().history_keep_days if args.keep_days is None else args.keep_days
    if keep < 1:
        raise InputError(f"--keep-days must be at least 1, not {keep}")
    report = prune_history(ensure_schema(get_engine()), keep, dry_run=args.dry_run)
    verb = "would remove" if report.dry_run else "removed"
    text = (f"market history before {report.cutoff} ({report.days} days): {verb} {report.snapshots_removed:,} "
            f"observations and {report.refreshes_removed:,} refreshes; kept what replays of those days read, "
            "every observation of held markets and backtest inputs")
    return Output(vars(report), text)
