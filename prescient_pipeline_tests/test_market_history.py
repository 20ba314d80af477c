"""The market history import: every market open in a window, closed ones included, on a grid
with no look-ahead; idempotent per day; the CLI and the Dagster partition over the same service.

Real PostgreSQL and real HTTP against the replay server, which hands back every point of a token
whatever window was asked, so a point after a grid time is always on offer and must be ignored.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone

import dagster as dg
import pytest
from sqlalchemy import text

from prescient_pipeline.polymarket.client import PolymarketClient
from prescient_pipeline.services.market_history import import_history
from prescient_pipeline.services.market_store import last_refresh

from .replay_server import ReplayServer

DAY1, DAY2 = date(2026, 11, 10), date(2026, 11, 11)
LISTED_AT = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)  # the replay server's clock
UNLIMITED = {"gamma": 100_000, "clob": 100_000}


def at(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=timezone.utc)


def ts(day: date, hh: int, mm: int = 0) -> int:
    return int(at(day, hh, mm).timestamp())


def gamma_market(market_id: int, *, start: str = "2026-11-01T00:00:00Z", end: str = "2026-11-30T00:00:00Z",
                 closed: bool = False, closed_time: str | None = None, prices=("0.5", "0.5"),
                 uma: str | None = None, volume: float = 5000.0) -> dict:
    market = {
        "id": str(market_id), "conditionId": f"0xc{market_id}", "question": f"Market {market_id}?",
        "slug": f"m-{market_id}", "outcomes": '["Yes", "No"]', "outcomePrices": json.dumps(list(prices)),
        "clobTokenIds": json.dumps([f"{market_id}-yes", f"{market_id}-no"]), "active": True, "closed": closed,
        "archived": False, "startDate": start, "endDate": end, "volumeNum": volume, "volume": str(volume),
        "events": [{"id": str(market_id * 10), "title": f"Event {market_id}", "slug": f"e-{market_id}"}],
    }
    if closed_time:
        market["closedTime"] = closed_time
    if uma:
        market["umaResolutionStatus"] = uma
    return market


MARKETS = [
    gamma_market(101),  # open all along
    # Resolved YES early, mid-window at 14:30 on day 1, long before its end date.
    gamma_market(102, closed=True, closed_time="2026-11-10 14:30:00+00", prices=("1", "0"), uma="resolved"),
    gamma_market(103, closed=True, closed_time="2026-11-05 12:00:00+00", end="2026-11-05T00:00:00Z",
                 prices=("0", "1"), uma="resolved"),  # closed before the window
    gamma_market(104, start="2026-11-20T00:00:00Z"),  # opened after the window
    gamma_market(105, volume=10.0),  # open, but below --min-volume 100
    # Resolved 50/50 on day 2 at 06:00, exactly on a grid time.
    gamma_market(106, closed=True, closed_time="2026-11-11T06:00:00Z", prices=("0.5", "0.5"), uma="resolved"),
    # Three outcomes: validated as the parser does, and kept out.
    {**gamma_market(107), "outcomes": '["A", "B", "C"]', "outcomePrices": '["0.2", "0.3", "0.5"]'},
]

HISTORY = {
    "101-yes": [{"t": ts(DAY1, 10, 10), "p": 0.45}, {"t": ts(DAY1, 10, 50), "p": 0.50},
                {"t": ts(DAY1 - timedelta(days=1), 22, 30), "p": 0.40}, {"t": ts(DAY2, 3), "p": 0.60}],
    "101-no": [{"t": ts(DAY1, 10, 50), "p": 0.52}],
    "102-yes": [{"t": ts(DAY1, 9), "p": 0.70}, {"t": ts(DAY1, 14), "p": 0.80}, {"t": ts(DAY1, 15, 10), "p": 0.99}],
    "103-yes": [{"t": ts(DAY1, 12), "p": 0.05}],
    "104-yes": [{"t": ts(DAY1, 12), "p": 0.30}],
    "105-yes": [{"t": ts(DAY1, 12), "p": 0.20}],
    "106-yes": [{"t": ts(DAY1, 20), "p": 0.50}, {"t": ts(DAY2, 7), "p": 0.10}, "garbage", {"t": ts(DAY2, 1), "p": 7}],
}

# Hand-computed rows, fidelity 60, --min-volume 100 (105 out; 103 closed before, 104 opened after):
#   101 day 1: 00:00-10:00 take the previous day's 22:30 point (0.40; 10:10 is after 10:00), NO has
#       no point yet so 1 - 0.40 = 0.60; 11:00-23:00 take 10:50 (0.50 / NO 0.52): 24 rows.
#       day 2: 00:00-02:00 0.50/0.52, 03:00-23:00 0.60/0.52: 24 rows.
#   102 day 1: 09:00-13:00 0.70/0.30, 14:00 0.80/0.20, 15:00 (first grid time after the 14:30 close)
#       0.80/0.20 closed, never the 15:10 0.99: 7 rows; day 2: none.
#   106 day 1: 20:00-23:00 0.50: 4 rows; day 2: 00:00-06:00 0.50 (the 07:00 point is after the
#       06:00 close; the garbage points are dropped), 06:00 closed: 7 rows.
EXPECTED_POINTS = {DAY1: 24 + 7 + 4, DAY2: 24 + 7}


@pytest.fixture
def replay():
    with ReplayServer(markets=MARKETS, price_history=HISTORY, now=LISTED_AT) as server:
        yield server


def client_for(server: ReplayServer) -> PolymarketClient:
    return PolymarketClient(server.url, server.url, timeout=(1, 2), retries=1, backoff_factor=0.01,
                            backoff_max=0.05, requests_per_10s=UNLIMITED)


def run(engine, server, day_from=DAY1, day_to=DAY2, **options):
    with client_for(server) as client:
        return import_history(engine, client, day_from, day_to, 60, options.pop("min_volume", 100), **options)


def rows(engine, market_id: str) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(
            "SELECT ts, yes_price::float, no_price::float, active, closed FROM market_snapshots "
            "WHERE market_id = :m AND source = 'history' ORDER BY ts"), {"m": market_id})]


def table_counts(engine) -> dict:
    with engine.connect() as conn:
        return {name: conn.execute(text(f"SELECT count(*) FROM {name}")).scalar() for name in (
            "market_snapshots", "market_refreshes", "market_resolutions", "history_imports", "markets", "events")}


def test_a_window_imports_open_and_resolved_markets_with_no_look_ahead(engine, replay):
    report = run(engine, replay)

    assert [(d.day, d.status, d.markets, d.points, d.resolutions) for d in report.days] == [
        (DAY1, "imported", 3, EXPECTED_POINTS[DAY1], 1), (DAY2, "imported", 2, EXPECTED_POINTS[DAY2], 1)]
    assert report.totals() == {"days_imported": 2, "days_skipped": 0, "markets": 3, "points": 66, "resolutions": 2}
    # Listed: 101, 102, 103, 106 and 107; Gamma's bounds leave out 104 (opens later) and 105 (volume).
    assert (report.listed, dict(report.rejected)) == (5, {"not_binary": 1})

    alive = rows(engine, "101")
    assert len(alive) == 48
    by_time = {r[0]: r[1:3] for r in alive}
    assert by_time[at(DAY1, 0)] == (0.40, 0.60), "midnight takes the previous day's last point"
    assert by_time[at(DAY1, 10)] == (0.40, 0.60), "10:00 must not see the 10:10 point"
    assert by_time[at(DAY1, 11)] == (0.50, 0.52), "11:00 takes 10:50, the last point at or before it"
    assert by_time[at(DAY2, 2)] == (0.50, 0.52) and by_time[at(DAY2, 3)] == (0.60, 0.52)
    assert all(active and not closed for _, _, _, active, closed in alive)

    resolved = rows(engine, "102")
    assert [r[0] for r in resolved] == [at(DAY1, h) for h in range(9, 16)]
    assert resolved[-1] == (at(DAY1, 15), 0.80, 0.20, False, True), "closed from its closed time on, at its last price"
    assert max(r[1] for r in resolved) == 0.80, "the 15:10 point after the close is never used"
    assert all(not closed for *_, closed in resolved[:-1])

    split = rows(engine, "106")
    assert [r[0] for r in split] == [at(DAY1, h) for h in range(20, 24)] + [at(DAY2, h) for h in range(0, 7)]
    assert {r[1] for r in split} == {0.5} and split[-1][4] is True

    assert rows(engine, "103") == [] and rows(engine, "104") == [] and rows(engine, "105") == []
    with engine.connect() as conn:
        resolutions = {r.market_id: r for r in conn.execute(text("SELECT * FROM market_resolutions"))}
        grid = conn.execute(text(
            "SELECT ts, markets FROM market_refreshes WHERE source = 'history' ORDER BY ts")).all()
        imports = conn.execute(text("SELECT day, fidelity, markets, points, completed_at IS NOT NULL "
                                    "FROM history_imports ORDER BY day")).all()
        closed_market = conn.execute(text("SELECT closed, closed_time FROM markets WHERE market_id = '102'")).one()
        assert last_refresh(conn) == (None, None), "imported grid times are not live refreshes"
    assert set(resolutions) == {"102", "106"}
    assert (resolutions["102"].resolved, resolutions["102"].winner, resolutions["102"].closed_time,
            resolutions["102"].uma_resolution_status, resolutions["102"].outcome_prices) == (
        True, "YES", at(DAY1, 14, 30), "resolved", ["1", "0"])
    assert (resolutions["106"].resolved, resolutions["106"].winner) == (True, "SPLIT")
    # One grid time per hour of both days: 101 at every hour, 102 from 09:00 to 15:00 on day 1.
    assert len(grid) == 48 and dict(grid)[at(DAY1, 12)] == 2 and dict(grid)[at(DAY1, 22)] == 2
    assert dict(grid)[at(DAY2, 5)] == 2 and dict(grid)[at(DAY2, 7)] == 1
    assert imports == [(DAY1, 60, 3, 35, True), (DAY2, 60, 2, 31, True)]
    assert closed_market == (True, at(DAY1, 14, 30))
    # Gamma was asked for closed markets with end/start bounds and the open ones, both paged.
    listings = replay.requests_to("/markets")
    closed_asks = [r for r in listings if r.param("closed") == "true"]
    assert closed_asks and closed_asks[0].param("end_date_min") == "2026-10-09T23:59:59Z"
    assert {r.param("start_date_max") for r in listings} == {"2026-11-12T00:00:00Z"}
    assert {r.param("volume_num_min") for r in listings} == {"100"}
    # Both tokens of the day's markets in one batch per day: 3 markets on day 1, 2 on day 2.
    assert [len(r.body["markets"]) for r in replay.requests_to("/batch-prices-history")] == [6, 4]


def all_rows(engine) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(
            "SELECT market_id, ts, yes_price, no_price, active, closed, source FROM market_snapshots ORDER BY 1, 2"))]


def test_token_by_token_where_there_is_no_batch_form_gives_the_same_rows(engine, replay):
    run(engine, replay)
    batched = all_rows(engine)
    with ReplayServer(markets=MARKETS, price_history=HISTORY, now=LISTED_AT, batch_price_history=False) as server:
        run(engine, server, force=True)
        per_token = server.requests_to("/prices-history")
    assert len(per_token) == 6 + 4, "one request per token of each day's markets, after one 404 for the batch"
    assert len(server.requests_to("/batch-prices-history")) == 1
    assert per_token[0].param("fidelity") == "60"
    assert int(per_token[0].param("startTs")) == ts(DAY1 - timedelta(days=1), 0)
    assert int(per_token[0].param("endTs")) == ts(DAY2, 0) - 1
    assert all_rows(engine) == batched and len(batched) == 66


def test_a_rerun_adds_nothing_and_force_imports_again(engine, replay):
    run(engine, replay)
    before = table_counts(engine)
    replay.clear_requests()

    again = run(engine, replay)
    assert [d.status for d in again.days] == ["skipped", "skipped"]
    assert table_counts(engine) == before
    assert replay.requests == [], "completed days ask nothing"

    forced = run(engine, replay, force=True)
    assert [(d.status, d.points) for d in forced.days] == [("imported", 35), ("imported", 31)]
    assert table_counts(engine) == before, "a forced day replaces its rows"
    assert len(replay.requests_to("/batch-prices-history")) == 2


def test_a_live_market_newer_than_the_listing_keeps_its_current_state(engine, replay):
    with engine.begin() as conn:
        # Event 1010 as a live refresh listed it, with its 5 markets; the market listing shows 1 of them.
        conn.execute(text("INSERT INTO events (event_id, title, market_count, updated_at) "
                          "VALUES ('1010', 'old title', 5, :older)"), {"older": LISTED_AT - timedelta(days=20)})
        conn.execute(text("INSERT INTO markets (market_id, question, closed, updated_at) VALUES "
                          "('101', 'as the live refresh saw it', false, :newer), "
                          "('102', 'an old observation', false, :older)"),
                     {"newer": LISTED_AT + timedelta(hours=1), "older": LISTED_AT - timedelta(days=20)})
    run(engine, replay)
    with engine.connect() as conn:
        state = dict(conn.execute(text("SELECT market_id, question FROM markets")).all())
        event = conn.execute(text("SELECT title, market_count FROM events WHERE event_id = '1010'")).one()
    assert tuple(event) == ("Event 101", 5), "newer fields taken, the market count never lowered"
    assert state["101"] == "as the live refresh saw it"
    assert state["102"] == "Market 102?"


def test_a_day_stopped_halfway_leaves_nothing_and_a_rerun_completes_it(engine, replay):
    def stop_on_day2(stage, day):
        if stage == "written" and day.day == DAY2:
            raise KeyboardInterrupt("stopped")

    with pytest.raises(KeyboardInterrupt):
        run(engine, replay, progress=stop_on_day2)
    with engine.connect() as conn:
        days = conn.execute(text("SELECT day FROM history_imports")).scalars().all()
        day2_rows = conn.execute(text("SELECT count(*) FROM market_snapshots WHERE ts >= :d"),
                                 {"d": at(DAY2, 0)}).scalar()
        day2_grid = conn.execute(text("SELECT count(*) FROM market_refreshes WHERE ts >= :d"),
                                 {"d": at(DAY2, 0)}).scalar()
    assert (days, day2_rows, day2_grid) == ([DAY1], 0, 0)

    resumed = run(engine, replay)
    assert [(d.day, d.status) for d in resumed.days] == [(DAY1, "skipped"), (DAY2, "imported")]
    assert len(rows(engine, "101")) == 48 and len(rows(engine, "106")) == 11


def test_a_day_under_way_is_imported_up_to_now_and_again_next_time(engine, replay):
    now = at(DAY2, 4, 30)
    with client_for(replay) as client:
        first = import_history(engine, client, DAY2, DAY2, 60, 100, now=now)
    assert (first.days[0].complete, first.days[0].points) == (False, 5 + 5)  # 00:00-04:00 for 101 and 106
    with client_for(replay) as client:
        later = import_history(engine, client, DAY2, DAY2, 60, 100)
    assert (later.days[0].status, later.days[0].complete, later.days[0].points) == ("imported", True, 31)
    assert len(rows(engine, "101")) == 24


def test_the_command_line(engine, replay, monkeypatch, capsys):
    from prescient_pipeline.cli import main

    monkeypatch.setenv("PRESCIENT_GAMMA_URL", replay.url)
    monkeypatch.setenv("PRESCIENT_CLOB_URL", replay.url)
    code = main(["history", "import", "--from", "2026-11-10", "--to", "2026-11-11", "--min-volume", "100", "--json"])
    out = capsys.readouterr()
    assert code == 0
    report = json.loads(out.out)
    assert (report["days_imported"], report["markets"], report["points"], report["resolutions"]) == (2, 3, 66, 2)
    # Progress per day (beside a one-line warning about the bad point the replay server serves).
    assert [line for line in out.err.splitlines() if not line.startswith("warning: ")] == [
        "2026-11-10 imported: 3 markets, 35 points, 1 resolutions",
        "2026-11-11 imported: 2 markets, 31 points, 1 resolutions"]

    assert main(["history", "import", "--from", "2026-11-10", "--to", "2026-11-11", "--min-volume", "100"]) == 0
    out = capsys.readouterr()
    assert "0 days imported, 2 skipped" in out.out.splitlines()[0]

    # Without --min-volume the thin market 105 is a market too (its 12:00 point: 12 rows on day 1);
    # a different selection is a different import, so the day is imported again.
    assert main(["history", "import", "--from", "2026-11-10", "--to", "2026-11-10", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["points"] == 35 + 12


DAY = ["--from", "2026-11-10", "--to", "2026-11-10"]


@pytest.mark.parametrize("argv, message", [
    (["--from", "2026-11-11", "--to", "2026-11-10"], "error: --from 2026-11-11 is after --to 2026-11-10"),
    (["--from", "2026-13-01", "--to", "2026-11-10"], "error: --from must be a date YYYY-MM-DD, not '2026-13-01'"),
    ([*DAY, "--fidelity", "0"], "error: --fidelity must be at least 1 minute, not 0"),
    ([*DAY, "--fidelity", "1h"], "error: --fidelity must be a whole number, not '1h'"),
    (["--from", "2026-11-10", "--to", "2999-01-01"], "error: the window ends in the future (2999-01-01)"),
    ([*DAY, "--min-volume", "-5"], "error: --min-volume must be a finite number at least 0, not -5.0"),
    ([*DAY, "--min-volume", "nan"], "error: --min-volume must be a finite number at least 0, not nan"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(engine, replay, monkeypatch, capsys, argv, message):
    from prescient_pipeline.cli import main

    monkeypatch.setenv("PRESCIENT_GAMMA_URL", replay.url)
    monkeypatch.setenv("PRESCIENT_CLOB_URL", replay.url)
    assert main(["history", "import", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(message)
    assert replay.requests == []
    assert table_counts(engine)["history_imports"] == 0 and table_counts(engine)["market_snapshots"] == 0


def test_an_unreachable_api_is_one_line_exit_1(engine, monkeypatch, capsys):
    from prescient_pipeline.cli import main

    server = ReplayServer().start()
    url = server.url
    server.stop()  # nothing listens there any more
    monkeypatch.setenv("PRESCIENT_GAMMA_URL", url)
    monkeypatch.setenv("PRESCIENT_CLOB_URL", url)
    monkeypatch.setenv("PRESCIENT_HTTP_RETRIES", "0")
    assert main(["history", "import", "--from", "2026-11-10", "--to", "2026-11-10"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Polymarket gamma GET /markets" in err
    assert table_counts(engine)["history_imports"] == 0


@pytest.mark.slow
def test_the_asset_materializes_a_partition(engine, replay):
    from prescient_pipeline.defs.market_history import market_history
    from prescient_pipeline.defs.resources import Database, PolymarketApi

    resources = {"database": Database(), "polymarket": PolymarketApi(gamma_url=replay.url, clob_url=replay.url)}
    config = {"ops": {"market_history": {"config": {"min_volume": 100}}}}
    with dg.instance_for_test() as instance:
        result = dg.materialize([market_history], partition_key="2026-11-10", resources=resources,
                                instance=instance, run_config=config)
        assert result.success
        again = dg.materialize([market_history], partition_key="2026-11-10", resources=resources,
                               instance=instance, run_config=config)
        records = instance.fetch_materializations(dg.AssetKey("market_history"), limit=10).records
    metadata = [r.asset_materialization.metadata for r in records]  # newest first
    assert again.success
    assert [(m["markets"].value, m["points"].value, m["resolutions"].value, m["skipped"].value) for m in metadata] == [
        (0, 0, 0, True), (3, 35, 1, False)]
    assert {r.partition_key for r in records} == {"2026-11-10"}
    assert table_counts(engine)["history_imports"] == 1


def test_the_listing_pages_past_the_offset_cap_by_end_date_and_dedupes(engine):
    # 30 closed markets ending a day apart and 5 open ones; pages of 4 and offsets up to 8 only,
    # so the closed listing must be cut into end-date windows; one market is served twice under a
    # second id with the same condition id (a listing that shifted), and counted once.
    closed = [gamma_market(200 + n, closed=True, closed_time="2026-11-10T12:00:00Z", prices=("1", "0"),
                           end=f"{date(2026, 10, 20) + timedelta(days=n)}T00:00:00Z") for n in range(30)]
    twin = {**closed[3], "id": "299"}
    open_ = [gamma_market(300 + n) for n in range(5)]
    with ReplayServer(markets=[*closed, twin, *open_], now=LISTED_AT, offset_cap=8, limit_cap=4) as server:
        with PolymarketClient(server.url, server.url, retries=0, requests_per_10s=UNLIMITED,
                              offset_cap=8, page_size=4) as client:
            found = client.fetch_markets_open_between(at(DAY1, 0), at(DAY2, 0))
        windows = {(r.param("end_date_min"), r.param("end_date_max")) for r in server.requests_to("/markets")}
    ids = sorted(m["id"] for m in found.markets)
    assert ids == sorted([str(200 + n) for n in range(30)] + [str(300 + n) for n in range(5)])
    assert found.duplicates >= 1
    assert len(windows) > 3, "the closed listing was re-asked in end-date windows"


def test_an_overflowing_window_is_cut_at_the_median_end_date_listed_in_it():
    # 30 closed markets ending at midnight a day apart, listed 4 a page up to offset 8. Every
    # window after the first lists markets the unsliced pages already found; their end dates
    # still place its cut, so each cut falls on a listed market's end date, not at a midpoint
    # between two bounds (e.g. 2026-10-30T12:00 between 10-26 and 11-04).
    closed = [gamma_market(200 + n, closed=True, closed_time="2026-11-10T12:00:00Z", prices=("1", "0"),
                           end=f"{date(2026, 10, 20) + timedelta(days=n)}T00:00:00Z") for n in range(30)]
    with ReplayServer(markets=closed, now=LISTED_AT, offset_cap=8, limit_cap=4) as server:
        with PolymarketClient(server.url, server.url, retries=0, requests_per_10s=UNLIMITED,
                              offset_cap=8, page_size=4) as client:
            client.fetch_markets_open_between(at(DAY1, 0), at(DAY2, 0))
        sent = server.requests_to("/markets")
    padding = timedelta(seconds=1)  # the client widens each bound by a second
    bounds = {datetime.fromisoformat(r.param("end_date_min").replace("Z", "+00:00")) + padding
              for r in sent if r.param("end_date_min")}
    bounds |= {datetime.fromisoformat(r.param("end_date_max").replace("Z", "+00:00")) - padding
               for r in sent if r.param("end_date_max")}
    lowest, slice_end = min(bounds), datetime(2100, 1, 1, tzinfo=timezone.utc)
    cuts = bounds - {lowest, slice_end}
    end_dates = {datetime.fromisoformat(m["endDate"].replace("Z", "+00:00")) for m in closed}
    assert len(cuts) >= 3, "the listing was cut more than once"
    assert cuts <= end_dates, sorted(cuts - end_dates)


@pytest.mark.parametrize("fidelity, first, count", [(60, "00:00", 24), (7, "00:03", 206), (1440, "00:00", 1)])
def test_grid_times_are_multiples_of_the_fidelity_since_the_epoch(fidelity, first, count):
    from prescient_pipeline.domain.history_grid import grid_times

    grid = grid_times(DAY1, fidelity)
    # 2026-11-10 00:00 UTC is 1,794,268,800 s = 29,904,480 min since the epoch; 29,904,480 mod 7
    # = 4, so the first 7-minute multiple is 3 minutes later (00:03), and the day holds the minutes
    # 3, 10, ..., 1,438: (1,438 - 3) / 7 + 1 = 206 of them.
    assert grid[0].strftime("%H:%M") == first and len(grid) == count
    assert all(int(g.timestamp()) % (fidelity * 60) == 0 for g in grid)
    assert grid[-1] < at(DAY2, 0)
