"""Bringing a Prescient OS portfolio over: its figures recomputed by our ledger rules.

Prescient OS kept positions in dollars (`amount` at `entry_price`) and valued them with
`(price - entry) * amount`, and took total value as `balance + P&L`. Both are wrong (see the
ledger rules): a position holds `amount / entry_price` shares, is worth `shares * price`, and a
portfolio is worth its cash plus its positions. Prescient OS charged no fees, so a buy of
`amount` at `p` gives `shares = amount / p` and costs exactly `amount`.

What is carried over, and how:
- the mark of an open position is the price its P&L was computed from:
  `price = entry + current_pnl / amount` (the original formula, solved for the price);
- a closed position's exit price is `exit_price`, or else the one its `realized_pnl` implies;
  an exit at exactly 0 or 1 is a settlement, anything else a sale;
- cash is recomputed from the positions and transfers:
  `initial + transfers in - transfers out - every amount paid + every proceeds`;
- open positions of one market and side are one position here (shares and cost added up);
- a past day's history keeps its cash, cost and realized P&L exact; its unrealized P&L is the
  original figure rescaled by the open positions' shares per dollar of cost (exact for one
  position, or for positions bought at one price), since the past marks of each position are
  not recorded.

Pure: no SQL. The service reads the original tables into these records and writes the plan.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timezone
from decimal import Decimal
from typing import Any

from .accounting import ZERO, PositionState, check_balanced, mark, portfolio_totals, shares_bought, to_money, to_price
from .strategies.base import ConfigError
from .strategies.registry import get_strategy

STRATEGY_TYPES = {"momentum": "momentum", "mean_reversion": "mean_reversion", "arbitrage": "arbitrage",
                  "hybrid": "hybrid"}
STATUSES = ("active", "paused", "archived")
SIDES = {"buy_yes": "YES", "buy_no": "NO", "yes": "YES", "no": "NO"}

# Original config keys spelled differently here (shared-pool filters of the multi-portfolio
# design, the mean-reversion threshold). Other keys that exist here keep their names.
CONFIG_RENAMES = {
    "min_liquidity": "market_min_liquidity",
    "min_volume": "market_min_volume",
    "min_conviction": "market_min_conviction",
    "max_conviction": "market_max_conviction",
    "market_types": "categories",
}
STRATEGY_RENAMES = {"mean_reversion": {"extreme_price_threshold": "favourite_min_price"}}
# Risk limits that were config keys there and are portfolio columns here.
LIMIT_KEYS = ("max_positions", "max_position_size", "max_total_exposure")


class ImportProblem(ValueError):
    """The original data cannot be brought over as it is (the message says which row and why)."""


# --- the original's rows ---------------------------------------------------------------------


@dataclass(frozen=True)
class OldPosition:
    ref: Any  # its id there
    trade_id: str | None
    market_id: str
    question: str | None
    action: str
    amount: Decimal
    entry_price: Decimal
    entry_at: datetime
    status: str
    current_pnl: Decimal | None = None
    realized_pnl: Decimal | None = None
    exit_price: Decimal | None = None
    exit_at: datetime | None = None


@dataclass(frozen=True)
class OldHistory:
    snapshot_date: date
    timestamp: datetime | None
    balance: Decimal
    total_invested: Decimal | None
    total_profit_loss: Decimal | None
    total_value: Decimal | None


@dataclass(frozen=True)
class OldTransfer:
    """A `portfolio_rebalancing_log` row: cash moved between portfolios (None: from or to outside)."""

    ref: Any
    at: datetime
    from_ref: int | None
    to_ref: int | None
    amount: Decimal
    reason: str | None = None
    executed_by: str | None = None

    def signed(self, portfolio_ref: int) -> Decimal:
        """The change of this portfolio's cash: + received, - sent."""
        amount = to_money(self.amount)
        return (amount if self.to_ref == portfolio_ref else ZERO) - (amount if self.from_ref == portfolio_ref else ZERO)


@dataclass(frozen=True)
class OldPortfolio:
    ref: int
    name: str
    description: str | None
    strategy_type: str
    strategy_config: dict
    initial_balance: Decimal
    current_balance: Decimal
    total_profit_loss: Decimal
    status: str
    max_positions: int | None = None
    max_position_size: Decimal | None = None
    max_total_exposure: Decimal | None = None
    created_at: datetime | None = None
    last_price_update: datetime | None = None


# --- the plan ----------------------------------------------------------------------------------


@dataclass
class Lot:
    """One original position, as a buy (and maybe a close) here."""

    old: OldPosition
    side: str
    shares: Decimal
    cost: Decimal
    mark: Decimal  # open: the last price seen; closed: the exit price
    opened_at: datetime
    closed_at: datetime | None = None
    proceeds: Decimal | None = None
    close_action: str | None = None  # sell | settle

    @property
    def closed(self) -> bool:
        return self.closed_at is not None

    @property
    def realized(self) -> Decimal:
        return self.proceeds - self.cost if self.closed else ZERO


@dataclass
class PlannedPosition:
    lots: list[Lot]
    side: str
    market_id: str
    question: str | None

    @property
    def shares(self) -> Decimal:
        return sum((lot.shares for lot in self.lots), ZERO)

    @property
    def cost(self) -> Decimal:
        return sum((lot.cost for lot in self.lots), ZERO)

    @property
    def closed(self) -> bool:
        return self.lots[0].closed

    def state(self) -> PositionState:
        # One lot: its entry price; several: the average price paid per share.
        price = self.lots[0].old.entry_price if len(self.lots) == 1 else self.cost / self.shares
        return PositionState(self.market_id, self.side, self.shares, self.cost, to_price(price),
                             opened_at=min(lot.opened_at for lot in self.lots))

    def mark_price(self) -> Decimal:
        """Share-weighted mark of the lots (one lot: its own mark)."""
        return to_price(sum((lot.shares * lot.mark for lot in self.lots), ZERO) / self.shares)


@dataclass
class HistoryRow:
    snapshot_date: date
    timestamp: datetime
    net_transfers: Decimal
    cash: Decimal
    positions_value: Decimal
    total_value: Decimal
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    open_positions: int
    trade_count: int
    daily_return: float | None
    old_total_value: Decimal | None


@dataclass
class PortfolioPlan:
    old: OldPortfolio
    name: str
    strategy_type: str
    strategy_config: dict
    status: str
    limits: dict
    positions: list[PlannedPosition]
    history: list[HistoryRow]
    transfers: list[OldTransfer]
    net_transfers: Decimal
    cash: Decimal
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    positions_value: Decimal
    notes: list[str] = field(default_factory=list)

    @property
    def total_value(self) -> Decimal:
        return self.cash + self.positions_value

    @property
    def old_total_value(self) -> Decimal:
        """As Prescient OS computed it: balance + P&L."""
        return self.old.current_balance + self.old.total_profit_loss

    @property
    def lots(self) -> list[Lot]:
        return [lot for p in self.positions for lot in p.lots]

    def changes(self) -> dict:
        pnl = self.realized_pnl + self.unrealized_pnl
        return {
            "old_cash": self.old.current_balance, "new_cash": self.cash, "net_transfers": self.net_transfers,
            "old_total_value": self.old_total_value, "new_total_value": self.total_value,
            "total_value_change": self.total_value - self.old_total_value,
            "old_pnl": self.old.total_profit_loss, "new_pnl": pnl,
            "pnl_change": pnl - self.old.total_profit_loss,
            "new_realized_pnl": self.realized_pnl, "new_unrealized_pnl": self.unrealized_pnl,
        }


# --- mapping -------------------------------------------------------------------------------


def utc(moment: datetime | None) -> datetime | None:
    """Prescient OS stored naive timestamps; they are taken as UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=timezone.utc)


def map_strategy(old: OldPortfolio) -> str:
    strategy = STRATEGY_TYPES.get((old.strategy_type or "").strip().lower())
    if strategy is None:
        raise ImportProblem(f"portfolio {old.ref} ({old.name}): strategy type {old.strategy_type!r} has no "
                            f"counterpart here (known: {', '.join(sorted(STRATEGY_TYPES))})")
    return strategy


def map_config(strategy: str, config: dict | None) -> tuple[dict, dict, list[str]]:
    """The original config as ours: (strategy config, limits found in it, notes on what changed).

    Keys are renamed where the meaning is the same, risk limits move to the portfolio's
    columns, and a key that has no counterpart or a value ours refuses is dropped with a note."""
    impl = get_strategy(strategy)
    renames = {**CONFIG_RENAMES, **STRATEGY_RENAMES.get(strategy, {})}
    mapped: dict = {}
    limits: dict = {}
    notes: list[str] = []
    for key, value in (config or {}).items():
        if key in LIMIT_KEYS:
            limits[key] = value
            continue
        ours = renames.get(key, key)
        if ours not in impl.config_keys:
            notes.append(f"config key {key!r} has no counterpart here: dropped")
            continue
        try:
            impl.validate_config({ours: value})
        except ConfigError as exc:
            notes.append(f"config key {key!r} = {value!r} is not valid here ({exc}): dropped")
            continue
        if ours != key:
            notes.append(f"config key {key!r} is {ours!r} here")
        mapped[ours] = value
    try:
        impl.validate_config(mapped)
    except ConfigError as exc:  # keys valid alone but not together (a band upside down)
        raise ImportProblem(f"strategy config does not hold together here: {exc}") from None
    return mapped, limits, notes


def _side(position: OldPosition) -> str:
    side = SIDES.get((position.action or "").strip().lower())
    if side is None:
        raise ImportProblem(f"position {position.ref}: action {position.action!r} is not a buy of YES or NO")
    return side


def make_lot(position: OldPosition, notes: list[str]) -> Lot:
    side = _side(position)
    amount, entry = to_money(position.amount), to_price(position.entry_price)
    if amount <= 0:
        raise ImportProblem(f"position {position.ref}: amount {position.amount} is not positive")
    if not ZERO < entry <= 1:
        raise ImportProblem(f"position {position.ref}: entry price {position.entry_price} is not in (0, 1]")
    shares = shares_bought(amount / entry)
    opened_at = utc(position.entry_at)
    status = (position.status or "open").strip().lower()
    if status == "open":
        pnl = position.current_pnl or ZERO
        price = min(max(entry + Decimal(pnl) / amount, ZERO), Decimal(1))  # their P&L, solved for the price
        return Lot(position, side, shares, amount, to_price(price), opened_at)
    if position.exit_price is not None:
        exit_price = to_price(position.exit_price)
    elif position.realized_pnl is not None:
        exit_price = to_price(min(max(entry + Decimal(position.realized_pnl) / amount, ZERO), Decimal(1)))
        notes.append(f"position {position.ref}: no exit price; {exit_price} from its realized P&L")
    else:
        exit_price = entry
        notes.append(f"position {position.ref}: closed with no exit price or P&L; closed at its entry price")
    closed_at = utc(position.exit_at) or opened_at
    action = "settle" if exit_price in (ZERO, Decimal(1)) else "sell"
    return Lot(position, side, shares, amount, exit_price, opened_at, closed_at,
               to_money(shares * exit_price), action)


def _positions(lots: list[Lot]) -> list[PlannedPosition]:
    """Closed lots stay one position each; open lots of one market and side are one position."""
    planned: list[PlannedPosition] = []
    open_by_key: dict[tuple[str, str], PlannedPosition] = {}
    for lot in sorted(lots, key=lambda lot: (lot.opened_at, str(lot.old.ref))):
        if lot.closed:
            planned.append(PlannedPosition([lot], lot.side, lot.old.market_id, lot.old.question))
            continue
        key = (lot.old.market_id, lot.side)
        if key in open_by_key:
            open_by_key[key].lots.append(lot)
        else:
            open_by_key[key] = PlannedPosition([lot], lot.side, lot.old.market_id, lot.old.question)
            planned.append(open_by_key[key])
    return planned


def _history(old: OldPortfolio, lots: list[Lot], transfers: list[OldTransfer],
             rows: list[OldHistory]) -> list[HistoryRow]:
    result: list[HistoryRow] = []
    initial = to_money(old.initial_balance)
    previous_value, previous_transfers = initial, ZERO
    for row in sorted(rows, key=lambda r: r.snapshot_date):
        at = utc(row.timestamp) or datetime.combine(row.snapshot_date, time(23, 59, 59), timezone.utc)
        moved = sum((t.signed(old.ref) for t in transfers if t.at <= at), ZERO)
        bought = [lot for lot in lots if lot.opened_at <= at]
        closed = [lot for lot in bought if lot.closed and lot.closed_at <= at]
        held = [lot for lot in bought if not (lot.closed and lot.closed_at <= at)]
        cash = initial + moved - sum((lot.cost for lot in bought), ZERO) + sum((lot.proceeds for lot in closed), ZERO)
        cost = sum((lot.cost for lot in held), ZERO)
        shares = sum((lot.shares for lot in held), ZERO)
        unrealized = to_money(Decimal(row.total_profit_loss or 0) * shares / cost) if cost else ZERO
        positions_value = max(cost + unrealized, ZERO)
        unrealized = positions_value - cost
        total = cash + positions_value
        # As the daily snapshot computes it: a transfer is not a return.
        flow = moved - previous_transfers
        daily_return = float((total - flow) / previous_value - 1) if previous_value else None
        result.append(HistoryRow(
            row.snapshot_date, at, moved, cash, positions_value, total, sum((lot.realized for lot in closed), ZERO),
            unrealized, len({(lot.old.market_id, lot.side) for lot in held}), len(bought) + len(closed),
            daily_return, row.total_value,
        ))
        previous_value, previous_transfers = total, moved
    return result


def _limit(key: str, value: Any, notes: list[str]) -> Any:
    """A risk limit as our column holds it (a positive whole count or dollar amount), or None."""
    if value is None:
        return None
    try:
        number = Decimal(str(value))
        if not number.is_finite() or number <= 0:
            raise ValueError
        if key == "max_positions":
            if number != number.to_integral_value():
                raise ValueError
            return int(number)
        return to_money(number)
    except (ArithmeticError, ValueError):
        notes.append(f"limit {key} = {value!r} is not a positive {'whole number' if key == 'max_positions' else 'amount'}: "
                     f"dropped")
        return None


def plan_portfolio(old: OldPortfolio, positions: list[OldPosition], history: list[OldHistory],
                   transfers: list[OldTransfer] = (), name: str | None = None) -> PortfolioPlan:
    """Everything the import writes for one original portfolio, with our figures."""
    strategy = map_strategy(old)
    config, config_limits, notes = map_config(strategy, old.strategy_config)
    status = (old.status or "active").strip().lower()
    if status not in STATUSES:
        notes.append(f"status {old.status!r} is not one of {', '.join(STATUSES)}: imported paused")
        status = "paused"
    limits = {key: getattr(old, key) for key in LIMIT_KEYS}
    for key, value in config_limits.items():
        if limits[key] is None:
            limits[key] = value
            notes.append(f"config key {key!r} is the portfolio's {key} limit here")
        else:
            notes.append(f"config key {key!r} dropped: the portfolio's own {key} ({limits[key]}) applies")
    for key, value in list(limits.items()):
        limits[key] = _limit(key, value, notes)
    lots = [make_lot(p, notes) for p in positions]
    planned = _positions(lots)
    merged = sum(len(p.lots) - 1 for p in planned)
    if merged:
        notes.append(f"{merged} open positions in a market and side already held were added to that position")
    initial = to_money(old.initial_balance)
    if initial <= 0:
        raise ImportProblem(f"portfolio {old.ref} ({old.name}): initial balance {old.initial_balance} is not positive")
    transfers = [t for t in transfers if old.ref in (t.from_ref, t.to_ref)]
    moved = sum((t.signed(old.ref) for t in transfers), ZERO)
    spent = sum((lot.cost for lot in lots), ZERO) - sum((lot.proceeds for lot in lots if lot.closed), ZERO)
    cash = initial + moved - spent
    if cash < 0:
        raise ImportProblem(f"portfolio {old.ref} ({old.name}): its positions cost {spent} net of proceeds, "
                            f"more than its initial balance {initial} and transfers {moved}")
    held = [(p.state(), p.mark_price()) for p in planned if not p.closed]
    totals = portfolio_totals(cash=cash, initial_balance=initial, net_transfers=moved,
                              realized_pnl=sum((lot.realized for lot in lots), ZERO), positions=held)
    check_balanced(totals)
    return PortfolioPlan(
        old=old, name=name or old.name, strategy_type=strategy, strategy_config=config, status=status,
        limits=limits, positions=planned, history=_history(old, lots, transfers, history),
        transfers=transfers, net_transfers=totals.net_transfers, cash=totals.cash,
        realized_pnl=totals.realized_pnl, unrealized_pnl=totals.unrealized_pnl,
        positions_value=totals.positions_value, notes=notes,
    )


def position_marks(position: PlannedPosition) -> tuple[Decimal, Decimal]:
    """(market value, unrealized P&L) of an open planned position at its mark."""
    return mark(position.state(), position.mark_price())


__all__ = ["ImportProblem", "OldPortfolio", "OldPosition", "OldHistory", "OldTransfer", "Lot", "PlannedPosition",
           "HistoryRow", "PortfolioPlan", "map_config", "map_strategy", "make_lot", "plan_portfolio",
           "position_marks", "utc"]
