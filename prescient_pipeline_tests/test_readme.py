"""README's commands are real: every literal `prescient ...` line parses with the actual CLI."""

import json
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


def _config_keys(strategy: str | None) -> set[str]:
    from prescient_pipeline.domain.strategies.registry import available_strategies, get_strategy

    names = [strategy] if strategy else list(available_strategies())
    return {key for name in names for key in get_strategy(name).default_config}


def test_readme_config_examples_use_real_keys():
    """Every `--config '{...}'` in README names keys its strategy has."""
    examples = re.findall(r"(?:--strategy|validate) (\w+)[^\n]*?(?:\\\n[^\n]*?)?--config '(\{[^']*\})'",
                          README.read_text())
    assert examples, "README shows no config example"
    for strategy, config in examples:
        unknown = set(json.loads(config)) - _config_keys(strategy)
        assert not unknown, f"README's {strategy} config names keys that do not exist: {unknown}"


def test_readme_strategy_keys_exist():
    """The strategies paragraph names config keys in backticks; each one is a real key."""
    paragraph = next(p for p in README.read_text().split("\n\n") if p.startswith("Strategies:"))
    named = {w for w in re.findall(r"`([a-z0-9_]+)`", paragraph) if "_" in w}
    assert {"trade_amount", "equity_fraction", "sizing_mode"} <= named
    assert not named - _config_keys(None), f"README names config keys that do not exist: {named - _config_keys(None)}"
