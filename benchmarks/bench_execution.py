"""Time the execution of 100 portfolios' pending signals, 10 each (goal: under 10 s).

    python benchmarks/bench_execution.py [--portfolios N] [--signals N] [--events N]

Markets come from the local simulator through a real refresh; portfolios and their signals are
written with COPY, each portfolio's signals on distinct markets, YES and NO alternating. Then
`execute_portfolio` runs for every portfolio one after the other, as `prescient cycle` does (the
sensor-launched Dagster runs do the same work, one run per portfolio). Database: as in
bench_prices.py (PRESCIENT_DATABASE_URL's server, or an embedded PostgreSQL in a temporary home).
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from decimal import Decimal

from sqlalchemy import text

from bench_prices import buyable_markets, scratch_database, seed_portfolios, simulated_market_data
from prescient_pipeline.db.engine import get_engine
from prescient_pipeline.domain.execution import OutcomeBook
from prescient_pipeline.db.migrate import ensure_schema
from prescient_pipeline.services.bulk import copy_rows
from prescient_pipeline.services.execution import execute_portfolio
from prescient_pipeline.services.reports import unbalanced_portfolios

AMOUNT = Decimal(50)


def seed_signals(engine, portfolio_ids: list[int], per_portfolio: int) -> int:
    at, markets = buyable_markets(engine)
    rows = []
    for k, pid in enumerate(portfolio_ids):
        for j in range(per_portfolio):
            m = markets[(k * per_portfolio + j) % len(markets)]
            side = "YES" if j % 2 == 0 else "NO"
            rows.append({
                "portfolio_id": pid, "strategy_type": "momentum", "cycle_date": at.date(), "as_of": at,
                "market_id": m["market_id"], "event_id": m["event_id"], "question": m["question"],
                "token_id": m["yes_token_id"] if side == "YES" else m["no_token_id"], "side": side,
                # What a strategy sees: the ask (a fill walks from there up to its limit).
                "amount": AMOUNT, "price_seen": OutcomeBook.from_state(side, m).best_ask,
                "confidence": 0.7, "reason": "benchmark",
            })
    with engine.begin() as conn:
        copy_rows(conn, "trading_signals", list(rows[0]), rows)
        conn.execute(text("ANALYZE"))
    return len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--portfolios", type=int, default=100)
    parser.add_argument("--signals", type=int, default=10)
    parser.add_argument("--events", type=int, default=600)
    args = parser.parse_args()

    with scratch_database() as url:
        engine = ensure_schema(get_engine(url))
        with simulated_market_data(engine, args.events):
            ids = seed_portfolios(engine, args.portfolios)
            signals = seed_signals(engine, ids, args.signals)
        started = time.perf_counter()
        reports = [execute_portfolio(engine, pid) for pid in ids]
        total = time.perf_counter() - started
        executed = sum(r.executed for r in reports)
        rejected = sum(r.rejected for r in reports)
        partial = sum(r.partial for r in reports)
        reasons = Counter(k for r in reports for k, n in r.rejections.items() for _ in range(n))
        print(f"executed {executed:,} and rejected {rejected:,} of {signals:,} signals in {len(ids):,} portfolios: "
              f"{total:.2f} s ({total / len(ids) * 1000:.1f} ms per portfolio, "
              f"{total / max(signals, 1) * 1000:.2f} ms per signal); goal < 10 s: {'met' if total < 10 else 'MISSED'}")
        print(f"partial fills: {partial:,}; rejections: {dict(reasons)}")
        with engine.connect() as conn:
            twice = conn.execute(text("SELECT count(*) FROM (SELECT signal_id FROM trades WHERE action = 'buy' "
                                      "GROUP BY signal_id HAVING count(*) > 1) d")).scalar_one()
        problems = unbalanced_portfolios(engine)
        print(f"signals filled twice: {twice}; " + ("books balance" if not problems else f"{len(problems)} unbalanced"))


if __name__ == "__main__":
    main()
