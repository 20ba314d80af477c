"""Retention: old days keep what a replay of them reads, held markets and backtest inputs whole."""

import json
from datetime import datetime, time, timedelta, timezone

from sqlalchemy import text

from prescient_pipeline.db.history_partitions import ensure_partitions
from prescient_pipeline.services import portfolios as svc
from prescient_pipeline.services.market_store import universe_as_of
from prescient_pipeline.services.retention import prune_history

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
CYCLE = time(9, 0, tzinfo=timezone.utc)


def hours(day):
    start = datetime.combine(day, time(0, 0, tzinfo=timezone.utc))
    return [start + timedelta(hours=h) for h in range(24)]


def seed(engine, days):
    pid = svc.create_portfolio(engine, svc.NewPortfolio.parse(name="holder", strategy="momentum", balance="100"))["portfolio_id"]
    for day in days:
        ensure_partitions(engine, *hours(day))
    with engine.begin() as conn:
        for market in ("u", "h"):
            conn.execute(text("INSERT INTO markets (market_id, event_id, question, yes_price, no_price) "
                              "VALUES (:m, 'e', :m, 0.6, 0.4)"), {"m": market})
        conn.execute(text(
            "INSERT INTO portfolio_positions (portfolio_id, market_id, side, shares, avg_price, cost_basis, opened_at) "
            "VALUES (:p, 'h', 'YES', 10, 0.6, 6, :at)"), {"p": pid, "at": NOW})
        for day in days:
            for n, ts in enumerate(hours(day)):
                conn.execute(text("INSERT INTO market_refreshes (ts, markets) VALUES (:ts, 2)"), {"ts": ts})
                for market in ("u", "h"):
                    conn.execute(text("INSERT INTO market_snapshots (market_id, ts, yes_price, no_price, liquidity, "
                                      "active, closed, source) VALUES (:m, :ts, :p, 1 - :p, 1000, true, false, 'gamma')"),
                                 {"m": market, "ts": ts, "p": 0.5 + n / 100})
                conn.execute(text("INSERT INTO market_snapshots (market_id, ts, yes_price, source) "
                                  "VALUES ('h', :ts, 0.55, 'clob')"), {"ts": ts + timedelta(minutes=5)})
            conn.execute(text("INSERT INTO market_snapshots (market_id, ts, yes_price, source) "
                              "VALUES ('u', :ts, 0.51, 'history')"), {"ts": hours(day)[12] + timedelta(minutes=30)})


def counts(engine, day) -> dict:
    start = datetime.combine(day, time(0, 0, tzinfo=timezone.utc))
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT market_id, source, count(*) FROM market_snapshots WHERE ts >= :s AND ts < :e GROUP BY 1, 2"),
            {"s": start, "e": start + timedelta(days=1)}).all()
        refreshes = conn.execute(text("SELECT count(*) FROM market_refreshes WHERE ts >= :s AND ts < :e"),
                                 {"s": start, "e": start + timedelta(days=1)}).scalar()
    return {**{f"{m}/{s}": n for m, s, n in rows}, "refreshes": refreshes}


def test_old_days_keep_the_cycle_time_refresh_of_unheld_markets_and_everything_else(engine):
    old = [(NOW - timedelta(days=101)).date(), (NOW - timedelta(days=100)).date()]
    recent = (NOW - timedelta(days=3)).date()
    seed(engine, [*old, recent])
    replay_time = datetime.combine(old[0], time(9, 30, tzinfo=timezone.utc))
    universe_before = universe_as_of(engine, replay_time)
    full = {"u/gamma": 24, "u/history": 1, "h/gamma": 24, "h/clob": 24, "refreshes": 24}
    assert counts(engine, old[0]) == full

    dry = prune_history(engine, keep_days=90, cycle_time=CYCLE, now=NOW, dry_run=True)
    assert counts(engine, old[0]) == full, "a dry run deletes nothing"
    done = prune_history(engine, keep_days=90, cycle_time=CYCLE, now=NOW)

    # Old day 1: u's 24 hourly refresh rows keep the 09:00 one (23 go), its refresh list too.
    # Old day 2 also keeps 23:00: the next day has no refresh, so a replay of it reads day 2's
    # last one (22 go). 23 + 22 = 45 of each. The dry run counted the same. (Other days'
    # partitions, empty here, are examined too.)
    assert (done.snapshots_removed, done.refreshes_removed) == (45, 45)
    assert (dry.snapshots_removed, dry.refreshes_removed) == (45, 45)
    by_day = {d["day"]: (d["snapshots_removed"], d["refreshes_removed"]) for d in done.per_day}
    assert (by_day[old[0].isoformat()], by_day[old[1].isoformat()]) == ((23, 23), (22, 22))
    assert counts(engine, old[0]) == {"u/gamma": 1, "u/history": 1, "h/gamma": 24, "h/clob": 24, "refreshes": 1}
    assert counts(engine, old[1]) == {"u/gamma": 2, "u/history": 1, "h/gamma": 24, "h/clob": 24, "refreshes": 2}
    assert counts(engine, recent) == full, "days inside the window are untouched"
    # A replay of the old day's cycle reads exactly what it read before.
    assert universe_as_of(engine, replay_time).equals(universe_before)
    assert prune_history(engine, keep_days=90, cycle_time=CYCLE, now=NOW).snapshots_removed == 0


def test_prune_from_the_command_line_and_its_bad_input(engine, capsys):
    from prescient_pipeline.cli import main

    old = (datetime.now(timezone.utc) - timedelta(days=120)).date()
    seed(engine, [old])
    assert main(["db", "prune", "--keep-days", "0"]) == 2
    assert capsys.readouterr().err.strip() == "error: --keep-days must be at least 1, not 0"
    assert counts(engine, old)["u/gamma"] == 24, "bad input writes nothing"
    # Of u's 24 hourly rows and refreshes, 09:00 stays (the day's cycle time reads it) and so
    # does 23:00 (the next day has no refresh of its own and reads it): 22 of each go.
    assert main(["db", "prune", "--dry-run"]) == 0
    assert "would remove 22 observations and 22 refreshes" in capsys.readouterr().out
    assert counts(engine, old)["u/gamma"] == 24
    assert main(["db", "prune", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["snapshots_removed"], report["refreshes_removed"], report["dry_run"]) == (22, 22, False)
    assert counts(engine, old)["u/gamma"] == 2
