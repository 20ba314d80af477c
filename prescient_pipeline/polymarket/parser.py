"""Gamma API JSON -> rows for the `events` and `markets` tables.

Gamma's wire format is loose: list fields arrive as JSON inside strings (or as real lists, `""`,
`"[]"` or not at all), numbers arrive as strings or numbers, and many fields are simply omitted.
Missing means unknown here, so it becomes None, never 0 or False. A market that cannot be traded
as a two-sided binary is kept out and counted under a reason, never raised on.

Row keys are exactly the table columns, except the ones the database fills (first_seen_at,
updated_at). Index 0 of a market's outcomes is its YES side, whatever the labels say.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

__all__ = [
    "ParseResult", "book_rules", "clob_fee_parameters", "decode_json_list", "gamma_fee_parameters",
    "is_neg_risk_other", "market_rules", "parse_events", "parse_markets", "parse_timestamp", "protocol_version",
]

# Rejection reasons: each market kept out is counted under exactly one of these.
NOT_A_DICT = "not_a_dict"
MISSING_ID = "missing_id"
MISSING_OUTCOMES = "missing_outcomes"
NOT_BINARY = "not_binary"
MISSING_PRICES = "missing_prices"
MISSING_TOKEN_IDS = "missing_token_ids"
MISMATCHED_LENGTHS = "mismatched_lengths"
INVALID_TOKEN_IDS = "invalid_token_ids"
INVALID_PRICE = "invalid_price"
UNSUPPORTED_VERSION = "unsupported_version"
# These count events (not markets): an event that cannot be keyed is dropped with its markets.
EVENT_NOT_A_DICT = "event_not_a_dict"
EVENT_MISSING_ID = "event_missing_id"


@dataclass
class ParseResult:
    """Rows ready for the tables, and what was kept out: `rejected` maps reason -> count."""

    events: list[dict] = field(default_factory=list)
    markets: list[dict] = field(default_factory=list)
    rejected: Counter = field(default_factory=Counter)
    duplicates: int = 0


# --- scalar decoding --------------------------------------------------------------------------

# For the forms Python 3.10's fromisoformat refuses: 'Z', "+00", fractions other than 3 or 6 digits.
_TIMESTAMP = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?"
    r"\s*(Z|[+-]\d{2}(?::?\d{2})?)?",
    re.IGNORECASE,
)


def parse_timestamp(value) -> datetime | None:
    """A timezone-aware UTC datetime from Gamma's assorted formats; None when absent or unreadable.

    Values without an offset are taken as UTC; a bare date is midnight UTC.
    """
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            parsed = _parse_timestamp_by_pattern(text)
            if parsed is None:
                return None
    else:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=timezone.utc)
    try:
        return parsed.astimezone(timezone.utc)
    except OverflowError:  # an offset that pushes year 1 or 9999 out of range
        return None


def _parse_timestamp_by_pattern(text: str) -> datetime | None:
    match = _TIMESTAMP.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    microsecond = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        parsed = datetime(
            int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0),
            microsecond, tzinfo=_offset(offset),
        )
    except ValueError:
        return None
    return parsed


def _offset(text: str | None) -> timezone:
    if text is None or text.upper() == "Z":
        return timezone.utc
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    minutes = int(digits[:2]) * 60 + int(digits[2:4] or 0)
    return timezone(sign * timedelta(minutes=minutes))


def decode_json_list(value) -> list | None:
    """A list from a real list or from JSON text holding one.

    `""` and `"[]"` are an empty list; None and anything unreadable (malformed JSON, a JSON
    object, a number) are None, so callers can tell "empty" from "not given".
    """
    if isinstance(value, list):
        return value
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return []
        if text[0] != "[":
            return None
        try:
            decoded = json.loads(text)
        except ValueError:
            return None
        return decoded if isinstance(decoded, list) else None
    if isinstance(value, tuple):
        return list(value)
    return None


def _number(value) -> float | None:
    """A finite float from a number or numeric string; None for missing, empty or garbage."""
    if value is None or isinstance(value, bool):
        return None
    if not isinstance(value, (int, float, str)):
        return None
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _preferred_number(raw: dict, numeric_key: str, text_key: str) -> float | None:
    number = _number(raw.get(numeric_key))
    return number if number is not None else _number(raw.get(text_key))


_TRUE_TEXT = {"true": True, "false": False, "1": True, "0": False}


def _flag(value) -> bool | None:
    """True/False from a bool (or "true"/"false"/0/1); None when missing or unreadable."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        return _TRUE_TEXT.get(value.strip().lower())
    return None


def _text(value) -> str | None:
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, (bool, dict, list)):
        return None
    return str(value)


def _nonempty_text(value) -> str | None:
    text = _text(value)
    if text is None:
        return None
    text = text.strip()
    return text or None


def _identifier(value) -> str | None:
    """Gamma ids are numeric strings; accept ints too, never bools or blanks."""
    if isinstance(value, str):
        value = value.strip()
        return value or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _tag_slugs(value) -> list[str]:
    """Tag slugs (or lowercased labels when a tag has no slug), deduplicated in order."""
    tags = decode_json_list(value)
    if not tags:
        return []
    slugs: list[str] = []
    for tag in tags:
        if isinstance(tag, dict):
            slug = _nonempty_text(tag.get("slug"))
            if slug is None:
                label = _nonempty_text(tag.get("label"))
                slug = label.lower() if label else None
        else:
            label = _nonempty_text(tag)
            slug = label.lower() if label else None
        if slug is not None and slug not in slugs:
            slugs.append(slug)
    return slugs


def _merge_tags(first: list[str], second: list[str]) -> list[str]:
    # Always a new list: rows must not share one mutable list with their event.
    merged = list(first)
    for tag in second:
        if tag not in merged:
            merged.append(tag)
    return merged


# --- rows ---------------------------------------------------------------------------------------


def _event_row(raw: dict, event_id: str) -> dict:
    return {
        "event_id": event_id,
        "slug": _text(raw.get("slug")),
        "title": _text(raw.get("title")),
        "description": _text(raw.get("description")),
        "category": _nonempty_text(raw.get("category")),
        "tags": _tag_slugs(raw.get("tags")),
        "active": _flag(raw.get("active")),
        "closed": _flag(raw.get("closed")),
        "archived": _flag(raw.get("archived")),
        "neg_risk": bool(_flag(raw.get("negRisk")) or _flag(raw.get("enableNegRisk"))),
        "neg_risk_market_id": _nonempty_text(raw.get("negRiskMarketID")),
        "neg_risk_augmented": _neg_risk_augmented(raw),
        "start_date": parse_timestamp(raw.get("startDate")),
        "end_date": parse_timestamp(raw.get("endDate")),
        "liquidity": _number(raw.get("liquidity")),
        "volume": _number(raw.get("volume")),
        "volume_24hr": _number(raw.get("volume24hr")),
        "market_count": 0,
    }


def _token_ids(values: list) -> list[str] | None:
    """Token ids as strings (they exceed 64 bits, so never numbers); None if any is unusable."""
    tokens = []
    for value in values:
        token = _identifier(value)
        if token is None:
            return None
        tokens.append(token)
    return tokens


def _price(value) -> float | None:
    price = _number(value)
    return price if price is not None and 0.0 <= price <= 1.0 else None


def _market_row(
    raw: dict, market_id: str, event_id: str | None, category: str | None, tags: list[str],
    augmented: bool = False,
) -> tuple[dict | None, str | None]:
    """(row, None) for a usable binary market, else (None, rejection reason)."""
    version = protocol_version(raw)
    if version not in OUTCOME_ID_FIELDS:  # a wire format we do not know: nothing else is read
        return None, UNSUPPORTED_VERSION
    outcomes = decode_json_list(raw.get("outcomes"))
    if not outcomes:
        return None, MISSING_OUTCOMES
    if len(outcomes) != 2:
        return None, NOT_BINARY
    prices = decode_json_list(raw.get("outcomePrices"))
    if not prices:
        return None, MISSING_PRICES
    token_values = decode_json_list(raw.get(OUTCOME_ID_FIELDS[version]))
    if not token_values:
        return None, MISSING_TOKEN_IDS
    if len(prices) != 2 or len(token_values) != 2:
        return None, MISMATCHED_LENGTHS
    tokens = _token_ids(token_values)
    if tokens is None:
        return None, INVALID_TOKEN_IDS
    yes_price, no_price = _price(prices[0]), _price(prices[1])
    if yes_price is None or no_price is None:
        return None, INVALID_PRICE

    row = {
        "market_id": market_id,
        "event_id": event_id,
        "condition_id": _nonempty_text(raw.get("conditionId")),
        "question": _text(raw.get("question")),
        "slug": _text(raw.get("slug")),
        "group_item_title": _text(raw.get("groupItemTitle")),
        "category": category or _nonempty_text(raw.get("category")),
        "tags": _merge_tags(tags, _tag_slugs(raw.get("tags"))),
        "outcomes": [str(outcome) for outcome in outcomes],
        "outcome_prices": [price if isinstance(price, str) else str(price) for price in prices],
        "clob_token_ids": tokens,
        "yes_token_id": tokens[0],
        "no_token_id": tokens[1],
        "yes_price": yes_price,
        "no_price": no_price,
        "best_bid": _number(raw.get("bestBid")),
        "best_ask": _number(raw.get("bestAsk")),
        "spread": _number(raw.get("spread")),
        "last_trade_price": _number(raw.get("lastTradePrice")),
        "liquidity": _preferred_number(raw, "liquidityNum", "liquidity"),
        "volume": _preferred_number(raw, "volumeNum", "volume"),
        "volume_24hr": _number(raw.get("volume24hr")),
        "active": _flag(raw.get("active")),
        "closed": _flag(raw.get("closed")),
        "archived": _flag(raw.get("archived")),
        "accepting_orders": _flag(raw.get("acceptingOrders")),
        "neg_risk": _flag(raw.get("negRisk")) is True,
        "uma_resolution_status": _nonempty_text(raw.get("umaResolutionStatus")),
        "start_date": parse_timestamp(raw.get("startDate")),
        "end_date": parse_timestamp(raw.get("endDate")),
        "closed_time": parse_timestamp(raw.get("closedTime")),
        "protocol_version": version,
        **market_rules(raw),
        **gamma_fee_parameters(raw),
        "neg_risk_other": is_neg_risk_other(raw, augmented),
        # Depth comes from the CLOB's books only: a Gamma observation carries none.
        "bids": None,
        "asks": None,
    }
    return row, None


# --- protocol version and outcome ids -------------------------------------------------------------

# Where each protocol version keeps its outcome ids: V1 in `clobTokenIds` (JSON text), Protocol V2
# (2026) in `positionIds` (a native array). decode_json_list reads either shape.
OUTCOME_ID_FIELDS = {"v1": "clobTokenIds", "v2": "positionIds"}


def protocol_version(raw: dict) -> str:
    """The market's protocol version, lowercased; an absent or blank `version` is V1."""
    version = _nonempty_text(raw.get("version"))
    return "v1" if version is None else version.lower()


# --- market rules ---------------------------------------------------------------------------------


def _positive(value) -> float | None:
    number = _number(value)
    return number if number is not None and number > 0 else None


def _non_negative(value) -> float | None:
    number = _number(value)
    return number if number is not None and number >= 0 else None


def market_rules(raw: dict) -> dict:
    """Tick size and minimum order size (shares) from a Gamma market; None when not given."""
    return {
        "tick_size": _positive(raw.get("orderPriceMinTickSize")),
        "min_order_size": _non_negative(raw.get("orderMinSize")),
    }


def book_rules(raw_book: dict) -> dict:
    """The same rules as a CLOB book states them (`tick_size`, `min_order_size`, as text)."""
    return {
        "tick_size": _positive(raw_book.get("tick_size")),
        "min_order_size": _non_negative(raw_book.get("min_order_size")),
    }


# --- fee parameters -------------------------------------------------------------------------------
#
# Venue-neutral columns: fees_enabled, fee_rate, fee_exponent, fee_taker_only, for the taker fee
# shares * rate * (p * (1 - p)) ** exponent. Unknown stays None: a market that says fees are on
# but gives no parameters keeps fee_rate None, so the fee model can charge its conservative
# default and flag it, rather than charging nothing.

FEE_COLUMNS = ("fees_enabled", "fee_rate", "fee_exponent", "fee_taker_only")


def _fee_row(enabled, rate, exponent, taker_only) -> dict:
    return {
        "fees_enabled": enabled,
        "fee_rate": _non_negative(rate),
        "fee_exponent": _non_negative(exponent),
        "fee_taker_only": _flag(taker_only),
    }


def gamma_fee_parameters(raw: dict) -> dict:
    """From Gamma's `feesEnabled` and `feeSchedule` {rate, exponent, takerOnly, rebateRate}.

    Fee-free (`feesEnabled: false`) is rate 0, whatever a stale schedule says.
    """
    enabled = _flag(raw.get("feesEnabled"))
    schedule = raw.get("feeSchedule")
    schedule = schedule if isinstance(schedule, dict) else {}
    if enabled is False:
        return _fee_row(False, 0, None, schedule.get("takerOnly"))
    return _fee_row(enabled, schedule.get("rate"), schedule.get("exponent"), schedule.get("takerOnly"))


def clob_fee_parameters(info: dict) -> dict:
    """From the CLOB market info (`GET /clob-markets/{condition_id}`): fee details `fd`
    {r: rate, e: exponent, to: taker only}. No `fd` is unknown; a zero rate is fee-free."""
    details = info.get("fd") if isinstance(info, dict) else None
    if not isinstance(details, dict):
        return _fee_row(None, None, None, None)
    rate = _non_negative(details.get("r"))
    enabled = None if rate is None else rate > 0
    return _fee_row(enabled, rate, details.get("e"), details.get("to"))


# --- augmented negRisk ----------------------------------------------------------------------------
#
# In an augmented negRisk event (enableNegRisk and negRiskAugmented) only named outcomes may be
# traded: placeholders ("Will Person AB win ...?") can be renamed later and "Other" changes its
# meaning as they are, so the named legs never make a complete basket. Gamma flags "Other" with
# `negRiskOther`, but not always (real "Other" markets carry false), so the names are read too.

_PLACEHOLDER_OR_OTHER = re.compile(r"\b(?:person [a-z]{1,2}|another|any other|someone else)\b", re.IGNORECASE)


def _neg_risk_augmented(raw_event: dict) -> bool:
    enabled = _flag(raw_event.get("enableNegRisk")) or _flag(raw_event.get("negRisk"))
    return bool(enabled and _flag(raw_event.get("negRiskAugmented")))


def is_neg_risk_other(raw: dict, augmented: bool) -> bool:
    """True for the "Other" and placeholder outcomes of an augmented negRisk event."""
    if _flag(raw.get("negRiskOther")) is True:
        return True
    if not augmented:
        return False
    title = (_nonempty_text(raw.get("groupItemTitle")) or "").lower()
    question = _text(raw.get("question")) or ""
    return title == "other" or bool(_PLACEHOLDER_OR_OTHER.search(question))


# --- payloads -----------------------------------------------------------------------------------


def _records(payload) -> Iterable:
    """Tolerate nothing or a single value where a list was expected; a stray value is counted."""
    if payload is None:
        return ()
    if isinstance(payload, (dict, str, bytes)) or not isinstance(payload, Iterable):
        return (payload,)
    return payload


def _first_sighting(result: "ParseResult", seen: set[str], raw, not_a_dict: str, missing_id: str) -> str | None:
    """The id of a record seen for the first time; None (counted as rejected or duplicate) otherwise."""
    if not isinstance(raw, dict):
        result.rejected[not_a_dict] += 1
        return None
    record_id = _identifier(raw.get("id"))
    if record_id is None:
        result.rejected[missing_id] += 1
        return None
    if record_id in seen:
        result.duplicates += 1
        return None
    seen.add(record_id)
    return record_id


def _parse_market_into(
    result: ParseResult,
    seen_markets: set[str],
    raw,
    event_row: dict | None,
) -> None:
    market_id = _first_sighting(result, seen_markets, raw, NOT_A_DICT, MISSING_ID)
    if market_id is None:
        return
    if event_row is not None:
        # Every listed market counts, usable or not: a negRisk basket is complete only if all of
        # the event's outcomes can be bought, so an unpriced placeholder must leave it incomplete.
        event_row["market_count"] += 1
    parent = event_row or {"event_id": None, "category": None, "tags": [], "neg_risk_augmented": False}
    row, reason = _market_row(raw, market_id, parent["event_id"], parent["category"], parent["tags"],
                              parent["neg_risk_augmented"])
    if row is None:
        result.rejected[reason] += 1
        return
    result.markets.append(row)


def parse_events(raw_events: Iterable[dict]) -> ParseResult:
    """Rows from a `GET /events` payload: events with their nested markets.

    Every event with an id is returned, including those whose markets were all rejected
    (market_count 0). A repeated event id is dropped whole, nested markets included.
    """
    result = ParseResult()
    seen_events: set[str] = set()
    seen_markets: set[str] = set()
    for raw_event in _records(raw_events):
        event_id = _first_sighting(result, seen_events, raw_event, EVENT_NOT_A_DICT, EVENT_MISSING_ID)
        if event_id is None:
            continue
        event_row = _event_row(raw_event, event_id)
        result.events.append(event_row)
        for raw_market in decode_json_list(raw_event.get("markets")) or ():
            _parse_market_into(result, seen_markets, raw_market, event_row)
    return result


def parse_markets(raw_markets: Iterable[dict]) -> ParseResult:
    """Rows from a `GET /markets` payload, plus each market's parent event (its `events[0]`).

    Parent events are deduplicated silently (many markets share one); `duplicates` counts
    repeated market ids only. market_count counts the markets of this payload that carry an id, usable or not.
    """
    result = ParseResult()
    events_by_id: dict[str, dict] = {}
    seen_markets: set[str] = set()
    for raw_market in _records(raw_markets):
        event_row = None
        if isinstance(raw_market, dict):
            event_row = _parent_event(raw_market, events_by_id)
        _parse_market_into(result, seen_markets, raw_market, event_row)
    result.events = list(events_by_id.values())
    return result


def _parent_event(raw_market: dict, events_by_id: dict[str, dict]) -> dict | None:
    parents = decode_json_list(raw_market.get("events"))
    if not parents or not isinstance(parents[0], dict):
        return None
    event_id = _identifier(parents[0].get("id"))
    if event_id is None:
        return None
    event_row = events_by_id.get(event_id)
    if event_row is None:
        event_row = events_by_id[event_id] = _event_row(parents[0], event_id)
    return event_row
