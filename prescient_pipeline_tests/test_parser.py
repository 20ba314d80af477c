"""The Gamma parser: every wire quirk by hand, then every recorded real response."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from prescient_pipeline.db import schema
from prescient_pipeline.polymarket.parser import (
    ParseResult,
    _parse_timestamp_by_pattern,
    decode_json_list,
    parse_events,
    parse_markets,
    parse_timestamp,
)

DB_FILLED = {"first_seen_at", "updated_at"}
EVENT_COLUMNS = {c.name for c in schema.events.columns} - DB_FILLED
MARKET_COLUMNS = {c.name for c in schema.markets.columns} - DB_FILLED

# Real token ids are decimal strings up to 78 digits: far beyond int64 and float precision.
YES_TOKEN = "111128191581505463501777127559667396812474366956707382672202929745167742497287"
NO_TOKEN = "99807503632459517003432487591325624052428102108389396024418063553093745693543"
MISSING = object()
UTC = timezone.utc


def wire_market(**fields) -> dict:
    """A market as Gamma sends it; keyword `X=MISSING` removes field X."""
    market = {
        "id": "559651",
        "question": "Will it rain?",
        "conditionId": "0xabc",
        "slug": "will-it-rain",
        "groupItemTitle": "Rain",
        "outcomes": '["Yes", "No"]',
        "outcomePrices": '["0.0455", "0.9545"]',
        "clobTokenIds": json.dumps([YES_TOKEN, NO_TOKEN]),
        "volume": "12071015.216477996",
        "volumeNum": 12071015.216477996,
        "liquidity": "5234.5",
        "liquidityNum": 5234.5,
        "volume24hr": 1500,
        "bestBid": 0.045,
        "bestAsk": 0.046,
        "spread": 0.001,
        "lastTradePrice": 0.045,
        "active": True,
        "closed": False,
        "archived": False,
        "acceptingOrders": True,
        "negRisk": False,
        "startDate": "2025-10-01T12:00:00.123Z",
        "endDate": "2025-12-31T12:00:00Z",
    }
    for key, value in fields.items():
        if value is MISSING:
            market.pop(key, None)
        else:
            market[key] = value
    return market


def wire_event(markets=(), **fields) -> dict:
    event = {
        "id": "16167",
        "slug": "rain",
        "title": "Rain?",
        "description": "Rain in London",
        "category": "Weather",
        "tags": [{"id": "1", "label": "Weather", "slug": "weather"}],
        "active": True,
        "closed": False,
        "archived": False,
        "negRisk": False,
        "startDate": "2025-10-01T00:00:00Z",
        "endDate": "2025-12-31T00:00:00Z",
        "liquidity": 184534.74667,
        "volume": 20852308,
        "volume24hr": 35279.197156,
        "markets": list(markets),
    }
    for key, value in fields.items():
        if value is MISSING:
            event.pop(key, None)
        else:
            event[key] = value
    return event


def only_market(raw: dict) -> dict:
    result = parse_markets([raw])
    assert result.rejected == Counter(), result.rejected
    assert len(result.markets) == 1
    return result.markets[0]


def rejection(raw) -> str:
    result = parse_markets([raw])
    assert result.markets == []
    assert sum(result.rejected.values()) == 1
    return next(iter(result.rejected))


# --- decoding helpers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, expected",
    [
        (["Yes", "No"], ["Yes", "No"]),
        ('["Yes", "No"]', ["Yes", "No"]),
        ('  ["0.5", 0.5] ', ["0.5", 0.5]),
        ("", []),
        ("[]", []),
        ([], []),
        (None, None),
        ("[", None),
        ("not json", None),
        ('{"a": 1}', None),
        ("null", None),
        ("7", None),
        (7, None),
        ({"a": 1}, None),
    ],
)
def test_decode_json_list(value, expected):
    assert decode_json_list(value) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2025-10-22T17:02:54Z", datetime(2025, 10, 22, 17, 2, 54, tzinfo=UTC)),
        ("2025-10-22T17:02:54.1Z", datetime(2025, 10, 22, 17, 2, 54, 100000, tzinfo=UTC)),
        ("2025-10-22T17:02:54.12Z", datetime(2025, 10, 22, 17, 2, 54, 120000, tzinfo=UTC)),
        ("2025-10-22T17:02:54.12345Z", datetime(2025, 10, 22, 17, 2, 54, 123450, tzinfo=UTC)),
        ("2025-10-22T17:02:54.123456Z", datetime(2025, 10, 22, 17, 2, 54, 123456, tzinfo=UTC)),
        ("2025-10-22T17:02:54.123456+00:00", datetime(2025, 10, 22, 17, 2, 54, 123456, tzinfo=UTC)),
        ("2025-10-22T19:02:54+02:00", datetime(2025, 10, 22, 17, 2, 54, tzinfo=UTC)),
        ("2025-10-22T12:02:54-0500", datetime(2025, 10, 22, 17, 2, 54, tzinfo=UTC)),
        ("2025-10-22 17:02:54+00", datetime(2025, 10, 22, 17, 2, 54, tzinfo=UTC)),
        ("2022-07-27 14:40:02.064+00", datetime(2022, 7, 27, 14, 40, 2, 64000, tzinfo=UTC)),
        ("2025-10-22T17:02:54", datetime(2025, 10, 22, 17, 2, 54, tzinfo=UTC)),
        ("2025-10-22", datetime(2025, 10, 22, tzinfo=UTC)),
    ],
)
def test_parse_timestamp_formats(text, expected):
    parsed = parse_timestamp(text)
    assert parsed == expected
    assert parsed.tzinfo is not None and parsed.utcoffset() == timedelta(0)
    # The fallback used where datetime.fromisoformat is stricter (Python 3.10) agrees.
    assert parse_timestamp(_parse_timestamp_by_pattern(text)) == expected


@pytest.mark.parametrize(
    "value",
    [None, "", "   ", "garbage", "2025-13-01", "2025-10-22T25:00:00Z", "2025-10-22Tjunk",
     "9999-12-31T23:59:59-05:00", 1761000000, 17.5, True, [], {}],
)
def test_parse_timestamp_gives_none_for_absent_or_unreadable(value):
    assert parse_timestamp(value) is None


def test_parse_timestamp_with_seven_fraction_digits_keeps_microseconds():
    assert parse_timestamp("2025-10-22T17:02:54.1234567Z") == datetime(
        2025, 10, 22, 17, 2, 54, 123456, tzinfo=UTC
    )


# --- market rows --------------------------------------------------------------------------------


def test_row_keys_are_exactly_the_table_columns():
    result = parse_events([wire_event([wire_market()])])
    assert set(result.events[0]) == EVENT_COLUMNS
    assert set(result.markets[0]) == MARKET_COLUMNS
    result = parse_markets([wire_market(events=[{"id": "1"}])])
    assert set(result.events[0]) == EVENT_COLUMNS
    assert set(result.markets[0]) == MARKET_COLUMNS


def test_a_typical_market_row():
    row = only_market(wire_market(umaResolutionStatus="proposed", closedTime="2025-10-22 17:02:54+00"))
    assert row == {
        "market_id": "559651",
        "event_id": None,
        "condition_id": "0xabc",
        "question": "Will it rain?",
        "slug": "will-it-rain",
        "group_item_title": "Rain",
        "category": None,
        "tags": [],
        "outcomes": ["Yes", "No"],
        "outcome_prices": ["0.0455", "0.9545"],
        "clob_token_ids": [YES_TOKEN, NO_TOKEN],
        "yes_token_id": YES_TOKEN,
        "no_token_id": NO_TOKEN,
        "yes_price": 0.0455,
        "no_price": 0.9545,
        "best_bid": 0.045,
        "best_ask": 0.046,
        "spread": 0.001,
        "last_trade_price": 0.045,
        "liquidity": 5234.5,
        "volume": 12071015.216477996,
        "volume_24hr": 1500.0,
        "active": True,
        "closed": False,
        "archived": False,
        "accepting_orders": True,
        "neg_risk": False,
        "uma_resolution_status": "proposed",
        "start_date": datetime(2025, 10, 1, 12, 0, 0, 123000, tzinfo=UTC),
        "end_date": datetime(2025, 12, 31, 12, tzinfo=UTC),
        "closed_time": datetime(2025, 10, 22, 17, 2, 54, tzinfo=UTC),
        # No `version`: a V1 market. Nothing said about rules or fees: unknown, not zero.
        "protocol_version": "v1",
        "tick_size": None,
        "min_order_size": None,
        "fees_enabled": None,
        "fee_rate": None,
        "fee_exponent": None,
        "fee_taker_only": None,
        "neg_risk_other": False,
        "bids": None,
        "asks": None,
    }
    assert type(row["volume_24hr"]) is float


def test_list_fields_as_real_lists_parse_like_stringified_ones():
    as_lists = wire_market(
        outcomes=["Yes", "No"], outcomePrices=["0.0455", "0.9545"], clobTokenIds=[YES_TOKEN, NO_TOKEN]
    )
    assert only_market(as_lists) == only_market(wire_market())


def test_numeric_prices_are_kept_as_price_strings_and_floats():
    row = only_market(wire_market(outcomePrices=[0.25, 1 - 0.25]))
    assert row["outcome_prices"] == ["0.25", "0.75"]
    assert (row["yes_price"], row["no_price"]) == (0.25, 0.75)
    row = only_market(wire_market(outcomePrices="[1, 0]"))
    assert row["outcome_prices"] == ["1", "0"]
    assert (row["yes_price"], row["no_price"]) == (1.0, 0.0)


def test_long_float_prices_of_legacy_markets_parse():
    prices = ["0.000001450258392919381251975644464071947", "0.9999985497416070806187480243555359"]
    row = only_market(wire_market(outcomePrices=json.dumps(prices)))
    assert row["outcome_prices"] == prices
    assert row["yes_price"] == pytest.approx(1.450258392919381e-06)


def test_token_ids_stay_exact_strings_even_when_sent_as_numbers():
    # json.loads reads a bare 78-digit number as an exact int; it must come back digit for digit.
    row = only_market(wire_market(clobTokenIds=f"[{YES_TOKEN}, {NO_TOKEN}]"))
    assert row["clob_token_ids"] == [YES_TOKEN, NO_TOKEN]
    assert row["yes_token_id"] == YES_TOKEN and isinstance(row["yes_token_id"], str)


def test_index_zero_is_the_yes_side_whatever_the_labels():
    row = only_market(wire_market(outcomes='["Up", "Down"]', outcomePrices='["0.505", "0.495"]'))
    assert (row["outcomes"], row["yes_price"], row["no_price"]) == (["Up", "Down"], 0.505, 0.495)
    assert (row["yes_token_id"], row["no_token_id"]) == (YES_TOKEN, NO_TOKEN)
    row = only_market(wire_market(outcomes='["FaZe", "illwill"]'))
    assert row["outcomes"] == ["FaZe", "illwill"] and row["yes_token_id"] == YES_TOKEN


@pytest.mark.parametrize("prices", ['["1", "0"]', '["0", "1"]', '["0.5", "0.5"]', '["0", "0"]'])
def test_resolved_and_legacy_closed_prices_are_kept(prices):
    row = only_market(wire_market(outcomePrices=prices, closed=True, umaResolutionStatus="resolved"))
    assert row["outcome_prices"] == json.loads(prices)
    assert row["closed"] is True


@pytest.mark.parametrize(
    "fields, reason",
    [
        ({"id": MISSING}, "missing_id"),
        ({"id": ""}, "missing_id"),
        ({"id": None}, "missing_id"),
        ({"outcomes": MISSING}, "missing_outcomes"),
        ({"outcomes": ""}, "missing_outcomes"),
        ({"outcomes": "[]"}, "missing_outcomes"),
        ({"outcomes": "[broken"}, "missing_outcomes"),
        ({"outcomes": '["A", "B", "C"]', "outcomePrices": '["0.2", "0.3", "0.5"]',
          "clobTokenIds": '["1", "2", "3"]'}, "not_binary"),
        ({"outcomes": '["Yes"]'}, "not_binary"),
        ({"outcomePrices": MISSING}, "missing_prices"),
        ({"outcomePrices": None}, "missing_prices"),
        ({"outcomePrices": ""}, "missing_prices"),
        ({"outcomePrices": "[]"}, "missing_prices"),
        ({"clobTokenIds": MISSING}, "missing_token_ids"),
        ({"clobTokenIds": ""}, "missing_token_ids"),
        ({"clobTokenIds": "[]"}, "missing_token_ids"),
        ({"outcomePrices": '["0.2", "0.3", "0.5"]'}, "mismatched_lengths"),
        ({"outcomePrices": '["1"]'}, "mismatched_lengths"),
        ({"clobTokenIds": json.dumps([YES_TOKEN])}, "mismatched_lengths"),
        ({"clobTokenIds": json.dumps([YES_TOKEN, ""])}, "invalid_token_ids"),
        ({"clobTokenIds": json.dumps([YES_TOKEN, None])}, "invalid_token_ids"),
        ({"clobTokenIds": json.dumps([YES_TOKEN, 1.5e77])}, "invalid_token_ids"),
        ({"outcomePrices": '["1.2", "-0.2"]'}, "invalid_price"),
        ({"outcomePrices": '["0.5", "-0.0001"]'}, "invalid_price"),
        ({"outcomePrices": '["abc", "0.5"]'}, "invalid_price"),
        ({"outcomePrices": '[null, "0.5"]'}, "invalid_price"),
        ({"outcomePrices": '["NaN", "0.5"]'}, "invalid_price"),
        ({"outcomePrices": '[true, false]'}, "invalid_price"),
        ({"outcomePrices": '["", ""]'}, "invalid_price"),
    ],
)
def test_unusable_markets_are_kept_out_with_a_reason(fields, reason):
    assert rejection(wire_market(**fields)) == reason


@pytest.mark.parametrize("raw", [None, "559651", 7, ["id", "1"], 1.5])
def test_a_market_that_is_not_an_object_is_counted(raw):
    assert rejection(raw) == "not_a_dict"


def test_archived_placeholder_market_without_prices_is_rejected():
    arch = wire_market(
        id="502517", question="ARCH Will the match be a draw?", conditionId="", outcomePrices=MISSING,
        clobTokenIds=MISSING, volume=MISSING, volumeNum=MISSING, liquidity=MISSING, liquidityNum=MISSING,
        umaResolutionStatuses="[]",
    )
    assert rejection(arch) == "missing_prices"


def test_empty_condition_id_is_none():
    assert only_market(wire_market(conditionId=""))["condition_id"] is None
    assert only_market(wire_market(conditionId=MISSING))["condition_id"] is None


def test_numbers_prefer_the_numeric_field_and_fall_back_to_the_string():
    row = only_market(wire_market(volume="1.0", volumeNum=2, liquidity="3.5", liquidityNum=MISSING))
    assert (row["volume"], row["liquidity"]) == (2.0, 3.5)
    assert type(row["volume"]) is float
    row = only_market(wire_market(volumeNum=None, volume="12.25", liquidityNum="garbage", liquidity="7"))
    assert (row["volume"], row["liquidity"]) == (12.25, 7.0)


def test_missing_market_data_is_unknown_not_zero():
    row = only_market(
        wire_market(
            volume=MISSING, volumeNum=MISSING, liquidity=MISSING, liquidityNum=MISSING, volume24hr=MISSING,
            bestBid=MISSING, bestAsk=MISSING, spread=MISSING, lastTradePrice=MISSING,
        )
    )
    unknown = ("volume", "liquidity", "volume_24hr", "best_bid", "best_ask", "spread", "last_trade_price")
    assert {column: row[column] for column in unknown} == dict.fromkeys(unknown)


def test_market_data_numbers_may_be_ints_or_strings():
    row = only_market(wire_market(bestBid=0, bestAsk=1, spread="0.02", lastTradePrice="1", volume24hr="bad"))
    assert (row["best_bid"], row["best_ask"], row["spread"], row["last_trade_price"]) == (0.0, 1.0, 0.02, 1.0)
    assert all(type(row[c]) is float for c in ("best_bid", "best_ask", "spread", "last_trade_price"))
    assert row["volume_24hr"] is None


def test_missing_flags_are_unknown_except_neg_risk():
    flags = ("active", "closed", "archived", "accepting_orders", "neg_risk")
    unset = dict.fromkeys(("active", "closed", "archived", "acceptingOrders", "negRisk"), MISSING)
    row = only_market(wire_market(**unset))
    assert [row[f] for f in flags] == [None, None, None, None, False]
    row = only_market(wire_market(active="true", closed="false", negRisk=True, acceptingOrders="maybe"))
    assert [row[f] for f in flags] == [True, False, False, None, True]


def test_missing_or_odd_dates_are_none():
    row = only_market(wire_market(endDate=MISSING, startDate="", closedTime="soon"))
    assert (row["start_date"], row["end_date"], row["closed_time"]) == (None, None, None)


def test_numeric_ids_become_text():
    row = only_market(wire_market(id=559651))
    assert row["market_id"] == "559651"


def test_line_separator_inside_text_survives():
    """U+2028 is data, not a line break: JSONL is split on '\\n' only."""
    question = "Will A\u2028or B win?"
    lines = [json.dumps(wire_market(id=str(i), question=question), ensure_ascii=False) for i in (1, 2)]
    text = "\n".join(lines) + "\n"
    assert len(text.splitlines()) == 4  # why splitlines() must not be used
    records = [json.loads(line) for line in text.split("\n") if line]
    result = parse_markets(records)
    assert [m["question"] for m in result.markets] == [question, question]


# --- events, inheritance and duplicates ---------------------------------------------------------


def test_event_row_and_market_inheritance():
    event = wire_event(
        [wire_market(id="1"), wire_market(id="2", outcomePrices=MISSING)],
        tags=[
            {"id": "2", "label": "Politics", "slug": "politics"},
            {"id": "3", "label": "US Election"},
            {"id": "2", "label": "Politics", "slug": "politics"},
            {"id": "4", "label": "Weather", "slug": "weather"},
        ],
        negRisk=MISSING, enableNegRisk=True, negRiskMarketID="0xneg",
    )
    result = parse_events([event])
    assert result.rejected == Counter({"missing_prices": 1})
    [row] = result.events
    assert row == {
        "event_id": "16167",
        "slug": "rain",
        "title": "Rain?",
        "description": "Rain in London",
        "category": "Weather",
        "tags": ["politics", "us election", "weather"],
        "active": True,
        "closed": False,
        "archived": False,
        "neg_risk": True,
        "neg_risk_market_id": "0xneg",
        "neg_risk_augmented": False,
        "start_date": datetime(2025, 10, 1, tzinfo=UTC),
        "end_date": datetime(2025, 12, 31, tzinfo=UTC),
        "liquidity": 184534.74667,
        "volume": 20852308.0,
        "volume_24hr": 35279.197156,
        "market_count": 2,  # the unpriced market is listed too
    }
    [market] = result.markets
    assert (market["market_id"], market["event_id"]) == ("1", "16167")
    assert (market["category"], market["tags"]) == ("Weather", ["politics", "us election", "weather"])
    assert market["tags"] is not row["tags"]


def test_event_defaults_when_fields_are_missing_or_strings():
    bare = {"id": "9", "markets": [wire_market()], "liquidity": "12.5", "volume": "", "volume24hr": "x"}
    [row] = parse_events([bare]).events
    assert (row["category"], row["tags"]) == (None, [])
    assert (row["neg_risk"], row["neg_risk_market_id"]) == (False, None)
    assert (row["active"], row["closed"], row["archived"]) == (None, None, None)
    assert (row["liquidity"], row["volume"], row["volume_24hr"]) == (12.5, None, None)
    assert (row["start_date"], row["end_date"], row["market_count"]) == (None, None, 1)


def test_market_keeps_its_own_tags_and_category_when_given():
    event = wire_event([wire_market(tags=[{"slug": "rain"}, {"slug": "weather"}])], category=MISSING)
    [market] = parse_events([event]).markets
    assert market["tags"] == ["weather", "rain"]
    legacy = wire_market(category="Sports", events=[{"id": "7"}])
    assert only_market(legacy)["category"] == "Sports"


def test_event_whose_markets_are_all_rejected_is_still_returned():
    result = parse_events([wire_event([wire_market(outcomes='["A","B","C"]'), "junk"])])
    # The non-binary market is listed (it has an id), so it counts; the stray string does not.
    assert [e["market_count"] for e in result.events] == [1]
    assert result.rejected == Counter({"not_binary": 1, "not_a_dict": 1})


def test_event_markets_field_in_any_shape():
    for markets in (None, "", "[]", {"id": "1"}, 5):
        result = parse_events([{**wire_event(), "markets": markets}])
        assert (len(result.events), result.markets) == (1, [])
    stringified = {**wire_event(), "markets": json.dumps([wire_market()])}
    assert len(parse_events([stringified]).markets) == 1


def test_unkeyable_events_are_counted_not_raised():
    result = parse_events([None, "x", wire_event([wire_market()], id=MISSING), wire_event(id="")])
    assert (result.events, result.markets) == ([], [])
    assert result.rejected == Counter({"event_not_a_dict": 2, "event_missing_id": 2})


def test_duplicate_events_and_markets_keep_the_first():
    first = wire_event([wire_market(id="1", question="first"), wire_market(id="2")], id="10")
    again = wire_event([wire_market(id="3")], id="10", title="again")
    other = wire_event([wire_market(id="1", question="second"), wire_market(id="4")], id="11")
    result = parse_events([first, again, other])
    assert [e["event_id"] for e in result.events] == ["10", "11"]
    assert result.events[0]["title"] == "Rain?"
    assert [m["market_id"] for m in result.markets] == ["1", "2", "4"]
    assert result.markets[0]["question"] == "first"
    assert result.duplicates == 2
    assert [e["market_count"] for e in result.events] == [2, 1]


def test_parse_markets_returns_each_parent_event_once():
    parent = {"id": "100", "title": "Parent", "category": "Sports", "negRisk": True}
    markets = [
        wire_market(id="1", events=[parent]),
        wire_market(id="2", events=[dict(parent, title="changed")]),
        wire_market(id="1", events=[parent]),
        wire_market(id="3", events=[parent], outcomePrices=""),
        wire_market(id="4", events=[{"id": "200"}], clobTokenIds=MISSING),
        wire_market(id="5"),
        wire_market(id="6", events="not a list"),
    ]
    result = parse_markets(markets)
    assert [m["market_id"] for m in result.markets] == ["1", "2", "5", "6"]
    assert [m["event_id"] for m in result.markets] == ["100", "100", None, None]
    assert [(e["event_id"], e["title"], e["market_count"]) for e in result.events] == [
        ("100", "Parent", 3), ("200", None, 1),
    ]
    assert result.events[0]["neg_risk"] is True
    assert result.markets[0]["category"] == "Sports"
    assert result.duplicates == 1
    assert result.rejected == Counter({"missing_prices": 1, "missing_token_ids": 1})


def test_payload_shapes_that_are_not_lists_do_not_crash():
    assert parse_markets(None) == ParseResult()
    assert parse_events([]) == ParseResult()
    assert len(parse_markets(wire_market()).markets) == 1
    assert len(parse_events(wire_event([wire_market()])).markets) == 1
    assert parse_markets(x for x in [wire_market()]).markets[0]["market_id"] == "559651"
    assert parse_markets(5).rejected == Counter({"not_a_dict": 1})
    assert parse_events("[]").rejected == Counter({"event_not_a_dict": 1})


ODD_VALUES = [
    None, "", " ", "[]", "[", "null", "{}", {}, [], [None], [[1, 2]], [{}], 0, -1, 1.5, 10**100,
    float("nan"), float("inf"), True, False, "true", "garbage", "9" * 400, ["a", "b", "c"], "\u2028",
]


@pytest.mark.parametrize("key", sorted(wire_market()) + ["events", "tags", "category", "closedTime"])
def test_no_field_value_crashes_the_market_parser(key):
    for value in ODD_VALUES:
        result = parse_markets([wire_market(**{key: value}), {**wire_market(id="other"), key: value}])
        assert len(result.markets) + sum(result.rejected.values()) + result.duplicates == 2, (key, value)


@pytest.mark.parametrize("key", sorted(wire_event()) + ["enableNegRisk", "negRiskMarketID"])
def test_no_field_value_crashes_the_event_parser(key):
    for value in ODD_VALUES:
        result = parse_events([{**wire_event([wire_market()]), key: value}])
        assert len(result.events) + sum(result.rejected.values()) >= 1, (key, value)


# --- every recorded real response ---------------------------------------------------------------

BOSHI = "the-boshi__polymarket-db"
BORAT = "borat14011-sudo__wom-polymarket-strategy"
ALEX = "Alex-Alaniz__PolymarketPipeline-Primape"
NAUTILUS = "nautechsystems__nautilus_trader"
PIRODAX = "Pirodax__Arbitrage_combinatoire"
WHALE = "johnstew324__polymarket-whale-watch"

# How each recorded file reaches the parser: (kind, where its records are).
# kind: "markets" = Gamma /markets, "events" = Gamma /events, "normalized_events" = /events rewritten
# in snake_case by its author, "other" = not Gamma markets at all (CLOB, price history, tags, ...).
# where: None = the file is the list, "single" = the file is one object, else the key holding the list.
FILE_SHAPES = {
    f"{BOSHI}/markets_2024-11-05.jsonl": ("markets", None),
    f"{BOSHI}/markets_2025-10-09.jsonl": ("markets", None),
    f"{BOSHI}/markets_2025-11-06.jsonl": ("markets", None),
    f"{BOSHI}/markets_2025-11-07.jsonl": ("markets", None),
    f"{BOSHI}/markets_2025-11-10.jsonl": ("markets", None),
    f"{BORAT}/polymarket-backtest_data_raw_markets.json": ("markets", None),
    f"{BORAT}/markets_raw.json": ("markets", None),
    f"{BORAT}/polymarket_fresh.json": ("markets", "markets"),
    f"{BORAT}/gamma_market_condition.json": ("markets", None),
    f"{BORAT}/events.json": ("events", None),
    f"{BORAT}/gamma_events.json": ("events", None),
    f"{BORAT}/clob_sampling.json": ("other", "data"),
    f"{BORAT}/active_prices_1d.json": ("other", "history"),
    f"{BORAT}/active_prices_1w_f5.json": ("other", "history"),
    f"{BORAT}/active_prices_1m_f10.json": ("other", "history"),
    f"{BORAT}/gamma_tags.json": ("other", None),
    f"{BORAT}/gamma_sports.json": ("other", None),
    f"{ALEX}/data_active_markets.json": ("markets", "markets"),
    f"{ALEX}/gamma_markets_response.json": ("markets", None),
    f"{ALEX}/raw_api_response.json": ("other", "data"),
    f"{NAUTILUS}/gamma_event.json": ("events", None),
    f"{NAUTILUS}/search_response.json": ("events", "events"),
    f"{NAUTILUS}/gamma_market.json": ("markets", "single"),
    f"{NAUTILUS}/gamma_market_closed_binary_accepting_true.json": ("markets", "single"),
    f"{NAUTILUS}/gamma_market_closed_binary_accepting_false.json": ("markets", "single"),
    f"{NAUTILUS}/gamma_market_closed_nonbinary_legacy.json": ("markets", "single"),
    f"{NAUTILUS}/gamma_market_closed_zero_zero_legacy.json": ("markets", "single"),
    f"{NAUTILUS}/gamma_market_sports_market_map_handicap.json": ("markets", "single"),
    f"{NAUTILUS}/gamma_market_sports_market_money_line.json": ("markets", "single"),
    f"{NAUTILUS}/gamma_tags.json": ("other", None),
    f"{NAUTILUS}/clob_book_response.json": ("other", "single"),
    f"{NAUTILUS}/clob_market_closed_binary_accepting_true.json": ("other", "single"),
    f"{NAUTILUS}/clob_market_closed_binary_accepting_false.json": ("other", "single"),
    f"{NAUTILUS}/ws_market_resolved_msg.json": ("other", "single"),
    f"{PIRODAX}/polymarket_events.json": ("normalized_events", None),
    f"{WHALE}/data_raw_markets.json": ("other", None),
}


def read_records(data_dir: Path, relative: str) -> list:
    path = data_dir / relative
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        # '\n' only: str.splitlines() would also break on U+2028 inside a description.
        return [json.loads(line) for line in text.split("\n") if line.strip()]
    data = json.loads(text)
    where = FILE_SHAPES[relative][1]
    if where is None:
        return data
    if where == "single":
        return [data]
    return data[where]


def usable_by_hand(raw) -> bool:
    """The usability rule read straight off the raw JSON, independently of the parser."""
    if not isinstance(raw, dict) or not raw.get("id"):
        return False

    def as_list(value):
        if isinstance(value, list):
            return value
        try:
            value = json.loads(value)
        except (TypeError, ValueError):
            return None
        return value if isinstance(value, list) else None

    outcomes, prices, tokens = (as_list(raw.get(k)) for k in ("outcomes", "outcomePrices", "clobTokenIds"))
    if not (outcomes and prices and tokens) or not len(outcomes) == len(prices) == len(tokens) == 2:
        return False
    try:
        return all(0 <= float(p) <= 1 for p in prices)
    except (TypeError, ValueError):
        return False


def first_by_id(records: list) -> dict:
    firsts: dict = {}
    for record in records:
        firsts.setdefault(record["id"], record)
    return firsts


def assert_rows_are_well_typed(result: ParseResult) -> None:
    for event in result.events:
        assert set(event) == EVENT_COLUMNS
        assert isinstance(event["event_id"], str) and isinstance(event["tags"], list)
        for column in ("start_date", "end_date"):
            assert event[column] is None or event[column].utcoffset() == timedelta(0)
    for market in result.markets:
        assert set(market) == MARKET_COLUMNS
        assert market["yes_token_id"].isdigit() and market["no_token_id"].isdigit()
        assert market["clob_token_ids"] == [market["yes_token_id"], market["no_token_id"]]
        assert all(isinstance(p, str) for p in market["outcome_prices"])
        assert 0 <= market["yes_price"] <= 1 and 0 <= market["no_price"] <= 1
        assert isinstance(market["neg_risk"], bool)
        for column in ("start_date", "end_date", "closed_time"):
            assert market[column] is None or market[column].utcoffset() == timedelta(0)


def test_every_recorded_file_has_a_known_shape(polymarket_data):
    present = {
        p.relative_to(polymarket_data).as_posix()
        for p in polymarket_data.rglob("*")
        if p.is_file() and p.suffix in (".json", ".jsonl")
    }
    assert present == set(FILE_SHAPES)


@pytest.mark.parametrize("relative", sorted(FILE_SHAPES))
def test_recorded_file_parses_as_its_raw_json_says(polymarket_data, relative):
    kind = FILE_SHAPES[relative][0]
    records = read_records(polymarket_data, relative)
    assert records, "a recorded file with nothing in it"

    if kind == "markets":
        result = parse_markets(records)
        firsts = first_by_id(records)
        usable = [i for i, raw in firsts.items() if usable_by_hand(raw)]
        assert [m["market_id"] for m in result.markets] == usable
        assert result.duplicates == len(records) - len(firsts)
        assert len(result.markets) + sum(result.rejected.values()) + result.duplicates == len(records)
        parents = {r["events"][0]["id"] for r in records if r.get("events")}
        assert {e["event_id"] for e in result.events} == parents
        # Every listed market with a parent counts, usable or not.
        listed = sum(1 for i, raw in firsts.items() if raw.get("events") and isinstance(raw["events"], list))
        assert sum(e["market_count"] for e in result.events) == listed
    elif kind == "events":
        result = parse_events(records)
        assert [e["event_id"] for e in result.events] == [r["id"] for r in records]
        nested = [m for r in records for m in r.get("markets", [])]
        assert [m["market_id"] for m in result.markets] == [m["id"] for m in nested if usable_by_hand(m)]
        assert [e["market_count"] for e in result.events] == [
            sum(usable_by_hand(m) for m in r.get("markets", [])) for r in records
        ]
    elif kind == "normalized_events":
        # Not the wire format (snake_case keys): nothing is guessed, so no market is usable.
        result = parse_events(records)
        assert len(result.events) == len(records)
        assert result.markets == []
        assert result.rejected == Counter({"missing_prices": sum(len(r["markets"]) for r in records)})
    else:
        # Not Gamma markets: every record is kept out, none becomes a row.
        result = parse_markets(records)
        assert (result.markets, result.events) == ([], [])
        assert sum(result.rejected.values()) == len(records)
        assert set(result.rejected) <= {"missing_id", "missing_outcomes"}
        assert parse_events(records).markets == []
    assert_rows_are_well_typed(result)


def parse_file(data_dir: Path, relative: str) -> ParseResult:
    records = read_records(data_dir, relative)
    return parse_events(records) if FILE_SHAPES[relative][0] == "events" else parse_markets(records)


def by_id(result: ParseResult) -> dict:
    return {m["market_id"]: m for m in result.markets}


def test_boshi_files_hold_the_documented_markets_and_events(polymarket_data):
    expected = {  # (markets, parent events), per SOURCES.md
        "markets_2024-11-05.jsonl": (135, 51),
        "markets_2025-10-09.jsonl": (764, 480),
        "markets_2025-11-06.jsonl": (292, 87),
        "markets_2025-11-07.jsonl": (395, 81),
        "markets_2025-11-10.jsonl": (505, 227),
    }
    missing_end = 0
    for name, counts in expected.items():
        result = parse_file(polymarket_data, f"{BOSHI}/{name}")
        assert (len(result.markets), len(result.events)) == counts
        assert (result.rejected, result.duplicates) == (Counter(), 0)
        missing_end += sum(m["end_date"] is None for m in result.markets)
    assert missing_end == 37


def test_resolved_day_keeps_the_fifty_fifty_market(polymarket_data):
    result = parse_file(polymarket_data, f"{BOSHI}/markets_2025-10-09.jsonl")
    markets = by_id(result)
    fifty = markets["628441"]
    assert (fifty["yes_price"], fifty["no_price"], fifty["outcome_prices"]) == (0.5, 0.5, ["0.5", "0.5"])
    assert "Yankees" in fifty["question"] and fifty["closed"] is True
    prices = Counter(tuple(m["outcome_prices"]) for m in result.markets)
    assert prices == Counter({("0", "1"): 457, ("1", "0"): 306, ("0.5", "0.5"): 1})
    assert all(m["closed"] and m["uma_resolution_status"] == "resolved" for m in result.markets)
    assert sum(m["neg_risk"] for m in result.markets) == 127
    assert sum(m["liquidity"] is None for m in result.markets) == 493
    assert all(m["closed_time"] is not None for m in result.markets)
    assert sum(e["market_count"] > 1 for e in result.events) == 57


def test_active_days_show_resolution_proposed_while_still_open(polymarket_data):
    statuses = Counter()
    for name in ("markets_2025-11-06.jsonl", "markets_2025-11-07.jsonl", "markets_2025-11-10.jsonl"):
        for market in parse_file(polymarket_data, f"{BOSHI}/{name}").markets:
            assert market["closed"] is False
            if market["uma_resolution_status"]:
                assert market["accepting_orders"] is True
                statuses[market["uma_resolution_status"]] += 1
    assert statuses == Counter({"proposed": 14, "resolved": 1})


def test_line_separator_in_a_real_question_survives(polymarket_data):
    relative = f"{BOSHI}/markets_2025-11-07.jsonl"
    text = (polymarket_data / relative).read_text(encoding="utf-8")
    assert len(text.splitlines()) > len(read_records(polymarket_data, relative)) == 395
    market = by_id(parse_file(polymarket_data, relative))["668684"]
    assert "\u2028" in market["question"] and "\u2028" in market["group_item_title"]


def test_backtest_dump_drops_its_four_repeated_ids(polymarket_data):
    relative = f"{BORAT}/polymarket-backtest_data_raw_markets.json"
    records = read_records(polymarket_data, relative)
    repeated = {i for i, n in Counter(r["id"] for r in records).items() if n > 1}
    assert len(records) == 600 and len(repeated) == 4
    result = parse_file(polymarket_data, relative)
    assert (len(result.markets), result.duplicates, len(result.events)) == (596, 4, 515)
    ids = [m["market_id"] for m in result.markets]
    assert len(set(ids)) == len(ids) and repeated <= set(ids)
    statuses = Counter(m["uma_resolution_status"] for m in result.markets)
    assert statuses == Counter(r.get("umaResolutionStatus") for r in first_by_id(records).values())


def test_legacy_markets_reject_non_binary_and_tokenless_ones(polymarket_data):
    relative = f"{BORAT}/markets_raw.json"
    records = read_records(polymarket_data, relative)
    non_binary = sum(len(json.loads(r["outcomes"])) > 2 for r in records)
    tokenless = sum("clobTokenIds" not in r and len(json.loads(r["outcomes"])) == 2 for r in records)
    assert (non_binary, tokenless) == (28, 3)
    result = parse_file(polymarket_data, relative)
    assert result.rejected == Counter({"not_binary": non_binary, "missing_token_ids": tokenless})
    assert len(result.markets) == 500 - non_binary - tokenless == 469
    markets = by_id(result)
    assert {"115", "91437", "206736"}.isdisjoint(markets)
    zero_zero = [m for m in result.markets if m["outcome_prices"] == ["0", "0"]]
    assert zero_zero and all(m["closed"] for m in zero_zero)
    # Legacy markets carry a category of their own where the parent event has none.
    assert sum(m["category"] is not None for m in result.markets) == sum(
        bool(r.get("category") or (r.get("events") or [{}])[0].get("category"))
        for r in records if r["id"] in markets
    )


def test_archived_placeholder_in_a_real_page_is_rejected(polymarket_data):
    result = parse_file(polymarket_data, f"{ALEX}/gamma_markets_response.json")
    assert result.rejected == Counter({"missing_prices": 1})
    assert len(result.markets) == 99 and "502517" not in by_id(result)
    arch_event = next(e for e in result.events if e["event_id"] == "11120")
    assert arch_event["market_count"] == sum(m["event_id"] == "11120" for m in result.markets) + 1
    assert arch_event["archived"] is True and arch_event["neg_risk"] is True


def test_other_market_pages(polymarket_data):
    fresh = parse_file(polymarket_data, f"{BORAT}/polymarket_fresh.json")
    assert (len(fresh.markets), len(fresh.events)) == (200, 25)
    assert sum(m["neg_risk"] for m in fresh.markets) == 174
    active = parse_file(polymarket_data, f"{ALEX}/data_active_markets.json")
    assert (len(active.markets), len(active.events)) == (90, 29)
    assert sum(m["uma_resolution_status"] == "disputed" and m["active"] for m in active.markets) == 2
    oldest = parse_file(polymarket_data, f"{BORAT}/gamma_market_condition.json")
    ids = sorted(int(m["market_id"]) for m in oldest.markets)
    assert (len(ids), ids[0], ids[-1]) == (20, 12, 66)


def test_raw_events_responses(polymarket_data):
    closed = parse_file(polymarket_data, f"{BORAT}/events.json")
    assert len(closed.events) == len(closed.markets) == 10
    assert all(e["closed"] and e["market_count"] == 1 and e["tags"] == ["all"] for e in closed.events)
    assert all(int(e["event_id"]) >= 2890 for e in closed.events)
    assert {e["category"] for e in closed.events} == {"Sports", "Chess", "Pop-Culture"}
    category_of = {e["event_id"]: e["category"] for e in closed.events}
    assert all(m["category"] == category_of[m["event_id"]] for m in closed.markets)

    [event] = parse_file(polymarket_data, f"{NAUTILUS}/gamma_event.json").events
    assert (event["event_id"], event["neg_risk"], event["market_count"]) == ("30829", True, 2)
    assert event["neg_risk_market_id"].startswith("0x2c3d")
    assert event["tags"][:3] == ["world-elections", "global-elections", "elections"]
    assert isinstance(event["liquidity"], float) and event["category"] is None


def test_nautilus_single_markets(polymarket_data):
    def one(name):
        return only_market(read_records(polymarket_data, f"{NAUTILUS}/{name}")[0])

    up_down = one("gamma_market.json")
    assert (up_down["outcomes"], up_down["yes_price"]) == (["Up", "Down"], 0.505)
    stale = one("gamma_market_closed_binary_accepting_true.json")
    assert (stale["closed"], stale["accepting_orders"], stale["outcome_prices"]) == (True, True, ["1", "0"])
    assert stale["best_bid"] == 0.69 and stale["last_trade_price"] == 0.7
    lagging = one("gamma_market_closed_binary_accepting_false.json")
    assert (lagging["market_id"], lagging["uma_resolution_status"]) == ("1460332", "resolved")
    assert (lagging["volume"], lagging["liquidity"]) == (None, None)
    long_short = one("gamma_market_closed_nonbinary_legacy.json")
    assert (long_short["market_id"], long_short["outcomes"]) == ("43", ["Long", "Short"])
    assert long_short["yes_price"] == pytest.approx(0.5843311669077693)
    assert long_short["accepting_orders"] is None and long_short["neg_risk"] is False
    zero = one("gamma_market_closed_zero_zero_legacy.json")
    assert (zero["market_id"], zero["yes_price"], zero["no_price"]) == ("12", 0.0, 0.0)
    assert zero["closed_time"] == datetime(2020, 11, 2, 16, 31, 1, tzinfo=UTC)
    sports = one("gamma_market_sports_market_money_line.json")
    assert sports["outcomes"] == ["FaZe", "illwill"] and sports["yes_price"] == 1.0


def test_clob_and_other_non_gamma_files_yield_no_rows(polymarket_data):
    keyed_by_condition = (
        f"{BORAT}/clob_sampling.json", f"{ALEX}/raw_api_response.json", f"{WHALE}/data_raw_markets.json",
    )
    for relative in keyed_by_condition:
        records = read_records(polymarket_data, relative)
        # CLOB and trimmed records are keyed by condition_id, not by a Gamma id.
        assert parse_markets(records).rejected == Counter({"missing_id": len(records)})
    assert len(read_records(polymarket_data, f"{WHALE}/data_raw_markets.json")) == 5711
    tags = read_records(polymarket_data, f"{BORAT}/gamma_tags.json")
    assert parse_markets(tags).rejected == Counter({"missing_outcomes": 100})


def test_normalized_events_file_parses_once_put_back_into_wire_format(polymarket_data):
    """Pirodax rewrote /events in snake_case; with wire names back, its priced markets parse."""
    records = read_records(polymarket_data, f"{PIRODAX}/polymarket_events.json")
    wire_names = {
        "condition_id": "conditionId", "outcome_prices": "outcomePrices", "clob_token_ids": "clobTokenIds",
        "best_bid": "bestBid", "best_ask": "bestAsk", "last_trade_price": "lastTradePrice",
        "volume_24hr": "volume24hr", "start_date": "startDate", "end_date": "endDate",
    }

    def to_wire(obj: dict) -> dict:
        return {wire_names.get(k, k): v for k, v in obj.items()}

    events = [dict(to_wire(e), markets=[to_wire(m) for m in e["markets"]]) for e in records]
    result = parse_events(events)
    # Unlisted placeholders of negRisk ladders ("Team AM") carry no prices at all.
    priceless = sum(not m["outcomePrices"] for e in events for m in e["markets"])
    assert (len(result.events), priceless) == (100, 674)
    assert len(result.markets) == 1761 - priceless
    assert result.rejected == Counter({"missing_prices": priceless})
    # Placeholders count: a ladder with an unpriced outcome is not a complete basket.
    assert [e["market_count"] for e in result.events] == [len(e["markets"]) for e in events]
    assert max(e["market_count"] for e in result.events) >= 25
    # Tags there are bare labels; they become lowercased slugs.
    first = result.events[0]
    assert first["tags"][:3] == ["finance", "economy", "business"]
    assert result.markets[0]["tags"] == first["tags"]
    assert result.markets[0]["outcome_prices"] == ["0.0", "1.0"]
    assert_rows_are_well_typed(result)


# --- protocol version, market rules, fee parameters, augmented negRisk ----------------------------

from prescient_pipeline.polymarket.parser import clob_fee_parameters  # noqa: E402


@pytest.mark.parametrize("version", [MISSING, None, "", "v1", "V1"])
def test_v1_or_no_version_reads_clob_token_ids(version):
    row = only_market(wire_market(version=version, positionIds=["1", "2"]))
    assert (row["protocol_version"], row["yes_token_id"], row["no_token_id"]) == ("v1", YES_TOKEN, NO_TOKEN)


@pytest.mark.parametrize("ids", [[YES_TOKEN, NO_TOKEN], json.dumps([YES_TOKEN, NO_TOKEN])])
def test_v2_reads_position_ids_and_ignores_clob_token_ids(ids):
    # positionIds is a native array on the wire; JSON text is tolerated like every list field.
    row = only_market(wire_market(version="v2", positionIds=ids, clobTokenIds=json.dumps(["7", "8"])))
    assert row["protocol_version"] == "v2"
    assert (row["clob_token_ids"], row["yes_token_id"], row["no_token_id"]) == ([YES_TOKEN, NO_TOKEN], YES_TOKEN, NO_TOKEN)


def test_v2_without_position_ids_is_rejected_even_with_clob_token_ids():
    assert rejection(wire_market(version="v2")) == "missing_token_ids"
    assert rejection(wire_market(version="v2", positionIds=[YES_TOKEN])) == "mismatched_lengths"


def test_an_unsupported_version_is_kept_out_and_counted():
    result = parse_events([wire_event([wire_market(id="1", version="v3"), wire_market(id="2", version=2),
                                       wire_market(id="3", version="v2", positionIds=[YES_TOKEN, NO_TOKEN])])])
    assert [m["market_id"] for m in result.markets] == ["3"]
    # version 2 (a number) reads as "2", not "v2": unsupported too.
    assert result.rejected == Counter({"unsupported_version": 2})
    assert result.events[0]["market_count"] == 3


@pytest.mark.parametrize(
    "fields, rules",
    [
        ({"orderPriceMinTickSize": 0.01, "orderMinSize": 5}, (0.01, 5.0)),
        ({"orderPriceMinTickSize": "0.001", "orderMinSize": "15"}, (0.001, 15.0)),
        ({"orderPriceMinTickSize": 0, "orderMinSize": -1}, (None, None)),  # not a tick, not a size
        ({"orderPriceMinTickSize": "x", "orderMinSize": None}, (None, None)),
        ({}, (None, None)),
    ],
)
def test_tick_size_and_minimum_order_size(fields, rules):
    row = only_market(wire_market(**fields))
    assert (row["tick_size"], row["min_order_size"]) == rules


def fees(row: dict) -> tuple:
    return row["fees_enabled"], row["fee_rate"], row["fee_exponent"], row["fee_taker_only"]


@pytest.mark.parametrize(
    "fields, expected",
    [
        # The real sports schedule (recorded nautilus fixture shape).
        ({"feesEnabled": True, "feeType": "sports_fees_v2",
          "feeSchedule": {"exponent": 1, "rate": 0.03, "rebateRate": 0.25, "takerOnly": True}},
         (True, 0.03, 1.0, True)),
        # The January-March 2026 crypto regime: rate 0.25, exponent 2.
        ({"feesEnabled": True, "feeSchedule": {"exponent": 2, "rate": 0.25, "takerOnly": True}}, (True, 0.25, 2.0, True)),
        # Fees on, no parameters (real crypto_fees markets): enabled, rate unknown.
        ({"feesEnabled": True, "feeSchedule": None, "takerBaseFee": 1000}, (True, None, None, None)),
        # Fee-free: rate 0 whatever a schedule says.
        ({"feesEnabled": False, "feeSchedule": {"exponent": 1, "rate": 0.05, "takerOnly": True}}, (False, 0.0, None, True)),
        ({"feesEnabled": False, "feeSchedule": None}, (False, 0.0, None, None)),
        ({}, (None, None, None, None)),
        ({"feesEnabled": "true", "feeSchedule": {"rate": "0.07", "exponent": "1", "takerOnly": "true"}}, (True, 0.07, 1.0, True)),
        ({"feesEnabled": True, "feeSchedule": {"rate": -0.1, "exponent": "e"}}, (True, None, None, None)),
    ],
)
def test_gamma_fee_parameters(fields, expected):
    assert fees(only_market(wire_market(**fields))) == expected


@pytest.mark.parametrize(
    "info, expected",
    [
        # As observed live on CLOB V2: fd {r, e, to}.
        ({"mos": 5, "mts": 0.01, "fd": {"r": 0.05, "e": 1, "to": True}}, (True, 0.05, 1.0, True)),
        ({"fd": {"r": 0.25, "e": 2, "to": True}}, (True, 0.25, 2.0, True)),
        ({"fd": {"r": 0, "e": 1, "to": True}}, (False, 0.0, 1.0, True)),
        ({"mos": 5}, (None, None, None, None)),
        ("not an object", (None, None, None, None)),
    ],
)
def test_clob_market_info_fee_details(info, expected):
    row = clob_fee_parameters(info)
    assert (row["fees_enabled"], row["fee_rate"], row["fee_exponent"], row["fee_taker_only"]) == expected


def test_augmented_neg_risk_flags_the_event_and_its_other_and_placeholder_outcomes():
    named = wire_market(id="1", groupItemTitle="Maria Silva", question="Will Maria Silva win?")
    other = wire_market(id="2", groupItemTitle="Other", question="Will another person win?")
    flagged = wire_market(id="3", groupItemTitle="Rest of field", question="Will the field win?", negRiskOther=True)
    placeholder = wire_market(id="4", groupItemTitle=MISSING, question="Will Person AB win?")
    event = wire_event([named, other, flagged, placeholder], negRisk=True, enableNegRisk=True, negRiskAugmented=True)
    result = parse_events([event])
    assert result.events[0]["neg_risk_augmented"] is True
    assert {m["market_id"]: m["neg_risk_other"] for m in result.markets} == {"1": False, "2": True, "3": True, "4": True}
    # The same names in a plain negRisk event are ordinary outcomes.
    plain = parse_events([wire_event([other, placeholder], negRisk=True, enableNegRisk=True, negRiskAugmented=False)])
    assert plain.events[0]["neg_risk_augmented"] is False
    assert [m["neg_risk_other"] for m in plain.markets] == [False, False]
    # The /markets listing carries the parent event, augmented flag included.
    listed = parse_markets([{**other, "events": [{"id": "9", "enableNegRisk": True, "negRiskAugmented": True}]}])
    assert listed.events[0]["neg_risk_augmented"] is True and listed.markets[0]["neg_risk_other"] is True


def test_recorded_fee_schedules_rules_and_augmented_events(polymarket_data):
    sports = only_market(json.loads((polymarket_data / NAUTILUS / "gamma_market_sports_market_money_line.json").read_text()))
    assert fees(sports) == (True, 0.03, 1.0, True)
    assert (sports["tick_size"], sports["min_order_size"], sports["protocol_version"]) == (0.001, 5.0, "v1")
    crypto = only_market(json.loads((polymarket_data / NAUTILUS / "gamma_market.json").read_text()))
    assert fees(crypto) == (True, None, None, None)  # feesEnabled with no feeSchedule
    assert (crypto["tick_size"], crypto["min_order_size"]) == (0.01, 5.0)
    [event] = json.loads((polymarket_data / NAUTILUS / "gamma_event.json").read_text())
    parsed = parse_events([event])
    assert parsed.events[0]["neg_risk_augmented"] is True
    assert [m["neg_risk_other"] for m in parsed.markets] == [False, False]  # two named candidates
    # The-boshi day: every market states its rules; the one named "Other" in an augmented event
    # is flagged although Gamma sent negRiskOther false.
    lines = (polymarket_data / "the-boshi__polymarket-db" / "markets_2025-11-10.jsonl").read_text().split("\n")
    result = parse_markets([json.loads(line) for line in lines if line.strip()])
    assert all(m["tick_size"] in (0.01, 0.001) and m["min_order_size"] > 0 for m in result.markets)
    assert all(m["fees_enabled"] is False and m["fee_rate"] == 0 for m in result.markets)
    others = {m["market_id"] for m in result.markets if m["neg_risk_other"]}
    assert "674751" in others
    assert all(m["neg_risk"] for m in result.markets if m["neg_risk_other"])
