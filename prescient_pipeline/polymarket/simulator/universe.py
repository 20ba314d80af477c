"""The simulated Polymarket world behind the offline simulator: events, markets, books and prices.

Everything is drawn from one seeded generator, so the same (seed, events, start) and the same
sequence of `advance` calls give byte-identical answers. State lives in numpy arrays, one row per
market or event, so a 50,000-market world walks a simulated day in seconds; the wire-format
dicts are built on demand from those arrays.

The model, in short:
- A binary market's YES price is sigmoid(x) with x walking in logit space every 5 minutes.
- A negRisk event's legs are softmax(x) over the event, times the event's "book total": near 1,
  but some events are priced under 1 (buy-every-leg arbitrage) and some well over.
- Books are built from the fair price: a spread of 1-5 cents (narrower near 0 and 1, where the
  tick drops to 0.001 as on the real CLOB), five levels a side, NO mirroring YES.
- Past its end date a market is "proposed", pinned at 0.9995/0.0005 and still open for two hours
  (UMA's challenge period), then closed with outcomePrices ["1","0"], ["0","1"] or rarely
  ["0.5","0.5"]. New events appear every hour so the open universe keeps its size.

A world with a past (`history_days` N > 0) is the world that began N days before `start` (on the
hour) and ran forward to it: every step of those days is the same random walk the live clock
runs, so what the past serves (closed markets with their `closedTime` and final `outcomePrices`,
hourly `/prices-history` points) is exactly what a simulator serving those days live answered. Its
present therefore differs from the history-free world of the same seed started at `start`.
Worlds with a past also resolve some binary markets early, before their end date (drawn from a
generator of their own); `history_days=0` keeps every seed's answers as they always were.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import math
import random
import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterable, NamedTuple

import numpy as np

STEP_SECONDS = 300
STEPS_PER_HOUR = 12
PROPOSAL_SECONDS = 2 * 3600  # UMA's challenge period: proposed but still open, then closed
BACKFILL_HOURS = 7 * 24  # hourly price history that already exists when the clock starts
MAX_LIMIT = 100
MAX_OFFSET = 10_000
EVENT_ORDERS = ("id", "volume24hr", "end_date", "liquidity", "volume")
HISTORY_INTERVALS = {
    "1h": 3600,
    "6h": 6 * 3600,
    "1d": 86400,
    "1w": 7 * 86400,
    "1m": 30 * 86400,
    "max": None,
    "all": None,
}

NEG_RISK_SHARE = 0.30
MIN_LEGS, MAX_LEGS = 3, 12  # markets in a negRisk event
MAX_LEGS_LIMIT = 26  # the smallest name pool a negRisk event draws its legs from (COMPANIES)
SHORT_DATED_SHARE = 0.20  # of the first events, those ending within three days
NEW_SHORT_DATED_SHARE = 0.60  # of the events that appear later
FIFTY_FIFTY_SHARE = 0.02
MISSING_BESTBID_SHARE = 0.03
MISSING_VOLUME24HR_SHARE = 0.25
NO_HISTORY = 65535  # history cell of a market that did not exist yet
MAX_HISTORY_DAYS = 366
EARLY_SHARE = 0.15  # of the binary markets of a world with a past: resolved before their end date
EARLY_STREAM = 1  # the early-resolution generator: seeded by (seed, first market row, this)
MAX_BATCH_TOKENS = 20  # POST /batch-prices-history
MARKET_ORDERS = ("id", "end_date", "start_date", "volume", "liquidity")

# Venue rules and market structure, drawn from their own generator (seeded by the world's seed and
# the first market row of each spawn) so the prices, books and resolutions drawn above stay as
# they were before these features existed.
V2_SHARE = 0.30  # Protocol V2 markets: outcome ids in `positionIds`
NO_VERSION_SHARE = 0.20  # of the V1 markets, those that send no `version` at all
MIN_ORDER_SIZES = (5, 5, 5, 10, 15)
THIN_BOOK_SHARE = 0.15  # books a few shares deep, where a modest order fills only in part
MIN_LEVELS, MAX_LEVELS = 3, 8  # book levels a side: about five on average, as before
AUGMENTED_SHARE = 0.35  # of the negRisk events with named legs: placeholders and an "Other"
NAMED_LEG_CATEGORIES = ("politics", "sports", "culture", "tech", "geopolitics")
NAMED, OTHER, PLACEHOLDER = 0, 1, 2
OTHER_NAMES = {"politics": "another person", "geopolitics": "another person", "sports": "another team",
               "culture": "another film", "tech": "another company"}
# Fee schedules as Gamma sends them (2026): taker-only, per category. On a share of fee-enabled
# markets Gamma sends no schedule, as on some real crypto markets; the CLOB's market info states it.
FEE_FREE, CRYPTO_FEES, CRYPTO_FEES_EXPONENT_2, SPORTS_FEES = range(4)
FEE_SCHEDULES = {
    CRYPTO_FEES: ("crypto_fees_v2", {"exponent": 1, "rate": 0.07, "rebateRate": 0.2, "takerOnly": True}),
    CRYPTO_FEES_EXPONENT_2: ("crypto_fees", {"exponent": 2, "rate": 0.25, "rebateRate": 0.2, "takerOnly": True}),
    SPORTS_FEES: ("sports_fees_v2", {"exponent": 1, "rate": 0.03, "rebateRate": 0.25, "takerOnly": True}),
}
MISSING_SCHEDULE_SHARE = 0.10

OPEN, PROPOSED, CLOSED = 0, 1, 2
NO_WINS, YES_WINS, SPLIT = 0, 1, 2

# Token ids are 256-bit integers printed in decimal; keep them 77-78 digits like the real ones.
TOKEN_FLOOR = 10**76
TOKEN_SPAN = 2**256 - TOKEN_FLOOR


def price_text(value: float) -> str:
    """A price as the APIs print it: up to four decimals, no trailing zeros ("0.455", "1", "0")."""
    return f"{value:.4f}".rstrip("0").rstrip(".")


# Prices are kept as integer thousandths ("milli"); a midpoint is bid+ask in 1/2000ths.
PRICE_TEXT = [price_text(k / 1000) for k in range(1001)]
MID_TEXT = [price_text(k / 2000) for k in range(2001)]
FINAL_PRICES = {YES_WINS: '["1", "0"]', NO_WINS: '["0", "1"]', SPLIT: '["0.5", "0.5"]'}
FINAL_MID2 = {YES_WINS: 2000, NO_WINS: 0, SPLIT: 1000}
FINAL_MID2_BY_OUTCOME = np.array([FINAL_MID2[k] for k in (NO_WINS, YES_WINS, SPLIT)], dtype=np.uint16)


def _gamma_price(milli: int) -> float | int:
    # Gamma prints 0 and 1 as integers ("bestAsk": 1) and everything else as a float.
    return milli // 1000 if milli % 1000 == 0 else milli / 1000


def _iso(ts: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def _day(ts: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(ts))


def _closed_time(ts: int) -> str:
    # Gamma's closedTime has its own format: "2025-10-22 17:02:54+00".
    return time.strftime("%Y-%m-%d %H:%M:%S+00", time.gmtime(ts))


def _slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _renamed(question: str, label: str, name: str) -> str:
    """A leg's question about someone else: "Will the Boston Lions win ..." -> "Will another win ..."."""
    return question.replace(f"the {label}", name).replace(label, name)


def _letters(k: int) -> str:
    """Placeholder names as Polymarket lists them: A..Z, then AA, AB, ..."""
    return chr(65 + k) if k < 26 else chr(64 + k // 26) + chr(65 + k % 26)


class QueryError(ValueError):
    """A request the real API would refuse; `status` is the HTTP status it answers with."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


# --- what the markets are about ------------------------------------------------------------------

FIRST_NAMES = (
    "Alex Maria John Priya Chen Fatima Lucas Sofia David Amara Noah Elena Omar Grace Mateo Yuki "
    "Liam Nadia Victor Hana"
).split()
LAST_NAMES = (
    "Carter Nguyen Silva Kowalski Okafor Hartmann Reyes Lindqvist Moreau Tanaka Brennan Duarte "
    "Haddad Novak Ferreira Osei Larsen Petrov Quinn Vargas"
).split()
PEOPLE = [f"{first} {last}" for first in FIRST_NAMES for last in LAST_NAMES]
PLACES = (
    "Canada,Brazil,Germany,Japan,Kenya,Chile,Poland,Australia,India,Mexico,Norway,Portugal,"
    "South Korea,Argentina,Ireland,Spain,New Zealand,Colombia,Ghana,Austria"
).split(",")
CITIES = "Boston,Seattle,Chicago,Phoenix,Miami,Denver,Toronto,London,Paris,Tokyo,Seoul,Madrid,Berlin,Dallas".split(",")
TEAM_NAMES = (
    "Lions Hawks Comets Rangers Titans Wolves Sharks Falcons Bulls Pirates Giants Royals Storm Thunder Knights Rockets"
).split()
TEAMS = [f"{city} {name}" for city in CITIES for name in TEAM_NAMES]
LEAGUES = ("Premier Division", "Continental League", "National Cup", "Pro Basketball League", "Hockey Association")
COINS = (("Bitcoin", 95_000, 2_500), ("Ethereum", 3_500, 100), ("Solana", 180, 5), ("XRP", 2.4, 0.1))
TITLE_WORDS = "Silent Golden Last Hidden Broken Electric Distant Crimson Quiet Northern".split()
TITLE_NOUNS = "Harbor Orchard Signal Kingdom Garden Frontier Mirror Voyage Archive Summer".split()
MOVIES = [f"The {adj} {noun}" for adj in TITLE_WORDS for noun in TITLE_NOUNS]
COMPANY_STEMS = "Nimbus Vertex Halcyon Lumen Quanta Cobalt Aster Meridian Solace Tessera Orbit Kestrel Polar".split()
COMPANIES = [f"{stem} {kind}" for stem in COMPANY_STEMS for kind in ("AI", "Labs")]
PRODUCTS = ("a new flagship model", "a foldable phone", "a self-driving taxi service", "smart glasses", "a humanoid robot")
OFFICES = ("presidential", "parliamentary", "mayoral", "senate", "general")


@dataclass(frozen=True)
class Texts:
    """What an event says: its title and, per market, a label (negRisk legs), a question and outcomes."""

    title: str
    labels: list[str]
    questions: list[str]
    outcomes: tuple[str, str] = ("Yes", "No")


def _when(end: datetime) -> str:
    return f"{end:%B} {end.day}"


def _bins(n: int, low: float, step: float, fmt: Callable[[float], str], unit: str = "") -> list[str]:
    """n contiguous ranges: "<low", "a-b"..., ">high", as range-style negRisk events list them."""
    labels = [f"<{fmt(low)}{unit}"]
    for k in range(n - 2):
        labels.append(f"{fmt(low + k * step)}-{fmt(low + (k + 1) * step)}{unit}")
    labels.append(f">{fmt(low + (n - 2) * step)}{unit}")
    return labels


def _money(value: float) -> str:
    return f"${value:,.0f}" if value >= 100 else f"${value:,.2f}"


def _politics(r: random.Random, neg: bool, legs: int, end: datetime) -> Texts:
    place, office = r.choice(PLACES), r.choice(OFFICES)
    if not neg:
        title = f"Will {r.choice(PEOPLE)} win the {end.year} {place} {office} election?"
        return Texts(title, [""], [title])
    names = r.sample(PEOPLE, legs)
    questions = [f"Will {name} win the {end.year} {place} {office} election?" for name in names]
    return Texts(f"{place} {office.title()} Election Winner {end.year}", names, questions)


def _sports(r: random.Random, neg: bool, legs: int, end: datetime) -> Texts:
    if not neg:
        home, away = r.sample(TEAMS, 2)
        if r.random() < 0.35:  # match markets whose outcomes are the two teams, not Yes/No
            title = f"{home} vs. {away}"
            return Texts(title, [""], [title], (home, away))
        title = f"Will the {home} beat the {away} on {_when(end)}?"
        return Texts(title, [""], [title])
    league = r.choice(LEAGUES)
    teams = r.sample(TEAMS, legs)
    questions = [f"Will the {team} win the {end.year} {league}?" for team in teams]
    return Texts(f"{league} Champion {end.year}", teams, questions)


def _crypto(r: random.Random, neg: bool, legs: int, end: datetime) -> Texts:
    coin, level, step = r.choice(COINS)
    level *= 1 + r.uniform(-0.15, 0.15)
    if not neg:
        target = level * r.choice((0.8, 0.9, 1.1, 1.2, 1.5))
        title = f"Will {coin} reach {_money(target)} by {_when(end)}?"
        return Texts(title, [""], [title])
    low = round(level / step) * step - step * (legs - 2) / 2
    labels = _bins(legs, low, step, _money)
    questions = [f"Will the price of {coin} be {label} on {_when(end)}?" for label in labels]
    return Texts(f"{coin} price on {_when(end)}?", labels, questions)


def _economics(r: random.Random, neg: bool, legs: int, end: datetime) -> Texts:
    month = f"{end:%B}"
    if not neg:
        title = r.choice(
            (
                f"Will US inflation be above {r.choice((2.5, 2.8, 3.0, 3.2))}% in {month}?",
                f"Will the Fed cut rates in {month}?",
                f"US recession in {end.year}?",
                f"Will the S&P 500 close above {r.choice((5800, 6000, 6200, 6500)):,} on {_when(end)}?",
            )
        )
        return Texts(title, [""], [title])
    low = round(r.uniform(3.4, 4.4), 1)
    labels = _bins(legs, low, 0.1, lambda v: f"{v:.1f}", "%")
    questions = [f"Will the US unemployment rate be {label} in {month}?" for label in labels]
    return Texts(f"US unemployment rate in {month}?", labels, questions)


def _culture(r: random.Random, neg: bool, legs: int, end: datetime) -> Texts:
    if not neg:
        title = f"Will {r.choice(MOVIES)} gross over ${r.choice((40, 60, 80, 100, 150))}M on its opening weekend?"
        return Texts(title, [""], [title])
    films = r.sample(MOVIES, legs)
    award = r.choice(("Best Picture", "Best Animated Feature", "Audience Award"))
    questions = [f"Will {film} win {award} in {end.year}?" for film in films]
    return Texts(f"{award} Winner {end.year}", films, questions)


def _weather(r: random.Random, neg: bool, legs: int, end: datetime) -> Texts:
    city = r.choice(CITIES)
    if not neg:
        title = r.choice(
            (f"Will it snow in {city} on {_when(end)}?", f"Will {city} reach {r.randint(60, 100)}°F on {_when(end)}?")
        )
        return Texts(title, [""], [title])
    labels = _bins(legs, r.randint(20, 80), 2, lambda v: f"{v:.0f}", "°F")
    questions = [f"Will the highest temperature in {city} be {label} on {_when(end)}?" for label in labels]
    return Texts(f"Highest temperature in {city} on {_when(end)}?", labels, questions)


def _tech(r: random.Random, neg: bool, legs: int, end: datetime) -> Texts:
    if not neg:
        title = f"Will {r.choice(COMPANIES)} release {r.choice(PRODUCTS)} by {_when(end)}?"
        return Texts(title, [""], [title])
    names = r.sample(COMPANIES, legs)
    questions = [f"Will {name} have the top-ranked AI model at the end of {end:%B}?" for name in names]
    return Texts(f"Which company has the best AI model end of {end:%B}?", names, questions)


def _geopolitics(r: random.Random, neg: bool, legs: int, end: datetime) -> Texts:
    if not neg:
        first, second = r.sample(PLACES, 2)
        title = r.choice(
            (f"{first} x {second} ceasefire by {_when(end)}?", f"Will {first} hold a snap election by {_when(end)}?")
        )
        return Texts(title, [""], [title])
    place = r.choice(PLACES)
    names = r.sample(PEOPLE, legs)
    questions = [f"Will {name} be the next head of government of {place}?" for name in names]
    return Texts(f"Next head of government of {place}?", names, questions)


class EventText(NamedTuple):
    title: str
    slug: str
    description: str
    neg_risk_market_id: str  # "" on binary events
    tags: list[dict]


class MarketText(NamedTuple):
    question: str
    slug: str
    group_item_title: str  # the negRisk leg's label, "" on binary markets
    outcomes: str  # JSON text, as Gamma sends it
    clob_token_ids: str  # JSON text: [YES token, NO token]
    condition_id: str
    question_id: str
    neg_risk_request_id: str


@dataclass(frozen=True)
class Category:
    name: str
    weight: float
    tag: tuple[str, str, str]  # (id, label, slug)
    subtags: tuple[tuple[str, str, str], ...]
    texts: Callable[[random.Random, bool, int, datetime], Texts]


CATEGORIES = (
    Category("politics", 0.22, ("2", "Politics", "politics"),
             (("144", "Elections", "elections"), ("101206", "World Elections", "world-elections")), _politics),
    Category("sports", 0.24, ("1", "Sports", "sports"),
             (("100350", "Soccer", "soccer"), ("745", "Basketball", "basketball"), ("899", "Hockey", "hockey")), _sports),
    Category("crypto", 0.16, ("21", "Crypto", "crypto"),
             (("235", "Bitcoin", "bitcoin"), ("102127", "Crypto Prices", "crypto-prices")), _crypto),
    Category("economics", 0.10, ("100328", "Economy", "economy"),
             (("702", "Fed Rates", "fed-rates"), ("101", "Inflation", "inflation")), _economics),
    Category("culture", 0.10, ("596", "Culture", "pop-culture"),
             (("53", "Movies", "movies"), ("1069", "Awards", "awards")), _culture),
    Category("weather", 0.07, ("84", "Weather", "weather"),
             (("101574", "Temperature", "temperature"),), _weather),
    Category("tech", 0.06, ("1401", "Tech", "tech"), (("439", "AI", "ai"),), _tech),
    Category("geopolitics", 0.05, ("100265", "Geopolitics", "geopolitics"),
             (("180", "World", "world"),), _geopolitics),
)
CATEGORY_WEIGHTS = np.array([c.weight for c in CATEGORIES]) / sum(c.weight for c in CATEGORIES)


# --- the world ------------------------------------------------------------------------------------


class Universe:
    """A deterministic simulated Polymarket: `events` open events, a clock, and the answers the
    Gamma and CLOB endpoints give about them. Not thread-safe (the server serialises access)."""

    def __init__(self, seed: int = 7, events: int = 300, start: datetime | None = None, *,
                 neg_risk_share: float = NEG_RISK_SHARE, max_legs: int = MAX_LEGS, history_days: int = 0):
        if events < 1:
            raise ValueError("a universe needs at least one event")
        if not 0 <= history_days <= MAX_HISTORY_DAYS:
            raise ValueError(f"history_days must be between 0 and {MAX_HISTORY_DAYS}")
        # Knobs for bigger worlds (benchmarks): more and wider negRisk events mean more markets
        # per event. The defaults keep the seeded draws, hence every answer, as they were.
        if not 0 <= neg_risk_share <= 1:
            raise ValueError("neg_risk_share must be between 0 and 1")
        if not MIN_LEGS <= max_legs <= MAX_LEGS_LIMIT:
            raise ValueError(f"max_legs must be between {MIN_LEGS} and {MAX_LEGS_LIMIT}")
        self.neg_risk_share = neg_risk_share
        self.max_legs = max_legs
        if start is None:
            start = datetime.now(timezone.utc).replace(second=0, microsecond=0)
        elif start.tzinfo is None:
            start = start.replace(tzinfo=timezone.utc)
        self.seed = seed
        self.target_events = events
        self.history_days = int(history_days)
        self.start = start.astimezone(timezone.utc).replace(microsecond=0)  # the clock once built
        # The world's first instant. A past begins on the hour, so its hourly points fall on UTC
        # hours, where an hourly grid reads them.
        self.epoch = self.start - timedelta(days=self.history_days)
        if self.history_days:
            self.epoch = self.epoch.replace(minute=0, second=0)
        self._early_share = EARLY_SHARE if self.history_days else 0.0
        self.now = self.epoch
        self._start_ts = int(self.epoch.timestamp())
        self._elapsed_ms = 0
        self._steps = 0
        self._rng = np.random.default_rng(seed)
        self._next_event_id = 16_000 + int(self._rng.integers(0, 5_000))
        self._next_market_id = 500_000 + int(self._rng.integers(0, 50_000))

        self._m: dict[str, np.ndarray] = {}  # one row per market
        self._e: dict[str, np.ndarray] = {}  # one row per event
        self._event_texts: list[EventText] = []
        self._market_texts: list[MarketText] = []
        self._market_by_id: dict[str, int] = {}
        self._event_by_id: dict[str, int] = {}
        self._token_index: dict[str, tuple[int, bool]] = {}  # token id -> (market row, is the NO token)
        self._market_by_condition: dict[str, int] = {}
        self._hist_t: list[int] = []
        self._hist_mid2: list[np.ndarray] = []
        self._snapshot: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._sums: dict[str, np.ndarray] | None = None

        self._spawn(events, self._start_ts, initial=True)
        self._backfill_history()
        self._record_history(self._start_ts)
        if self.history_days:  # the past: the live walk, run from the epoch to `start`
            self.advance((self.start - self.epoch).total_seconds() / 60)

    # --- size -------------------------------------------------------------------------------------

    @property
    def event_count(self) -> int:
        return len(self._e["id"])

    @property
    def market_count(self) -> int:
        return len(self._m["id"])

    @property
    def open_event_count(self) -> int:
        return int((~self._e["closed"]).sum())

    # --- the clock --------------------------------------------------------------------------------

    def advance(self, minutes: float) -> None:
        """Move the clock. The world moves in whole 5-minute steps counted from its epoch, so
        advance(60) twice is the same world as advance(120)."""
        minutes = float(minutes)
        if not math.isfinite(minutes) or minutes < 0:
            raise ValueError("minutes must be a finite number >= 0")
        self._elapsed_ms += round(minutes * 60_000)
        due = self._elapsed_ms // (STEP_SECONDS * 1000)
        while self._steps < due:
            self._step()
        self.now = self.epoch + timedelta(milliseconds=self._elapsed_ms)
        self._snapshot = None
        self._sums = None

    @property
    def _now_ts(self) -> int:
        return self._start_ts + self._elapsed_ms // 1000

    def _step(self) -> None:
        self._steps += 1
        t = self._start_ts + self._steps * STEP_SECONDS
        m, e, rng = self._m, self._e, self._rng
        walking = self._walking
        if walking.size:
            # Markets get more decisive as their end approaches, as real ones do.
            hours_left = np.maximum(m["due"][walking] - t, 0) / 3600
            boost = 1 + 1.5 * np.exp(-hours_left / 12)
            m["x"][walking] += m["sigma"][walking] * boost * rng.standard_normal(walking.size)
        drifting = self._drifting_events
        if drifting.size:
            # The negRisk book total mean-reverts (~1 day), so mispricings come and go.
            u = e["u"]
            u[drifting] += -u[drifting] / 288 + 0.0025 * rng.standard_normal(drifting.size)
        self._resolve(t)
        if self._steps % STEPS_PER_HOUR == 0:
            self._hourly(t)

    def _resolve(self, t: int) -> None:
        m, e, rng = self._m, self._e, self._rng
        changed = False
        walking = self._walking
        due = walking[m["due"][walking] <= t]
        if due.size:
            fair = self._fair_prices()
            neg = m["neg"][due]
            binary = due[~neg]
            if binary.size:
                draw = rng.random(binary.size)
                split = rng.random(binary.size) < FIFTY_FIFTY_SHARE
                winner = np.where(draw < fair[binary], YES_WINS, NO_WINS)
                m["outcome"][binary] = np.where(split, SPLIT, winner)
            legs = due[neg]
            if legs.size:
                # negRisk: exactly one leg wins, drawn with the legs' last prices.
                events = np.unique(m["event"][legs])
                draws = rng.random(events.size)
                for ev, draw in zip(events.tolist(), draws.tolist()):
                    first, count = int(e["first"][ev]), int(e["count"][ev])
                    cumulative = np.cumsum(fair[first : first + count])
                    winner = min(int(np.searchsorted(cumulative / cumulative[-1], draw, side="right")), count - 1)
                    roles = m["role"][first : first + count]
                    if roles[winner] == PLACEHOLDER:  # an outcome never named resolves to "Other"
                        winner = int(np.flatnonzero(roles == OTHER)[0])
                    m["outcome"][first : first + count] = NO_WINS
                    m["outcome"][first + winner] = YES_WINS
            m["status"][due] = PROPOSED
            m["proposed_at"][due] = t
            changed = True
        pending = self._pending
        done = pending[t - m["proposed_at"][pending] >= PROPOSAL_SECONDS]
        if done.size:
            m["status"][done] = CLOSED
            m["closed_at"][done] = t
            for ev in np.unique(m["event"][done]).tolist():
                first, count = int(e["first"][ev]), int(e["count"][ev])
                if (m["status"][first : first + count] == CLOSED).all():
                    e["closed"][ev] = True
                    e["closed_at"][ev] = t
            changed = True
        if changed:
            self._refresh_live()

    def _hourly(self, t: int) -> None:
        m = self._m
        walking = self._walking
        m["vol"][walking] *= 1 + m["v24"][walking] / 24
        deficit = self.target_events - self.open_event_count
        if deficit > 0:
            self._spawn(deficit, t, initial=False)
        self._record_history(t)

    def _refresh_live(self) -> None:
        status = self._m["status"]
        self._walking = np.flatnonzero(status == OPEN)
        self._pending = np.flatnonzero(status == PROPOSED)
        self._drifting_events = np.flatnonzero(self._e["neg"] & ~self._e["closed"])

    # --- creating events --------------------------------------------------------------------------

    def _spawn(self, count: int, now_ts: int, *, initial: bool) -> None:
        rng = self._rng
        words = random.Random(int(rng.integers(0, 2**62)))
        neg = rng.random(count) < self.neg_risk_share
        legs = np.where(neg, rng.integers(MIN_LEGS, self.max_legs + 1, count), 1)
        categories = rng.choice(len(CATEGORIES), size=count, p=CATEGORY_WEIGHTS)
        # Later events are shorter-dated on average: short events churn, so the open universe
        # keeps about a fifth of its events ending within three days instead of drifting long.
        short_share, longest_days = (SHORT_DATED_SHARE, 200) if initial else (NEW_SHORT_DATED_SHARE, 90)
        short = rng.random(count) < short_share
        hours = np.where(short, rng.uniform(2, 72, count), np.exp(rng.uniform(math.log(72), math.log(longest_days * 24), count)))
        end = (now_ts // 3600 + np.ceil(hours).astype(np.int64)) * 3600  # on the hour
        age_days = rng.uniform(1, 120, count) if initial else np.zeros(count)
        created = now_ts - (age_days * 86400).astype(np.int64)
        event_ids = self._next_event_id + np.cumsum(rng.integers(1, 25, count))
        self._next_event_id = int(event_ids[-1])
        # Book totals of negRisk events: most near 1, some under (arbitrage) and some well over.
        kind = rng.random(count)
        total = np.where(
            kind < 0.12,
            rng.uniform(0.82, 0.95, count),
            np.where(kind < 0.30, rng.uniform(1.04, 1.15, count), rng.normal(1.0, 0.012, count)),
        )
        comments = rng.integers(0, 400, count)
        event_hex = rng.bytes(32 * count)

        texts = [
            CATEGORIES[c].texts(words, is_neg, n, datetime.fromtimestamp(ts, timezone.utc))
            for c, is_neg, n, ts in zip(categories.tolist(), neg.tolist(), legs.tolist(), end.tolist())
        ]
        legs = np.array([len(t.labels) for t in texts], dtype=np.int64)
        markets = int(legs.sum())
        first_event = len(self._e.get("id", ()))
        first_market = len(self._m.get("id", ()))
        offsets = np.concatenate(([0], np.cumsum(legs)[:-1]))
        event_of = np.repeat(np.arange(first_event, first_event + count), legs)
        leg_of = np.arange(markets) - np.repeat(offsets, legs)
        m_neg = np.repeat(neg, legs)

        # Opening prices: binary markets spread over (0.02, 0.98) with many favourites in
        # 0.50-0.95 on either side; negRisk legs from a Dirichlet, so a few legs lead.
        favourite = rng.random(markets) < 0.6
        strength = rng.uniform(0.5, 0.95, markets)
        side = rng.random(markets) < 0.5
        p = np.where(favourite, np.where(side, strength, 1 - strength), rng.uniform(0.02, 0.98, markets))
        weight = rng.gamma(0.6, size=markets)
        share = weight / np.repeat(np.add.reduceat(weight, offsets), legs)
        x = np.where(m_neg, np.log(np.maximum(share, 0.002)), np.log(p / (1 - p)))

        tick = np.where(rng.random(markets) < 0.65, 10, 1)
        spread = np.where(tick == 10, 10 * rng.choice((1, 1, 1, 2, 2, 3, 4, 5), markets), rng.integers(10, 51, markets))
        liquidity = np.exp(rng.normal(math.log(20_000), 1.3, markets))
        volume = np.exp(rng.normal(math.log(100_000), 1.6, markets))
        market_ids = self._next_market_id + np.cumsum(rng.integers(1, 5, markets))
        self._next_market_id = int(market_ids[-1])
        columns = {
            "id": market_ids,
            "event": event_of.astype(np.int64),
            "leg": leg_of.astype(np.int64),
            "neg": m_neg,
            "x": x,
            "sigma": np.exp(rng.normal(math.log(0.25), 0.5, markets)) / math.sqrt(288),  # daily logit vol ~0.25
            "tick": tick.astype(np.int32),
            "spread": spread.astype(np.int32),
            "liq": liquidity,
            "vol": volume,
            "v24": np.clip(np.exp(rng.normal(math.log(0.03), 0.9, markets)), 0.001, 0.5),
            "has_v24": rng.random(markets) >= MISSING_VOLUME24HR_SHARE,
            "has_bid": rng.random(markets) >= MISSING_BESTBID_SHARE,
            "depth": liquidity / 100 * np.exp(rng.normal(0, 0.3, markets)),
            "end": np.repeat(end, legs),
            "created": np.repeat(created, legs),
            "status": np.zeros(markets, dtype=np.int8),
            "outcome": np.full(markets, -1, dtype=np.int8),
            "proposed_at": np.zeros(markets, dtype=np.int64),
            "closed_at": np.zeros(markets, dtype=np.int64),
        }
        market_hex = rng.bytes(32 * 5 * markets)  # two tokens, condition, question, request
        category_names = [CATEGORIES[c].name for c in categories.tolist()]
        venue, augmented, role = self._venue_draws(first_market, markets, category_names, neg, legs, offsets)
        columns["depth"] = columns["depth"] * venue.pop("depth_scale")
        columns.update(venue)
        columns["due"] = self._resolution_due(first_market, columns["end"], m_neg, now_ts)

        event_columns = {
            "id": event_ids.astype(np.int64),
            "neg": neg,
            "first": first_market + offsets,
            "count": legs,
            "category": categories.astype(np.int64),
            "end": end,
            "created": created,
            "total": total,
            "u": np.zeros(count),
            "closed": np.zeros(count, dtype=bool),
            "closed_at": np.zeros(count, dtype=np.int64),
            "comments": comments.astype(np.int64),
            "aug": augmented,
        }
        for name, values in columns.items():
            self._m[name] = np.concatenate((self._m[name], values)) if name in self._m else values
        for name, values in event_columns.items():
            self._e[name] = np.concatenate((self._e[name], values)) if name in self._e else values

        market_ids = market_ids.tolist()
        row = first_market
        for k, text in enumerate(texts):
            event_id = str(int(event_ids[k]))
            category = CATEGORIES[int(categories[k])]
            tags = [dict(zip(("id", "label", "slug"), category.tag))]
            subtags = words.sample(category.subtags, min(len(category.subtags), 1 + words.randrange(2)))
            tags += [dict(zip(("id", "label", "slug"), sub)) for sub in subtags]
            neg_risk_id = "0x" + event_hex[32 * k : 32 * k + 32].hex() if neg[k] else ""
            slug = f"{_slugify(text.title)}-{event_id}"
            end_day = _when(datetime.fromtimestamp(int(end[k]), timezone.utc))
            description = (
                f'This market will resolve to "{text.outcomes[0]}" if what its title asks happens by {end_day} '
                f'(UTC), as reported by a consensus of credible sources. Otherwise, it will resolve to "{text.outcomes[1]}".'
            )
            self._event_texts.append(EventText(text.title, slug, description, neg_risk_id, tags))
            self._event_by_id[event_id] = first_event + k
            outcomes = json.dumps(list(text.outcomes))
            placeholders = 0
            for leg, (label, question) in enumerate(zip(text.labels, text.questions)):
                kind = int(role[row - first_market])
                if kind == OTHER:
                    label, question = "Other", _renamed(question, label, OTHER_NAMES[category.name])
                elif kind == PLACEHOLDER:
                    name = f"Person {_letters(placeholders)}"
                    label, question = "", _renamed(question, label, name)
                    placeholders += 1
                base = 160 * (row - first_market)
                chunk = market_hex[base : base + 160]
                yes = str(int.from_bytes(chunk[0:32], "big") % TOKEN_SPAN + TOKEN_FLOOR)
                no = str(int.from_bytes(chunk[32:64], "big") % TOKEN_SPAN + TOKEN_FLOOR)
                condition = "0x" + chunk[64:96].hex()
                # negRisk question ids share the event's negRiskMarketID, the leg index in the last byte.
                question_id = neg_risk_id[:-2] + f"{leg:02x}" if neg_risk_id else "0x" + chunk[96:128].hex()
                request_id = "0x" + chunk[128:160].hex() if neg_risk_id else ""
                market_id = str(market_ids[row - first_market])
                self._market_texts.append(
                    MarketText(
                        question, f"{_slugify(question)}-{market_id}", label, outcomes,
                        json.dumps([yes, no]), condition, question_id, request_id,
                    )
                )
                self._market_by_id[market_id] = row
                self._market_by_condition[condition] = row
                self._token_index[yes] = (row, False)
                self._token_index[no] = (row, True)
                row += 1
        self._refresh_live()
        self._snapshot = None
        self._sums = None

    def _venue_draws(self, first_market: int, markets: int, category_names: list[str], neg: np.ndarray,
                     legs: np.ndarray, offsets: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        """Per-market protocol version, minimum order size, book shape and fee schedule, and which
        negRisk events are augmented (their last leg "Other", one or two before it placeholders)."""
        venue = np.random.default_rng([self.seed, first_market])
        events = len(category_names)
        category = np.repeat(np.array(category_names, dtype=object), legs)
        v2 = venue.random(markets) < V2_SHARE
        fee_draw = venue.random(markets)
        crypto_kind = np.where(venue.random(markets) < 0.5, CRYPTO_FEES, CRYPTO_FEES_EXPONENT_2)
        fee = np.select([category == "crypto", category == "sports"], [crypto_kind, SPORTS_FEES], FEE_FREE)
        thin = venue.random(markets) < THIN_BOOK_SHARE
        columns = {
            "v2": v2,
            "no_version": ~v2 & (venue.random(markets) < NO_VERSION_SHARE),
            "min_size": venue.choice(MIN_ORDER_SIZES, markets).astype(np.int32),
            "levels": venue.integers(MIN_LEVELS, MAX_LEVELS + 1, markets).astype(np.int32),
            "fee": fee.astype(np.int8),
            "fee_hidden": (fee != FEE_FREE) & (fee_draw < MISSING_SCHEDULE_SHARE),
            "depth_scale": np.where(thin, 0.03, 1.0),
        }
        named = np.isin(np.array(category_names, dtype=object), NAMED_LEG_CATEGORIES)
        augmented = neg & named & (legs >= 5) & (venue.random(events) < AUGMENTED_SHARE)
        role = np.zeros(markets, dtype=np.int8)
        for event in np.flatnonzero(augmented).tolist():
            last = int(offsets[event] + legs[event] - 1)
            role[last] = OTHER
            role[last - 1 - int(venue.integers(0, 2)) : last] = PLACEHOLDER
        columns["role"] = role
        return columns, augmented, role

    def _resolution_due(self, first_market: int, end: np.ndarray, neg: np.ndarray, now_ts: int) -> np.ndarray:
        """When each market resolves: at its end date, or, for a share of the binary markets of
        a world with a past, somewhere between now and its end (drawn from a generator of its own,
        so the rest of the world's draws stay as they are)."""
        if not self._early_share:
            return end.copy()
        draws = np.random.default_rng([self.seed, first_market, EARLY_STREAM])
        early = ~neg & (draws.random(end.size) < self._early_share)
        at = now_ts + ((end - now_ts) * draws.uniform(0.2, 0.9, end.size)).astype(np.int64)
        return np.where(early & (at > now_ts), at, end)

    # --- prices -----------------------------------------------------------------------------------

    def _fair_prices(self, x: np.ndarray | None = None) -> np.ndarray:
        """Fair YES probability of every market, before spreads and ticks."""
        m, e = self._m, self._e
        x = np.clip(m["x"] if x is None else x, -30, 30)
        p = 1.0 / (1.0 + np.exp(-x))
        neg = m["neg"]
        if neg.any():
            event = m["event"]
            weight = np.where(neg, np.exp(x), 0.0)
            sums = np.bincount(event, weights=weight, minlength=len(e["id"]))
            total = e["total"] * np.exp(e["u"])
            p = np.where(neg, total[event] * weight / np.maximum(sums[event], 1e-300), p)
        return p

    def _quote(self, fair: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Best bid, best ask and tick of every YES book, in thousandths. A bid of 0 or an ask of
        1000 means that side is empty (a market pinned by its resolution)."""
        m = self._m
        milli = np.clip(fair, 0.0005, 0.9995) * 1000
        # The CLOB's tick drops to 0.001 near 0 and 1, where spreads are a tick or two.
        tick = np.where((milli < 40) | (milli > 960), 1, m["tick"]).astype(np.int32)
        edge = np.rint(np.minimum(milli, 1000 - milli)).astype(np.int32)
        spread = np.minimum(m["spread"], np.maximum(tick, edge))
        spread = np.maximum(tick, spread // tick * tick)
        bid = np.rint((milli - spread / 2) / tick).astype(np.int32) * tick
        bid = np.clip(bid, tick, 1000 - tick - spread)
        ask = bid + spread
        pinned = m["status"] != OPEN
        if pinned.any():
            outcome = m["outcome"]
            won, lost = outcome == YES_WINS, outcome == NO_WINS
            bid = np.where(pinned, np.select([won, lost], [999, 0], 490), bid)
            ask = np.where(pinned, np.select([won, lost], [1000, 1], 510), ask)
            tick = np.where(pinned & (outcome != SPLIT), 1, tick)
        return bid, ask, tick

    def _current(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._snapshot is None:
            self._snapshot = self._quote(self._fair_prices())
        return self._snapshot

    def _record_history(self, t: int) -> None:
        bid, ask, _ = self._quote(self._fair_prices())
        mid2 = (bid + ask).astype(np.uint16)
        closed = np.flatnonzero(self._m["status"] == CLOSED)
        if closed.size:
            mid2[closed] = FINAL_MID2_BY_OUTCOME[self._m["outcome"][closed]]
        self._hist_t.append(t)
        self._hist_mid2.append(mid2)

    def _backfill_history(self) -> None:
        """Hourly history for the week before `start`: the walk run backwards from today's prices."""
        m = self._m
        x = m["x"].copy()
        scale = m["sigma"] * math.sqrt(STEPS_PER_HOUR)
        times, rows = [], []
        for hour in range(1, BACKFILL_HOURS + 1):
            x -= scale * self._rng.standard_normal(x.size)
            t = self._start_ts - hour * 3600
            bid, ask, _ = self._quote(self._fair_prices(x))
            mid2 = (bid + ask).astype(np.uint16)
            mid2[m["created"] > t] = NO_HISTORY
            times.append(t)
            rows.append(mid2)
        self._hist_t = times[::-1]
        self._hist_mid2 = rows[::-1]

    def _event_sums(self) -> dict[str, np.ndarray]:
        """Per-event liquidity (open markets only), volume and known 24h volume."""
        if self._sums is None:
            m = self._m
            n = len(self._e["id"])
            open_ = m["status"] != CLOSED
            v24 = m["vol"] * m["v24"]
            self._sums = {
                "liquidity": np.bincount(m["event"], weights=np.where(open_, m["liq"], 0.0), minlength=n),
                "volume": np.bincount(m["event"], weights=m["vol"], minlength=n),
                "volume24hr": np.bincount(m["event"], weights=np.where(m["has_v24"] & open_, v24, 0.0), minlength=n),
            }
        return self._sums

    # --- Gamma ------------------------------------------------------------------------------------

    def gamma_events(
        self,
        *,
        active: bool | None = None,
        closed: bool | None = None,
        archived: bool | None = None,
        order: str = "id",
        ascending: bool = True,
        limit: int = 100,
        offset: int = 0,
        end_date_min: str | datetime | None = None,
        end_date_max: str | datetime | None = None,
        ids: Iterable[str | int] | None = None,
    ) -> list[dict]:
        """GET /events: wire-format Event dicts, each with its markets and tags."""
        if order not in EVENT_ORDERS:
            raise QueryError(422, "order fields are not valid")
        limit, offset = _page(limit, offset)
        e = self._e
        keep = np.ones(len(e["id"]), dtype=bool)
        if active is False or archived is True:  # every simulated event is active and unarchived
            keep[:] = False
        if closed is not None:
            keep &= e["closed"] == bool(closed)
        if end_date_min is not None:
            keep &= e["end"] >= _timestamp(end_date_min, "end_date_min")
        if end_date_max is not None:
            keep &= e["end"] <= _timestamp(end_date_max, "end_date_max")
        if ids is not None:
            wanted = [self._event_by_id.get(_numeric_id(i)) for i in ids]
            chosen = np.zeros_like(keep)
            chosen[np.array([k for k in wanted if k is not None], dtype=np.int64)] = True
            keep &= chosen
        rows = np.flatnonzero(keep)
        if order != "id":
            sums = self._event_sums()
            key = e["end"] if order == "end_date" else sums[order]
            rows = rows[np.lexsort((rows, key[rows]))]  # ties by id (rows are in id order)
        if not ascending:
            rows = rows[::-1]
        return [self._event_wire(int(k), nested=True) for k in rows[offset : offset + limit]]

    def gamma_event(self, event_id: str) -> dict | None:
        """GET /events/{id}."""
        row = self._event_by_id.get(_numeric_id(event_id))
        return None if row is None else self._event_wire(row, nested=True)

    def gamma_markets(
        self,
        *,
        ids: Iterable[str | int] | None = None,
        condition_ids: Iterable[str] | None = None,
        clob_token_ids: Iterable[str] | None = None,
        closed: bool | None = None,
        active: bool | None = None,
        archived: bool | None = None,
        end_date_min: str | datetime | None = None,
        end_date_max: str | datetime | None = None,
        start_date_max: str | datetime | None = None,
        volume_num_min: float | None = None,
        order: str = "id",
        ascending: bool = True,
        limit: int = 100,
        offset: int = 0,
    ) -> list[dict]:
        """GET /markets: wire-format Market dicts, each with `events: [parent]`; closed markets
        are included unless `closed=False`. The date bounds are inclusive, on `endDate` and
        `startDate`; `volume_num_min` is on `volumeNum`."""
        if order not in MARKET_ORDERS:
            raise QueryError(422, "order fields are not valid")
        limit, offset = _page(limit, offset)
        m = self._m
        keep = np.ones(len(m["id"]), dtype=bool)
        for values, lookup in (
            (ids, lambda v: self._market_by_id.get(_numeric_id(v))),
            (condition_ids, lambda v: self._market_by_condition.get(str(v).lower())),
            (clob_token_ids, lambda v: self._token_index.get(str(v), (None,))[0]),
        ):
            if values is not None:
                chosen = np.zeros_like(keep)
                chosen[np.array([k for k in map(lookup, values) if k is not None], dtype=np.int64)] = True
                keep &= chosen
        if closed is not None:
            keep &= (m["status"] == CLOSED) == bool(closed)
        if active is False or archived is True:  # every simulated market is active and unarchived
            keep[:] = False
        if end_date_min is not None:
            keep &= m["end"] >= _timestamp(end_date_min, "end_date_min")
        if end_date_max is not None:
            keep &= m["end"] <= _timestamp(end_date_max, "end_date_max")
        if start_date_max is not None:
            keep &= m["created"] <= _timestamp(start_date_max, "start_date_max")
        if volume_num_min is not None:
            keep &= np.round(m["vol"], 6) >= float(volume_num_min)
        rows = np.flatnonzero(keep)
        if order != "id":
            key = {"end_date": m["end"], "start_date": m["created"], "volume": m["vol"], "liquidity": m["liq"]}[order]
            rows = rows[np.lexsort((rows, key[rows]))]  # ties by id (rows are in id order)
        if not ascending:
            rows = rows[::-1]
        return [self._market_with_event(int(k)) for k in rows[offset : offset + limit]]

    def gamma_market(self, market_id: str) -> dict | None:
        """GET /markets/{id}: one market or None."""
        row = self._market_by_id.get(_numeric_id(market_id))
        return None if row is None else self._market_with_event(row)

    def _market_with_event(self, row: int) -> dict:
        market = self._market_wire(row)
        market["events"] = [self._event_wire(int(self._m["event"][row]), nested=False)]
        return market

    def _event_wire(self, row: int, *, nested: bool) -> dict:
        e = self._e
        title, slug, description, neg_risk_id, tags = self._event_texts[row]
        sums = self._event_sums()
        neg = bool(e["neg"][row])
        closed = bool(e["closed"][row])
        created = int(e["created"][row])
        volume = round(float(sums["volume"][row]), 6)
        liquidity = round(float(sums["liquidity"][row]), 4)
        volume24hr = round(float(sums["volume24hr"][row]), 6)
        event = {
            "id": str(int(e["id"][row])),
            "ticker": slug,
            "slug": slug,
            "title": title,
            "description": description,
            "resolutionSource": "",
            "startDate": _iso(created),
            "creationDate": _iso(created),
            "endDate": _iso(int(e["end"][row])),
            "active": True,
            "closed": closed,
            "archived": False,
            "new": False,
            "featured": False,
            "restricted": True,
            "liquidity": liquidity,
            "volume": volume,
            "openInterest": 0,
            "createdAt": _iso(created - 60),
            "updatedAt": _iso(int(e["closed_at"][row]) if closed else self._now_ts),
            "competitive": round(min(1.0, liquidity / 50_000), 6),
            "volume24hr": volume24hr,
            "volume1wk": round(min(volume, volume24hr * 7), 6),
            "enableOrderBook": True,
            "liquidityClob": liquidity,
            "negRisk": neg,
        }
        if neg:
            event["negRiskMarketID"] = neg_risk_id
        event["commentCount"] = int(e["comments"][row])
        event["cyom"] = False
        event["showAllOutcomes"] = True
        event["showMarketImages"] = False
        event["enableNegRisk"] = neg
        event["negRiskAugmented"] = bool(e["aug"][row])
        if closed:
            event["closedTime"] = _closed_time(int(e["closed_at"][row]))
        if nested:
            first, count = int(e["first"][row]), int(e["count"][row])
            event["markets"] = [self._market_wire(k) for k in range(first, first + count)]
            event["tags"] = [dict(tag) for tag in tags]
        return event

    def _market_wire(self, row: int) -> dict:
        m = self._m
        question, slug, label, outcomes, tokens, condition, question_id, request_id = self._market_texts[row]
        bids, asks, ticks = self._current()
        bid, ask, tick = int(bids[row]), int(asks[row]), int(ticks[row])
        status, outcome = int(m["status"][row]), int(m["outcome"][row])
        neg = bool(m["neg"][row])
        created, end = int(m["created"][row]), int(m["end"][row])
        volume = round(float(m["vol"][row]), 6)
        volume24hr = round(volume * float(m["v24"][row]), 6)
        liquidity = round(float(m["liq"][row]), 4)
        if status == CLOSED:
            outcome_prices = FINAL_PRICES[outcome]
        else:
            outcome_prices = json.dumps([MID_TEXT[bid + ask], MID_TEXT[2000 - bid - ask]])
        market = {
            "id": str(int(m["id"][row])),
            "question": question,
            "conditionId": condition,
            "slug": slug,
            "resolutionSource": "",
            "endDate": _iso(end),
        }
        if status != CLOSED:  # closed markets come without liquidity, as on Gamma
            market["liquidity"] = str(liquidity)
        market.update(
            {
                "startDate": _iso(created),
                "description": self._event_texts[int(m["event"][row])].description,
                "outcomes": outcomes,
                "outcomePrices": outcome_prices,
                "volume": str(volume),
                "active": True,
                "closed": status == CLOSED,
                "marketMakerAddress": "",
                "createdAt": _iso(created - 60),
                "updatedAt": _iso(int(m["closed_at"][row]) if status == CLOSED else self._now_ts),
            }
        )
        if status == CLOSED:
            market["closedTime"] = _closed_time(int(m["closed_at"][row]))
        market["new"] = False
        market["featured"] = False
        market["archived"] = False
        market["restricted"] = True
        if neg:
            market["groupItemTitle"] = label
            market["groupItemThreshold"] = str(int(m["leg"][row]))
        market["questionID"] = question_id
        if status != OPEN:
            market["umaEndDate"] = _iso(int(m["proposed_at"][row]) + PROPOSAL_SECONDS)
        market["enableOrderBook"] = True
        market["orderPriceMinTickSize"] = tick / 1000
        market["orderMinSize"] = int(m["min_size"][row])
        if status != OPEN:
            market["umaResolutionStatus"] = "resolved" if status == CLOSED else "proposed"
        market["volumeNum"] = volume
        if status != CLOSED:
            market["liquidityNum"] = liquidity
        market["endDateIso"] = _day(end)
        market["startDateIso"] = _day(created)
        market["hasReviewedDates"] = True
        if bool(m["has_v24"][row]) and status != CLOSED:  # unknown is absent, not 0
            market["volume24hr"] = volume24hr
        if bool(m["v2"][row]):  # Protocol V2: a native array in `positionIds`, no clobTokenIds
            market["version"] = "v2"
            market["positionIds"] = json.loads(tokens)
        else:
            if not bool(m["no_version"][row]):
                market["version"] = "v1"
            market["clobTokenIds"] = tokens
        market["umaBond"] = "500"
        market["umaReward"] = "5"
        if bool(m["has_v24"][row]) and status != CLOSED:
            market["volume24hrClob"] = volume24hr
        market["volumeClob"] = volume
        if status != CLOSED:
            market["liquidityClob"] = liquidity
        market["acceptingOrders"] = status != CLOSED
        market["negRisk"] = neg
        if neg:
            market["negRiskMarketID"] = self._event_texts[int(m["event"][row])].neg_risk_market_id
            market["negRiskRequestID"] = request_id
        market["acceptingOrdersTimestamp"] = _iso(created)
        market["cyom"] = False
        market["competitive"] = round(max(0.0, 1 - (ask - bid) / 100), 6)
        market["approved"] = True
        market["rewardsMinSize"] = 50
        market["rewardsMaxSpread"] = 3.5
        market["spread"] = round((ask - bid) / 1000, 3)
        market["lastTradePrice"] = _gamma_price(self._last_trade(row, bid, ask, status, outcome))
        if bid > 0 and bool(m["has_bid"][row]):
            market["bestBid"] = _gamma_price(bid)
        market["bestAsk"] = _gamma_price(ask)
        if neg:
            market["negRiskOther"] = int(m["role"][row]) == OTHER
        market["umaResolutionStatuses"] = {OPEN: "[]", PROPOSED: '["proposed"]', CLOSED: '["proposed", "resolved"]'}[status]
        fee = int(m["fee"][row])
        market["feesEnabled"] = fee != FEE_FREE
        fee_type, schedule = FEE_SCHEDULES.get(fee, (None, None))
        market["feeType"] = fee_type
        if schedule is not None and not bool(m["fee_hidden"][row]):
            market["feeSchedule"] = dict(schedule)
        if int(m["role"][row]) == PLACEHOLDER and status != CLOSED:
            _as_placeholder(market)
        return market

    def _last_trade(self, row: int, bid: int, ask: int, status: int, outcome: int) -> int:
        if status != OPEN:
            return {YES_WINS: 999, NO_WINS: 1, SPLIT: 500}[outcome]
        # Alternates between hitting the bid and lifting the ask, deterministically.
        return ask if (row * 2654435761 + self._steps * 40503) >> 9 & 1 else bid

    # --- CLOB -------------------------------------------------------------------------------------

    def book(self, token_id: str) -> dict | None:
        """GET /book: the token's order book, or None when the token is unknown or its market closed.
        Bids ascend and asks descend, so the best level of each side is the last element."""
        found = self._token_index.get(str(token_id))
        if found is None:
            return None
        row, is_no = found
        m = self._m
        status = m["status"].item(row)
        if status == CLOSED or m["role"].item(row) == PLACEHOLDER:
            return None
        bids, asks, ticks = self._current()
        bid, ask, tick = bids.item(row), asks.item(row), ticks.item(row)
        depths = range(m["levels"].item(row) - 1, -1, -1)  # deepest first: the best level is last
        yes_bids = [(bid - k * tick, k) for k in depths if bid - k * tick >= 1]
        yes_asks = [(ask + k * tick, k) for k in depths if ask + k * tick <= 999]
        last = self._last_trade(row, bid, ask, status, m["outcome"].item(row))
        if is_no:  # the NO book mirrors YES: NO bid = 1 - YES ask, NO ask = 1 - YES bid
            bid_levels = [(1000 - price, k) for price, k in yes_asks]
            ask_levels = [(1000 - price, k) for price, k in yes_bids]
            bid_side, ask_side, last = 1, 0, 1000 - last
        else:
            bid_levels, ask_levels, bid_side, ask_side = yes_bids, yes_asks, 0, 1
        # Deeper away from the touch, with a deterministic 0.6x-1.4x jitter per market, level,
        # side (shared by a YES level and its NO mirror) and step.
        depth = m["depth"].item(row)
        min_size = float(m["min_size"].item(row))  # resting orders are at least the minimum size
        seed = row * 7919 + self._steps * 104_729

        def levels(prices: list[tuple[int, int]], side: int) -> list[dict]:
            out = []
            for price, k in prices:
                jitter = 0.6 + 0.8 * ((seed + k * 31_337 + side * 613) % 997) / 997
                out.append({"price": PRICE_TEXT[price], "size": f"{max(min_size, depth * (1 + 0.4 * k) * jitter):.2f}"})
            return out

        now_ms = self._start_ts * 1000 + self._elapsed_ms
        return {
            "market": self._market_texts[row].condition_id,
            "asset_id": str(token_id),
            "timestamp": str(now_ms),
            "hash": hashlib.sha1(f"{token_id}:{now_ms}:{bid}:{ask}:{tick}".encode()).hexdigest(),
            "bids": levels(bid_levels, bid_side),
            "asks": levels(ask_levels, ask_side),
            "min_order_size": str(m["min_size"].item(row)),
            "tick_size": PRICE_TEXT[tick],
            "neg_risk": m["neg"].item(row),
            "last_trade_price": PRICE_TEXT[last],
        }

    def clob_market_info(self, condition_id: str) -> dict | None:
        """GET /clob-markets/{condition_id}: the market's rules and fee details in the CLOB's short
        names (mos: minimum order size, mts: minimum tick, fd: {r: rate, e: exponent, to: taker
        only}), a fee-free market rate 0; stated even where Gamma sends no schedule."""
        row = self._market_by_condition.get(str(condition_id).lower())
        if row is None:
            return None
        _, _, ticks = self._current()
        info = {"condition_id": self._market_texts[row].condition_id, "mos": int(self._m["min_size"][row]),
                "mts": int(ticks[row]) / 1000}
        fee = int(self._m["fee"][row])
        if fee == FEE_FREE:
            info["fd"] = {"r": 0, "e": 1, "to": True}
        else:
            schedule = FEE_SCHEDULES[fee][1]
            info["fd"] = {"r": schedule["rate"], "e": schedule["exponent"], "to": schedule["takerOnly"]}
        return info

    def midpoint(self, token_id: str) -> float | None:
        """GET /midpoint: (best bid + best ask) / 2 of the token's book, or None without a book."""
        found = self._token_index.get(str(token_id))
        if found is None:
            return None
        row, is_no = found
        if int(self._m["status"][row]) == CLOSED or int(self._m["role"][row]) == PLACEHOLDER:
            return None
        bids, asks, _ = self._current()
        mid2 = int(bids[row]) + int(asks[row])
        return (2000 - mid2) / 2000 if is_no else mid2 / 2000

    def price_history(
        self,
        token_id: str,
        start_ts: int | None = None,
        end_ts: int | None = None,
        interval: str | None = None,
        fidelity: int | None = None,
    ) -> list[dict]:
        """GET /prices-history: [{t, p}] oldest first, see `price_histories`."""
        return self.price_histories([token_id], start_ts, end_ts, interval, fidelity)[str(token_id)]

    def price_histories(
        self,
        token_ids: Iterable[str],
        start_ts: int | None = None,
        end_ts: int | None = None,
        interval: str | None = None,
        fidelity: int | None = None,
    ) -> dict[str, list[dict]]:
        """GET /prices-history, or POST /batch-prices-history for several tokens: each token's
        [{t, p}] in the window, oldest first (an unknown token has none).

        The points are the hourly mids the live clock recorded, the very mids /midpoint served at
        those hours, plus the current mid at `now` while the market trades. A closed market's
        points end at its close, with its final price at `closedTime`; a placeholder has none
        while it does not trade. `fidelity` (minutes per point) above an hour keeps, for each
        multiple of it, the last hourly point at or before it (the point a grid at that fidelity
        reads); a finer fidelity gets the hourly points."""
        if interval is not None and (start_ts is not None or end_ts is not None):
            raise QueryError(400, "interval and startTs/endTs are mutually exclusive")
        if interval is not None and interval not in HISTORY_INTERVALS:
            raise QueryError(400, f"invalid interval {interval!r}: use one of {', '.join(HISTORY_INTERVALS)}")
        if fidelity is not None and fidelity < 1:
            raise QueryError(400, "fidelity must be a positive number of minutes")
        now = self._now_ts
        if interval is not None:
            span = HISTORY_INTERVALS[interval]
            low, high = (now - span if span else None), now
        else:
            low, high = start_ts, (now if end_ts is None else min(end_ts, now))
        tokens = [str(t) for t in token_ids]
        found = [(t, self._token_index[t]) for t in tokens if t in self._token_index]
        histories: dict[str, list[dict]] = {t: [] for t in tokens}
        if not found or (low is not None and low > high):
            return histories
        rows = np.array([row for _, (row, _) in found], dtype=np.int64)
        times, cells = self._recorded(rows, low, high)
        m = self._m
        bids = asks = None
        for column, (token, (row, is_no)) in enumerate(found):
            status, placeholder = m["status"].item(row), m["role"].item(row) == PLACEHOLDER
            closed_at = m["closed_at"].item(row) if status == CLOSED else None
            keep = cells[:, column] != NO_HISTORY
            if closed_at is not None:
                keep &= times <= closed_at
            if placeholder:
                keep[:] = False
            point_t, point_v = times[keep], cells[keep, column].astype(np.int64)
            if fidelity is not None and fidelity > 60 and point_t.size:
                step = fidelity * 60
                grid = np.arange(-(-point_t[0] // step) * step, point_t[-1] + 1, step)
                chosen = np.unique(np.searchsorted(point_t, grid, side="right") - 1)
                point_t, point_v = point_t[chosen], point_v[chosen]
            points = list(zip(point_t.tolist(), point_v.tolist()))
            # The last observation: the final price at the close, or the current mid while trading.
            if closed_at is not None:
                last = (closed_at, int(FINAL_MID2[m["outcome"].item(row)]))
            elif placeholder or now < m["created"].item(row):
                last = None
            else:
                if bids is None:
                    bids, asks, _ = self._current()
                last = (now, bids.item(row) + asks.item(row))
            if last is not None and (low is None or low <= last[0] <= high) and (not points or points[-1][0] < last[0]):
                points.append(last)
            histories[token] = [{"t": t, "p": (2000 - v) / 2000 if is_no else v / 2000} for t, v in points]
        return histories

    def _recorded(self, rows: np.ndarray, low: int | None, high: int) -> tuple[np.ndarray, np.ndarray]:
        """The hourly record in [low, high]: its times and, per time, the mids (in 1/2000ths) of
        `rows`, NO_HISTORY where a market did not exist yet."""
        first = 0 if low is None else bisect.bisect_left(self._hist_t, low)
        last = bisect.bisect_right(self._hist_t, high)
        times = np.array(self._hist_t[first:last], dtype=np.int64)
        cells = np.full((last - first, rows.size), NO_HISTORY, dtype=np.uint16)
        for k in range(first, last):
            values = self._hist_mid2[k]
            inside = rows < values.size
            cells[k - first, inside] = values[rows[inside]]
        return times, cells


def _as_placeholder(market: dict) -> None:
    """An unnamed outcome of an augmented negRisk event, as Gamma lists it: no label, no prices,
    not trading, an empty book."""
    for key in ("groupItemTitle", "outcomePrices", "bestBid", "lastTradePrice", "spread", "volume24hr", "volume24hrClob"):
        market.pop(key, None)
    market.update({"active": False, "acceptingOrders": False, "bestAsk": 1, "liquidity": "0", "liquidityNum": 0,
                   "liquidityClob": 0, "volume": "0", "volumeNum": 0, "volumeClob": 0, "competitive": 0})


def _page(limit, offset) -> tuple[int, int]:
    limit, offset = int(limit), int(offset)
    if limit < 0:
        raise QueryError(422, "limit must not be negative")
    if offset < 0:
        raise QueryError(422, "offset must not be negative")
    if offset > MAX_OFFSET:
        raise QueryError(422, f"offset must not exceed {MAX_OFFSET}")
    return min(limit, MAX_LIMIT), offset


def _numeric_id(value) -> str:
    """Ids are numeric strings; anything else matches nothing."""
    text = str(value).strip()
    return str(int(text)) if text.isdigit() else "-"


def _timestamp(value: str | datetime, name: str) -> int:
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        except ValueError:
            raise QueryError(422, f"{name} must be an ISO date or date-time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp())
