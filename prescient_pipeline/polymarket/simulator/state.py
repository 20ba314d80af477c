"""The offline simulator's world, kept under PRESCIENT_HOME so that a restart serves the same one.

A `Universe` is a function of (seed, events, start, history_days) and of how far its clock has
moved since `start` (it moves in whole 5-minute steps, however the advances are sliced). Those
numbers are all this file stores (a file written before `history_days` existed means 0); `universe()` rebuilds the world from them and replays its clock. So after
`prescient demo`, a later `prescient dev --offline` on the same home serves the very markets the
demo's portfolios hold: the same market id is the same question with the same token ids.

The world keeps running while nothing serves it: a rebuild replays the clock up to the wall
clock (about a second per simulated month), never back.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable

from prescient_pipeline.config import offline_world_path
from prescient_pipeline.polymarket.simulator.universe import Universe


def state_path(home: Path) -> Path:
    return offline_world_path(Path(home))


@dataclass(frozen=True)
class WorldState:
    seed: int
    events: int
    start: datetime  # the universe's clock when first built
    now: datetime  # its clock when last saved
    history_days: int = 0  # days of past before `start`: markets that opened, traded and resolved

    @classmethod
    def new(cls, seed: int, events: int, start: datetime | None = None, history_days: int = 0) -> "WorldState":
        start = (start or datetime.now(timezone.utc)).astimezone(timezone.utc).replace(second=0, microsecond=0)
        return cls(seed, events, start, start, history_days)

    def universe(self, until: datetime | None = None) -> Universe:
        """The world rebuilt and its clock replayed to `until` (default: now), or to the saved
        clock if that is later."""
        universe = Universe(seed=self.seed, events=self.events, start=self.start, history_days=self.history_days)
        target = max(self.now, until or datetime.now(timezone.utc))
        universe.advance(max((target - self.start).total_seconds() / 60, 0))
        return universe

    def at(self, universe: Universe) -> "WorldState":
        """This state with the clock of `universe`."""
        return WorldState(self.seed, self.events, self.start, universe.now, self.history_days)

    def to_json(self) -> str:
        data = asdict(self)
        data["start"], data["now"] = self.start.isoformat(), self.now.isoformat()
        return json.dumps(data, indent=2)

    @classmethod
    def from_json(cls, text: str) -> "WorldState":
        data = json.loads(text)
        return cls(int(data["seed"]), int(data["events"]), _utc(data["start"]), _utc(data["now"]),
                   int(data.get("history_days", 0)))


def load(home: Path) -> WorldState | None:
    """The stored world of this home; None when there is none. A damaged file is an error (it
    would otherwise be silently replaced by a different world)."""
    path = state_path(home)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        return WorldState.from_json(text)
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path} is damaged ({exc}); restore it, or remove it to start a new offline world") from None


def save(home: Path, state: WorldState) -> None:
    """Write atomically: a reader sees the old state or the new one, never half of one."""
    path = state_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(state.to_json())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def mismatched_markets(universe: Universe, held: Iterable[dict]) -> list[str]:
    """One line per stored market (market_id, question, yes_token_id, no_token_id) that this
    universe does not serve as the same market: unknown id, other question or other tokens."""
    from prescient_pipeline.polymarket.parser import parse_markets

    problems = []
    for row in held:
        wire = universe.gamma_market(str(row["market_id"]))
        parsed = parse_markets([wire]).markets if wire is not None else []
        if not parsed:
            problems.append(f"market {row['market_id']} is not in the offline world")
            continue
        served = parsed[0]
        for column in ("question", "yes_token_id", "no_token_id"):
            if row.get(column) is not None and str(served.get(column)) != str(row[column]):
                problems.append(f"market {row['market_id']}: {column} differs "
                                f"({str(row[column])[:40]!r} stored, {str(served.get(column))[:40]!r} served)")
                break
    return problems


def _utc(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)
