"""Before a command that needs the Polymarket API: is it there? If not, one line saying what to do,
before any run starts (a job failing on a refused connection prints pages of traceback)."""

from __future__ import annotations

from ..config import settings

HINT = "start `prescient dev --offline` or set PRESCIENT_GAMMA_URL and PRESCIENT_CLOB_URL"


class ApiUnreachable(RuntimeError):
    """The API a command needs does not answer, or this home is offline and nothing serves it."""


def require_api() -> None:
    current = settings()
    if current.api_source == "offline":
        raise ApiUnreachable("this home runs on its offline world and no simulator is serving it: "
                             "start `prescient dev --offline` (or set PRESCIENT_OFFLINE=0 to use the live API)")
    from ..polymarket.client import PolymarketClient

    with PolymarketClient.from_settings() as client:
        ping = client.ping()
        urls = {"gamma": client.gamma_url, "clob": client.clob_url}
    down = [api for api in ("gamma", "clob") if not ping.get(api)]
    if down:
        # "<url>: NewConnectionError: ..." -> "NewConnectionError": the kind of failure is enough here.
        kinds = sorted({ping["errors"].get(api, "").split(": ")[1:2][0] if ": " in ping["errors"].get(api, "")
                        else "no answer" for api in down})
        raise ApiUnreachable(f"the Polymarket API does not answer at {' and '.join(urls[api] for api in down)} "
                             f"({', '.join(kinds)}): {HINT}")
