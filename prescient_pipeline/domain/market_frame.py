"""The market frame: one row per market as of a cycle time, the only input strategies see.

The database reader produces exactly MARKET_COLUMNS (extra columns are tolerated and kept).
Unknown values stay unknown: NaN for numbers, NaT for dates, None/NaN for text and for
`accepting_orders`. Resolution fields (UMA status, closed time, final outcome) are deliberately
absent: a strategy must not see the future it is trading on.

`with_derived(frame, as_of)` adds the columns filters and strategies share, computed once per cycle.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

# Column -> kind. Kinds: text, optional_text, text_list, number, flag, optional_flag, timestamp, count.
MARKET_COLUMNS: dict[str, str] = {
    "market_id": "text",
    "event_id": "text",
    "question": "text",
    "category": "optional_text",
    "tags": "text_list",  # event tags + market tags
    "yes_price": "number",
    "no_price": "number",
    "best_bid": "number",  # YES book
    "best_ask": "number",  # YES book
    "liquidity": "number",
    "volume": "number",
    "volume_24hr": "number",
    "end_date": "timestamp",
    "active": "flag",
    "closed": "flag",
    "accepting_orders": "optional_flag",
    "neg_risk": "flag",
    # Augmented negRisk: the event lists placeholder and "Other" outcomes beside its named ones, so
    # its named legs never make a complete basket; `neg_risk_other` marks those outcomes themselves.
    "neg_risk_augmented": "flag",
    "neg_risk_other": "flag",
    "yes_token_id": "text",
    "no_token_id": "text",
    "event_liquidity": "number",
    "event_volume": "number",
    "event_volume_24hr": "number",
    "event_end_date": "timestamp",
    "event_market_count": "count",
}

DERIVED_COLUMNS = (
    "conviction",  # |yes - no|
    "favourite",  # 'YES' if yes >= no else 'NO'; None when a price is unknown
    "favourite_price",
    "spread",  # best_ask - best_bid; NaN when either is unknown
    "days_to_end",
    "event_days_to_end",
)

# A reader may leave these out; they are then unknown for every market.
_OPTIONAL_COLUMNS = ("accepting_orders", "neg_risk_augmented", "neg_risk_other")

_DAY = pd.Timedelta(days=1)


def empty_market_frame() -> pd.DataFrame:
    """A frame with every market column and no rows, dtypes included."""
    return as_market_frame(pd.DataFrame({name: [] for name in MARKET_COLUMNS}))


def as_market_frame(data) -> pd.DataFrame:
    """Check and coerce a DataFrame (or a list of row dicts) to the market frame contract.

    Raises ValueError naming the missing columns. Returns a new frame with a fresh RangeIndex.
    """
    frame = pd.DataFrame(data).copy() if not isinstance(data, pd.DataFrame) else data.copy()
    for name in _OPTIONAL_COLUMNS:
        if name not in frame.columns:
            frame[name] = pd.NA
    missing = [name for name in MARKET_COLUMNS if name not in frame.columns]
    if missing:
        raise ValueError(f"market frame is missing columns: {', '.join(missing)}")
    for name, kind in MARKET_COLUMNS.items():
        frame[name] = _coerce(frame[name], kind)
    return frame.reset_index(drop=True)


def _coerce(values: pd.Series, kind: str) -> pd.Series:
    if kind == "number":
        return pd.to_numeric(values, errors="coerce").astype("float64")
    if kind == "count":
        return pd.to_numeric(values, errors="coerce").fillna(0).astype("int64")
    if kind == "timestamp":
        return pd.to_datetime(values, utc=True, errors="coerce").dt.as_unit("ns")
    if kind == "flag":
        return values.astype("boolean").fillna(False).astype(bool)
    if kind == "optional_flag":
        return values.astype("boolean")
    if kind == "text_list":
        return pd.Series([_as_list(v) for v in values], index=values.index, dtype=object)
    if kind == "text":
        return values.astype(object).where(values.notna(), None).map(lambda v: v if v is None else str(v))
    return values.astype(object).where(values.notna(), None)


def _as_list(value) -> list[str]:
    if isinstance(value, (list, tuple, np.ndarray)):
        return [str(v) for v in value]
    return []


def with_derived(frame: pd.DataFrame, as_of: datetime) -> pd.DataFrame:
    """A copy of `frame` with DERIVED_COLUMNS computed as of `as_of` (tz-aware)."""
    now = _utc_timestamp(as_of)
    out = frame.copy()
    yes = out["yes_price"].to_numpy(dtype="float64")
    no = out["no_price"].to_numpy(dtype="float64")
    priced = ~(np.isnan(yes) | np.isnan(no))
    out["conviction"] = np.abs(yes - no)
    yes_favoured = yes >= no
    out["favourite"] = pd.Series(np.where(yes_favoured, "YES", "NO"), index=out.index, dtype=object).where(
        priced, None
    )
    out["favourite_price"] = np.where(priced, np.where(yes_favoured, yes, no), np.nan)
    out["spread"] = out["best_ask"].astype("float64") - out["best_bid"].astype("float64")
    out["days_to_end"] = (out["end_date"] - now) / _DAY
    out["event_days_to_end"] = (out["event_end_date"] - now) / _DAY
    return out


def has_derived(frame: pd.DataFrame) -> bool:
    return all(name in frame.columns for name in DERIVED_COLUMNS)


def _utc_timestamp(as_of: datetime) -> pd.Timestamp:
    stamp = pd.Timestamp(as_of)
    if stamp.tzinfo is None:
        raise ValueError("as_of must be timezone-aware (UTC)")
    return stamp.tz_convert("UTC")


__all__ = [
    "MARKET_COLUMNS",
    "DERIVED_COLUMNS",
    "empty_market_frame",
    "as_market_frame",
    "with_derived",
    "has_derived",
]
