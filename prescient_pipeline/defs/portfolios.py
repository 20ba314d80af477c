"""Portfolios in Dagster: the `portfolios` dynamic partitions, kept in step with the table,
and `manage_portfolio_job` for managing portfolios from the UI's launchpad."""

from typing import Optional

import dagster as dg
from sqlalchemy.exc import SQLAlchemyError

from ..dagster_home import PORTFOLIO_PARTITIONS, register_portfolio, unregister_portfolio
from ..errors import InputError, one_line
from ..services import portfolios as svc
from ..services.portfolio_keys import live_portfolio_ids
from .resources import Database

portfolios_partitions = dg.DynamicPartitionsDefinition(name=PORTFOLIO_PARTITIONS)

# Partition keys are portfolio ids; runs also carry the name, so the UI shows (and filters by) it.
PORTFOLIO_TAG = "prescient/portfolio"
PORTFOLIO_NAME_TAG = "prescient/portfolio_name"


def portfolio_tags(portfolio_id: int | str, name: str | None) -> dict[str, str]:
    tags = {PORTFOLIO_TAG: str(portfolio_id)}
    if name:
        tags[PORTFOLIO_NAME_TAG] = name[:200]
    return tags


@dg.sensor(
    name="portfolio_partitions_sensor",
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Adds a partition key per portfolio and removes archived and deleted ones.",
)
def portfolio_partitions_sensor(context: dg.SensorEvaluationContext, database: Database):
    wanted = {str(pid) for pid in live_portfolio_ids(database.engine())}
    have = set(context.instance.get_dynamic_partitions(PORTFOLIO_PARTITIONS))
    to_add, to_remove = sorted(wanted - have, key=int), sorted(have - wanted)
    if not (to_add or to_remove):
        return dg.SkipReason(f"{len(have)} portfolio partitions already match the table")
    requests = []
    if to_add:
        requests.append(portfolios_partitions.build_add_request(to_add))
    if to_remove:
        requests.append(portfolios_partitions.build_delete_request(to_remove))
    context.log.info(f"adding {to_add}, removing {to_remove}")
    return dg.SensorResult(dynamic_partitions_requests=requests)


class ManagePortfolio(dg.Config):
    """One management action; fields a given action does not use are ignored."""

    action: str  # one of ACTIONS
    portfolio_id: Optional[int] = None
    name: Optional[str] = None
    strategy: Optional[str] = None
    balance: Optional[str] = None
    config_json: Optional[str] = None  # update: merged into the stored config key by key
    replace_config: bool = False  # update: config_json replaces the stored config whole
    description: Optional[str] = None
    max_position_size: Optional[str] = None
    max_total_exposure: Optional[str] = None
    max_positions: Optional[int] = None
    reason: Optional[str] = None


ACTIONS = ("create", "update", "pause", "resume", "archive")


def _apply(engine, cfg: ManagePortfolio) -> dict:
    if cfg.action not in ACTIONS:
        raise InputError(f"action must be one of {', '.join(ACTIONS)}, not {cfg.action!r}")
    if cfg.action == "create":
        new = svc.NewPortfolio.parse(
            name=cfg.name, strategy=cfg.strategy, balance=cfg.balance, config=cfg.config_json,
            description=cfg.description, max_position_size=cfg.max_position_size,
            max_total_exposure=cfg.max_total_exposure, max_positions=cfg.max_positions,
        )
        return svc.create_portfolio(engine, new)
    if cfg.portfolio_id is None:
        raise InputError(f"{cfg.action} needs portfolio_id")
    if cfg.action == "update":
        fields = {"name": cfg.name, "description": cfg.description, "strategy_config": cfg.config_json,
                  "max_position_size": cfg.max_position_size, "max_total_exposure": cfg.max_total_exposure,
                  "max_positions": cfg.max_positions}
        return svc.update_portfolio(engine, cfg.portfolio_id, {k: v for k, v in fields.items() if v is not None},
                                    replace_config=cfg.replace_config)
    status = {"pause": "paused", "resume": "active", "archive": "archived"}[cfg.action]
    return svc.set_status(engine, cfg.portfolio_id, status, cfg.reason)


@dg.op(description="Create, update, pause, resume or archive a portfolio, validated like the CLI.")
def manage_portfolio(context: dg.OpExecutionContext, config: ManagePortfolio, database: Database) -> dict:
    try:
        row = _apply(database.engine(), config)
    except ValueError as exc:  # InputError and strategy ConfigError: one clear line, nothing written
        raise dg.Failure(description=str(exc), allow_retries=False) from None
    except SQLAlchemyError as exc:  # the transaction rolled back: say so, in one line
        cause = one_line(getattr(exc, "orig", None) or exc)
        raise dg.Failure(description=f"{config.action} failed in the database, nothing was changed: {cause}") from None
    if row["status"] == "archived":
        unregister_portfolio(context.instance, row["portfolio_id"])
    else:
        register_portfolio(context.instance, row["portfolio_id"])
    context.add_output_metadata({
        "portfolio_id": dg.MetadataValue.int(row["portfolio_id"]),
        "name": dg.MetadataValue.text(row["name"]),
        "status": dg.MetadataValue.text(row["status"]),
        "strategy_type": dg.MetadataValue.text(row["strategy_type"]),
    })
    return {"portfolio_id": row["portfolio_id"], "status": row["status"]}


@dg.job(description="Manage a portfolio from the launchpad (same validation as `prescient portfolio`).")
def manage_portfolio_job():
    manage_portfolio()
