"""A fault-injecting HTTP proxy for tests: a loopback server in front of another (the simulator)
that, for a seeded share of requests, answers as a broken API would instead of passing the
answer through.

Faults, in a random order that uses each once before any repeats:
- `429`, `500`: that status, without asking upstream (the client retries both);
- `timeout`: no answer for longer than the client waits, then the connection is closed;
- `truncated_json`: the upstream answer cut in half (still HTTP 200);
- `wrong_types`: one record's fields with wrong JSON types (`closed: "yes"`, an object for a
  volume, a list for a book price), or the whole answer an object instead of a list;
- `out_of_range`: one record's prices out of [0, 1] or not finite ("7.5", "-0.4", "NaN");
- `skewed_date`: the upstream answer as is, dated a day ahead and without the simulator's header
  (a real server whose clock is wrong).

Every fault is recorded with the Gamma markets and CLOB tokens whose values it spoiled, so a test
can check that none of them was stored or traded on.

    with SimulatorServer(universe) as sim, FaultProxy(sim.url, seed=3, share=0.3) as proxy:
        client = PolymarketClient(proxy.url, proxy.url)
"""

from __future__ import annotations

import http.client
import json
import random
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from prescient_pipeline.polymarket.client import SIMULATOR_HEADER

FAULTS = ("429", "500", "timeout", "truncated_json", "wrong_types", "out_of_range", "skewed_date")
GARBAGE_PRICES = ("7.5", "-0.4", "NaN", "inf", "1.2", -3)


@dataclass
class Injected:
    """One answer the proxy spoiled; `markets` / `tokens`: records whose values it broke."""

    method: str
    path: str
    fault: str
    markets: tuple[str, ...] = ()
    tokens: tuple[str, ...] = ()
    whole_answer: bool = False  # the answer as a whole is unusable (truncated, wrong shape)


class FaultProxy:
    def __init__(self, upstream: str, *, seed: int = 0, share: float = 0.3, faults: tuple[str, ...] = FAULTS,
                 stall_seconds: float = 0.6, date_skew: timedelta = timedelta(days=1)):
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname, parts.port)
        self.share = share
        self.faults = faults
        self.stall_seconds = stall_seconds
        self.date_skew = date_skew
        self.enabled = True
        self.injected: list[Injected] = []
        self.passed = 0
        self._rng = random.Random(seed)
        self._cycle: list[str] = []
        self._forced: list[str] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.proxy = self  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "FaultProxy":
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True,
                                        name="fault-proxy")
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def take_injected(self) -> list[Injected]:
        """The faults injected since the last call."""
        with self._lock:
            taken, self.injected = self.injected, []
        return taken

    def force_next(self, *faults: str) -> None:
        """Spoil the next requests with these faults, in order, whatever the draw."""
        with self._lock:
            self._forced.extend(faults)

    def _draw(self) -> tuple[str | None, random.Random | None]:
        """The fault for the next request (None: pass it through) and a generator for its details,
        both drawn from the seeded sequence, so a run's faults repeat exactly."""
        with self._lock:
            if self._forced:
                return self._forced.pop(0), random.Random(self._rng.random())
            if not self.enabled or self._rng.random() >= self.share:
                self.passed += 1
                return None, None
            if not self._cycle:
                self._cycle = list(self.faults)
                self._rng.shuffle(self._cycle)
            return self._cycle.pop(), random.Random(self._rng.random())

    def _record(self, injected: Injected) -> None:
        with self._lock:
            self.injected.append(injected)


@dataclass
class _Answer:
    status: int
    body: bytes
    headers: dict[str, str]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        self._proxy("GET")

    def do_POST(self) -> None:
        self._proxy("POST")

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass

    def _proxy(self, method: str) -> None:
        proxy: FaultProxy = self.server.proxy  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        path = urlsplit(self.path).path
        fault, rng = proxy._draw()
        if fault == "timeout":
            proxy._record(Injected(method, path, fault))
            time.sleep(proxy.stall_seconds)  # the client has given up by now
            self.close_connection = True
            return
        if fault in ("429", "500"):
            proxy._record(Injected(method, path, fault))
            headers = {"Retry-After": "0"} if fault == "429" else {}
            self._send(_Answer(int(fault), json.dumps({"error": f"injected HTTP {fault}"}).encode(), headers),
                       date=datetime.now(timezone.utc))
            return
        answer, date = self._forward(proxy, method, body)
        if fault is not None and answer.status == 200:
            proxy._record(_spoil(fault, method, path, answer, rng))
            if fault == "skewed_date":
                date += proxy.date_skew
        self._send(answer, date=date)

    def _forward(self, proxy: FaultProxy, method: str, body: bytes | None) -> tuple[_Answer, datetime]:
        upstream = http.client.HTTPConnection(*proxy.upstream, timeout=10)
        try:
            headers = {"Content-Type": "application/json"} if body is not None else {}
            upstream.request(method, self.path, body=body, headers=headers)
            response = upstream.getresponse()
            data = response.read()
            kept = {k: v for k, v in response.getheaders() if k in (SIMULATOR_HEADER, "Content-Type")}
            date = parsedate_to_datetime(response.getheader("Date")).astimezone(timezone.utc)
            return _Answer(response.status, data, kept), date
        finally:
            upstream.close()

    def _send(self, answer: _Answer, *, date: datetime) -> None:
        self._date = format_datetime(date, usegmt=True)
        try:
            self.send_response(answer.status)
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def date_time_string(self, timestamp: float | None = None) -> str:
        # The Date chosen for this answer (the upstream's, or skewed); the proxy's clock otherwise.
        return getattr(self, "_date", None) or super().date_time_string(timestamp)


# --- spoiling an answer -------------------------------------------------------------------------


def _spoil(fault: str, method: str, path: str, answer: _Answer, rng: random.Random) -> Injected:
    """Change `answer` in place as `fault` says; what was spoiled."""
    if fault == "skewed_date":
        answer.headers.pop(SIMULATOR_HEADER, None)
        return Injected(method, path, fault)
    if fault == "truncated_json":
        answer.body = answer.body[: max(1, len(answer.body) // 2)]
        return Injected(method, path, fault, whole_answer=True)
    payload = json.loads(answer.body)
    if fault == "wrong_types" and isinstance(payload, list) and rng.random() < 0.2:
        answer.body = json.dumps({"data": payload}).encode()  # an object where a list belongs
        return Injected(method, path, fault, whole_answer=True)
    spoiled = Injected(method, path, fault)
    if path == "/books" and isinstance(payload, list) and payload:
        book = rng.choice(payload)
        (_spoil_book_types if fault == "wrong_types" else _spoil_book_prices)(book, rng)
        spoiled.tokens = (str(book["asset_id"]),)
    elif path == "/events" and isinstance(payload, list) and payload:
        event = rng.choice(payload)
        markets = event.get("markets") or []
        if fault == "wrong_types" and rng.random() < 0.3:
            event[rng.choice(["closed", "active", "liquidity"])] = rng.choice(["yes", 1, [1], {"amount": 1}])
            spoiled.markets = tuple(str(m["id"]) for m in markets)  # an unusable event takes them all
        elif markets:
            market = rng.choice(markets)
            (_spoil_market_types if fault == "wrong_types" else _spoil_market_prices)(market, rng)
            spoiled.markets = (str(market["id"]),)
    elif path == "/markets" and isinstance(payload, list) and payload:
        market = rng.choice(payload)
        (_spoil_market_types if fault == "wrong_types" else _spoil_market_prices)(market, rng)
        spoiled.markets = (str(market["id"]),)
    answer.body = json.dumps(payload).encode()
    return spoiled


def _spoil_market_types(market: dict, rng: random.Random) -> None:
    key, value = rng.choice([("closed", "yes"), ("active", 1), ("acceptingOrders", "no"), ("negRisk", [False]),
                             ("volume", {"amount": 1}), ("liquidityNum", "lots"), ("outcomePrices", 0.5),
                             ("bestBid", [0.5])])
    market[key] = value


def _spoil_market_prices(market: dict, rng: random.Random) -> None:
    garbage = rng.choice(GARBAGE_PRICES)
    key = rng.choice(["outcomePrices", "bestBid", "bestAsk", "lastTradePrice", "spread"])
    market[key] = json.dumps([str(garbage), "0.5"]) if key == "outcomePrices" else garbage


def _spoil_book_types(book: dict, rng: random.Random) -> None:
    side = rng.choice(["bids", "asks"])
    choice = rng.randrange(3)
    if choice == 0 or not book.get(side):
        book[side] = "0.49"
    elif choice == 1:
        book[side][-1]["price"] = [book[side][-1]["price"]]
    else:
        book[side][-1] = f"{book[side][-1]['price']}@{book[side][-1]['size']}"


def _spoil_book_prices(book: dict, rng: random.Random) -> None:
    side = rng.choice(["bids", "asks"])
    if rng.random() < 0.2:
        book.setdefault(side, []).append({"price": "0.5", "size": rng.choice(["-10", "NaN"])})
    else:  # appended last, where the CLOB puts its best level
        book.setdefault(side, []).append({"price": str(rng.choice(GARBAGE_PRICES)), "size": "150"})
