"""Runs killed with their process, marked failed while the daemon runs (see abandoned_runs)."""

import dagster as dg

from ..abandoned_runs import fail_abandoned_runs


@dg.sensor(
    name="abandoned_runs_sensor",
    minimum_interval_seconds=120,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Marks failed the STARTED runs of this machine whose process is gone (killed, or "
    "lost in a reboot); Dagster's run monitoring cannot tell with the default run launcher.",
)
def abandoned_runs_sensor(context: dg.SensorEvaluationContext):
    failed = fail_abandoned_runs(context.instance)
    if failed:
        context.log.warning(f"marked failed {len(failed)} run(s) whose process was killed: {', '.join(failed)}")
    return dg.SkipReason(f"{len(failed)} killed run(s) marked failed" if failed else "no killed runs")
