"""A local HTTP server that answers like Gamma and CLOB from configured data, for tests.

It serves /events with Gamma's paging rules (limit capped, offset rejected with 422 past a cap,
order=id, end-date filters), /markets by id or as a listing (a missing `closed` means
closed=false, as upstream; end_date_min/max, start_date_max and volume_num_min filters),
POST /books, POST /midpoints, GET /prices-history and POST /batch-prices-history (every point
of each token, whatever the window asked: the caller must not use what it did not ask for). It
records every request, stamps the Date header from a settable clock (a set `now` is a simulated
clock, announced with the simulator's header; `skew` plays a real server whose clock is off),
and follows a scriptable failure plan (statuses, Retry-After, stalls,
outages), so client tests run against real sockets instead of mocks.

    with ReplayServer(events=events_from_recorded_markets(path)) as server:
        server.fail_next([429, 503])
        client = PolymarketClient(server.url, server.url)
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterable
from urllib.parse import parse_qs, urlsplit

from prescient_pipeline.polymarket.client import SIMULATOR_HEADER


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any = None

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


@dataclass
class _Reply:
    status: int
    payload: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _Scripted:
    """One planned answer: a status (None = answer normally) after an optional stall."""

    status: int | None
    retry_after: float | None = None
    body: Any = None
    delay: float = 0.0
    path: str | None = None


class ReplayServer:
    def __init__(
        self,
        events: Iterable[dict] = (),
        markets: Iterable[dict] = (),
        books: dict[str, dict] | None = None,
        midpoints: dict[str, float | str] | None = None,
        price_history: dict[str, list[dict]] | None = None,
        *,
        offset_cap: int = 10_000,
        limit_cap: int = 100,
        now: datetime | None = None,
        skew: timedelta = timedelta(0),
        markets_hide_closed_by_default: bool = True,
        exclusive_end_date_bounds: bool = False,
        batch_price_history: bool = True,
    ):
        self.events = list(events)
        self.markets = list(markets)
        self.books = dict(books or {})
        self.midpoints = dict(midpoints or {})
        self.price_history = dict(price_history or {})
        self.offset_cap = offset_cap
        self.limit_cap = limit_cap
        self.now = now  # the Date header's time, a simulated clock; None = the real clock + skew
        self.skew = skew
        self.markets_hide_closed_by_default = markets_hide_closed_by_default
        # Gamma does not document whether end_date_min/max include the bound; both can be played.
        self.exclusive_end_date_bounds = exclusive_end_date_bounds
        self.batch_price_history = batch_price_history  # False: POST /batch-prices-history is a 404
        self.requests: list[RecordedRequest] = []
        self._plan: deque[_Scripted] = deque()
        self._outage: int | None = None
        self._duplicates: list[tuple[str, int]] = []
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the replay server is not running")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "ReplayServer":
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.replay = self  # type: ignore[attr-defined]
        # A short poll interval keeps stop() (which waits for the next poll) quick.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.05,), name="replay-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join()
            self._httpd = None

    def __enter__(self) -> "ReplayServer":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # --- failure plan -------------------------------------------------------------------------

    def fail_next(
        self,
        statuses: Iterable[int],
        *,
        retry_after: float | None = None,
        body: Any = None,
        path: str | None = None,
    ) -> None:
        """Answer the next requests (to `path`, or any) with these statuses, in order. `body` may be
        a str (sent as text/html) or JSON-able; a 200 with a text body makes a non-JSON answer."""
        with self._lock:
            for status in statuses:
                self._plan.append(_Scripted(status, retry_after, body, path=path))

    def stall_next(self, count: int = 1, *, seconds: float, path: str | None = None) -> None:
        """Hold the next `count` requests for `seconds`, then answer normally (read timeouts)."""
        with self._lock:
            for _ in range(count):
                self._plan.append(_Scripted(None, delay=seconds, path=path))

    def fail_always(self, status: int = 500) -> None:
        """An outage: every request gets `status` until recover()."""
        self._outage = status

    def recover(self) -> None:
        with self._lock:
            self._outage = None
            self._plan.clear()

    def insert_duplicate(self, event_id: str, position: int) -> None:
        """Serve event `event_id` a second time at `position` of every /events listing holding
        it, like a listing that shifted between two page reads (position 100 after an event at
        99: it ends page one and starts page two)."""
        self._duplicates.append((str(event_id), position))

    # --- what was asked -----------------------------------------------------------------------

    def requests_to(self, path: str, method: str | None = None) -> list[RecordedRequest]:
        with self._lock:
            return [
                r for r in self.requests if r.path == path and method in (None, r.method)
            ]

    def clear_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    def current_time(self) -> datetime:
        return self.now or datetime.now(timezone.utc) + self.skew

    # --- answers ------------------------------------------------------------------------------

    def _answer(self, request: RecordedRequest) -> tuple[_Reply, float]:
        with self._lock:
            self.requests.append(request)
            if self._outage is not None:
                return _Reply(self._outage, {"error": "service unavailable (scripted outage)"}), 0.0
            scripted = next((s for s in self._plan if s.path in (None, request.path)), None)
            if scripted is not None:
                self._plan.remove(scripted)
        if scripted is not None and scripted.status is not None:
            headers = {}
            if scripted.retry_after is not None:
                headers["Retry-After"] = f"{scripted.retry_after:g}"
            body = scripted.body
            if body is None:
                body = {"error": f"scripted HTTP {scripted.status}"}
            return _Reply(scripted.status, body, headers), 0.0
        delay = scripted.delay if scripted is not None else 0.0
        return self._route(request), delay

    def _route(self, request: RecordedRequest) -> _Reply:
        routes = {
            ("GET", "/events"): self._events,
            ("GET", "/markets"): self._markets,
            ("POST", "/books"): self._books,
            ("POST", "/midpoints"): self._midpoints,
            ("GET", "/prices-history"): self._prices_history,
            ("POST", "/batch-prices-history"): self._batch_prices_history,
            ("GET", "/"): lambda _: _Reply(200, "OK"),
        }
        handler = routes.get((request.method, request.path))
        if handler is None or (request.path == "/batch-prices-history" and not self.batch_price_history):
            return _Reply(404, {"error": f"no route for {request.method} {request.path}"})
        try:
            return handler(request)
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            return _Reply(422, {"error": f"invalid request: {exc}"})

    def _events(self, request: RecordedRequest) -> _Reply:
        exclusive = self.exclusive_end_date_bounds
        listing = [e for e in self.events if _event_matches(e, request, exclusive)]
        order = request.param("order")
        if order is not None:
            if order != "id":
                return _Reply(422, {"error": f"order field {order!r} is not supported"})
            listing.sort(key=lambda e: int(e["id"]), reverse=request.param("ascending") == "false")
        for event_id, position in self._duplicates:
            twin = next((e for e in listing if str(e.get("id")) == event_id), None)
            if twin is not None:
                listing.insert(min(position, len(listing)), twin)
        return self._page(request, listing, self.limit_cap)

    def _markets(self, request: RecordedRequest) -> _Reply:
        ids = set(request.query.get("id", []))
        closed = request.param("closed")
        if closed is None and self.markets_hide_closed_by_default:
            closed = "false"  # upstream's implicit default, also when asking by id
        listing = [
            m
            for m in self.markets
            if (not ids or str(m.get("id")) in ids)
            and (closed is None or bool(m.get("closed")) == (closed == "true"))
            and _flags_match(m, request, ("active", "archived"))
            and _end_date_matches(m, request, self.exclusive_end_date_bounds)
            and _start_and_volume_match(m, request)
        ]
        if request.param("order") == "id":
            listing.sort(key=lambda m: int(m["id"]), reverse=request.param("ascending") == "false")
        return self._page(request, listing, self.limit_cap if not ids else None)

    def _page(self, request: RecordedRequest, listing: list, limit_cap: int | None) -> _Reply:
        offset = int(request.param("offset") or 0)
        if offset > self.offset_cap:
            error = f"offset must be <= {self.offset_cap}"
            return _Reply(422, {"type": "validation error", "error": error})
        limit = request.param("limit")
        size = int(limit) if limit is not None else (limit_cap or len(listing))
        if limit_cap is not None:
            size = min(size, limit_cap)
        return _Reply(200, listing[offset : offset + size])

    def _books(self, request: RecordedRequest) -> _Reply:
        tokens = [str(item["token_id"]) for item in request.body]
        return _Reply(200, [{**self.books[t], "asset_id": t} for t in tokens if t in self.books])

    def _midpoints(self, request: RecordedRequest) -> _Reply:
        tokens = [str(item["token_id"]) for item in request.body]
        return _Reply(200, {t: str(self.midpoints[t]) for t in tokens if t in self.midpoints})

    def _prices_history(self, request: RecordedRequest) -> _Reply:
        token = request.param("market")
        if not token:
            return _Reply(400, {"error": "market is required"})
        return _Reply(200, {"history": self.price_history.get(token, [])})

    def _batch_prices_history(self, request: RecordedRequest) -> _Reply:
        tokens = [str(t) for t in request.body["markets"]]
        if not tokens or len(tokens) > 20:
            return _Reply(400, {"error": "markets must hold 1 to 20 token ids"})
        return _Reply(200, {"history": {t: self.price_history.get(t, []) for t in tokens}})


def _event_matches(event: dict, request: RecordedRequest, exclusive: bool) -> bool:
    ids = request.query.get("id")
    if ids and str(event.get("id")) not in ids:
        return False
    if not _flags_match(event, request, ("active", "closed", "archived")):
        return False
    return _end_date_matches(event, request, exclusive)


def _start_and_volume_match(market: dict, request: RecordedRequest) -> bool:
    latest_start, min_volume = request.param("start_date_max"), request.param("volume_num_min")
    if latest_start is not None:
        start = _parse_time(market.get("startDate"))
        if start is None or start > _parse_time(latest_start):
            return False
    if min_volume is not None and not float(market.get("volumeNum") or market.get("volume") or 0) >= float(min_volume):
        return False
    return True


def _end_date_matches(event: dict, request: RecordedRequest, exclusive: bool) -> bool:
    low, high = request.param("end_date_min"), request.param("end_date_max")
    if low is None and high is None:
        return True
    end = _parse_time(event.get("endDate"))
    if end is None:
        return False  # an event without an end date matches no end-date filter
    if exclusive:
        return (low is None or end > _parse_time(low)) and (high is None or end < _parse_time(high))
    return (low is None or end >= _parse_time(low)) and (high is None or end <= _parse_time(high))


def _flags_match(item: dict, request: RecordedRequest, names: tuple[str, ...]) -> bool:
    for name in names:
        wanted = request.param(name)
        if wanted is not None and bool(item.get(name)) != (wanted == "true"):
            return False
    return True


def _parse_time(text) -> datetime | None:
    if not text:
        return None
    moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the client's connection pool expects
    # Headers and body go out in two writes; without TCP_NODELAY each keep-alive answer would wait
    # ~40 ms on the client's delayed ACK.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:
        replay: ReplayServer = self.server.replay  # type: ignore[attr-defined]
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        query = parse_qs(parts.query, keep_blank_values=True)
        request = RecordedRequest(method, parts.path, query, body)
        reply, delay = replay._answer(request)
        if delay:
            time.sleep(delay)
        if isinstance(reply.payload, str):
            data, content_type = reply.payload.encode(), "text/html; charset=utf-8"
        else:
            data, content_type = json.dumps(reply.payload).encode(), "application/json"
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            if replay.now is not None:
                self.send_header(SIMULATOR_HEADER, "1")
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up waiting (a read timeout)

    def date_time_string(self, timestamp=None) -> str:
        replay: ReplayServer = self.server.replay  # type: ignore[attr-defined]
        return format_datetime(replay.current_time().astimezone(timezone.utc), usegmt=True)

    def log_message(self, format, *args) -> None:
        pass


def events_from_recorded_markets(path: str | Path) -> list[dict]:
    """Rebuild Gamma /events objects from a recorded /markets JSONL dump.

    Each recorded market carries its parent event as `events[0]`; markets are grouped by that
    parent, and each event becomes the parent dict plus `markets: [...]` (without the back
    reference, as in a real /events answer). Order of first appearance is kept.
    """
    events: dict[str, dict] = {}
    # Split on '\n' only: str.splitlines() also breaks on U+2028, which occurs inside a description.
    for line in Path(path).read_text(encoding="utf-8").split("\n"):
        if not line.strip():
            continue
        market = json.loads(line)
        parents = market.get("events") or []
        if not parents:
            continue
        parent = parents[0]
        event = events.setdefault(str(parent["id"]), {**parent, "markets": []})
        event["markets"].append({k: v for k, v in market.items() if k != "events"})
    return list(events.values())
