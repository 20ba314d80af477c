"""Markdown tables for Dagster metadata, with every text cell escaped.

Portfolio names, market questions and signal reasons are text from users and from Polymarket: a
`|` would split a table cell, and `![x](http://...)` or `<img>` would make every viewer's browser
fetch a remote address. Escaped, they show as the literal text.
"""

from __future__ import annotations

import html
import re

import dagster as dg
import pandas as pd

# Characters that start Markdown inline constructs (links, images, emphasis, code, strikethrough)
# or end a table cell; `<`, `>` and `&` are HTML and become entities instead.
_INLINE_MARKUP = re.compile(r"([\\`*_\[\]()!|~])")
_LINE_BREAKS = re.compile(r"[\x00-\x1f\x7f]+")


def escape_markdown(value: object) -> str:
    """`value` as literal text inside a Markdown table cell."""
    text = _LINE_BREAKS.sub(" ", str(value))
    return html.escape(_INLINE_MARKUP.sub(r"\\\1", text), quote=False)


def markdown_table(frame: pd.DataFrame, *, empty: str, **to_markdown) -> dg.MetadataValue:
    """A metadata Markdown table of `frame` (text escaped), or `empty` in italics when it has no rows."""
    if frame.empty:
        return dg.MetadataValue.md(f"_{escape_markdown(empty)}_")
    escaped = frame.map(lambda v: escape_markdown(v) if isinstance(v, str) else v).rename(columns=escape_markdown)
    return dg.MetadataValue.md(escaped.to_markdown(index=False, **to_markdown))
