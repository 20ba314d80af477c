"""Resources: the app database and the Polymarket API, both defaulting to the environment."""

from typing import Optional

import dagster as dg
from sqlalchemy import Engine

from ..db.engine import get_engine
from ..db.migrate import ensure_schema
from ..polymarket.client import PolymarketClient


class Database(dg.ConfigurableResource):
    """The app database; `url` unset means PRESCIENT_DATABASE_URL or the embedded server."""

    url: Optional[str] = None

    def engine(self) -> Engine:
        return ensure_schema(get_engine(self.url))


class PolymarketApi(dg.ConfigurableResource):
    """Gamma and CLOB base URLs; unset means PRESCIENT_GAMMA_URL / PRESCIENT_CLOB_URL."""

    gamma_url: Optional[str] = None
    clob_url: Optional[str] = None

    def client(self) -> PolymarketClient:
        return PolymarketClient.from_settings(self.gamma_url, self.clob_url)


def default_resources() -> dict:
    return {"database": Database(), "polymarket": PolymarketApi()}
