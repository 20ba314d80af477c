"""README's commands are real: every literal `prescient ...` line parses with the actual CLI."""

import re
import shlex
from pathlib import Path

import pytest

from prescient_pipeline.cli import build_parser

README = Path(__file__).resolve().parents[1] / "README.md"


def command_lines() -> list[str]:
    text = README.read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    lines = []
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("#", 1)[0].strip()
            for part in line.split("&&"):
                part = part.strip()
                # Shorthand lines (alternatives, placeholders) are prose, not commands.
                if part.startswith("prescient ") and "|" not in part and " ID" not in part:
                    lines.append(part)
    return lines


def test_readme_has_the_two_quick_start_commands():
    text = README.read_text()
    assert 'pip install -e ".[dev]" && prescient demo' in text
    assert "```bash\npytest\n```" in text


@pytest.mark.parametrize("line", command_lines())
def test_readme_command_parses(line):
    args = build_parser().parse_args(shlex.split(line)[1:])
    assert callable(args.handler)
