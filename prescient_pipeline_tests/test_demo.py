"""`prescient demo` end to end: simulated days, five-minute price updates, and a second run."""

from datetime import timedelta

import dagster as dg
import pytest
from sqlalchemy import text

from prescient_pipeline.defs.demo import run_demo
from prescient_pipeline.errors import InputError
from prescient_pipeline.services.examples import EXAMPLE_NAMES
from prescient_pipeline.services.reports import unbalanced_portfolios


def demo(instance, engine, tmp_path, name, **options):
    lines = []
    result = run_demo(instance, engine, days=1, seed=7, events=300, reset=False,
                      exports_dir=tmp_path / name, progress=lines.append, **options)
    return result, lines


def price_update_times(engine):
    """The simulated times at which held markets were observed between refreshes."""
    with engine.connect() as conn:
        return conn.execute(text(
            "SELECT DISTINCT ts FROM market_snapshots WHERE source IN ('clob', 'gamma_update') ORDER BY ts"
        )).scalars().all()


@pytest.mark.slow
def test_one_day_prices_every_five_minutes_and_a_second_run_repeats_it(engine, tmp_path):
    with dg.instance_for_test() as instance:
        first, lines = demo(instance, engine, tmp_path, "first", price_every=5, runs_every=360)
        times = price_update_times(engine)
        price_runs = instance.get_runs(dg.RunsFilter(job_name="update_prices_job"))
        with engine.connect() as conn:
            history = conn.execute(text("SELECT count(*) FROM portfolio_history")).scalar()
        unbalanced = unbalanced_portfolios(engine)

        second, _ = demo(instance, engine, tmp_path, "second", price_every=5, runs_every=360)

    # 00:05 through 24:00, every five minutes; every sixth hour as a Dagster run.
    assert first.price_updates == 288
    assert len(price_runs) == 4 and all(r.is_success for r in price_runs)
    # Positions are held from the 09:00 cycle on: each later five-minute tick observed them.
    assert len(times) > 100
    assert {b - a for a, b in zip(times, times[1:])} == {timedelta(minutes=5)}
    assert times[-1] == first.end

    assert {p["name"] for p in first.portfolios} == set(EXAMPLE_NAMES)
    assert all(p["trades"] > 0 for p in first.portfolios)
    assert history == len(EXAMPLE_NAMES)
    assert unbalanced == []
    assert all(path.exists() for path in first.exports.values())
    # The day's progress line comes after the 23:55 snapshot: 00:05 to 23:55 is 287 updates.
    assert any(line.startswith("day 1/1") and "287 price updates" in line for line in lines), lines

    # Safe to run twice: the second run clears the first and, with the same seed, repeats it.
    def outcome(result):
        return sorted((p["name"], p["trades"], str(p["total_value"])) for p in result.portfolios)

    assert outcome(second) == outcome(first)


def test_bad_options_are_refused_before_anything_is_written(engine, tmp_path):
    with dg.instance_for_test() as instance:
        with pytest.raises(InputError, match="--runs-every must be a multiple of --price-every"):
            demo(instance, engine, tmp_path, "bad", price_every=5, runs_every=7)
        with pytest.raises(InputError, match="--price-every"):
            demo(instance, engine, tmp_path, "bad", price_every=1)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM portfolios")).scalar() == 0
