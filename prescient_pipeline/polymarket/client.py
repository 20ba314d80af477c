"""HTTP client for Polymarket's Gamma API (events, markets) and CLOB API (books, midpoints,
price history).

Retries are urllib3's `Retry`, mounted on a requests Session: 429/5xx answers, connection errors
and read timeouts are retried with exponential backoff plus jitter, honouring Retry-After; any
other 4xx fails at once. Every request first takes a slot from its API's rate limiter. Payloads
are returned raw (nested markets untouched); decoding them is the parser's job.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Any, Callable, Iterator, Sequence
from urllib.parse import urlencode

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError
from urllib3.util import Retry

from .parser import book_rules

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
        """Page one listing until an empty page. Returns (paged out, end dates seen); not paged
        out means the next offset would pass the cap while pages were still coming."""
        query: dict[str, Any] = {**ACTIVE_EVENTS_QUERY, "limit": self.page_size}
        if start is not None:
            query["end_date_min"] = _iso(start - BOUND_PADDING)
        if end is not None:
            query["end_date_max"] = _iso(end + BOUND_PADDING)
        seen: set[str] = set()
        end_dates: list[datetime] = []
        offset = 0
        while True:
            page = self._get_list("gamma", "/events", {**query, "offset": offset})
            found.pages += 1
            for event in page:
                if not isinstance(event, dict):
                    raise _shape_error("gamma", "GET", "/events", "event objects", event)
                event_id = str(event.get("id"))
                if event_id in seen:
                    found.duplicates += 1
                    continue
                seen.add(event_id)
                found.by_id.setdefault(event_id, event)
                end_date = _parse_time(event.get("endDate"))
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
        books: dict[str, Book] = {}
        for payload in self._post_token_batches("/books", token_ids, chunk_size, list, "a JSON array of books"):
            for raw in payload:
                if isinstance(raw, dict) and raw.get("asset_id") is not None:
                    books[str(raw["asset_id"])] = _top_of_book(raw)
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
        mids: dict[str, float] = {}
        for payload in self._post_token_batches("/midpoints", token_ids, chunk_size, dict, "a JSON object"):
            for token_id, mid in payload.items():
                value = _to_float(mid)
                if value is not None:
                    mids[str(token_id)] = value
        return mids

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
        points = []
        for point in history:
            if not isinstance(point, dict):
                continue
            t, p = _to_float(point.get("t")), _to_float(point.get("p"))
            if t is not None and p is not None:
                points.append((int(t), p))
        return sorted(points)

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
        self.observed_at = _date_header(response) or datetime.now(timezone.utc)
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


class _EventsFound:
    """What one fetch_active_events has gathered so far, across all its listings."""

    def __init__(self, on_page: Callable[[int, int], None] | None):
        self.on_page = on_page
        self.by_id: dict[str, dict] = {}
        self.pages = 0
        self.duplicates = 0


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
    # Best bid is the highest bid and best ask the lowest ask, whatever order the levels come in
    # (the CLOB sends bids ascending and asks descending, best last; other sources differ).
    bids = _levels(raw.get("bids"))
    asks = _levels(raw.get("asks"))
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


def _levels(raw_levels) -> list[tuple[float, float | None]]:
    levels = []
    for level in raw_levels or []:
        price = _to_float(level.get("price")) if isinstance(level, dict) else None
        if price is not None:
            levels.append((price, _to_float(level.get("size"))))
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
