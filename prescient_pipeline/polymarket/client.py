"""HTTP client for Polymarket's Gamma API (events, markets) and CLOB API (books, midpoints,
price history).

Retries are urllib3's `Retry`, mounted on a requests Session: 429/5xx answers, connection errors
and read timeouts are retried with exponential backoff plus jitter, honouring Retry-After; any
other 4xx fails at once. Every request first takes a slot from its API's rate limiter. Gamma
payloads are returned raw (nested markets untouched); decoding them is the parser's job. CLOB
answers are decoded here and checked value by value (see `validation`): a book with one bad level
is dropped whole, so its market keeps its last real mark; what was dropped is counted in
`rejected` and logged.

Observation time is the server's Date header while it is within MAX_CLOCK_SKEW of the local clock
(or the answer comes from the simulator, whose clock is simulated); otherwise the local clock wins,
and the skew is logged and counted in `skewed_responses`.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Any, Callable, Iterator, Sequence
from urllib.parse import urlencode

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError
from urllib3.util import Retry

from . import validation
from .parser import book_rules
from .validation import InvalidValue

log = logging.getLogger(__name__)

RETRY_STATUSES = (429, 500, 502, 503, 504)

# Half of Polymarket's published per-endpoint limits (Gamma /markets 300 per 10 s, CLOB /books
# and /midpoints 500 per 10 s), so a refresh never leans on Cloudflare's throttling.
DEFAULT_REQUESTS_PER_10S = {"gamma": 150, "clob": 250}

ACTIVE_EVENTS_QUERY = {
    "active": "true",
    "closed": "false",
    "archived": "false",
    "order": "id",
    "ascending": "true",
}

# End-date slicing bisects [SLICE_START, SLICE_END], plus one open-ended window on each side.
SLICE_START = datetime(2000, 1, 1, tzinfo=timezone.utc)
SLICE_END = datetime(2100, 1, 1, tzinfo=timezone.utc)
# Whether Gamma's end_date_min/max are inclusive is undocumented: each window is asked one second
# wider on both sides, so an event sitting exactly on a shared bound is in at least one of them.
BOUND_PADDING = timedelta(seconds=1)

SNIPPET_CHARS = 200

# How far a server's Date may be from the local clock and still date an observation. One dated
# ahead would make every later, correct observation look older, and so be ignored.
MAX_CLOCK_SKEW = timedelta(minutes=5)
# Sent by the offline simulator (never by Polymarket): its Date is a simulated clock, used as is.
SIMULATOR_HEADER = "X-Prescient-Simulator"

# Markets listed for a history window. Gamma has no closed-time filter, so closed markets are
# asked by end date: a market that closed in the window ends after its start, or ended shortly
# before it and closed late (UMA disputes take days; some markets stay open weeks past their end).
HISTORY_CLOSED_GRACE = timedelta(days=31)
# POST /batch-prices-history takes at most 20 token ids (docs.polymarket.com, get-batch-prices-history).
PRICE_HISTORY_BATCH = 20


class PolymarketError(RuntimeError):
    """A Polymarket request that failed; str() is one line: what, where, status, body snippet."""

    def __init__(self, message: str, *, status: int | None = None, url: str | None = None):
        super().__init__(" ".join(message.split()))
        self.status = status
        self.url = url


@dataclass
class EventsFetch:
    """Every active event, deduplicated by id.

    `duplicates` counts ids repeated within one listing (rows shifting between page reads); the
    overlap between the unsliced listing and the end-date windows is by design and not counted.
    """

    events: list[dict]
    pages: int
    duplicates: int
    observed_at: datetime


# Book levels kept per side: enough for any paper order, small enough to store every observation.
BOOK_DEPTH = 20


@dataclass
class MarketsFetch:
    """Gamma markets (each with its parent event as `events[0]`), deduplicated by id and by
    condition id; `duplicates` counts the repeats dropped."""

    markets: list[dict]
    pages: int
    duplicates: int
    observed_at: datetime


@dataclass
class Book:
    """One token's order book: the top of each side (None when that side is empty), the top
    BOOK_DEPTH levels of each side as (price, size), best first, and the market's rules."""

    best_bid: float | None
    best_ask: float | None
    bid_size: float | None
    ask_size: float | None
    bids: list[tuple[float, float]] = field(default_factory=list)  # highest price first
    asks: list[tuple[float, float]] = field(default_factory=list)  # lowest price first
    tick_size: float | None = None
    min_order_size: float | None = None
    last_trade_price: float | None = None


class RateLimiter:
    """At most `limit` acquisitions in any sliding window of `window` seconds; thread-safe."""

    def __init__(self, limit: int, window: float = 10.0):
        if limit < 1 or window <= 0:
            raise ValueError("a rate limit needs limit >= 1 and a positive window")
        self.limit = limit
        self.window = window
        self._stamps: deque[float] = deque()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        while True:
            with self._lock:
                now = time.monotonic()
                while self._stamps and now - self._stamps[0] >= self.window:
                    self._stamps.popleft()
                if len(self._stamps) < self.limit:
                    self._stamps.append(now)
                    return
                wait = self.window - (now - self._stamps[0])
            time.sleep(wait)


class _BoundedRetry(Retry):
    """Retry whose Retry-After wait is capped at backoff_max, so one throttled answer cannot stall
    a scheduled run for minutes (newer urllib3 has `retry_after_max`; this works on every 2.x)."""

    def get_retry_after(self, response):
        seconds = super().get_retry_after(response)
        return None if seconds is None else min(seconds, self.backoff_max)


class PolymarketClient:
    def __init__(
        self,
        gamma_url: str,
        clob_url: str,
        *,
        timeout: tuple[float, float] = (5, 30),
        retries: int = 5,
        backoff_factor: float = 0.5,
        backoff_max: float = 30,
        requests_per_10s: dict[str, int] | None = None,
        offset_cap: int = 10_000,
        page_size: int = 100,
    ):
        if offset_cap < 1 or page_size < 1:
            # A listing only counts as paged out on an empty page at an offset <= offset_cap.
            raise ValueError("offset_cap and page_size must be at least 1")
        self.gamma_url = gamma_url.rstrip("/")
        self.clob_url = clob_url.rstrip("/")
        self.base_urls = {"gamma": self.gamma_url, "clob": self.clob_url}
        self.timeout = timeout
        self.retries = retries
        self.offset_cap = offset_cap
        self.page_size = page_size
        self.observed_at: datetime | None = None
        # What this client kept out of CLOB answers, by reason (book_invalid_price, ...).
        self.rejected: Counter = Counter()
        # Answers whose Date was further than MAX_CLOCK_SKEW from the local clock, and the last skew.
        self.skewed_responses = 0
        self.clock_skew: timedelta | None = None
        budgets = {**DEFAULT_REQUESTS_PER_10S, **(requests_per_10s or {})}
        # One budget per API: each is its own host in production (a local simulator may serve both).
        self._limiters = {api: RateLimiter(budgets[api], 10.0) for api in self.base_urls}
        retry = _BoundedRetry(
            total=retries,
            status_forcelist=RETRY_STATUSES,
            backoff_factor=backoff_factor,
            backoff_jitter=backoff_factor,
            backoff_max=backoff_max,
            respect_retry_after_header=True,
            # The CLOB batch endpoints are POSTs but only read, so they are safe to repeat.
            allowed_methods=frozenset({"GET", "POST"}),
            raise_on_status=False,
        )
        # Whether the CLOB has POST /batch-prices-history; learnt from the first answer.
        self._batch_price_history = True
        adapter = HTTPAdapter(max_retries=retry)
        self._session = requests.Session()
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._session.headers["Accept"] = "application/json"

    @classmethod
    def from_settings(
        cls, gamma_url: str | None = None, clob_url: str | None = None, **options: Any
    ) -> "PolymarketClient":
        """URLs and retry policy from the environment; arguments given here win."""
        from prescient_pipeline.config import settings

        current = settings()
        options.setdefault("retries", current.http_retries)
        options.setdefault("backoff_factor", current.http_backoff)
        return cls(gamma_url or current.gamma_url, clob_url or current.clob_url, **options)

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> "PolymarketClient":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # --- Gamma -------------------------------------------------------------------------------

    def fetch_active_events(
        self, on_page: Callable[[int, int], None] | None = None
    ) -> EventsFetch:
        found = _EventsFound(on_page)
        complete, end_dates = self._page_events(found, None, None)
        if not complete:
            log.info(
                "active events go past offset %d; slicing by end date (%d events so far)",
                self.offset_cap,
                len(found.by_id),
            )
            self._page_events_by_end_date(found, end_dates)
        return EventsFetch(
            events=list(found.by_id.values()),
            pages=found.pages,
            duplicates=found.duplicates,
            observed_at=self.observed_at or datetime.now(timezone.utc),
        )

    def _page_events(
        self, found: "_EventsFound", start: datetime | None, end: datetime | None
    ) -> tuple[bool, list[datetime]]:
        """Page one /events listing to an empty page: (paged out, end dates seen)."""
        seen: set[str] = set()

        def take(event: dict) -> None:
            event_id = str(event.get("id"))
            if event_id in seen:
                found.duplicates += 1
                return
            seen.add(event_id)
            found.by_id.setdefault(event_id, event)

        return self._page_listing("/events", "event", ACTIVE_EVENTS_QUERY, start, end, found, take)

    def _page_events_by_end_date(self, found: "_EventsFound", end_dates: list[datetime]) -> None:
        """Re-list the active events in end-date windows small enough to page out below the cap,
        halving any window that still overflows.

        Limitation: an event with no endDate matches no window, so of those only the ones the
        unsliced listing reached (the first `offset_cap + page_size` by id) are returned.
        """
        windows: list[tuple[datetime | None, datetime | None]] = [
            (None, SLICE_START),
            (SLICE_END, None),
            *_split_window(SLICE_START, SLICE_END, end_dates),
        ]
        while windows:
            start, end = windows.pop()
            complete, seen_dates = self._page_events(found, start, end)
            if complete:
                continue
            if start is None or end is None or end - start <= timedelta(seconds=1):
                log.warning(
                    "more than %d active events end between %s and %s; some may be missing",
                    self.offset_cap,
                    _iso(start) if start else "the beginning",
                    _iso(end) if end else "the end",
                )
                continue
            windows += _split_window(start, end, seen_dates)

    def fetch_markets(self, ids: Sequence[str], batch_size: int = 100) -> list[dict]:
        """Markets by Gamma id, open or closed, deduplicated; unknown ids are simply absent.

        Gamma's /markets is documented (polyoxide-gamma) to treat a missing `closed` as
        closed=false, silently dropping closed markets from an id lookup, though older dumps
        suggest it once returned both. So each batch is asked with `closed` unset, then the ids
        it did not return are asked again with closed=true: exact under either behaviour, and one
        request per batch while every market is open.
        """
        by_id: dict[str, dict] = {}
        for batch in _chunks(list(dict.fromkeys(str(i) for i in ids)), batch_size):
            self._collect_markets(by_id, batch, closed=None)
            missing = [market_id for market_id in batch if market_id not in by_id]
            if missing:
                self._collect_markets(by_id, missing, closed="true")
        return list(by_id.values())

    def _collect_markets(self, by_id: dict[str, dict], ids: list[str], closed: str | None) -> None:
        query: list[tuple[str, Any]] = [("id", market_id) for market_id in ids]
        query.append(("limit", len(ids)))
        if closed is not None:
            query.append(("closed", closed))
        for market in self._get_list("gamma", "/markets", query):
            if isinstance(market, dict):
                by_id.setdefault(str(market.get("id")), market)

    def fetch_markets_open_between(
        self,
        start: datetime,
        end: datetime,
        *,
        min_volume: float | None = None,
        closed_grace: timedelta = HISTORY_CLOSED_GRACE,
        on_page: Callable[[int, int], None] | None = None,
    ) -> MarketsFetch:
        """Every market that may have been open at some time in [start, end), closed or not.

        Two listings of GET /markets: closed=true with end_date_min = start - closed_grace, and
        the open ones (active, not closed, not archived); both with start_date_max = end and,
        given `min_volume`, volume_num_min. Gamma ignores filters it does not know, so the bounds
        only narrow the listing: the caller decides from each market's startDate and closedTime
        whether it was open. Each listing pages to an empty page and is sliced by end date when
        it runs past the offset cap.
        """
        found = _ListingFound(on_page)
        common: dict[str, Any] = {"order": "id", "ascending": "true", "start_date_max": _iso(end)}
        if min_volume is not None:
            common["volume_num_min"] = f"{min_volume:f}".rstrip("0").rstrip(".")  # never 1e+06
        self._page_markets_sliced(found, {**common, "closed": "true"}, start - closed_grace)
        self._page_markets_sliced(found, {**common, "active": "true", "closed": "false", "archived": "false"}, None)
        return MarketsFetch(
            markets=list(found.by_id.values()),
            pages=found.pages,
            duplicates=found.duplicates,
            observed_at=self.observed_at or datetime.now(timezone.utc),
        )

    def _page_markets_sliced(self, found: "_ListingFound", query: dict, lowest_end: datetime | None) -> None:
        """One /markets listing, re-listed in end-date windows (halved while they overflow) when
        it runs past the offset cap. Markets without an end date are only in the unsliced pages."""
        complete, end_dates = self._page_markets(found, query, lowest_end, None)
        if complete:
            return
        low = lowest_end or SLICE_START
        windows: list[tuple[datetime | None, datetime | None]] = [
            (SLICE_END, None), *_split_window(low, SLICE_END, end_dates)]
        if lowest_end is None:
            windows.append((None, SLICE_START))
        while windows:
            window_start, window_end = windows.pop()
            complete, seen_dates = self._page_markets(found, query, window_start, window_end)
            if complete:
                continue
            if window_start is None or window_end is None or window_end - window_start <= timedelta(seconds=1):
                log.warning("more than %d markets end between %s and %s; some may be missing", self.offset_cap,
                            _iso(window_start) if window_start else "the beginning",
                            _iso(window_end) if window_end else "the end")
                continue
            windows += _split_window(window_start, window_end, seen_dates)

    def _page_markets(
        self, found: "_ListingFound", query: dict, start: datetime | None, end: datetime | None
    ) -> tuple[bool, list[datetime]]:
        """Page one /markets listing to an empty page: (paged out, end dates seen)."""
        return self._page_listing("/markets", "market", query, start, end, found, found.add)

    def _page_listing(self, path: str, what: str, query: dict, start: datetime | None, end: datetime | None,
                      found: "_EventsFound | _ListingFound", take: Callable[[dict], None]) -> tuple[bool, list[datetime]]:
        """Page one Gamma listing, bounded to end dates in [start, end] when given, until an empty
        page, handing each object to `take`. Returns (paged out, end dates listed); not paged out
        means the next offset would pass the cap while pages were still coming."""
        query = {**query, "limit": self.page_size}
        if start is not None:
            query["end_date_min"] = _iso(start - BOUND_PADDING)
        if end is not None:
            query["end_date_max"] = _iso(end + BOUND_PADDING)
        end_dates: list[datetime] = []
        offset = 0
        while True:
            page = self._get_list("gamma", path, {**query, "offset": offset})
            found.pages += 1
            for item in page:
                if not isinstance(item, dict):
                    raise _shape_error("gamma", "GET", path, f"{what} objects", item)
                take(item)
                # Every object's end date, a duplicate's too: they place this listing's cuts.
                end_date = _parse_time(item.get("endDate"))
                if end_date is not None:
                    end_dates.append(end_date)
            if found.on_page is not None:
                found.on_page(found.pages, len(found.by_id))
            # A short page is not the end (stop only on an empty one), and stepping by what came
            # back rather than by `limit` cannot skip rows when the server caps `limit` lower.
            if not page:
                return True, end_dates
            offset += len(page)
            if offset > self.offset_cap:
                return False, end_dates

    # --- CLOB --------------------------------------------------------------------------------

    def _post_token_batches(self, path: str, token_ids: Sequence[str], chunk_size: int, shape: type,
                            described: str) -> Iterator:
        """One CLOB batch POST per chunk of distinct token ids, each answer checked for its shape."""
        for chunk in _chunks(list(dict.fromkeys(str(t) for t in token_ids)), chunk_size):
            payload = self._request("clob", "POST", path, body=[{"token_id": t} for t in chunk])
            if not isinstance(payload, shape):
                raise _shape_error("clob", "POST", path, described, payload)
            yield payload

    def fetch_books(self, token_ids: Sequence[str], chunk_size: int = 500) -> dict[str, Book]:
        """Top of book per token. A token whose book holds any bad level is left out (counted in
        `rejected` as book_<reason>), exactly as if it had no book."""
        books: dict[str, Book] = {}
        unusable: dict[str, InvalidValue] = {}
        for payload in self._post_token_batches("/books", token_ids, chunk_size, list, "a JSON array of books"):
            for raw in payload:
                if not isinstance(raw, dict) or raw.get("asset_id") is None:
                    self.rejected["book_not_a_book"] += 1
                    continue
                token = str(raw["asset_id"])
                try:
                    books[token] = _top_of_book(raw)
                except InvalidValue as exc:
                    unusable[token] = exc
        for token in unusable:
            books.pop(token, None)  # a token answered twice, once with a bad level, is unusable too
        self._count_unusable("book", unusable)
        return books

    def fetch_market_info(self, condition_id: str) -> dict | None:
        """CLOB market info (`GET /clob-markets/{condition_id}`): minimum order size `mos`, tick
        `mts` and fee details `fd` {r, e, to}; None for a market the CLOB does not know."""
        try:
            payload = self._request("clob", "GET", f"/clob-markets/{condition_id}")
        except PolymarketError as exc:
            if exc.status == 404:
                return None
            raise
        if not isinstance(payload, dict):
            raise _shape_error("clob", "GET", "/clob-markets/{condition_id}", "a JSON object", payload)
        return payload

    def fetch_midpoints(self, token_ids: Sequence[str], chunk_size: int = 500) -> dict[str, float]:
        """Midpoint per token; one that is not a price in [0, 1] is left out and counted."""
        mids: dict[str, float] = {}
        unusable: dict[str, InvalidValue] = {}
        for payload in self._post_token_batches("/midpoints", token_ids, chunk_size, dict, "a JSON object"):
            for token_id, mid in payload.items():
                try:
                    value = validation.price(mid, "mid")
                except InvalidValue as exc:
                    unusable[str(token_id)] = exc
                    continue
                if value is not None:
                    mids[str(token_id)] = value
        self._count_unusable("midpoint", unusable)
        return mids

    def _count_unusable(self, what: str, unusable: dict[str, InvalidValue]) -> None:
        if not unusable:
            return
        reasons = Counter(exc.reason for exc in unusable.values())
        for reason, count in reasons.items():
            self.rejected[f"{what}_{reason}"] += count
        key, first = next(iter(unusable.items()))
        shown = what.replace("_", " ")
        log.warning("left out %d CLOB %ss with bad values (%s); e.g. the %s of %s: %s", len(unusable), shown,
                    ", ".join(f"{r} {n}" for r, n in sorted(reasons.items())), shown, key, first)

    def fetch_price_history(
        self,
        token_id: str,
        *,
        start_ts: int | None = None,
        end_ts: int | None = None,
        interval: str | None = None,
        fidelity: int | None = None,
    ) -> list[tuple[int, float]]:
        """(unix seconds, price) points, oldest first. Give `interval` or start_ts/end_ts."""
        if interval is not None and (start_ts is not None or end_ts is not None):
            raise ValueError("give either interval or start_ts/end_ts, not both")
        query: dict[str, Any] = {"market": token_id}
        for name, value in [
            ("startTs", start_ts),
            ("endTs", end_ts),
            ("interval", interval),
            ("fidelity", fidelity),
        ]:
            if value is not None:
                query[name] = value
        payload = self._request("clob", "GET", "/prices-history", params=query)
        history = payload.get("history") if isinstance(payload, dict) else None
        if not isinstance(history, list):
            expected = 'an object with a "history" array'
            raise _shape_error("clob", "GET", "/prices-history", expected, payload)
        return self._history_points(token_id, history)

    def _history_points(self, token_id: str, history: list) -> list[tuple[int, float]]:
        """The readable points of one token's history, oldest first; bad ones counted, left out."""
        points = []
        unusable: dict[str, InvalidValue] = {}
        for point in history:
            if not isinstance(point, dict):
                continue
            t = _to_float(point.get("t"))
            try:
                p = validation.price(point.get("p"), "p")
            except InvalidValue as exc:  # a point, not the series: the others are observations too
                unusable[f"{token_id} at t={point.get('t')}"] = exc
                continue
            if t is not None and math.isfinite(t) and p is not None:
                points.append((int(t), p))
        self._count_unusable("history_point", unusable)
        return sorted(points)

    def fetch_price_histories(
        self,
        token_ids: Sequence[str],
        *,
        start_ts: int,
        end_ts: int,
        fidelity: int,
        chunk_size: int = PRICE_HISTORY_BATCH,
    ) -> dict[str, list[tuple[int, float]]]:
        """(unix seconds, price) points per token, oldest first, in [start_ts, end_ts].

        POST /batch-prices-history, one request per chunk of tokens; a server without it (404 or
        405) gets one GET /prices-history per token from then on. A token the answer leaves out
        has no points. Points are validated as fetch_price_history's are.
        """
        tokens = list(dict.fromkeys(str(t) for t in token_ids))
        histories: dict[str, list[tuple[int, float]]] = {}
        if self._batch_price_history:
            for chunk in _chunks(tokens, chunk_size):
                body = {"markets": chunk, "start_ts": int(start_ts), "end_ts": int(end_ts), "fidelity": int(fidelity)}
                try:
                    payload = self._request("clob", "POST", "/batch-prices-history", body=body)
                except PolymarketError as exc:
                    if exc.status in (404, 405):
                        log.info("no POST /batch-prices-history here (HTTP %s); asking token by token", exc.status)
                        self._batch_price_history = False
                        break
                    raise
                history = payload.get("history") if isinstance(payload, dict) else None
                if not isinstance(history, dict):
                    expected = 'an object with a "history" object of token ids'
                    raise _shape_error("clob", "POST", "/batch-prices-history", expected, payload)
                for token in chunk:
                    points = history.get(token)
                    histories[token] = self._history_points(token, points if isinstance(points, list) else [])
        for token in tokens:
            if token not in histories:
                histories[token] = self.fetch_price_history(token, start_ts=int(start_ts), end_ts=int(end_ts),
                                                            fidelity=int(fidelity))
        return histories

    # --- reachability ------------------------------------------------------------------------

    def ping(self, timeout: float = 3.0) -> dict:
        """Whether each API answers at all (any status below 500): one try each, no retries."""
        probes = {"gamma": ("/events", {"limit": 1}), "clob": ("/", None)}
        result: dict[str, Any] = {"errors": {}}
        with requests.Session() as probe:  # a plain Session does not retry
            for api, (path, params) in probes.items():
                url = self.base_urls[api] + path
                try:
                    response = probe.get(url, params=params, timeout=timeout)
                except requests.RequestException as exc:
                    result[api] = False
                    result["errors"][api] = f"{url}: {_network_reason(exc)}"
                    continue
                result[api] = response.status_code < 500
                if response.status_code >= 500:
                    result["errors"][api] = f"{url}: HTTP {response.status_code}"
        return result

    # --- plumbing ----------------------------------------------------------------------------

    def _get_list(self, api: str, path: str, params) -> list:
        payload = self._request(api, "GET", path, params=params)
        if not isinstance(payload, list):
            raise _shape_error(api, "GET", path, "a JSON array", payload)
        return payload

    def _request(self, api: str, method: str, path: str, *, params=None, body=None) -> Any:
        url = self.base_urls[api] + path
        what = f"Polymarket {api} {method} {_shown(path, params)}"
        self._limiters[api].acquire()
        try:
            response = self._session.request(
                method, url, params=params, json=body, timeout=self.timeout
            )
        except requests.RequestException as exc:
            reason = _network_reason(exc, self.retries)
            raise PolymarketError(f"{what} failed: {reason}", url=url) from exc
        self.observed_at = self._observation_time(response)
        status = response.status_code
        text = _snippet(response.text) or "(empty body)"
        if not response.ok:
            tried = _retries_used(response)
            after = f" after {tried} retries" if tried else ""
            raise PolymarketError(
                f"{what} failed with HTTP {status}{after}: {text}", status=status, url=url
            )
        try:
            return response.json()
        except ValueError:
            kind = response.headers.get("Content-Type", "no content type")
            raise PolymarketError(
                f"{what} returned a non-JSON body (HTTP {status}, {kind}): {text}",
                status=status,
                url=url,
            ) from None

    def _observation_time(self, response: requests.Response) -> datetime:
        """The server's Date, unless it is missing or further than MAX_CLOCK_SKEW from the local
        clock (then the local clock, with a warning); the simulator's Date is always used."""
        # Whole seconds, as a Date has: the two clocks then compare without a spurious fraction.
        local = datetime.now(timezone.utc).replace(microsecond=0)
        server = _date_header(response)
        if server is None:
            return local
        if response.headers.get(SIMULATOR_HEADER) == "1":
            return server
        skew = server - local
        if abs(skew) <= MAX_CLOCK_SKEW:
            return server
        self.skewed_responses += 1
        self.clock_skew = skew
        if self.skewed_responses == 1:  # once per client: a whole refresh would repeat it per page
            log.warning(
                "%s answered with Date %s, %s the local clock (more than %s off): observations "
                "are dated by the local clock instead", response.url.split("?")[0], _iso(server),
                _signed(skew), MAX_CLOCK_SKEW,
            )
        return local


class _EventsFound:
    """What one fetch_active_events has gathered so far, across all its listings."""

    def __init__(self, on_page: Callable[[int, int], None] | None):
        self.on_page = on_page
        self.by_id: dict[str, dict] = {}
        self.pages = 0
        self.duplicates = 0


class _ListingFound:
    """What one market listing has gathered so far, deduplicated by id and by condition id."""

    def __init__(self, on_page: Callable[[int, int], None] | None):
        self.on_page = on_page
        self.by_id: dict[str, dict] = {}
        self.conditions: set[str] = set()
        self.pages = 0
        self.duplicates = 0

    def add(self, market: dict) -> None:
        """Keep a market not seen yet (by id or condition id); count a duplicate."""
        market_id = str(market.get("id"))
        condition = market.get("conditionId")
        if market_id in self.by_id or (condition and condition in self.conditions):
            self.duplicates += 1
            return
        self.by_id[market_id] = market
        if condition:
            self.conditions.add(condition)


def _split_window(
    start: datetime, end: datetime, end_dates: list[datetime]
) -> list[tuple[datetime, datetime]]:
    """[start, end] cut in two at the median end date seen inside it (whole seconds), so the
    halves hold similar numbers of events; at the midpoint when no such median is inside."""
    inside = sorted(d for d in end_dates if start < d < end)
    pivot = inside[len(inside) // 2].replace(microsecond=0) if inside else start
    if not start < pivot < end:
        pivot = (start + (end - start) / 2).replace(microsecond=0)
    return [(start, pivot), (pivot, end)]


def _top_of_book(raw: dict) -> Book:
    """Raises InvalidValue when any level of either side is bad (see `book_levels`)."""
    # Best bid is the highest bid and best ask the lowest ask, whatever order the levels come in
    # (the CLOB sends bids ascending and asks descending, best last; other sources differ).
    bids = book_levels(raw.get("bids"), "bids")
    asks = book_levels(raw.get("asks"), "asks")
    bid_price, bid_size = max(bids, key=lambda level: level[0]) if bids else (None, None)
    ask_price, ask_size = min(asks, key=lambda level: level[0]) if asks else (None, None)
    return Book(best_bid=bid_price, best_ask=ask_price, bid_size=bid_size, ask_size=ask_size,
                bids=_depth(bids, best_first_descending=True), asks=_depth(asks, best_first_descending=False),
                **book_rules(raw), last_trade_price=_to_float(raw.get("last_trade_price")))


def _depth(levels: list[tuple[float, float | None]], *, best_first_descending: bool) -> list[tuple[float, float]]:
    """The BOOK_DEPTH best levels that can be walked (a size above 0), best first."""
    sized = [(price, size) for price, size in levels if size is not None and size > 0]
    sized.sort(key=lambda level: level[0], reverse=best_first_descending)
    return sized[:BOOK_DEPTH]


def book_levels(raw_levels, side: str) -> list[tuple[float, float]]:
    """(price, size) of every level of one side, in the order sent; a missing side is empty.

    Raises InvalidValue (reason invalid_price, invalid_size or invalid_level) unless the side is
    a list of {"price", "size"} objects with a price in [0, 1] and a size >= 0: one bad level
    means the book cannot be trusted at all, whichever level it is.
    """
    if raw_levels is None:
        return []
    if not isinstance(raw_levels, list):
        raise InvalidValue("level", side, raw_levels)
    levels = []
    for level in raw_levels:
        if not isinstance(level, dict):
            raise InvalidValue("level", side, level)
        price = validation.price(level.get("price"), f"{side} price")
        size = validation.size(level.get("size"), f"{side} size")
        if price is None or size is None:
            raise InvalidValue("level", side, level)
        levels.append((price, size))
    return levels


def _to_float(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    if size < 1:
        raise ValueError("batch size must be at least 1")
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _parse_time(text) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        # Python 3.10's fromisoformat does not accept a trailing "Z".
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _signed(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    return f"{abs(seconds):.0f} s {'ahead of' if seconds > 0 else 'behind'}"


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _date_header(response: requests.Response) -> datetime | None:
    header = response.headers.get("Date")
    if not header:
        return None
    try:
        moment = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    return moment.astimezone(timezone.utc) if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _retries_used(response: requests.Response) -> int:
    retry = getattr(response.raw, "retries", None)
    return len(retry.history) if retry is not None else 0


def _network_reason(exc: requests.RequestException, retries: int = 0) -> str:
    cause = exc.args[0] if exc.args else exc
    if isinstance(cause, MaxRetryError):
        # Every retry was spent; its `reason` is the last underlying failure.
        spent = f"gave up after {retries} retries, last " if retries else ""
        return f"{spent}{type(cause.reason).__name__}: {_snippet(str(cause.reason))}"
    return f"{type(exc).__name__}: {_snippet(str(cause))}"


def _shown(path: str, params) -> str:
    """The path and query as shown in errors, kept short (id lists can be long)."""
    query = urlencode(params, doseq=True) if params else ""
    shown = f"{path}?{query}" if query else path
    return shown if len(shown) <= 160 else shown[:157] + "..."


def _snippet(text: str) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= SNIPPET_CHARS else text[: SNIPPET_CHARS - 3] + "..."


def _shape_error(api: str, method: str, path: str, expected: str, payload) -> PolymarketError:
    got = _snippet(json.dumps(payload, default=str))
    return PolymarketError(
        f"Polymarket {api} {method} {path} returned {type(payload).__name__} instead of "
        f"{expected}: {got}"
    )
