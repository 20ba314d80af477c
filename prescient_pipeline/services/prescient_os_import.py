"""`prescient import prescient-os`: read a Prescient OS database, write its portfolios here.

Reads the original's `portfolios`, `portfolio_positions`, `trades`, `trading_signals`,
`portfolio_history` and `portfolio_rebalancing_log` (all but the first two may be absent),
recomputes every figure with our ledger rules (domain/prescient_os.py) and writes all
portfolios, and the transfers between them, in one transaction: either every
portfolio arrives with balanced books, or nothing is written. A dry run reads and recomputes
the same way and writes nothing. The original database is only read.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal

from sqlalchemy import Engine, create_engine, insert, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from ..db.schema import (
    portfolio_history,
    portfolio_positions,
    portfolio_rebalancing_log,
    portfolios,
    trades,
    trading_signals,
)
from ..db.urls import redact, sqlalchemy_url
from ..domain.accounting import ZERO, check_balanced, to_money, to_price
from ..domain.prescient_os import (
    SIDES,
    ImportProblem,
    OldHistory,
    OldPortfolio,
    OldPosition,
    OldTransfer,
    PortfolioPlan,
    plan_portfolio,
    position_marks,
    utc,
)
from ..errors import InputError
from .history import store_performance
from .ledger import refresh_totals

REQUIRED_TABLES = ("portfolios", "portfolio_positions")
OPTIONAL_TABLES = ("trades", "trading_signals", "portfolio_history", "portfolio_rebalancing_log")


@dataclass
class Source:
    portfolios: list[OldPortfolio]
    positions: dict[int, list[OldPosition]] = field(default_factory=lambda: defaultdict(list))
    history: dict[int, list[OldHistory]] = field(default_factory=lambda: defaultdict(list))
    trades: dict[int, list[dict]] = field(default_factory=lambda: defaultdict(list))
    signals: dict[int, list[dict]] = field(default_factory=lambda: defaultdict(list))
    transfers: list[OldTransfer] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# --- reading the original ----------------------------------------------------------------------


def _source_engine(url: str) -> Engine:
    try:
        return create_engine(sqlalchemy_url(url.strip()), poolclass=NullPool)
    except Exception:
        raise InputError(f"--url must be a PostgreSQL URL (postgresql://user@host:port/database), "
                         f"got {redact(url)}") from None


def read_source(url: str) -> Source:
    engine = _source_engine(url)
    try:
        with engine.connect() as conn:
            present = set(conn.execute(text(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
            )).scalars())
            missing = [t for t in REQUIRED_TABLES if t not in present]
            if missing:
                raise InputError(f"{redact(url)} has no {' or '.join(missing)} table: not a Prescient OS database")

            def rows(table: str, order: str) -> list[dict]:
                if table not in present:
                    return []
                return [dict(r._mapping) for r in conn.execute(text(f"SELECT * FROM {table} ORDER BY {order}"))]

            source = Source([_old_portfolio(r) for r in rows("portfolios", "portfolio_id")])
            source.notes += [f"the original has no {t} table" for t in OPTIONAL_TABLES if t not in present]
            orphans = 0
            for table, order, target, build in (
                ("portfolio_positions", "id", source.positions, _old_position),
                ("portfolio_history", "snapshot_date", source.history, _old_history),
                ("trades", "id", source.trades, dict),
                ("trading_signals", "id", source.signals, dict),
            ):
                for row in rows(table, order):
                    if row.get("portfolio_id") is None:
                        orphans += 1
                        continue
                    target[row["portfolio_id"]].append(build(row))
            source.transfers = [
                OldTransfer(ref=r.get("id"), at=utc(r.get("timestamp")), from_ref=r.get("from_portfolio_id"),
                            to_ref=r.get("to_portfolio_id"), amount=_dec(r["amount"]), reason=r.get("reason"),
                            executed_by=r.get("executed_by"))
                for r in rows("portfolio_rebalancing_log", "id")
                if r.get("amount") is not None and r.get("timestamp") is not None
            ]
            if orphans:
                source.notes.append(f"{orphans} rows belong to no portfolio (portfolio_id is NULL): not imported")
            return source
    finally:
        engine.dispose()


def _dec(value) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _config(value) -> dict:
    """JSONB arrives as a dict; a config kept as JSON text is parsed; anything else is empty."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return {}
    return value if isinstance(value, dict) else {}


def _old_portfolio(r: dict) -> OldPortfolio:
    return OldPortfolio(
        ref=r["portfolio_id"], name=r["name"], description=r.get("description"),
        strategy_type=r.get("strategy_type") or "", strategy_config=_config(r.get("strategy_config")),
        initial_balance=_dec(r["initial_balance"]), current_balance=_dec(r.get("current_balance")) or ZERO,
        total_profit_loss=_dec(r.get("total_profit_loss")) or ZERO, status=r.get("status") or "active",
        max_positions=r.get("max_positions"), max_position_size=_dec(r.get("max_position_size")),
        max_total_exposure=_dec(r.get("max_total_exposure")), created_at=utc(r.get("created_at")),
        last_price_update=utc(r.get("last_price_update")),
    )


def _old_position(r: dict) -> OldPosition:
    return OldPosition(
        ref=r.get("id"), trade_id=r.get("trade_id"), market_id=str(r["market_id"]),
        question=r.get("market_question"), action=r.get("action") or "", amount=_dec(r["amount"]),
        entry_price=_dec(r["entry_price"]), entry_at=r.get("entry_timestamp"), status=r.get("status") or "open",
        current_pnl=_dec(r.get("current_pnl")), realized_pnl=_dec(r.get("realized_pnl")),
        exit_price=_dec(r.get("exit_price")), exit_at=r.get("exit_timestamp"),
    )


def _old_history(r: dict) -> OldHistory:
    return OldHistory(
        snapshot_date=r["snapshot_date"].date() if hasattr(r["snapshot_date"], "date") else r["snapshot_date"],
        timestamp=r.get("timestamp"), balance=_dec(r.get("balance")), total_invested=_dec(r.get("total_invested")),
        total_profit_loss=_dec(r.get("total_profit_loss")), total_value=_dec(r.get("total_value")),
    )


# --- planning ----------------------------------------------------------------------------------


def plan_import(engine: Engine, source: Source, name_suffix: str = "") -> list[PortfolioPlan]:
    """A plan per original portfolio; InputError when one cannot be brought over or its name is taken."""
    plans, problems = [], []
    for old in source.portfolios:
        if any(p.entry_at is None for p in source.positions[old.ref]):
            problems.append(f"portfolio {old.ref} ({old.name}): a position has no entry_timestamp")
            continue
        try:
            plans.append(plan_portfolio(old, source.positions[old.ref], source.history[old.ref],
                                        source.transfers, name=f"{old.name}{name_suffix}"))
        except ImportProblem as exc:
            problems.append(str(exc) if str(exc).startswith("portfolio ") else f"portfolio {old.ref} ({old.name}): {exc}")
    if problems:
        raise InputError("cannot import: " + "; ".join(problems))
    for plan in plans:
        _row_notes(plan, source)
    with engine.connect() as conn:
        taken = set(conn.execute(select(portfolios.c.name)).scalars())
    clashes = [p.name for p in plans if p.name in taken]
    if clashes:
        raise InputError(f"portfolios named {', '.join(repr(n) for n in clashes)} already exist here; "
                         f"rename them or import with --name-suffix")
    return plans


# --- writing -----------------------------------------------------------------------------------


def _signal_values(r: dict) -> dict | None:
    """An original signal as our columns, or None when it has no YES/NO side, positive amount or time."""
    side = SIDES.get((r.get("action") or "").strip().lower())
    amount = _dec(r.get("amount"))
    as_of = utc(r.get("timestamp"))
    if side is None or amount is None or amount <= 0 or as_of is None or r.get("market_id") is None:
        return None
    price = _dec(r.get("target_price"))
    return dict(
        cycle_date=as_of.date(), as_of=as_of, market_id=str(r["market_id"]),
        event_id=None if r.get("event_id") is None else str(r["event_id"]), question=r.get("market_question"),
        side=side, amount=to_money(amount), price_seen=None if price is None else to_price(price),
        confidence=_dec(r.get("confidence")), reason=r.get("reason"), executed=bool(r.get("executed")),
        executed_at=utc(r.get("executed_at")),
    )


def _insert_signals(conn, plan: PortfolioPlan, pid: int, rows: list[dict]) -> dict[str, int]:
    """Returns {original trade id: signal id} for linking fills to their signals."""
    by_trade: dict[str, int] = {}
    for r in rows:
        values = _signal_values(r)
        if values is None:
            continue
        sid = conn.execute(insert(trading_signals).values(portfolio_id=pid, strategy_type=plan.strategy_type,
                                                          **values).returning(trading_signals.c.signal_id)).scalar_one()
        if r.get("trade_id") is not None:
            by_trade.setdefault(str(r["trade_id"]), sid)
    return by_trade


def _row_notes(plan: PortfolioPlan, source: Source) -> None:
    """Notes on the original rows that do not come over."""
    skipped = sum(1 for r in source.signals[plan.old.ref] if _signal_values(r) is None)
    if skipped:
        plan.notes.append(f"{skipped} signals without a YES/NO side, a positive amount or a time: not imported")
    linked = {str(lot.old.trade_id) for lot in plan.lots if lot.old.trade_id}
    unmatched = [str(t["trade_id"]) for t in source.trades[plan.old.ref]
                 if t.get("trade_id") is not None and str(t["trade_id"]) not in linked]
    if unmatched:
        plan.notes.append(f"{len(unmatched)} trades have no position row: not imported ({', '.join(unmatched[:5])})")


def _write_plan(conn, plan: PortfolioPlan, source: Source) -> int:
    lots = plan.lots
    closed = [lot for lot in lots if lot.closed]
    wins = sum(1 for lot in closed if lot.realized > 0)
    opened = [p for p in plan.positions if not p.closed]
    moments = [lot.opened_at for lot in lots] + [lot.closed_at for lot in closed]
    pid = conn.execute(insert(portfolios).values(
        name=plan.name, description=plan.old.description, strategy_type=plan.strategy_type,
        strategy_config=plan.strategy_config, initial_balance=to_money(plan.old.initial_balance),
        current_balance=plan.cash, net_transfers=plan.net_transfers, total_invested=sum((p.cost for p in opened), ZERO),
        realized_pnl=plan.realized_pnl, unrealized_pnl=plan.unrealized_pnl,
        total_profit_loss=plan.realized_pnl + plan.unrealized_pnl, trade_count=len(lots) + len(closed),
        total_trades_executed=len(lots), total_winning_trades=wins, total_losing_trades=len(closed) - wins,
        avg_trade_pnl=to_money(sum((lot.realized for lot in closed), ZERO) / len(closed)) if closed else ZERO,
        status=plan.status, status_reason="imported from Prescient OS",
        max_position_size=plan.limits["max_position_size"], max_total_exposure=plan.limits["max_total_exposure"],
        max_positions=plan.limits["max_positions"] or 20,
        **({"created_at": plan.old.created_at} if plan.old.created_at else {}),
        last_trade_at=max(moments) if moments else None, last_price_update=plan.old.last_price_update,
    ).returning(portfolios.c.portfolio_id)).scalar_one()

    signal_of = _insert_signals(conn, plan, pid, source.signals[plan.old.ref])
    reasons = {str(t["trade_id"]): t.get("reason") for t in source.trades[plan.old.ref] if t.get("trade_id")}
    used_signals: set[int] = set()

    for position in plan.positions:
        first = position.lots[0]
        signal_id = signal_of.get(str(first.old.trade_id)) if first.old.trade_id else None
        state = position.state()
        values = dict(
            portfolio_id=pid, market_id=position.market_id, question=position.question, side=position.side,
            shares=state.shares, avg_price=state.avg_price, cost_basis=state.cost_basis, opened_at=state.opened_at,
            signal_id=signal_id,
        )
        if position.closed:
            values.update(status="closed", close_reason="settled" if first.close_action == "settle" else "sold",
                          closed_at=first.closed_at, exit_price=first.mark, current_price=first.mark,
                          market_value=0, unrealized_pnl=0, proceeds=first.proceeds, realized_pnl=first.realized,
                          last_marked_at=first.closed_at)
        else:
            value, unrealized = position_marks(position)
            values.update(status="open", current_price=position.mark_price(), entry_mark=state.avg_price,
                          market_value=value, unrealized_pnl=unrealized,
                          last_marked_at=plan.old.last_price_update or state.opened_at)
        position_id = conn.execute(insert(portfolio_positions).values(**values)
                                   .returning(portfolio_positions.c.position_id)).scalar_one()
        for lot in position.lots:
            sid = signal_of.get(str(lot.old.trade_id)) if lot.old.trade_id else None
            if sid in used_signals:
                sid = None  # a signal fills at most once
            reason = reasons.get(str(lot.old.trade_id)) if lot.old.trade_id else None
            trade_id = conn.execute(insert(trades).values(
                portfolio_id=pid, signal_id=sid, position_id=position_id, market_id=position.market_id,
                side=lot.side, action="buy", shares=lot.shares, price=to_price(lot.old.entry_price),
                amount=lot.cost, fee=0, cash_delta=-lot.cost, executed_at=lot.opened_at,
                reason=f"imported from Prescient OS ({lot.old.trade_id or 'no trade id'})"
                       + (f": {reason}" if reason else ""),
            ).returning(trades.c.trade_id)).scalar_one()
            if sid is not None:
                used_signals.add(sid)
                conn.execute(update(trading_signals).where(trading_signals.c.signal_id == sid)
                             .values(trade_id=trade_id, executed=True))
            if lot.closed:
                conn.execute(insert(trades).values(
                    portfolio_id=pid, position_id=position_id, market_id=position.market_id, side=lot.side,
                    action=lot.close_action, shares=lot.shares, price=lot.mark, amount=lot.proceeds, fee=0,
                    cash_delta=lot.proceeds, realized_pnl=lot.realized, executed_at=lot.closed_at,
                    reason=f"imported from Prescient OS ({lot.old.trade_id or 'no trade id'})",
                ))

    initial = to_money(plan.old.initial_balance)
    for row in plan.history:
        conn.execute(insert(portfolio_history).values(
            portfolio_id=pid, snapshot_date=row.snapshot_date, timestamp=row.timestamp, cash=row.cash,
            positions_value=row.positions_value, total_value=row.total_value, initial_balance=initial,
            net_transfers=row.net_transfers, realized_pnl=row.realized_pnl, unrealized_pnl=row.unrealized_pnl, fees=0,
            open_positions=row.open_positions, trade_count=row.trade_count, daily_return=row.daily_return,
        ))

    # The books must balance here exactly as after any cycle.
    totals = refresh_totals(conn, pid)
    check_balanced(totals)
    cash_from_trades = initial + plan.net_transfers + conn.execute(
        text("SELECT coalesce(sum(cash_delta), 0) FROM trades WHERE portfolio_id = :p"), {"p": pid}).scalar_one()
    if cash_from_trades != totals.cash or totals.total_value != plan.total_value:
        raise RuntimeError(f"imported portfolio {plan.name!r} does not balance: cash {totals.cash}, "
                           f"from trades {cash_from_trades}")
    # Metrics from the imported history, as the daily snapshot computes them.
    store_performance(conn, pid, totals, plan.history[-1].timestamp if plan.history else datetime.now(timezone.utc))
    return pid


def _write_transfers(conn, transfers: list[OldTransfer], ids: dict[int, int]) -> None:
    """The transfer log, once per transfer, between the portfolios' new ids."""
    rows = [dict(timestamp=t.at, from_portfolio_id=ids.get(t.from_ref), to_portfolio_id=ids.get(t.to_ref),
                 amount=to_money(t.amount), reason=t.reason, executed_by=t.executed_by or "manual")
            for t in transfers if ids.get(t.from_ref) or ids.get(t.to_ref)]
    if rows:
        conn.execute(insert(portfolio_rebalancing_log), rows)


def import_prescient_os(engine: Engine, url: str, *, dry_run: bool = False, name_suffix: str = "") -> dict:
    """Import every portfolio of the Prescient OS database at `url` (all or nothing)."""
    try:
        source = read_source(url)
    except DBAPIError as exc:
        raise ConnectionError(f"cannot read {redact(url)}: {str(exc.orig).strip().splitlines()[0]}") from None
    plans = plan_import(engine, source, name_suffix)
    ids: dict[int, int] = {}
    if not dry_run and plans:
        with engine.begin() as conn:
            for plan in plans:
                ids[plan.old.ref] = _write_plan(conn, plan, source)
            _write_transfers(conn, source.transfers, ids)
    return {
        "dry_run": dry_run,
        "notes": source.notes,
        "portfolios": [_summary(plan, ids.get(plan.old.ref)) for plan in plans],
    }


def _summary(plan: PortfolioPlan, new_id: int | None) -> dict:
    open_positions = [p for p in plan.positions if not p.closed]
    return {
        "source_portfolio_id": plan.old.ref, "portfolio_id": new_id, "name": plan.name,
        "strategy_type": plan.strategy_type, "status": plan.status, "strategy_config": plan.strategy_config,
        "open_positions": len(open_positions), "closed_positions": len(plan.positions) - len(open_positions),
        "trades": len(plan.lots) + sum(1 for lot in plan.lots if lot.closed), "history_days": len(plan.history),
        **plan.changes(), "notes": plan.notes,
    }
