"""Turn unsized signals into USD amounts, keep the best ones, and stay within cash and limits.

A *unit* is what executes as one decision: a single signal, or every leg of a basket (same
`group_id`). Units are ranked by confidence (ties by market/group id, for repeatable output),
capped at `max_signals_per_cycle`, and given `stake * amount` where the stake is `trade_amount`
(fixed) or `equity_fraction * equity` (fraction). A unit is then scaled down as a whole (so a
basket keeps equal shares per leg) until its largest leg fits `max_position_size` and its total
fits the cash not yet allotted to better units. A unit left under MIN_ORDER_USD in total is
dropped rather than sent as dust (a basket's cheap legs may be smaller: shares must be equal).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

MIN_ORDER_USD = 1.0


def stake(config: dict, equity: float) -> float:
    """USD for one unit before limits."""
    if config["sizing_mode"] == "fraction":
        return config["equity_fraction"] * max(float(equity), 0.0)
    return float(config["trade_amount"])


def size_signals(signals: pd.DataFrame, config: dict, ctx) -> pd.DataFrame:
    """`signals` with `amount` in USD, only the units that were kept, best first."""
    if signals.empty:
        return signals.reset_index(drop=True)
    signals = signals.reset_index(drop=True)
    grouped = signals["group_id"].notna().to_numpy()
    single_key = (signals["market_id"].astype(str) + "|" + signals.index.astype(str)).to_numpy(dtype=object)
    unit_key = np.where(grouped, signals["group_id"].to_numpy(dtype=object), single_key)
    unit_codes, unit_names = pd.factorize(unit_key)
    units = len(unit_names)

    relative = signals["amount"].to_numpy(dtype="float64")
    confidence = np.full(units, -np.inf)
    np.maximum.at(confidence, unit_codes, np.nan_to_num(signals["confidence"].to_numpy(dtype="float64"), nan=0.0))
    unit_total = np.bincount(unit_codes, weights=relative, minlength=units)
    largest_leg = np.zeros(units)
    np.maximum.at(largest_leg, unit_codes, relative)

    order = np.lexsort((np.asarray(unit_names, dtype=str), -confidence))
    base = stake(config, ctx.equity)
    cap = config["max_signals_per_cycle"]
    limit = ctx.max_position_size
    remaining = max(float(ctx.cash), 0.0)

    factor = np.zeros(units)  # USD per unit of relative amount; 0 = not kept
    kept_order: list[int] = []
    for unit in order:
        if cap is not None and len(kept_order) >= cap:
            break
        if remaining < MIN_ORDER_USD:
            break
        scale = base
        if limit is not None and largest_leg[unit] * scale > limit:
            scale = limit / largest_leg[unit]
        if unit_total[unit] * scale > remaining:
            scale = remaining / unit_total[unit]
        if unit_total[unit] * scale < MIN_ORDER_USD or scale <= 0:
            continue
        factor[unit] = scale
        remaining -= unit_total[unit] * scale
        kept_order.append(unit)

    rank = np.full(units, -1)
    rank[np.asarray(kept_order, dtype=int)] = np.arange(len(kept_order))
    row_rank = rank[unit_codes]
    keep = row_rank >= 0
    out = signals[keep].copy()
    out["amount"] = relative[keep] * factor[unit_codes[keep]]
    out["_rank"] = row_rank[keep]
    return out.sort_values("_rank", kind="stable").drop(columns="_rank").reset_index(drop=True)


__all__ = ["MIN_ORDER_USD", "stake", "size_signals"]
