"""The example portfolios that `prescient demo` and `prescient dev --with-examples` create."""

from __future__ import annotations

from sqlalchemy import Engine

from . import portfolios as svc

# One per strategy, with exits switched on so a few days already show closed trades.
EXAMPLES = [
    ("demo momentum", "momentum", {"stop_loss_percentage": 0.15, "take_profit_percentage": 0.2}),
    ("demo mean reversion", "mean_reversion", {"take_profit_percentage": 0.5, "max_holding_hours": 96}),
    ("demo arbitrage", "arbitrage", {}),
    ("demo hybrid", "hybrid", {"stop_loss_percentage": 0.25}),
]
EXAMPLE_NAMES = {name for name, _, _ in EXAMPLES}
EXAMPLE_BALANCE = "10000"


def create_examples(engine: Engine) -> list[dict]:
    """Create the example portfolios that do not exist yet; return every example's row."""
    existing = {p["name"]: p for p in svc.list_portfolios(engine)}
    rows = []
    for name, strategy, config in EXAMPLES:
        if name in existing:
            rows.append(existing[name])
            continue
        new = svc.NewPortfolio.parse(name=name, strategy=strategy, balance=EXAMPLE_BALANCE, config=config,
                                     description="example portfolio")
        rows.append(svc.create_portfolio(engine, new))
    return rows
