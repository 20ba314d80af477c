"""Portfolio management: create, read, update, status changes, delete, transfers.

Every action validates all of its input before it writes, and writes in one transaction, so bad
input leaves the tables exactly as they were. Values always travel as bound parameters.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Engine, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from ..db.schema import portfolio_positions, portfolio_rebalancing_log, portfolios
from ..errors import InputError

STATUSES = ("active", "paused", "archived")
# Fields `update` may change; everything else (balances, counters) moves only through the ledger.
UPDATABLE = ("name", "description", "strategy_config", "max_position_size", "max_total_exposure", "max_positions")
# Limits that keep every value inside its column (money is NUMERIC(20,6); share counts derived from
# a balance at a price of 0.001 must fit too) and user text a sensible size.
MAX_NAME_LENGTH = 100
MAX_TEXT_LENGTH = 2000  # description, reasons
MAX_MONEY = Decimal("1000000000")  # $1bn
MAX_COUNT = 100_000  # max_positions; the column is a 32-bit integer
MAX_CONFIG_BYTES = 64 * 1024


# --- input parsing -----------------------------------------------------------------------------

def parse_money(value: Any, field: str, *, allow_none: bool = False) -> Decimal | None:
    if value is None or value == "":
        if allow_none:
            return None
        raise InputError(f"{field} is required")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise InputError(f"{field} must be a number, got {value!r}") from None
    if not amount.is_finite() or amount <= 0:
        raise InputError(f"{field} must be a positive number, got {value!r}")
    if amount > MAX_MONEY:
        raise InputError(f"{field} must be at most {MAX_MONEY:,}, got {value!r}")
    if amount.as_tuple().exponent < -6:
        raise InputError(f"{field} has more than 6 decimal places: {value!r}")
    return amount


def parse_count(value: Any, field: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        count = int(str(value).strip())
    except ValueError:
        raise InputError(f"{field} must be a whole number, got {value!r}") from None
    if count <= 0:
        raise InputError(f"{field} must be positive, got {value!r}")
    if count > MAX_COUNT:
        raise InputError(f"{field} must be at most {MAX_COUNT:,}, got {value!r}")
    return count


def parse_config(value: Any) -> dict:
    if value is None or value == "":
        return {}
    size = len(value.encode() if isinstance(value, str) else json.dumps(value, default=str).encode())
    if size > MAX_CONFIG_BYTES:
        raise InputError(f"config is {size:,} bytes; the limit is {MAX_CONFIG_BYTES:,}")
    if isinstance(value, dict):
        return value
    try:
        config = json.loads(value)
    except (TypeError, json.JSONDecodeError) as exc:
        raise InputError(f"config is not valid JSON: {exc.msg if hasattr(exc, 'msg') else exc}") from None
    if not isinstance(config, dict):
        raise InputError("config must be a JSON object")
    return config


def parse_name(value: Any) -> str:
    name = (value or "").strip() if isinstance(value, str) else ""
    if not name:
        raise InputError("name must be a non-empty string")
    if len(name) > MAX_NAME_LENGTH:
        raise InputError(f"name is longer than {MAX_NAME_LENGTH} characters")
    _refuse_control_characters(name, "name")
    return name


def parse_text(value: Any, field: str) -> str | None:
    """Free text (description, reason): optional, bounded, printable."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InputError(f"{field} must be text")
    if len(value) > MAX_TEXT_LENGTH:
        raise InputError(f"{field} is longer than {MAX_TEXT_LENGTH} characters")
    _refuse_control_characters(value, field)
    return value


def _refuse_control_characters(value: str, field: str) -> None:
    # Control characters (newlines, escapes, NUL) would forge lines in tables, logs and terminals.
    bad = next((c for c in value if unicodedata.category(c) == "Cc"), None)
    if bad is not None:
        raise InputError(f"{field} contains a control character ({ord(bad):#04x})")


def parse_portfolio_id(value: Any) -> int:
    try:
        pid = int(str(value).strip())
    except (TypeError, ValueError):
        raise InputError(f"portfolio id must be a whole number, got {value!r}") from None
    if pid <= 0:
        raise InputError(f"portfolio id must be positive, got {value!r}")
    return pid


@dataclass(frozen=True)
class NewPortfolio:
    name: str
    strategy_type: str
    initial_balance: Decimal
    strategy_config: dict
    description: str | None = None
    max_position_size: Decimal | None = None
    max_total_exposure: Decimal | None = None
    max_positions: int | None = None

    @classmethod
    def parse(cls, *, name, strategy, balance, config=None, description=None,
              max_position_size=None, max_total_exposure=None, max_positions=None) -> "NewPortfolio":
        from ..domain.strategies.registry import get_strategy  # pandas: only when a config is checked

        strategy_impl = get_strategy(strategy)  # unknown strategy -> ConfigError naming the known ones
        overrides = parse_config(config)
        strategy_impl.validate_config(overrides)
        return cls(
            name=parse_name(name),
            strategy_type=strategy_impl.name,
            initial_balance=parse_money(balance, "balance"),
            strategy_config=overrides,
            description=parse_text(description, "description"),
            max_position_size=parse_money(max_position_size, "max_position_size", allow_none=True),
            max_total_exposure=parse_money(max_total_exposure, "max_total_exposure", allow_none=True),
            max_positions=parse_count(max_positions, "max_positions"),
        )


# --- reads -------------------------------------------------------------------------------------

def _row_to_dict(row) -> dict:
    return dict(row._mapping)


def get_portfolio(conn_or_engine, portfolio_id: Any, *, for_update: bool = False) -> dict:
    pid = parse_portfolio_id(portfolio_id)
    query = select(portfolios).where(portfolios.c.portfolio_id == pid)
    if for_update:
        query = query.with_for_update()
    if isinstance(conn_or_engine, Engine):
        with conn_or_engine.connect() as conn:
            row = conn.execute(query).first()
    else:
        row = conn_or_engine.execute(query).first()
    if row is None:
        raise InputError(f"no portfolio with id {pid}")
    return _row_to_dict(row)


def list_portfolios(engine: Engine, *, include_archived: bool = True, status: str | None = None) -> list[dict]:
    query = select(portfolios).order_by(portfolios.c.portfolio_id)
    if status:
        if status not in STATUSES:
            raise InputError(f"status must be one of {', '.join(STATUSES)}")
        query = query.where(portfolios.c.status == status)
    elif not include_archived:
        query = query.where(portfolios.c.status != "archived")
    with engine.connect() as conn:
        return [_row_to_dict(r) for r in conn.execute(query)]


# --- writes ------------------------------------------------------------------------------------

def _duplicate_name(exc: IntegrityError) -> bool:
    diag = getattr(exc.orig, "diag", None)
    return getattr(diag, "constraint_name", None) == "portfolios_name_key"


def create_portfolio(engine: Engine, new: NewPortfolio, **backtest) -> dict:
    """Insert a portfolio; `backtest` (mode, backtest_from, backtest_to) makes a backtest one."""
    values = dict(
        name=new.name, description=new.description, strategy_type=new.strategy_type,
        strategy_config=new.strategy_config, initial_balance=new.initial_balance,
        current_balance=new.initial_balance, max_position_size=new.max_position_size,
        max_total_exposure=new.max_total_exposure, **backtest,
    )
    if new.max_positions is not None:
        values["max_positions"] = new.max_positions
    try:
        with engine.begin() as conn:
            row = conn.execute(portfolios.insert().values(**values).returning(portfolios)).one()
    except IntegrityError as exc:
        if _duplicate_name(exc):
            raise InputError(f"a portfolio named {new.name!r} already exists") from None
        raise
    return _row_to_dict(row)


def update_portfolio(engine: Engine, portfolio_id: Any, changes: dict, *, replace_config: bool = False) -> dict:
    """Change the fields in `changes`. A `strategy_config` is merged key by key into the stored
    one (so `{}` changes nothing); with `replace_config` it replaces the stored one whole."""
    unknown = sorted(set(changes) - set(UPDATABLE))
    if unknown:
        raise InputError(f"cannot update {', '.join(unknown)}; updatable fields: {', '.join(UPDATABLE)}")
    if not changes:
        raise InputError("nothing to update")
    values: dict[str, Any] = {}
    if "name" in changes:
        values["name"] = parse_name(changes["name"])
    if "description" in changes:
        values["description"] = parse_text(changes["description"], "description")
    for field in ("max_position_size", "max_total_exposure"):
        if field in changes:
            values[field] = parse_money(changes[field], field, allow_none=True)
    if "max_positions" in changes:
        count = parse_count(changes["max_positions"], "max_positions")
        if count is None:
            raise InputError("max_positions must be a positive whole number")
        values["max_positions"] = count
    try:
        with engine.begin() as conn:
            current = get_portfolio(conn, portfolio_id, for_update=True)
            if "strategy_config" in changes:
                overrides = parse_config(changes["strategy_config"])
                from ..domain.strategies.registry import get_strategy

                if not replace_config:
                    overrides = {**(current["strategy_config"] or {}), **overrides}
                get_strategy(current["strategy_type"]).validate_config(overrides)
                values["strategy_config"] = overrides
            row = conn.execute(
                update(portfolios)
                .where(portfolios.c.portfolio_id == current["portfolio_id"])
                .values(**values, last_updated=func.now())
                .returning(portfolios)
            ).one()
    except IntegrityError as exc:
        if _duplicate_name(exc):
            raise InputError(f"a portfolio named {changes.get('name')!r} already exists") from None
        raise
    return _row_to_dict(row)


_ALLOWED_FROM = {"active": ("paused",), "paused": ("active",), "archived": ("active", "paused")}


def set_status(engine: Engine, portfolio_id: Any, status: str, reason: str | None = None) -> dict:
    """pause / resume / archive. Archived is final: an archived portfolio cannot be resumed.

    Archiving is refused while the portfolio holds open positions: an archived portfolio is no
    longer marked, so what its markets pay must reach its cash first.
    """
    if status not in STATUSES:
        raise InputError(f"status must be one of {', '.join(STATUSES)}")
    reason = parse_text(reason, "reason")
    with engine.begin() as conn:
        current = get_portfolio(conn, portfolio_id, for_update=True)
        if current["status"] == status:
            return current
        if current["status"] not in _ALLOWED_FROM[status]:
            raise InputError(f"portfolio {current['portfolio_id']} is {current['status']}; cannot set it {status}")
        if status == "archived":
            held = conn.execute(select(func.count()).where(
                portfolio_positions.c.portfolio_id == current["portfolio_id"],
                portfolio_positions.c.status == "open")).scalar_one()
            if held:
                raise InputError(
                    f"portfolio {current['portfolio_id']} has {held} open position{'s' if held > 1 else ''}; "
                    "pause it and archive once they are sold or settled")
        row = conn.execute(
            update(portfolios)
            .where(portfolios.c.portfolio_id == current["portfolio_id"])
            .values(status=status, status_reason=reason, last_updated=func.now())
            .returning(portfolios)
        ).one()
    return _row_to_dict(row)


def pause_all(engine: Engine, reason: str) -> list[int]:
    """Emergency stop: every active portfolio becomes paused, with the reason recorded."""
    if not (reason or "").strip():
        raise InputError("a reason is required to pause every portfolio")
    reason = parse_text(reason, "reason")
    with engine.begin() as conn:
        rows = conn.execute(
            update(portfolios)
            .where(portfolios.c.status == "active")
            .values(status="paused", status_reason=reason.strip(), last_updated=func.now())
            .returning(portfolios.c.portfolio_id)
        )
        return sorted(r[0] for r in rows)


def delete_portfolio(engine: Engine, portfolio_id: Any) -> dict:
    """Delete a portfolio and, by cascade, its whole ledger. Its transfers stay in the log for
    the other side, with this side's id cleared and its name kept."""
    with engine.begin() as conn:
        current = get_portfolio(conn, portfolio_id, for_update=True)
        conn.execute(portfolios.delete().where(portfolios.c.portfolio_id == current["portfolio_id"]))
    return current


def transfer(engine: Engine, from_id: Any, to_id: Any, amount: Any, reason: str | None = None,
             executed_by: str = "manual") -> dict:
    """Move cash between portfolios, logged; never overdraws the source's cash."""
    src, dst = parse_portfolio_id(from_id), parse_portfolio_id(to_id)
    if src == dst:
        raise InputError("cannot transfer a portfolio's cash to itself")
    value = parse_money(amount, "amount")
    reason = parse_text(reason, "reason")
    with engine.begin() as conn:
        # Lock both rows in id order so two opposite transfers cannot deadlock.
        locked = {pid: get_portfolio(conn, pid, for_update=True) for pid in sorted((src, dst))}
        if locked[dst]["status"] == "archived":
            raise InputError(f"portfolio {dst} is archived and cannot receive cash")
        cash = locked[src]["current_balance"]
        if cash < value:
            raise InputError(f"portfolio {src} has {cash} cash, less than {value}")
        for pid, delta in ((src, -value), (dst, value)):
            conn.execute(
                update(portfolios)
                .where(portfolios.c.portfolio_id == pid)
                .values(
                    current_balance=portfolios.c.current_balance + delta,
                    net_transfers=portfolios.c.net_transfers + delta,
                    last_updated=func.now(),
                )
            )
        row = conn.execute(
            portfolio_rebalancing_log.insert()
            .values(from_portfolio_id=src, to_portfolio_id=dst, from_portfolio_name=locked[src]["name"],
                    to_portfolio_name=locked[dst]["name"], amount=value, reason=reason, executed_by=executed_by)
            .returning(portfolio_rebalancing_log)
        ).one()
    return _row_to_dict(row)


def transfer_log(conn, portfolio_id: int) -> list[dict]:
    """The portfolio's transfers, oldest first, each with the other side's id (None once that
    portfolio is deleted) and name."""
    log = portfolio_rebalancing_log.c
    rows = conn.execute(
        select(portfolio_rebalancing_log)
        .where(or_(log.from_portfolio_id == portfolio_id, log.to_portfolio_id == portfolio_id))
        .order_by(log.id)
    )
    out = []
    for r in rows:
        incoming = r.to_portfolio_id == portfolio_id
        out.append({
            "id": r.id, "timestamp": r.timestamp, "direction": "in" if incoming else "out",
            "amount": r.amount if incoming else -r.amount,
            "counterparty_id": r.from_portfolio_id if incoming else r.to_portfolio_id,
            "counterparty": r.from_portfolio_name if incoming else r.to_portfolio_name,
            "reason": r.reason,
        })
    return out
