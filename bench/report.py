"""The table and the targets of a ``python -m bench`` run (also ``--report FILE``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

SYSTEMS = (
    "bridge-sqlite",
    "bridge-quiet",
    "bridge-memory",
    "bridge-redis",
    "bridge-redis-2w",
    "B0",
    "B1",
    "B2",
)


# -- targets and table -------------------------------------------------------------------------


def _get(out: dict[str, Any], *path: str) -> Any:
    node: Any = out
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def _check(name: str, value: Any, limit: Any, ok: Callable[[float, float], bool]) -> dict[str, Any]:
    if value == OVERLOADED:
        return {"target": name, "value": value, "limit": limit, "met": False}
    if value is None or limit is None:
        return {"target": name, "value": value, "limit": limit, "met": None}
    return {
        "target": name,
        "value": round(value, 3),
        "limit": round(limit, 3),
        "met": ok(value, limit),
    }


OVERLOADED = "overloaded, no frame measured"


def _ratio(a: Any, b: Any) -> Any:
    if OVERLOADED in (a, b):
        return OVERLOADED
    return a / b if a is not None and b else None


def _p99(out: dict[str, Any], section: str, system: str) -> Any:
    entry = _get(out, section, system)
    if entry and entry.get("overloaded") and entry.get("p99_ms") is None:
        return OVERLOADED
    return _get(out, section, system, "p99_ms")


def _cpu(out: dict[str, Any], system: str, per_call: str = "2") -> Any:
    return _get(out, "ingest", system, per_call, "server_cpu_us_per_callback")


def targets(out: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, on server CPU per callback with 2 sockets per call_id (B0 gets
    the same fan-out), as-shipped bridge (``bridge-sqlite``: SQLite, access log on)."""
    le = float.__le__
    light = out.get("light_rate", 1000.0)
    shipped, b0, b1 = _cpu(out, "bridge-sqlite"), _cpu(out, "B0"), _cpu(out, "B1")
    redis, b2 = _cpu(out, "bridge-redis"), _cpu(out, "B2")
    kb = _get(out, "idle", "bridge-sqlite", "kb_per_socket")
    b1_kb = _get(out, "idle", "B1", "kb_per_socket")
    p99 = _p99(out, "latency_light", "bridge-sqlite")
    return [
        _check("CPU/callback, 2 sockets: as shipped / B0 <= 2", _ratio(shipped, b0), 2.0, le),
        _check("CPU/callback, 2 sockets: as shipped / B1 <= 0.5", _ratio(shipped, b1), 0.5, le),
        _check("CPU/callback, 2 sockets: Redis / B2 <= 0.5", _ratio(redis, b2), 0.5, le),
        _check(
            "CPU/callback, 2 sockets: Redis, 2 workers / 1 worker <= 1.1",
            _ratio(_cpu(out, "bridge-redis-2w"), redis),
            1.1,
            le,
        ),
        _check(
            f"p99 at {light:.0f}/s: as shipped / B1 <= 1",
            _ratio(p99, _p99(out, "latency_light", "B1")),
            1.0,
            le,
        ),
        _check(
            f"p99 at {light:.0f}/s: Redis / B2 <= 1",
            _ratio(_p99(out, "latency_light", "bridge-redis"), _p99(out, "latency_light", "B2")),
            1.0,
            le,
        ),
        _check("idle: bridge / B1 per-socket memory <= 0.7", _ratio(kb, b1_kb), 0.7, le),
        _check(
            "aim: CPU/callback, 2 sockets: as shipped / B0 <= 1.25", _ratio(shipped, b0), 1.25, le
        ),
    ]


def _cell(
    out: dict[str, Any], section: str, system: str, fmt: Callable[[dict[str, Any]], str]
) -> str:
    if system in out["not_run"]:
        return "not run"
    entry = out.get(section, {}).get(system)
    if entry is None:
        return "-"
    if "not_run" in entry:
        return "failed"
    try:
        return fmt(entry)
    except KeyError:  # a part of the workload failed (its entry says why in the JSON)
        return "failed"


def _latency(e: dict[str, Any]) -> str:
    if e["p50_ms"] is None:
        return f"overloaded: took {e['rate_achieved']:.0f}/s, no frame measured"
    text = f"{e['p50_ms']:.1f} / {e['p99_ms']:.1f} / {e['p999_ms']:.1f}"
    text += f" (m99 {e['p99_window_median_ms']:.1f})"
    if e["overloaded"]:
        text += f" overloaded: took {e['rate_achieved']:.0f}/s"
    return text


def _attacked(e: dict[str, Any]) -> str:
    return _latency(e["attacked"])


def _attack_cost(e: dict[str, Any]) -> str:
    """p99 and m99 under attack / clean; the server's CPU clean -> attacked; the answers."""
    ratio, attack = e["ratio"], e["attack"]
    bombs, stalled = attack.get("bombs", {}), attack.get("stalled", {})
    others = sum(bombs.values()) - bombs.get("413", 0) + sum(stalled.values())
    others -= stalled.get("408", 0)
    text = f"p99 x{ratio['p99_ms']}, m99 x{ratio['p99_window_median_ms']}; "
    cpu = e["clean"]["server_cpu_percent"], e["attacked"]["server_cpu_percent"]
    text += f"server CPU {cpu[0]}% -> {cpu[1]}%; "
    text += f"{bombs.get('413', 0)} bombs 413, {stalled.get('408', 0)} stalls 408"
    if "alone" in e:  # the attack without the victim
        alone = e["alone"]
        text += f"; alone {alone['bombs_per_s']:.0f} bombs/s at {alone['server_cpu_percent']}%"
        text += f" CPU, {alone['server_cpu_ms_per_bomb']} ms CPU per bomb"
    text += f", {others} other" if others else ""
    load = e["clean"].get("loadavg_1min_after"), e["attacked"].get("loadavg_1min_after")
    return text + (f"; load average {load[0]:.1f}, {load[1]:.1f}" if None not in load else "")


def table(out: dict[str, Any]) -> str:
    rate, light = out["latency_rate"]["rate"], out["light_rate"]
    cfg = out.get("config", {})
    rows: list[tuple[str, str, Callable[[dict[str, Any]], str]]] = [
        ("ingest, 0 sockets: callbacks/s", "ingest", lambda e: f"{e['0']['callbacks_per_s']:.0f}"),
        (
            "ingest, 2 sockets/call_id: callbacks/s",
            "ingest",
            lambda e: f"{e['2']['callbacks_per_s']:.0f}" if "2" in e else "n/a",
        ),
        (
            "ingest: server CPU µs per callback, 0 / 2 sockets",
            "ingest",
            lambda e: " / ".join(
                str(e[k].get("server_cpu_us_per_callback")) for k in ("0", "2") if k in e
            ),
        ),
        (
            "ingest: Redis reads per callback, 0 / 2 sockets (round trips)",
            "ingest",
            lambda e: " / ".join(
                str(e.get(k, {}).get("redis_reads_per_callback")) for k in ("0", "2")
            ),
        ),
        (f"latency at {rate:.0f}/s: p50 / p99 / p99.9 (m99) ms", "latency", _latency),
        ("isolation, 10% stalled, same rate", "isolation", _latency),
        (f"latency at {light:.0f}/s", "latency_light", _latency),
        (f"isolation at {light:.0f}/s, 10% stalled", "isolation_light", _latency),
        ("idle: KB RSS per socket", "idle", lambda e: f"{e['kb_per_socket']}"),
        ("idle: CPU % of one core", "idle", lambda e: f"{e['idle_cpu_percent']}"),
        (
            f"latency at {light:.0f}/s, clean (before the attack)",
            "attack",
            lambda e: _latency(e["clean"]),
        ),
        (
            f"the same under attack: {cfg.get('attack_bombs')} gzip bombs in flight, "
            f"{cfg.get('attack_stalled')} stalled bodies",
            "attack",
            _attacked,
        ),
        ("under attack / clean; server CPU; attack answered", "attack", _attack_cost),
    ]
    rows = [r for r in rows if out.get(r[1])]  # the workloads of this run
    systems = [
        s for s in SYSTEMS if any(s in out.get(r[1], {}) or s in out["not_run"] for r in rows)
    ]
    lines = [
        "| workload | " + " | ".join(systems) + " |",
        "|---|" + "---|" * len(systems),
    ]
    for label, section, fmt in rows:
        cells = [_cell(out, section, s, fmt) for s in systems]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", "| target | value | limit | met |", "|---|---|---|---|"]
    for t in out["targets"]:
        met = {True: "met", False: "MISSED", None: "not measured"}[t["met"]]
        lines.append(f"| {t['target']} | {t['value']} | {t['limit']} | {met} |")
    return "\n".join(lines)
