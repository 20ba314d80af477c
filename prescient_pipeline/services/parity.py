"""Parity: does a replay of a past day signal what the live portfolio signalled that day?

`prescient backtest parity ID --day D` runs the live portfolio's strategy (its config now) on
the universe a replay reads as of the time its recorded signals of D were computed
(services/replay_universe), with the portfolio as it stood then (services/standing: cash and
held markets from its ledger), and compares the signals market by market with the recorded
ones. The same signals mean the replay sees what the live run saw; a difference points at data
the live run had and the store lacks (or the reverse), or at a config changed since.

Sizing by `equity_fraction` reads equity, which is re-estimated: positions are valued at the
last stored observation of their side, not at the mark the live run showed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import Engine, text

from ..domain.accounting import to_money, to_price
from ..domain.market_frame import with_derived
from ..domain.strategies.base import StrategyContext
from ..domain.strategies.registry import get_strategy
from ..errors import InputError
from .portfolios import get_portfolio
from .replay_universe import replay_universe_as_of
from .standing import standing_at

# The day's recorded signals of the latest run (a re-run replaces the pending ones), archived or not.
_RECORDED_SQL = """
WITH day AS (
    SELECT market_id, side, amount, price_seen, as_of FROM trading_signals
    WHERE portfolio_id = :p AND cycle_date = :d
    UNION ALL
    SELECT market_id, side, amount, price_seen, as_of FROM signal_archives
    WHERE portfolio_id = :p AND cycle_date = :d
)
SELECT market_id, side, amount, price_seen, as_of FROM day
WHERE as_of = (SELECT max(as_of) FROM day)
ORDER BY market_id, side
"""


@dataclass
class Parity:
    portfolio_id: int
    day: date
    as_of: datetime
    live: int  # signals recorded
    replayed: int  # signals the replay gives
    differences: list[dict] = field(default_factory=list)  # one per market and side that differs

    @property
    def same(self) -> bool:
        return not self.differences

    def as_dict(self) -> dict:
        return {"portfolio_id": self.portfolio_id, "day": self.day.isoformat(), "as_of": self.as_of.isoformat(),
                "same": self.same, "live": self.live, "replayed": self.replayed, "differences": self.differences}


def check_parity(engine: Engine, portfolio_id: int, day: date) -> Parity:
    """Compare a live portfolio's recorded signals of `day` with a replay's (module docstring).
    InputError (one line) for a backtest portfolio or a day without recorded signals."""
    portfolio = get_portfolio(engine, portfolio_id)
    if portfolio["mode"] != "live":
        raise InputError(f"portfolio {portfolio_id} is a backtest: parity compares a live portfolio's "
                         "recorded signals with a replay")
    with engine.connect() as conn:
        recorded = [dict(r) for r in conn.execute(text(_RECORDED_SQL), {"p": portfolio_id, "d": day}).mappings()]
        if not recorded:
            raise InputError(f"portfolio {portfolio_id} recorded no signals on {day}: nothing to compare")
        as_of = recorded[0]["as_of"]
        then = standing_at(conn, portfolio, as_of)
    held = then.open_positions
    cash = float(then.cash)
    ctx = StrategyContext(
        as_of=as_of, cash=cash, equity=cash + sum(float(p["market_value"]) for p in held),
        held_market_ids=frozenset(p["market_id"] for p in held),
        max_position_size=float(portfolio["max_position_size"]) if portfolio["max_position_size"] else None,
    )
    universe = with_derived(replay_universe_as_of(engine, as_of), as_of)
    result = get_strategy(portfolio["strategy_type"]).run(universe, portfolio["strategy_config"], ctx)
    replayed = [{"market_id": s["market_id"], "side": s["side"], "amount": s["amount"], "price_seen": s["price_seen"]}
                for s in result.signals.to_dict("records")]
    return Parity(portfolio_id, day, as_of, len(recorded), len(replayed), _differences(recorded, replayed))


def _differences(recorded: list[dict], replayed: list[dict]) -> list[dict]:
    """Per market and side: what each side signalled (amount and price as stored), where they differ."""
    def stored(signal: dict | None) -> tuple | None:
        if signal is None:
            return None
        price = signal["price_seen"]
        return to_money(signal["amount"]), None if price is None or price != price else to_price(price)

    live = {(s["market_id"], s["side"]): stored(s) for s in recorded}
    replay = {(s["market_id"], s["side"]): stored(s) for s in replayed}
    differences = []
    for market_id, side in sorted(live.keys() | replay.keys()):
        a, b = live.get((market_id, side)), replay.get((market_id, side))
        if a == b:
            continue
        differences.append({
            "market_id": market_id, "side": side,
            "live_amount": a and a[0], "replayed_amount": b and b[0],
            "live_price": a and a[1], "replayed_price": b and b[1],
            "what": "only live" if b is None else "only replayed" if a is None else "amount or price",
        })
    return differences
