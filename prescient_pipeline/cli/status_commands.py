"""`prescient status`: is everything a user relies on there and healthy? Exit 1 when not."""

from __future__ import annotations

import time

from ..config import settings
from . import Output
from .api_reachability import HINT as UNREACHABLE_HINT

DAEMON_STALE_SECONDS = 120


def register(sub, common) -> None:
    s = sub.add_parser("status", parents=[common], help="database, API, Dagster daemon and freshness")
    s.set_defaults(handler=_status)


def _dagster_status() -> dict:
    from .. import dagster_home

    instance = dagster_home.instance()
    now = time.time()
    beats = instance.get_daemon_heartbeats()
    daemons = {name: round(now - beat.timestamp) for name, beat in beats.items()}
    running = bool(daemons) and min(daemons.values()) < DAEMON_STALE_SECONDS
    return {"daemon_running": running, "heartbeat_age_seconds": daemons,
            "schedules_and_sensors": _instigator_states(instance), "dagster_home": str(settings().dagster_home)}


def _instigator_states(instance) -> dict[str, str]:
    """RUNNING or STOPPED for every schedule and sensor: what a user set in the UI, else the
    default the definition declares (the instance stores DECLARED_IN_CODE for those)."""
    from ..definitions import defs

    states = {d.name: d.default_status.value for d in [*defs.schedules, *defs.sensors]}
    for stored in instance.all_instigator_state():
        if stored.instigator_name in states and stored.status.value in ("RUNNING", "STOPPED"):
            states[stored.instigator_name] = stored.status.value
    return states


def _status(args) -> Output:
    from ..db.engine import get_engine
    from ..db.urls import redact
    from ..polymarket.client import PolymarketClient
    from ..domain.settlement import MARKET_MISSING
    from ..services.status import database_status, describe_flag

    problems, warnings = [], []
    data: dict = {"prescient_home": str(settings().home)}
    try:
        engine = get_engine()
        data["database"] = {"url": redact(engine.url.render_as_string(hide_password=False)), **database_status(engine)}
        if not data["database"]["migrated"]:
            problems.append("database is not migrated: run `prescient db upgrade`")
        for line in data["database"].get("unbalanced", []):
            problems.append(line)
        # A vanished market is a problem (nothing will ever settle it); a resolution under way
        # or without a payable answer is worth a look.
        for row in data["database"].get("flagged_positions", []):
            (problems if row["flag"] == MARKET_MISSING else warnings).append(describe_flag(row))
        if data["database"].get("last_refresh", {}).get("at") is None and data["database"]["migrated"]:
            warnings.append("markets were never refreshed")
    except Exception as exc:  # unreachable server, bad URL
        data["database"] = {"reachable": False, "error": str(exc).splitlines()[0]}
        problems.append(f"database unreachable: {data['database']['error']}")

    current = settings()
    if current.api_source == "offline":
        # Offline by choice, and nothing serves the offline world right now: not a fault. The
        # live API is not asked; this home's commands do not use it.
        data["polymarket"] = {"source": "offline", "offline": True, "simulator_running": False}
    else:
        client = PolymarketClient.from_settings()
        data["polymarket"] = {"gamma_url": client.gamma_url, "clob_url": client.clob_url,
                              "source": current.api_source, "offline": current.api_source == "offline simulator",
                              **client.ping()}
        for api in ("gamma", "clob"):
            if not data["polymarket"].get(api):
                problems.append(f"{api} API unreachable at {getattr(client, api + '_url')}"
                                + (f": {UNREACHABLE_HINT}" if current.api_source == "default" else ""))

    if data["database"].get("reachable"):
        try:
            data["dagster"] = _dagster_status()
            if not data["dagster"]["daemon_running"]:
                warnings.append("Dagster daemon not running: schedules and sensors are idle (start `prescient dev`)")
        except Exception as exc:
            data["dagster"] = {"error": str(exc).splitlines()[0]}
            problems.append(f"Dagster instance unavailable: {data['dagster']['error']}")

    data["problems"], data["warnings"] = problems, warnings
    return Output(data, _text(data), exit_code=1 if problems else 0)


def _text(data: dict) -> str:
    db = data["database"]
    lines = [f"home: {data['prescient_home']}"]
    if db.get("reachable"):
        lines.append(f"database: {db['url']} (revision {db['revision']}, head {db['head']})")
        refresh = db.get("last_refresh") or {}
        lines.append(f"last refresh: {refresh.get('at') or 'never'} ({refresh.get('markets') or 0} markets)")
        lines.append(f"last price update: {db.get('last_price_update') or 'never'}")
        for p in db.get("portfolios", []):
            mode = "" if p.get("mode", "live") == "live" else f" ({p['mode']})"
            lines.append(f"  portfolio {p['portfolio_id']} {p['name']}{mode} [{p['status']}]: last cycle "
                         f"{p['last_cycle'] or 'never'}, last price update {p['last_price_update'] or 'never'}")
    pm = data["polymarket"]
    if pm["source"] == "offline":
        lines.append("polymarket: offline (this home runs on its offline world; the live API is not used). "
                     "No simulator is running: `prescient dev --offline` serves it")
    else:
        lines.append(f"gamma {pm['gamma_url']}: {'ok' if pm.get('gamma') else 'UNREACHABLE'}; "
                     f"clob {pm['clob_url']}: {'ok' if pm.get('clob') else 'UNREACHABLE'} (from {pm['source']})")
    dagster = data.get("dagster", {})
    if "daemon_running" in dagster:
        states = dagster["schedules_and_sensors"]
        stopped = sorted(name for name, state in states.items() if state != "RUNNING")
        lines.append(f"dagster daemon: {'running' if dagster['daemon_running'] else 'not running'}; "
                     f"schedules and sensors: {len(states) - len(stopped)} running"
                     + (f", stopped: {', '.join(stopped)}" if stopped else ""))
    lines += [f"PROBLEM: {p}" for p in data["problems"]] + [f"warning: {w}" for w in data["warnings"]]
    lines.append("status: " + ("problems found" if data["problems"] else "ok"))
    return "\n".join(lines)
