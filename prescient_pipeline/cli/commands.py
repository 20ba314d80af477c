"""Which subcommands exist; each module adds its own."""

from __future__ import annotations


def register(sub, common) -> None:
    from . import (
        backtest_commands,
        db_commands,
        demo_commands,
        dev_commands,
        history_commands,
        import_commands,
        ledger_commands,
        portfolio_commands,
        simulator_commands,
        status_commands,
        strategy_commands,
    )

    for module in (db_commands, dev_commands, simulator_commands, portfolio_commands, strategy_commands,
                   ledger_commands, import_commands, history_commands, backtest_commands, demo_commands,
                   status_commands):
        module.register(sub, common)
