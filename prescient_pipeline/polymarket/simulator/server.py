"""HTTP front of the simulator: Gamma's and the CLOB's read endpoints on one port, JSON in the real
wire format, plus two `/__sim__/` endpoints to read and move the simulated clock.

Every answer's `Date` header is the simulated time, because the client takes its observation time
from it; the `X-Prescient-Simulator: 1` header tells the client to trust that Date however far it
is from the wall clock. Bad parameters get a 400/422 JSON error, never a traceback.
"""

from __future__ import annotations

import json
import re
import threading
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

from prescient_pipeline.polymarket.client import SIMULATOR_HEADER
from prescient_pipeline.polymarket.simulator.universe import MAX_BATCH_TOKENS, QueryError, Universe, price_text

MAX_BODY_BYTES = 5_000_000
MAX_ADVANCE_MINUTES = 366 * 24 * 60


class SimulatorServer:
    """Serves a `Universe` over HTTP on a background thread; a context manager.

    The port is bound at construction (port=0 picks a free one), so `url` is known before `start`.
    """

    def __init__(self, universe: Universe, host: str = "127.0.0.1", port: int = 0):
        self.universe = universe
        self.lock = threading.Lock()  # one request at a time touches the universe
        self._httpd = ThreadingHTTPServer((host, port), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.simulator = self  # type: ignore[attr-defined]
        self.url = f"http://{host}:{self._httpd.server_address[1]}"
        self._thread: threading.Thread | None = None

    def start(self) -> "SimulatorServer":
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="polymarket-simulator", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()

    def serve_forever(self) -> None:
        """Serve on the calling thread until interrupted."""
        try:
            self._httpd.serve_forever(poll_interval=0.2)
        finally:
            self._httpd.server_close()

    def __enter__(self) -> "SimulatorServer":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


def serve(port: int, seed: int, events: int, host: str = "127.0.0.1", history_days: int = 0) -> None:
    """Run a simulator until Ctrl-C (`prescient simulator serve`)."""
    universe = Universe(seed=seed, events=events, history_days=history_days)
    server = SimulatorServer(universe, host=host, port=port)
    past = f", history since {universe.epoch:%Y-%m-%d %H:%M} UTC" if history_days else ""
    print(
        f"Polymarket simulator on {server.url} (seed {seed}, {universe.event_count} events, "
        f"{universe.market_count} markets, clock {_iso(universe)}{past})"
    )
    print("Point the pipeline at it with:")
    print(f"  export PRESCIENT_GAMMA_URL={server.url}")
    print(f"  export PRESCIENT_CLOB_URL={server.url}")
    print(f"Move the clock with: curl -X POST '{server.url}/__sim__/advance?minutes=60'", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


# --- request handling ------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so a requests.Session reuses its connection
    disable_nagle_algorithm = True  # headers and body go out in two writes; don't stall 40 ms on each answer
    server_version = "polymarket-simulator"

    def do_GET(self) -> None:
        self._answer("GET")

    def do_POST(self) -> None:
        self._answer("POST")

    def do_PUT(self) -> None:
        self._answer("PUT")

    def do_DELETE(self) -> None:
        self._answer("DELETE")

    def do_PATCH(self) -> None:
        self._answer("PATCH")

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass  # quiet: tests and the demo make thousands of requests

    def date_time_string(self, timestamp: float | None = None) -> str:
        # send_response() puts this in the Date header: the simulated time, not the wall clock.
        return self._date_header

    def _answer(self, method: str) -> None:
        simulator: SimulatorServer = self.server.simulator  # type: ignore[attr-defined]
        url = urlsplit(self.path)
        with simulator.lock:
            try:
                body = self._read_body()
                status, payload = _route(simulator.universe, method, url.path, parse_qs(url.query, keep_blank_values=True), body)
            except QueryError as exc:
                status, payload = exc.status, {"error": exc.message}
            except Exception as exc:  # the API answers JSON, whatever went wrong
                status, payload = 500, {"error": f"internal error: {type(exc).__name__}"}
            # Taken with the answer, so an advance's reply already carries the new time.
            self._date_header = format_datetime(simulator.universe.now, usegmt=True)
        data = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header(SIMULATOR_HEADER, "1")
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(data)

    def _read_body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        try:
            size = int(length)
        except ValueError:
            raise QueryError(400, "invalid Content-Length") from None
        if size < 0 or size > MAX_BODY_BYTES:
            self.close_connection = True
            raise QueryError(413, "request body too large")
        return self.rfile.read(size)


Params = dict[str, list[str]]
Route = Callable[[Universe, Params, bytes], Any]


def _route(universe: Universe, method: str, path: str, params: Params, body: bytes) -> tuple[int, Any]:
    path = path.rstrip("/") or "/"
    handler = ROUTES.get((method, path))
    if handler is not None:
        return 200, handler(universe, params, body)
    found = re.fullmatch(r"/(markets|events|clob-markets)/([^/]+)", path)
    if found and method == "GET":
        kind, key = found.groups()
        lookup = {"markets": universe.gamma_market, "events": universe.gamma_event, "clob-markets": universe.clob_market_info}
        item = lookup[kind](key)
        if item is None:
            return 404, {"error": f"{kind[:-1].replace('-', ' ')} {key} not found"}
        return 200, item
    if any(p == path for _, p in ROUTES) or found:
        return 405, {"error": f"method {method} not allowed on {path}"}
    return 404, {"error": f"no such endpoint: {path}"}


# --- parameter parsing: every bad value is a 4xx with a reason ---------------------------------------


def _one(params: Params, name: str) -> str | None:
    values = params.get(name)
    return values[-1] if values else None


def _many(params: Params, name: str) -> list[str] | None:
    """A list parameter, repeated (`id=1&id=2`) or comma-separated (`id=1,2`)."""
    values = params.get(name)
    if not values:
        return None
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def _bool(params: Params, name: str) -> bool | None:
    value = _one(params, name)
    if value is None or value == "":
        return None
    lowered = value.lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise QueryError(422, f"{name} must be true or false, not {value!r}")


def _int(params: Params, name: str, default: int | None, status: int = 422) -> int | None:
    value = _one(params, name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise QueryError(status, f"{name} must be an integer, not {value!r}") from None


def _float(params: Params, name: str) -> float | None:
    value = _one(params, name)
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if number != number or number in (float("inf"), float("-inf")):
        raise QueryError(422, f"{name} must be a number, not {value!r}")
    return number


def _ids(params: Params, name: str) -> list[str] | None:
    values = _many(params, name)
    if values is not None:
        for value in values:
            if not value.isdigit():
                raise QueryError(422, f"{name} must be numeric, not {value!r}")
    return values


def _token(params: Params) -> str:
    token = _one(params, "token_id")
    if not token:
        raise QueryError(400, "token_id is required")
    return token


def _json_body(body: bytes) -> Any:
    try:
        return json.loads(body or b"null")
    except ValueError:
        raise QueryError(400, "invalid JSON body") from None


def _tokens_from_body(body: bytes) -> list[str]:
    """The CLOB batch body: [{"token_id": "..."}, ...]."""
    items = _json_body(body)
    if not isinstance(items, list):
        raise QueryError(400, 'body must be a JSON array of {"token_id": ...} objects')
    tokens = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("token_id"), (str, int)):
            raise QueryError(400, 'every body element must be an object with a "token_id"')
        tokens.append(str(item["token_id"]))
    return tokens


def _iso(universe: Universe) -> str:
    return universe.now.strftime("%Y-%m-%dT%H:%M:%SZ")


# --- endpoints -------------------------------------------------------------------------------------


def _events(universe: Universe, params: Params, body: bytes) -> list[dict]:
    return universe.gamma_events(
        active=_bool(params, "active"),
        closed=_bool(params, "closed"),
        archived=_bool(params, "archived"),
        order=_one(params, "order") or "id",
        ascending=_bool(params, "ascending") is not False,
        limit=_int(params, "limit", 100),
        offset=_int(params, "offset", 0),
        end_date_min=_one(params, "end_date_min") or None,
        end_date_max=_one(params, "end_date_max") or None,
        ids=_ids(params, "id"),
    )


def _markets(universe: Universe, params: Params, body: bytes) -> list[dict]:
    return universe.gamma_markets(
        ids=_ids(params, "id"),
        condition_ids=_many(params, "condition_ids"),
        clob_token_ids=_many(params, "clob_token_ids"),
        closed=_bool(params, "closed"),
        active=_bool(params, "active"),
        archived=_bool(params, "archived"),
        end_date_min=_one(params, "end_date_min") or None,
        end_date_max=_one(params, "end_date_max") or None,
        start_date_max=_one(params, "start_date_max") or None,
        volume_num_min=_float(params, "volume_num_min"),
        order=_one(params, "order") or "id",
        ascending=_bool(params, "ascending") is not False,
        limit=_int(params, "limit", 100),
        offset=_int(params, "offset", 0),
    )


def _book(universe: Universe, params: Params, body: bytes) -> dict:
    book = universe.book(_token(params))
    if book is None:
        raise QueryError(404, "No orderbook exists for the requested token id")
    return book


def _books(universe: Universe, params: Params, body: bytes) -> list[dict]:
    books = (universe.book(token) for token in _tokens_from_body(body))
    return [book for book in books if book is not None]


def _midpoint(universe: Universe, params: Params, body: bytes) -> dict:
    mid = universe.midpoint(_token(params))
    if mid is None:
        raise QueryError(404, "No orderbook exists for the requested token id")
    return {"mid": price_text(mid)}


def _midpoints(universe: Universe, params: Params, body: bytes) -> dict:
    mids = {}
    for token in _tokens_from_body(body):
        mid = universe.midpoint(token)
        if mid is not None:
            mids[token] = price_text(mid)
    return mids


def _prices_history(universe: Universe, params: Params, body: bytes) -> dict:
    token = _one(params, "market")
    if not token:
        raise QueryError(400, "market (a token id) is required")
    history = universe.price_history(
        token,
        start_ts=_int(params, "startTs", None, 400),
        end_ts=_int(params, "endTs", None, 400),
        interval=_one(params, "interval") or None,
        fidelity=_int(params, "fidelity", None, 400),
    )
    return {"history": history}


def _batch_prices_history(universe: Universe, params: Params, body: bytes) -> dict:
    """POST /batch-prices-history: {"markets": [token, ...], "start_ts", "end_ts", "interval",
    "fidelity"} -> {"history": {token: [{t, p}, ...]}}."""
    request = _json_body(body)
    if not isinstance(request, dict):
        raise QueryError(400, 'body must be a JSON object with a "markets" array of token ids')
    tokens = request.get("markets")
    if (not isinstance(tokens, list) or not 1 <= len(tokens) <= MAX_BATCH_TOKENS
            or not all(isinstance(t, (str, int)) and not isinstance(t, bool) for t in tokens)):
        raise QueryError(400, f"markets must hold 1 to {MAX_BATCH_TOKENS} token ids")
    numbers = {}
    for name in ("start_ts", "end_ts", "fidelity"):
        value = request.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or (isinstance(value, float) and not value.is_integer())):
            raise QueryError(400, f"{name} must be an integer")
        numbers[name] = None if value is None else int(value)
    interval = request.get("interval")
    if interval is not None and not isinstance(interval, str):
        raise QueryError(400, "interval must be a string")
    history = universe.price_histories([str(t) for t in tokens], numbers["start_ts"], numbers["end_ts"],
                                       interval or None, numbers["fidelity"])
    return {"history": history}


def _advance(universe: Universe, params: Params, body: bytes) -> dict:
    value = _one(params, "minutes")
    if value is None and body:  # also accepts a JSON body {"minutes": N}
        payload = _json_body(body)
        value = str(payload.get("minutes")) if isinstance(payload, dict) else None
    try:
        minutes = float(value) if value is not None else float("nan")
    except ValueError:
        minutes = float("nan")
    if not 0 <= minutes <= MAX_ADVANCE_MINUTES:  # also false for NaN
        raise QueryError(400, f"minutes must be a number between 0 and {MAX_ADVANCE_MINUTES}")
    universe.advance(minutes)
    return {"now": _iso(universe)}


def _time(universe: Universe, params: Params, body: bytes) -> dict:
    return {"now": _iso(universe)}


ROUTES: dict[tuple[str, str], Route] = {
    ("GET", "/events"): _events,
    ("GET", "/markets"): _markets,
    ("GET", "/book"): _book,
    ("POST", "/books"): _books,
    ("GET", "/midpoint"): _midpoint,
    ("POST", "/midpoints"): _midpoints,
    ("GET", "/prices-history"): _prices_history,
    ("POST", "/batch-prices-history"): _batch_prices_history,
    ("POST", "/__sim__/advance"): _advance,
    ("GET", "/__sim__/time"): _time,
}
