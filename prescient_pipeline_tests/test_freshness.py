"""Freshness policies: a stalled refresh or price update shows in the UI."""

from datetime import timedelta

from prescient_pipeline.defs.freshness import cron_interval, every


def windows(policy) -> tuple[timedelta, timedelta]:
    """(warn, fail) as plain timedeltas (Dagster stores its own serialisable kind)."""
    return policy.warn_window.to_timedelta(), policy.fail_window.to_timedelta()


def test_the_window_follows_the_schedule():
    assert cron_interval("0 * * * *") == timedelta(hours=1)
    assert cron_interval("*/5 * * * *") == timedelta(minutes=5)
    assert cron_interval("0 9 * * *") == timedelta(days=1)
    # Irregular: 09:00 and 17:00 leave a 16-hour gap overnight, and that is the period to allow.
    assert cron_interval("0 9,17 * * *") == timedelta(hours=16)
    policy = every("0 */6 * * *")
    # Warn after one missed tick (6 h + 10 min grace), fail after two (12 h + 10 min).
    assert windows(policy) == (timedelta(hours=6, minutes=10), timedelta(hours=12, minutes=10))


def test_market_data_and_marks_carry_policies():
    from prescient_pipeline.definitions import defs

    graph = defs.resolve_asset_graph()
    policies = {key.to_user_string(): graph.get(key).freshness_policy for key in graph.get_all_asset_keys()}
    # Hourly refresh by default: fail after 2 h 10 min without one.
    assert windows(policies["polymarket_markets"]) == (timedelta(hours=1, minutes=10), timedelta(hours=2, minutes=10))
    assert windows(policies["polymarket_events"]) == windows(policies["polymarket_markets"])
    # Price updates every 5 minutes: warn at 10 min, fail at 15 min.
    assert windows(policies["portfolio_values"]) == (timedelta(minutes=10), timedelta(minutes=15))
