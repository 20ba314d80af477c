"""The HTML portfolio report: what it reads, what it draws (in headless Chromium), names everywhere.

The ledger below is written by hand and balances to the cent:
  "Alpha <b>&" starts with 1000.00 cash.
  2026-03-02 09:00  buy YES  M1 "Will <script>…</script> win the cup?"  100.00 at 0.50, fee 1.00
                    -> (100 - 1) / 0.5 = 198 shares, cash -100
  2026-03-02 09:00  buy NO   M2 "Will it rain in Paris on March 5?"    200.00 at 0.40, fee 0
                    -> 500 shares, cash -200
  2026-03-03 15:00  sell NO  M2  500 shares at 0.50 = 250.00, fee 2.50 -> cash +247.50,
                    realized 247.50 - 200 = 47.50
  cash = 1000 - 100 - 200 + 247.50 = 947.50; fees = 1.00 + 2.50 = 3.50
  M1 marked at 0.60: 198 * 0.6 = 118.80, unrealized 18.80, flagged resolution_proposed
  total value = 947.50 + 118.80 = 1066.30 (= 1000 + 47.50 + 18.80)
Snapshots (simulated time, 23:55 each day): 1100.00, 990.00, 1066.30
  daily returns: 1100/1000 - 1 = 10%, 990/1100 - 1 = -10%, 1066.30/990 - 1 = 7.7070...%
  wealth 1.1, 0.99, 1.0663; running peak 1.1 -> drawdown 0, -10%, 1.0663/1.1 - 1 = -3.0636...%
  max drawdown -10%.
Last price update 2026-03-05 06:00. "Beta" has no trades and no snapshot yet.
"""

import json
from datetime import datetime, timezone

import pandas as pd
import pytest
from sqlalchemy import text

from prescient_pipeline.cli import main
from prescient_pipeline.domain.metrics import performance
from prescient_pipeline.services import html_report
from prescient_pipeline.services import portfolios as svc
from prescient_pipeline.services.reports import unbalanced_portfolios

from .chromium import Elements, dump_dom, screenshot

UTC = timezone.utc
ALPHA = "Alpha <b>&"
M1_QUESTION = "Will <script>alert(1)</script> win the cup?"
M2_QUESTION = "Will it rain in Paris on March 5?"
SNAPSHOTS = [(datetime(2026, 3, 2, 23, 55, tzinfo=UTC), "1100.00"), (datetime(2026, 3, 3, 23, 55, tzinfo=UTC), "990.00"),
             (datetime(2026, 3, 4, 23, 55, tzinfo=UTC), "1066.30")]
FIRST_TRADE = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LAST_UPDATE = datetime(2026, 3, 5, 6, 0, tzinfo=UTC)


def _insert(conn, table, **values):
    cols = ", ".join(values)
    params = ", ".join(f":{k}" for k in values)
    return conn.execute(text(f"INSERT INTO {table} ({cols}) VALUES ({params}) RETURNING *"), values).one()._mapping


@pytest.fixture
def ledger(engine):
    alpha = svc.create_portfolio(engine, svc.NewPortfolio.parse(name=ALPHA, strategy="momentum", balance="1000"))
    beta = svc.create_portfolio(engine, svc.NewPortfolio.parse(name="Beta", strategy="arbitrage", balance="500"))
    pid = alpha["portfolio_id"]
    with engine.begin() as conn:
        _insert(conn, "markets", market_id="M1", question=M1_QUESTION, closed=True)
        _insert(conn, "markets", market_id="M2", question=M2_QUESTION, closed=False)
        m1 = _insert(conn, "portfolio_positions", portfolio_id=pid, market_id="M1", side="YES", shares=198,
                     avg_price="0.5", cost_basis="100", entry_fee="1", current_price="0.6", market_value="118.80",
                     unrealized_pnl="18.80", status="open", settlement_flag="resolution_proposed",
                     opened_at=FIRST_TRADE, last_marked_at=LAST_UPDATE)
        m2 = _insert(conn, "portfolio_positions", portfolio_id=pid, market_id="M2", side="NO", shares=500,
                     avg_price="0.4", cost_basis="200", realized_pnl="47.50", exit_price="0.5", exit_fee="2.50",
                     proceeds="247.50", status="closed", close_reason="take_profit", opened_at=FIRST_TRADE,
                     settlement_flag="resolution_disputed",
                     closed_at=datetime(2026, 3, 3, 15, 0, tzinfo=UTC))
        for position, action, shares, price, amount, fee, cash, realized, at in (
                (m1, "buy", 198, "0.5", "100", "1", "-100", None, FIRST_TRADE),
                (m2, "buy", 500, "0.4", "200", "0", "-200", None, FIRST_TRADE),
                (m2, "sell", 500, "0.5", "250", "2.50", "247.50", "47.50", datetime(2026, 3, 3, 15, 0, tzinfo=UTC))):
            _insert(conn, "trades", portfolio_id=pid, position_id=position["position_id"],
                    market_id=position["market_id"], side=position["side"], action=action, shares=shares,
                    price=price, amount=amount, fee=fee, cash_delta=cash, realized_pnl=realized, executed_at=at,
                    reason="signal" if action == "buy" else "take_profit")
        conn.execute(text("UPDATE portfolios SET current_balance = 947.50, realized_pnl = 47.50, "
                          "unrealized_pnl = 18.80, total_fees = 3.50, last_price_update = :at WHERE portfolio_id = :p"),
                     {"at": LAST_UPDATE, "p": pid})
        for at, value in SNAPSHOTS:
            _insert(conn, "portfolio_history", portfolio_id=pid, snapshot_date=at.date(), timestamp=at, cash="947.50",
                    positions_value="0", total_value=value, initial_balance="1000", net_transfers="0",
                    realized_pnl="0", unrealized_pnl="0", fees="0", open_positions=1, trade_count=3)
        # The cache row as the snapshot service writes it: the metrics module over these rows.
        history = pd.DataFrame({"snapshot_date": [at.date() for at, _ in SNAPSHOTS],
                                "total_value": [float(v) for _, v in SNAPSHOTS], "net_transfers": [0.0] * 3})
        metrics = performance(history, [47.5], 2, 2, 1000)
        _insert(conn, "portfolio_performance_cache", portfolio_id=pid, calculated_at=SNAPSHOTS[-1][0], **metrics)
    assert unbalanced_portfolios(engine) == []
    return {"alpha": pid, "beta": beta["portfolio_id"]}


def test_the_curves_run_on_the_portfolios_own_clock_and_agree_with_the_metrics(engine, ledger):
    alpha, beta = html_report.load_pages(engine)
    assert (alpha.name, beta.name) == (ALPHA, "Beta")

    curve = alpha.equity_curve()
    # The initial balance at the first trade, each snapshot at its (simulated) time, then the last update.
    assert list(curve["time"]) == [FIRST_TRADE, *[at for at, _ in SNAPSHOTS], LAST_UPDATE]
    assert list(curve["total_value"]) == [1000.0, 1100.0, 990.0, 1066.30, 1066.30]

    returns = alpha.returns()
    assert returns.round(6).tolist() == [0.1, -0.1, round(1066.30 / 990 - 1, 6)]
    drawdown = alpha.drawdown_curve()
    assert list(drawdown["time"]) == [FIRST_TRADE, *[at for at, _ in SNAPSHOTS]]
    assert drawdown["drawdown"].round(6).tolist() == [0.0, 0.0, -0.1, round(1.0663 / 1.1 - 1, 6)]
    # The chart's low is the cached max drawdown the metrics table shows: one source.
    assert float(alpha.metrics["max_drawdown"]) == pytest.approx(drawdown["drawdown"].min()) == pytest.approx(-0.1)

    assert [(p["market_id"], p["question"]) for p in alpha.positions] == [("M1", M1_QUESTION)]
    assert [(t["action"], t["question"]) for t in alpha.trades] == [
        ("sell", M2_QUESTION), ("buy", M2_QUESTION), ("buy", M1_QUESTION)]
    # A closed position's last flag is history, not a flag.
    assert [(f["market_id"], f["settlement_flag"]) for f in alpha.flagged] == [("M1", "resolution_proposed")]
    assert alpha.fees_by_action == {"buy": 1.0, "sell": 2.5}

    assert beta.equity_curve().empty and beta.drawdown_curve().empty and beta.trades == []


def test_a_page_lists_the_newest_trades_and_still_starts_at_the_first(engine, ledger):
    page = html_report.load_pages(engine, ledger["alpha"], trade_limit=1)[0]
    assert [(t["action"], t["market_id"]) for t in page.trades] == [("sell", "M2")]
    assert page.trade_count == 3
    assert page.equity_curve()["time"].iloc[0] == FIRST_TRADE
    rendered = html_report.render_portfolio(page, datetime(2026, 3, 5, 7, 0, tzinfo=UTC))
    assert "The newest 1 of 3" in rendered


def test_user_text_is_escaped_and_figures_are_formatted(engine, ledger):
    page = html_report.load_pages(engine, ledger["alpha"])[0]
    rendered = html_report.render_portfolio(page, datetime(2026, 3, 5, 7, 0, tzinfo=UTC))
    assert "<script>alert(1)</script>" not in rendered
    assert "Will &lt;script&gt;alert(1)&lt;/script&gt; win the cup?" in rendered
    assert "Alpha &lt;b&gt;&amp;" in rendered and "<b>&" not in rendered
    for shown in ("1,066.30", "947.50", "118.80", "18.80", "47.50", "-10.00%", "resolution_proposed",
                  "2026-03-03 15:00 UTC", "buy 1.00, sell 2.50"):
        assert shown in rendered, shown


def plotted_lines(elements: Elements) -> list[tuple[str, int]]:
    """(stroke colour, number of points) of every line Plotly drew."""
    lines = []
    for attrs in elements.with_class("js-line", tag="path"):
        stroke = next((part.split(":", 1)[1].strip() for part in attrs.get("style", "").split(";")
                       if part.strip().startswith("stroke:")), "")
        lines.append((stroke, attrs.get("d", "").count("L") + 1 if attrs.get("d") else 0))
    return lines


def colour_pixels(png, rgb: tuple[int, int, int], box: tuple[int, int, int, int] | None = None) -> int:
    from PIL import Image

    with Image.open(png) as image:
        pixels = image.convert("RGB").crop(box) if box else image.convert("RGB")
        return sum(n for n, colour in pixels.getcolors(maxcolors=1 << 24)
                   if all(abs(c - t) <= 12 for c, t in zip(colour, rgb)))


@pytest.mark.slow
def test_pages_render_their_charts_in_headless_chromium(engine, ledger, tmp_path):
    files = html_report.write_report(engine, tmp_path / "report")
    assert sorted(p.name for p in (tmp_path / "report").iterdir()) == [
        "index.html", "plotly.min.js", f"portfolio-{ledger['alpha']}.html", f"portfolio-{ledger['beta']}.html"]

    alpha = Elements(dump_dom(files.pages[ledger["alpha"]]))
    assert len(alpha.with_class("js-plotly-plot")) == 1, "the chart ran"
    assert len(alpha.with_class("main-svg", tag="svg")) >= 1
    # Equity and drawdown lines plus the daily-return bars, all drawn.
    assert len(alpha.with_class("trace", "scatter", tag="g")) == 2
    assert len(alpha.with_class("trace", "bars", tag="g")) == 1
    assert sorted(plotted_lines(alpha)) == sorted([("rgb(31, 119, 180)", 5), ("rgb(214, 39, 40)", 4)])
    assert len(alpha.with_class("point", tag="path")) >= 3, "one bar per daily return"

    index = Elements(dump_dom(files.index))
    assert len(index.with_class("js-plotly-plot")) == 1
    # Alpha's equity and drawdown lines; Beta has no point to draw yet. The legend holds the name
    # escaped, which Plotly shows as typed.
    assert len(index.with_class("trace", "scatter", tag="g")) == 2
    assert [a["data-unformatted"] for a in index.with_class("legendtext", tag="text")] == [
        f"Alpha &lt;b&gt;&amp; ({ledger['alpha']})"]
    links = [a["href"] for t, a in index.elements if t == "a" and a.get("href", "").startswith("portfolio-")]
    assert links == [f"portfolio-{ledger['alpha']}.html", f"portfolio-{ledger['beta']}.html"]

    # The picture: the equity line's colour fills part of the chart area, below the header and cards.
    shot = screenshot(files.pages[ledger["alpha"]], tmp_path / "alpha.png", 1400, 1100)
    assert colour_pixels(shot, (31, 119, 180), (0, 150, 1400, 700)) > 300
    assert colour_pixels(shot, (214, 39, 40), (0, 400, 1400, 1100)) > 300, "drawdown area and losing day"
    beta = Elements(dump_dom(files.pages[ledger["beta"]]))
    assert len(beta.with_class("js-plotly-plot")) == 1, "an empty portfolio still gets its page"


def test_a_self_contained_page_needs_no_other_file(engine, ledger, tmp_path):
    files = html_report.write_report(engine, tmp_path, ledger["alpha"], self_contained=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.html", f"portfolio-{ledger['alpha']}.html"]
    page = files.pages[ledger["alpha"]]
    assert 'src="plotly.min.js"' not in page.read_text()
    assert len(Elements(dump_dom(page)).with_class("trace", "scatter", tag="g")) == 2


def test_a_rewrite_drops_pages_of_deleted_portfolios(engine, ledger, tmp_path):
    html_report.write_report(engine, tmp_path)
    svc.delete_portfolio(engine, ledger["beta"])
    files = html_report.write_report(engine, tmp_path)
    assert sorted(p.name for p in tmp_path.glob("portfolio-*.html")) == [f"portfolio-{ledger['alpha']}.html"]
    assert "Beta" not in files.index.read_text()


# --- the CLI ---------------------------------------------------------------------------------------

@pytest.fixture
def cli(engine, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))

    def run(*argv):
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_report_html_writes_the_pages_and_says_where(cli, ledger, tmp_path):
    out = tmp_path / "html"
    code, stdout, err = cli("report", "--html", str(out), "--json")
    assert code == 0, err
    data = json.loads(stdout)
    assert data["html"] == str(out / "index.html")
    assert data["pages"] == {str(ledger["alpha"]): str(out / f"portfolio-{ledger['alpha']}.html"),
                             str(ledger["beta"]): str(out / f"portfolio-{ledger['beta']}.html")}
    assert (out / "index.html").exists() and (out / "plotly.min.js").exists()

    code, stdout, _ = cli("report", "--html", str(tmp_path / "one"), "--portfolio", str(ledger["beta"]))
    assert code == 0 and f"HTML report: {tmp_path / 'one' / 'index.html'}" in stdout
    assert sorted(p.name for p in (tmp_path / "one").glob("portfolio-*")) == [f"portfolio-{ledger['beta']}.html"]


@pytest.mark.parametrize("argv, message", [
    (("--html", "{file}"), "--html must be a directory"),
    (("--self-contained",), "--self-contained only applies with --html"),
    (("--html", "{dir}", "--portfolio", "999"), "999"),
])
def test_bad_report_options_exit_2_and_write_nothing(cli, ledger, tmp_path, argv, message):
    a_file = tmp_path / "taken"
    a_file.write_text("not a directory")
    target = tmp_path / "never"
    argv = [a.format(file=a_file, dir=target) for a in argv]
    code, _, err = cli("report", *argv)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not target.exists() and a_file.read_text() == "not a directory"


def test_trades_and_portfolio_show_name_markets_and_portfolios(cli, ledger):
    code, stdout, err = cli("trades")
    assert code == 0, err
    lines = stdout.splitlines()
    assert "portfolio" in lines[0] and "market" in lines[0]
    sell = next(line for line in lines if " sell " in line)
    assert f"{ALPHA} ({ledger['alpha']})" in sell and f"{M2_QUESTION} (M2)" in sell
    code, stdout, _ = cli("trades", "--json")
    rows = json.loads(stdout)["trades"]
    assert {(r["portfolio_name"], r["question"]) for r in rows} == {(ALPHA, M1_QUESTION), (ALPHA, M2_QUESTION)}

    code, stdout, err = cli("portfolio", "show", str(ledger["alpha"]))
    assert code == 0, err
    assert f"{M1_QUESTION} (M1)" in stdout and "M2" not in stdout.split("open positions", 1)[1]
    code, stdout, _ = cli("portfolio", "show", str(ledger["alpha"]), "--json")
    assert [(p["market_id"], p["question"]) for p in json.loads(stdout)["positions"]] == [("M1", M1_QUESTION)]

    code, stdout, err = cli("portfolio", "transfer", "--from", str(ledger["alpha"]), "--to", str(ledger["beta"]),
                            "--amount", "10")
    assert code == 0, err
    assert f"from {ALPHA} ({ledger['alpha']}) to Beta ({ledger['beta']})" in stdout


# --- the demo's report ------------------------------------------------------------------------------

@pytest.mark.slow
def test_the_demo_report_shows_each_portfolio_on_the_simulated_days(engine, tmp_path):
    import dagster as dg

    from prescient_pipeline.defs.demo import run_demo

    with dg.instance_for_test() as instance:
        result = run_demo(instance, engine, days=2, seed=7, events=300, reset=False, exports_dir=tmp_path / "csv",
                          report_dir=tmp_path / "report", progress=lambda _: None)
    assert result.report == tmp_path / "report" / "index.html"

    pages = html_report.load_pages(engine)
    assert sorted(p.name for p in pages) == sorted(r["name"] for r in result.portfolios)
    for page in pages:
        curve = page.equity_curve()
        # On the simulated clock: from the first day's cycle to the end of the second day, a
        # point per snapshot (not the minute or two of wall time the run took).
        assert curve["time"].min() >= result.start and curve["time"].max() <= result.end
        assert curve["time"].max() - curve["time"].min() > pd.Timedelta(days=1)
        assert len(page.history) == 2 and page.trades
        with engine.connect() as conn:
            questions = dict(conn.execute(text("SELECT market_id, question FROM markets")).all())
        assert all(p["question"] == questions[p["market_id"]] for p in page.positions)

    index = Elements(dump_dom(result.report))
    assert len(index.with_class("trace", "scatter", tag="g")) == 2 * len(pages)
    for page in pages:
        dom = Elements(dump_dom(result.report.parent / html_report.page_name(page.portfolio_id)))
        assert len(dom.with_class("trace", "scatter", tag="g")) == 2
        assert len(dom.with_class("trace", "bars", tag="g")) == 1
