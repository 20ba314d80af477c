"""Time one portfolio's strategy run over 50,000 synthetic markets (goal: under 1 s each).

    python benchmarks/bench_strategy.py [--markets N] [--repeat R]

The frame is random but shaped like the real universe: 5,000 events, a third of them negRisk,
prices spread over (0, 1), some unknown books, volumes and end dates.
"""

from __future__ import annotations

import argparse
import time
from datetime import datetime, timezone

import numpy as np
import pandas as pd

from prescient_pipeline.domain.market_frame import as_market_frame, with_derived
from prescient_pipeline.domain.strategies import StrategyContext, available_strategies

AS_OF = datetime(2026, 1, 1, 9, tzinfo=timezone.utc)


def synthetic_markets(count: int, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    per_event = 10
    events = np.arange(count) // per_event
    neg_risk_event = rng.random(count // per_event + 1) < 0.33
    yes = rng.uniform(0.01, 0.99, count)
    # negRisk events: YES prices that sum to about 1, and a few slightly under (the arbitrage case).
    shares = rng.dirichlet(np.ones(per_event), len(neg_risk_event)).ravel()[:count]
    underpriced_event = rng.random(len(neg_risk_event)) < 0.05
    in_neg_risk = neg_risk_event[events]
    yes[in_neg_risk] = (shares * np.where(underpriced_event, 0.93, 1.0)[events])[in_neg_risk]
    yes = yes.clip(0.002, 0.998).round(3)
    spread = rng.choice([0.002, 0.01, 0.02, 0.04, 0.08, 0.2], count)
    spread[underpriced_event[events]] = 0.002
    bid = (yes - spread / 2).clip(0.001, 0.999)
    ask = (yes + spread / 2).clip(0.001, 0.999)
    bid[rng.random(count) < 0.05] = np.nan
    liquidity = rng.lognormal(8, 2, count)
    volume_24hr = rng.lognormal(7, 2, count)
    volume_24hr[rng.random(count) < 0.1] = np.nan
    end = pd.Timestamp(AS_OF) + pd.to_timedelta(rng.uniform(-2, 120, count), unit="D")
    end = end.where(rng.random(count) > 0.02)
    tag_pool = np.array(["politics", "sports", "crypto", "economy", "culture"], dtype=object)
    frame = pd.DataFrame(
        {
            "market_id": np.char.add("m", np.arange(count).astype(str)),
            "event_id": np.char.add("e", events.astype(str)),
            "question": np.char.add("Question ", np.arange(count).astype(str)),
            "category": rng.choice(tag_pool, count),
            "tags": [[t] for t in rng.choice(tag_pool, count)],
            "yes_price": yes,
            "no_price": (1 - yes).round(3),
            "best_bid": bid,
            "best_ask": ask,
            "liquidity": liquidity,
            "volume": liquidity * rng.uniform(1, 20, count),
            "volume_24hr": volume_24hr,
            "end_date": end,
            "active": True,
            "closed": False,
            "accepting_orders": rng.random(count) > 0.01,
            "neg_risk": in_neg_risk,
            "yes_token_id": np.char.add("y", np.arange(count).astype(str)),
            "no_token_id": np.char.add("n", np.arange(count).astype(str)),
            "event_end_date": end,
            "event_market_count": per_event,
        }
    )
    by_event = frame.groupby("event_id")
    frame["event_liquidity"] = by_event["liquidity"].transform("sum")
    frame["event_volume"] = by_event["volume"].transform("sum")
    frame["event_volume_24hr"] = by_event["volume_24hr"].transform("sum")
    return as_market_frame(frame)


def best_of(repeat: int, run) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markets", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    markets = synthetic_markets(args.markets)
    held = frozenset(markets["market_id"].sample(50, random_state=1))
    ctx = StrategyContext(as_of=AS_OF, cash=10_000.0, equity=12_000.0, held_market_ids=held, max_position_size=500.0)
    derive_time, derived = best_of(args.repeat, lambda: with_derived(markets, AS_OF))
    print(f"{len(markets):,} markets; with_derived (once per cycle, shared): {derive_time * 1000:.0f} ms")
    for name, strategy in available_strategies().items():
        run_time, result = best_of(args.repeat, lambda: strategy.run(derived, None, ctx))
        raw_time, _ = best_of(args.repeat, lambda: strategy.run(markets, None, ctx))
        print(
            f"{name:>15}: {run_time * 1000:6.0f} ms per portfolio run "
            f"({raw_time * 1000:.0f} ms including with_derived); "
            f"{len(result.signals)} signals from {result.funnel[-2][1]} signalled markets"
        )


if __name__ == "__main__":
    main()
