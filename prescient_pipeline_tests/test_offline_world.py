"""The offline world kept under PRESCIENT_HOME: a restart serves the same markets, and
`prescient dev --offline` after `prescient demo` prices every demo position against its own market."""

from datetime import datetime, timedelta, timezone

import dagster as dg
import pytest
from sqlalchemy import text

from prescient_pipeline.cli.dev_commands import offline_world
from prescient_pipeline.config import settings
from prescient_pipeline.defs.demo import run_demo
from prescient_pipeline.errors import InputError
from prescient_pipeline.polymarket.parser import parse_markets
from prescient_pipeline.polymarket.simulator import state as world
from prescient_pipeline.polymarket.simulator.universe import Universe

START = datetime(2026, 11, 20, tzinfo=timezone.utc)


def every_market(universe: Universe) -> dict[str, tuple]:
    """market id -> (question, token ids, midpoint of YES): what a position depends on."""
    seen, offset = {}, 0
    while page := universe.gamma_markets(limit=100, offset=offset):
        for market in parse_markets(page).markets:
            seen[market["market_id"]] = (market["question"], market["yes_token_id"], market["no_token_id"],
                                         universe.midpoint(market["yes_token_id"]))
        offset += 100
    return seen


def test_a_rebuilt_world_is_the_world_that_ran(tmp_path):
    # The demo moves its clock in five-minute ticks and odd slices; the rebuild replays one stretch.
    ran = Universe(seed=3, events=40, start=START)
    for minutes in [5] * 100 + [7.5, 12.5, 60 * 30]:
        ran.advance(minutes)
    state = world.WorldState.new(3, 40, START).at(ran)
    world.save(tmp_path, state)

    loaded = world.load(tmp_path)
    assert loaded == state
    rebuilt = loaded.universe(until=START)  # never behind the saved clock
    assert rebuilt.now == ran.now == START + timedelta(minutes=500 + 20 + 1800)
    markets = every_market(ran)
    assert len(markets) > 40 and markets == every_market(rebuilt)
    assert world.mismatched_markets(rebuilt, [
        {"market_id": mid, "question": q, "yes_token_id": yes, "no_token_id": no}
        for mid, (q, yes, no, _) in markets.items()]) == []

    # The world keeps running while nothing serves it: a later rebuild is at the later time.
    later = loaded.universe(until=ran.now + timedelta(hours=3))
    assert later.now == ran.now + timedelta(hours=3)


def test_another_world_is_told_apart_and_a_damaged_file_is_an_error(tmp_path):
    ours = Universe(seed=3, events=40, start=START)
    held = [{"market_id": mid, "question": q, "yes_token_id": yes, "no_token_id": no}
            for mid, (q, yes, no, _) in list(every_market(ours).items())[:10]]
    other = Universe(seed=4, events=40, start=START)
    problems = world.mismatched_markets(other, held)
    assert len(problems) == 10, problems
    assert world.mismatched_markets(ours, [{**held[0], "question": "Something else?"}]) == [
        f"market {held[0]['market_id']}: question differs ('Something else?' stored, {held[0]['question'][:40]!r} served)"]

    assert world.load(tmp_path) is None
    world.state_path(tmp_path).write_text("{not json")
    with pytest.raises(ValueError, match="damaged"):
        world.load(tmp_path)


@pytest.mark.slow
def test_dev_offline_after_the_demo_serves_every_held_market_unchanged(engine, tmp_path, monkeypatch):
    monkeypatch.setenv("PRESCIENT_HOME", str(tmp_path))
    with dg.instance_for_test() as instance:
        result = run_demo(instance, engine, days=1, seed=7, events=60, reset=False, exports_dir=tmp_path / "out",
                          progress=lambda _: None)
    stored = world.load(settings().home)
    assert (stored.seed, stored.events, stored.start, stored.now) == (7, 60, result.start, result.end)
    with engine.connect() as conn:
        held = conn.execute(text(
            "SELECT DISTINCT m.market_id, m.question, m.yes_token_id, m.no_token_id FROM portfolio_positions p "
            "JOIN markets m USING (market_id) WHERE p.status = 'open' ORDER BY m.market_id")).all()
    assert len(held) >= 5, "the demo's portfolios hold positions"

    # What `prescient dev --offline` does before it serves anything.
    state, universe = offline_world(settings().home, engine)
    assert (state.seed, state.events, state.start) == (7, 60, result.start)
    assert universe.now >= datetime.now(timezone.utc) - timedelta(minutes=5) > result.end
    for market_id, question, yes_token, no_token in held:
        served = parse_markets([universe.gamma_market(market_id)]).markets[0]
        assert (served["question"], served["yes_token_id"], served["no_token_id"]) == (question, yes_token, no_token)
    assert world.load(settings().home).now == universe.now, "the clock is saved"

    with pytest.raises(InputError, match="seed 7 and 60 events, not --seed 8"):
        offline_world(settings().home, engine, seed=8)

    # A world that is not the ledger's (here: another seed stored by hand) is refused, untouched.
    world.save(settings().home, world.WorldState.new(8, 60, result.start))
    with pytest.raises(RuntimeError, match=r"does not serve \d+ of the \d+ markets your portfolios hold"):
        offline_world(settings().home, engine)
    assert world.load(settings().home).seed == 8
