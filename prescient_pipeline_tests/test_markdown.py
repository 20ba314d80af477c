"""User text in the Markdown tables of Dagster metadata shows as literal text."""

import html
import re

import dagster as dg
import pandas as pd
from markdown_it import MarkdownIt

from prescient_pipeline.defs.markdown import escape_markdown, markdown_table
from prescient_pipeline.services import portfolios as svc

from .helpers import run_job

HOSTILE = [
    "Trump | Harris",
    "![pixel](http://tracker.example/p.png)",
    '<img src="http://tracker.example/p.png">',
    "[click](javascript:alert(1)) **bold** `code` ~~gone~~ \\| & done",
]


def render(md: str) -> str:
    """Render like a permissive viewer: CommonMark + GFM tables, raw HTML allowed."""
    return MarkdownIt("commonmark", {"html": True}).enable("table").render(md)



def body_rows(rendered: str) -> list[list[str]]:
    """The text of each body cell, row by row."""
    body = rendered.split("<tbody>")[1].split("</tbody>")[0]
    return [[html.unescape(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
            for row in body.split("<tr>")[1:]]


def test_hostile_text_stays_one_cell_of_literal_text():
    frame = pd.DataFrame({"market_id": [str(i) for i in range(len(HOSTILE))], "question": HOSTILE,
                          "yes_price": [0.25, 0.5, 0.75, 0.125]})
    rendered = render(markdown_table(frame, empty="none").value)
    assert "<img" not in rendered and "<a " not in rendered and "<strong>" not in rendered
    assert "<code>" not in rendered and "<del>" not in rendered
    rows = body_rows(rendered)
    assert [len(r) for r in rows] == [3] * len(HOSTILE), "a | in the text must not add a cell"
    assert [r[1] for r in rows] == HOSTILE, "the reader sees exactly what was typed"


def test_escape_keeps_a_table_row_on_one_line():
    assert "\n" not in escape_markdown("a\nb\r\nc") and escape_markdown("plain words 0.55") == "plain words 0.55"


def test_empty_frame_says_so():
    assert markdown_table(pd.DataFrame(), empty="no signals").value == "_no signals_"


def test_snapshot_job_table_escapes_portfolio_names(engine):
    name = "ours | theirs ![x](http://tracker.example/x.png) <img src=x>"
    svc.create_portfolio(engine, svc.NewPortfolio.parse(name=name, strategy="momentum", balance="100"))
    with dg.instance_for_test() as instance:
        result = run_job("portfolio_snapshot_job", instance)
    assert result.success
    outputs = [e for e in result.all_node_events if e.is_successful_output]
    table = next(e.step_output_data.metadata["portfolios"].value for e in outputs
                 if "portfolios" in e.step_output_data.metadata)
    rendered = render(table)
    assert "<img" not in rendered
    header = rendered.split("<thead>")[1].split("</thead>")[0].count("<th")
    [row] = body_rows(rendered)
    assert len(row) == header and name in row
