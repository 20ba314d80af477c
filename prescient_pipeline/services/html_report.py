"""The HTML portfolio report: an overview comparing portfolios (index.html) and one page per
portfolio with its equity curve, drawdown, daily returns, named positions and trades, fees,
metrics and settlement flags.

Reading (`load_pages`) is SQL; rendering (`render_overview`, `render_portfolio`) is pure.
Every chart runs on the portfolio's own clock: `portfolio_history` timestamps (the market
observation time of each snapshot) and the time of its last price update, so a simulated or
replayed week is drawn as a week, not as the minutes it took to run. Figures shown here come
from the same places as everywhere else: totals from `reports.report`, ratios from the
`portfolio_performance_cache` the snapshot writes, and the daily-return and drawdown series
from `domain.metrics`, the functions those ratios are computed with.

Plotly and Jinja2 are imported inside the functions that use them: the CLI stays quick for
commands that never draw.
"""

from __future__ import annotations

import html
import os
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Engine, text

from ..config import settings
from ..domain.metrics import drawdown_series, history_returns
from . import reports

PLOTLY_JS = "plotly.min.js"
INDEX = "index.html"
# The newest trades a page lists; the page says how many it left out.
TRADE_LIMIT = 500
# One colour per series kind on a portfolio's page (the rendering test looks for them).
EQUITY_COLOUR = "#1f77b4"
DRAWDOWN_COLOUR = "#d62728"
GAIN_COLOUR = "#2ca02c"
LOSS_COLOUR = "#d62728"
DAY_MS = 24 * 3600 * 1000

METRICS = [  # (portfolio_performance_cache column, label, format)
    ("return_all_time", "Return since start", "pct"),
    ("return_1d", "Return 1 day", "pct"),
    ("return_7d", "Return 7 days", "pct"),
    ("return_30d", "Return 30 days", "pct"),
    ("cagr", "CAGR", "pct"),
    ("max_drawdown", "Max drawdown", "pct"),
    ("sharpe_ratio", "Sharpe", "ratio"),
    ("sortino_ratio", "Sortino", "ratio"),
    ("calmar_ratio", "Calmar", "ratio"),
    ("round_trips", "Closed round trips", "int"),
    ("win_rate", "Win rate", "pct"),
    ("profit_factor", "Profit factor", "ratio"),
    ("expectancy", "Expectancy per trade", "money"),
    ("avg_win", "Average win", "money"),
    ("avg_loss", "Average loss", "money"),
    ("max_consecutive_wins", "Most wins in a row", "int"),
    ("max_consecutive_losses", "Most losses in a row", "int"),
    ("signal_execution_rate", "Signals executed", "pct"),
    ("days", "Days of history", "int"),
]


def default_report_dir() -> Path:
    return settings().home / "reports"


def page_name(portfolio_id: int) -> str:
    return f"portfolio-{portfolio_id}.html"


@dataclass
class PortfolioPage:
    """Everything one portfolio's page shows, read in one go."""

    summary: dict  # a `reports.report` row
    metrics: dict  # the `portfolio_performance_cache` row (empty before the first snapshot)
    history: pd.DataFrame  # `portfolio_history` rows, oldest first
    positions: list[dict]  # open positions with the market's question
    trades: list[dict]  # newest first, at most TRADE_LIMIT
    trade_count: int
    flagged: list[dict] = field(default_factory=list)  # open positions whose market is flagged, not settled
    fees_by_action: dict[str, float] = field(default_factory=dict)
    first_trade_at: datetime | None = None

    @property
    def portfolio_id(self) -> int:
        return int(self.summary["portfolio_id"])

    @property
    def name(self) -> str:
        return str(self.summary["name"])

    def returns(self) -> pd.Series:
        """Daily returns by snapshot date, net of transfers (as the metrics use them)."""
        return history_returns(self.history, self.summary["initial_balance"])

    def equity_curve(self) -> pd.DataFrame:
        """Total value over the portfolio's own time: the initial balance when it began (its first
        trade or snapshot), each daily snapshot, and the value at its last price update."""
        points = []
        starts = [t for t in (self.first_trade_at, self._first_snapshot_at()) if t is not None]
        if starts:
            points.append((min(starts), float(self.summary["initial_balance"])))
        points += [(ts, float(v)) for ts, v in zip(self.history["timestamp"], self.history["total_value"])]
        latest = self.summary.get("last_price_update")
        if latest is not None and (not points or latest > points[-1][0]):
            points.append((latest, float(self.summary["total_value"])))
        return pd.DataFrame(points, columns=["time", "total_value"])

    def drawdown_curve(self) -> pd.DataFrame:
        """Drawdown at each snapshot (0 at the start): the series `max_drawdown` is the low of."""
        returns = self.returns()
        if returns.empty:
            return pd.DataFrame(columns=["time", "drawdown"])
        drawdown = drawdown_series(returns).to_numpy()
        times = list(self.history["timestamp"])
        return pd.DataFrame({"time": [self.equity_curve()["time"].iloc[0], *times],
                             "drawdown": [0.0, *drawdown]})

    def _first_snapshot_at(self) -> datetime | None:
        return self.history["timestamp"].iloc[0] if len(self.history) else None


# --- reading -----------------------------------------------------------------------------------

def load_pages(engine: Engine, portfolio_id: int | None = None, trade_limit: int = TRADE_LIMIT) -> list[PortfolioPage]:
    summaries = reports.report(engine, portfolio_id)
    ids = [int(s["portfolio_id"]) for s in summaries]
    if not ids:
        return []
    params = {"ids": ids, "limit": trade_limit}
    with engine.connect() as conn:
        metrics = {r["portfolio_id"]: dict(r) for r in conn.execute(text(
            "SELECT * FROM portfolio_performance_cache WHERE portfolio_id = ANY(:ids)"), params).mappings()}
        history = pd.read_sql_query(text(
            "SELECT portfolio_id, snapshot_date, timestamp, total_value, net_transfers, cash, positions_value "
            "FROM portfolio_history WHERE portfolio_id = ANY(:ids) ORDER BY portfolio_id, snapshot_date"),
            conn, params=params)
        positions = _grouped(conn.execute(text(
            """
            SELECT pp.portfolio_id, pp.position_id, pp.market_id, coalesce(m.question, pp.question) AS question,
                   pp.side, pp.shares, pp.avg_price, pp.cost_basis, pp.entry_fee, pp.current_price,
                   pp.market_value, pp.liquidation_value, pp.unrealized_pnl, pp.opened_at, pp.last_marked_at,
                   pp.settlement_flag, m.closed AS market_closed, m.end_date
            FROM portfolio_positions pp LEFT JOIN markets m ON m.market_id = pp.market_id
            WHERE pp.portfolio_id = ANY(:ids) AND pp.status = 'open'
            ORDER BY pp.portfolio_id, pp.market_value DESC NULLS LAST, pp.position_id
            """), params).mappings())
        flagged = _grouped(conn.execute(text(
            """
            SELECT pp.portfolio_id, pp.position_id, pp.market_id, coalesce(m.question, pp.question) AS question,
                   pp.side, pp.shares, pp.market_value, pp.settlement_flag, pp.last_marked_at
            FROM portfolio_positions pp LEFT JOIN markets m ON m.market_id = pp.market_id
            WHERE pp.portfolio_id = ANY(:ids) AND pp.status = 'open' AND pp.settlement_flag IS NOT NULL
            ORDER BY pp.portfolio_id, pp.position_id
            """), params).mappings())
        trades = _grouped(conn.execute(text(
            """
            SELECT * FROM (
                SELECT t.portfolio_id, t.trade_id, t.executed_at, t.action, t.market_id,
                       coalesce(m.question, pp.question) AS question, t.side, t.shares, t.price, t.amount,
                       t.fee, t.cash_delta, t.realized_pnl, t.reason,
                       row_number() OVER (PARTITION BY t.portfolio_id
                                          ORDER BY t.executed_at DESC, t.trade_id DESC) AS newest
                FROM trades t
                LEFT JOIN markets m ON m.market_id = t.market_id
                LEFT JOIN portfolio_positions pp ON pp.position_id = t.position_id
                WHERE t.portfolio_id = ANY(:ids)
            ) ranked WHERE newest <= :limit ORDER BY portfolio_id, newest
            """), params).mappings())
        fees: dict[int, dict[str, float]] = {}
        first_trade: dict[int, datetime] = {}
        for r in conn.execute(text(
                "SELECT portfolio_id, action, sum(fee) AS fees, min(executed_at) AS first_at FROM trades "
                "WHERE portfolio_id = ANY(:ids) GROUP BY portfolio_id, action ORDER BY portfolio_id, action"), params):
            fees.setdefault(r.portfolio_id, {})[r.action] = float(r.fees)
            first_trade[r.portfolio_id] = min(r.first_at, first_trade.get(r.portfolio_id, r.first_at))
    pages = []
    for s in summaries:
        pid = int(s["portfolio_id"])
        own = history[history["portfolio_id"] == pid].reset_index(drop=True)
        pages.append(PortfolioPage(
            summary=s, metrics=metrics.get(pid, {}), history=own, positions=positions.get(pid, []),
            trades=trades.get(pid, []), trade_count=int(s["trades"]), flagged=flagged.get(pid, []),
            fees_by_action=fees.get(pid, {}), first_trade_at=first_trade.get(pid),
        ))
    return pages


def _grouped(rows) -> dict[int, list[dict]]:
    out: dict[int, list[dict]] = {}
    for r in rows:
        out.setdefault(r["portfolio_id"], []).append(dict(r))
    return out


# --- rendering (pure) -----------------------------------------------------------------------------

def _plot_label(value: str) -> str:
    """Plotly reads a subset of HTML in trace names: escape user text so it shows as typed."""
    return html.escape(value, quote=False)


def _figure_html(figure, div_id: str) -> str:
    import plotly.io as pio

    return pio.to_html(figure, full_html=False, include_plotlyjs=False, div_id=div_id,
                       config={"displaylogo": False, "responsive": True})


def portfolio_figure(page: PortfolioPage):
    """Equity curve, drawdown and daily returns of one portfolio, on one shared time axis."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    equity, drawdown, returns = page.equity_curve(), page.drawdown_curve(), page.returns()
    figure = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.06, row_heights=[0.5, 0.25, 0.25],
                           subplot_titles=("Total value (USD)", "Drawdown", "Daily return"))
    figure.add_trace(go.Scatter(
        x=equity["time"], y=equity["total_value"], mode="lines+markers", name="total value",
        line={"color": EQUITY_COLOUR, "width": 3}, hovertemplate="%{x|%Y-%m-%d %H:%M} UTC<br>%{y:,.2f} USD"),
        row=1, col=1)
    figure.add_trace(go.Scatter(
        x=drawdown["time"], y=drawdown["drawdown"], mode="lines", name="drawdown", fill="tozeroy",
        line={"color": DRAWDOWN_COLOUR, "width": 2}, hovertemplate="%{x|%Y-%m-%d %H:%M} UTC<br>%{y:.2%}"),
        row=2, col=1)
    # A day's return spans that day on the curve's time axis.
    days = pd.to_datetime(returns.index)
    middays = [(d + pd.Timedelta(hours=12)).tz_localize("UTC") for d in days]
    values = [float(r) if pd.notna(r) else None for r in returns.to_numpy()]
    figure.add_trace(go.Bar(
        x=middays, y=values, name="daily return", width=DAY_MS * 0.8,
        marker={"color": [GAIN_COLOUR if (v or 0) >= 0 else LOSS_COLOUR for v in values]},
        customdata=[d.date().isoformat() for d in days], hovertemplate="%{customdata}<br>%{y:.2%}"),
        row=3, col=1)
    figure.update_yaxes(tickformat=",.2f", row=1, col=1)
    figure.update_yaxes(tickformat=".1%", row=2, col=1)
    figure.update_yaxes(tickformat=".1%", row=3, col=1)
    figure.update_layout(template="plotly_white", height=720, showlegend=False,
                         margin={"l": 70, "r": 20, "t": 40, "b": 40})
    return figure


def overview_figure(pages: list[PortfolioPage]):
    """Every portfolio's equity curve and drawdown, one trace each, on the shared time axis."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    figure = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08, row_heights=[0.65, 0.35],
                           subplot_titles=("Total value (USD)", "Drawdown"))
    for page in pages:
        label = _plot_label(f"{page.name} ({page.portfolio_id})")
        equity, drawdown = page.equity_curve(), page.drawdown_curve()
        group = str(page.portfolio_id)
        figure.add_trace(go.Scatter(x=equity["time"], y=equity["total_value"], mode="lines+markers", name=label,
                                    legendgroup=group, hovertemplate="%{x|%Y-%m-%d %H:%M} UTC<br>%{y:,.2f} USD"),
                         row=1, col=1)
        figure.add_trace(go.Scatter(x=drawdown["time"], y=drawdown["drawdown"], mode="lines", name=label,
                                    legendgroup=group, showlegend=False, hovertemplate="%{y:.2%}"), row=2, col=1)
    # Drawdown lines take the colour of their portfolio's equity line.
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
    for i, trace in enumerate(figure.data):
        trace.line.color = palette[(i // 2) % len(palette)]
    figure.update_yaxes(tickformat=",.2f", row=1, col=1)
    figure.update_yaxes(tickformat=".1%", row=2, col=1)
    figure.update_layout(template="plotly_white", height=620, legend={"orientation": "h", "y": -0.08},
                         margin={"l": 70, "r": 20, "t": 40, "b": 40})
    return figure


def _environment():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
    )
    env.filters.update(money=_money, pct=_pct, ratio=_ratio, price=_price, shares=_shares, when=_when,
                       integer=_integer, metric=_metric)
    return env


def _script_tag(plotly_js: str | None) -> str:
    """`plotly_js` None: the page loads the plotly.min.js beside it; otherwise it is inlined."""
    if plotly_js is None:
        return f'<script src="{PLOTLY_JS}"></script>'
    return "<script>" + plotly_js.replace("</script", "<\\/script") + "</script>"


def render_portfolio(page: PortfolioPage, generated_at: datetime, plotly_js: str | None = None) -> str:
    import markupsafe

    chart = _figure_html(portfolio_figure(page), f"portfolio-{page.portfolio_id}-chart")
    return _environment().get_template("portfolio.html.j2").render(
        page=page, s=page.summary, metrics=[(label, fmt, page.metrics.get(col)) for col, label, fmt in METRICS],
        chart=markupsafe.Markup(chart), plotly_script=markupsafe.Markup(_script_tag(plotly_js)),
        generated_at=generated_at, trade_limit_hit=page.trade_count > len(page.trades), index=INDEX,
    )


def render_overview(pages: list[PortfolioPage], generated_at: datetime, plotly_js: str | None = None) -> str:
    import markupsafe

    chart = _figure_html(overview_figure(pages), "overview-chart") if pages else ""
    return _environment().get_template("overview.html.j2").render(
        pages=pages, page_name=page_name, chart=markupsafe.Markup(chart),
        plotly_script=markupsafe.Markup(_script_tag(plotly_js)), generated_at=generated_at,
    )


# --- writing -------------------------------------------------------------------------------------

@dataclass
class ReportFiles:
    index: Path
    pages: dict[int, Path]  # portfolio id -> its page
    names: dict[int, str]  # portfolio id -> name


def write_report(engine: Engine, out_dir: Path, portfolio_id: int | None = None, *,
                 self_contained: bool = False, generated_at: datetime | None = None) -> ReportFiles:
    """Write index.html and one page per portfolio (all, or one) into `out_dir`.

    By default the pages share one plotly.min.js beside them (one copy, not one per page);
    `self_contained` inlines it into every page so a single file can be sent on its own.
    Either way nothing is fetched from the network. Each file is replaced atomically, and pages
    of portfolios that no longer exist are removed when the whole report is written.
    """
    import plotly.offline

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    generated_at = generated_at or datetime.now(timezone.utc)
    pages = load_pages(engine, portfolio_id)
    library = plotly.offline.get_plotlyjs()
    inline = library if self_contained else None
    if not self_contained:
        _write_atomic(out_dir / PLOTLY_JS, library)
    written = {}
    for page in pages:
        path = out_dir / page_name(page.portfolio_id)
        _write_atomic(path, render_portfolio(page, generated_at, inline))
        written[page.portfolio_id] = path
    index = out_dir / INDEX
    _write_atomic(index, render_overview(pages, generated_at, inline))
    if portfolio_id is None:
        for old in out_dir.glob("portfolio-*.html"):
            if old not in written.values():
                old.unlink()
    return ReportFiles(index, written, {p.portfolio_id: p.name for p in pages})


def _write_atomic(path: Path, content: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --- number formats (template filters) -------------------------------------------------------------

def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _money(value: Any) -> str:
    return "—" if _missing(value) else f"{float(value):,.2f}"


def _pct(value: Any) -> str:
    return "—" if _missing(value) else f"{float(value) * 100:,.2f}%"


def _ratio(value: Any) -> str:
    return "—" if _missing(value) else f"{float(value):,.2f}"


def _price(value: Any) -> str:
    return "—" if _missing(value) else f"{float(value):.4f}"


def _shares(value: Any) -> str:
    return "—" if _missing(value) else f"{float(value):,.2f}"


def _integer(value: Any) -> str:
    return "—" if _missing(value) else f"{int(value):,}"


def _when(value: Any) -> str:
    if _missing(value):
        return "—"
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(timezone.utc)
        return value.strftime("%Y-%m-%d %H:%M UTC")
    return str(value)


def _metric(value: Any, kind: str) -> str:
    return {"pct": _pct, "ratio": _ratio, "money": _money, "int": _integer}[kind](value)
