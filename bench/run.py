"""``python -m bench``: the whole comparison, one server at a time, each started fresh as
a subprocess on 127.0.0.1 and stopped after its workload. Prints a table and writes
``bench/results/latest.json``. Workloads: ingest, latency, isolation, idle and attack
(the latency workload clean, then under gzip bombs and stalled bodies: bridges only).
``--quick`` is a one-minute smoke run."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import platform
import select
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import rawws
from bench.load import MAX_BEHIND, Callbacks, Receivers, Recorder, Sender, call_ids, drain
from bench.report import table, targets
from bench.servers import (
    PROFILED,
    ROOT,
    SOCKETIO,
    Process,
    cpus,
    raise_fd_limit,
    system_under_test,
)
from bridge.cli import new_event_loop

RESULTS = ROOT / "bench" / "results"
from bench.report import SYSTEMS  # noqa: E402

SOCKET_SYSTEMS = SYSTEMS


@dataclass
class Config:
    call_ids: int = 1000
    sockets_per_call: int = 2
    concurrency: int = 48  # callbacks in flight in the ingest workload
    warmup: float = 2.0
    seconds: float = 8.0  # measured, per ingest run
    latency_seconds: float = 8.0  # measured, per latency / isolation run
    max_inflight: int = 256  # fixed-rate sender: beyond this it falls behind schedule
    stalled_fraction: float = 0.10
    light_rate: float = 1000.0  # latency and isolation again at a rate every server takes
    idle_sockets: int = 19_500
    idle_workers: int = 2
    idle_window: float = 25.0  # covers a heartbeat round of both (bridge 20 s, Engine.IO 25 s)
    idle_systems: tuple[str, ...] = ("bridge-sqlite", "B1")  # as shipped, against B1
    attack_bombs: int = 4  # gzip bombs in flight at once, continuously
    attack_stalled: int = 50  # stalled bodies held open (headers and one byte)
    attack_alone_seconds: float = 3.0  # the attack without the victim, for its CPU cost


QUICK = Config(
    call_ids=200,
    warmup=0.5,
    seconds=2.0,
    latency_seconds=2.0,
    idle_sockets=2_000,
    idle_window=3.0,
    attack_alone_seconds=1.0,
)


def run_async(coro: Coroutine[Any, Any, dict[str, Any]]) -> dict[str, Any]:
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(coro)


class CpuMeter:
    """CPU used by the server and by this load generator over a ``with`` block."""

    def __init__(self, server: Process) -> None:
        self.process = server
        self.server = self.loadgen = self.wall = 0.0

    def __enter__(self) -> CpuMeter:
        self._start = (self.process.cpu_seconds(), time.process_time(), time.monotonic())
        return self

    def __exit__(self, *exc: object) -> None:
        server, loadgen, wall = self._start
        self.server = self.process.cpu_seconds() - server
        self.loadgen = time.process_time() - loadgen
        self.wall = time.monotonic() - wall

    @property
    def server_percent(self) -> float:
        return round(100 * self.server / self.wall, 1) if self.wall else 0.0

    @property
    def loadgen_percent(self) -> float:
        return round(100 * self.loadgen / self.wall, 1) if self.wall else 0.0


def redis_reads(url: str | None) -> int | None:
    """Redis's count of reads from client sockets so far (``INFO stats``)."""
    if url is None:
        return None
    import redis  # the bench's systems on Redis only

    with redis.Redis.from_url(url) as client:
        return int(client.info("stats")["total_reads_processed"])


# -- workloads -----------------------------------------------------------------------------


async def ingest(server: Process, cfg: Config, per_call: int) -> dict[str, Any]:
    """1: callbacks per second with ``per_call`` subscribed sockets per call_id, and the
    server's CPU time per callback (less sensitive to a busy machine than the rate)."""
    recorder = Recorder()
    ids = call_ids(cfg.call_ids)
    receivers = Receivers(server.port, server.name in SOCKETIO, recorder)
    try:
        if per_call:
            await receivers.open(ids, per_call)
        sender = Sender(server.port, Callbacks(ids), receivers.active_per_call)
        reads = redis_reads(server.redis_url)
        with CpuMeter(server) as cpu:
            result = await sender.max_rate(cfg.concurrency, cfg.warmup, cfg.seconds, recorder)
        reads_after = redis_reads(server.redis_url)
        await drain(recorder, result.expected_frames, limit=1.0)
    finally:
        receivers.close()
    per_callback = 1e6 * cpu.server / result.total_ok if result.total_ok else None
    round_trips = None
    if reads is not None and reads_after is not None and result.total_ok:
        round_trips = round((reads_after - reads - 1) / result.total_ok, 3)
    return {
        # Reads Redis made from its clients' sockets per callback: the round trips the
        # server makes per callback (one read takes a whole pipeline in).
        "redis_reads_per_callback": round_trips,
        "callbacks_per_s": round(result.rate, 1),
        "server_cpu_us_per_callback": round(per_callback) if per_callback else None,
        # What one core could take at that cost: the rate without a busy machine around.
        "server_capacity_per_s": round(1e6 / per_callback) if per_callback else None,
        "loadgen_cpu_percent": cpu.loadgen_percent,
        "errors": result.errors,
        "frames_per_s": round(len(recorder.latencies_ns) / cfg.seconds, 1),
        "sockets": cfg.call_ids * per_call,
    }


async def latency(
    server: Process, cfg: Config, rate: float, stalled_fraction: float
) -> dict[str, Any]:
    """2 and 3: callback-to-socket latency at a fixed rate, optionally with stalled sockets."""
    recorder = Recorder()
    ids = call_ids(cfg.call_ids)
    receivers = Receivers(server.port, server.name in SOCKETIO, recorder)
    stalled_calls = round(cfg.call_ids * cfg.sockets_per_call * stalled_fraction)
    try:
        await receivers.open(ids, cfg.sockets_per_call, stalled_calls)
        sender = Sender(server.port, Callbacks(ids), receivers.active_per_call)
        with CpuMeter(server) as cpu:
            result, behind = await sender.fixed_rate(
                rate, cfg.max_inflight, cfg.warmup, cfg.latency_seconds, recorder
            )
        await drain(recorder, result.expected_frames)
        closed_early = receivers.closed_early
    finally:
        receivers.close()
    return {
        **recorder.percentiles(),
        "rate_target": round(rate, 1),
        "rate_achieved": round(result.rate, 1),
        # Fell behind the schedule for good, or took clearly less than asked.
        "overloaded": behind > MAX_BEHIND or result.rate < 0.95 * rate,
        "behind_schedule_s": round(behind, 3),
        "server_cpu_percent": cpu.server_percent,
        "loadgen_cpu_percent": cpu.loadgen_percent,
        "errors": result.errors,
        "frames_received": len(recorder.latencies_ns),
        "frames_expected": result.expected_frames,
        "sockets": cfg.call_ids * cfg.sockets_per_call,
        "stalled_sockets": stalled_calls,
        "active_sockets_closed_early": closed_early,
    }


async def _warm_sockets(port: int, socketio: bool, count: int = 100) -> dict[str, Any]:
    sockets = [await rawws.connect(port, f"warm-{i}", socketio=socketio) for i in range(count)]
    rawws.close_all(sockets)
    await asyncio.sleep(1.0)
    return {}


def _read_line(proc: subprocess.Popen[str], deadline: float) -> dict[str, Any]:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
    line = proc.stdout.readline() if ready else ""
    if not line:
        raise RuntimeError("idle worker gave no report in time")
    report: dict[str, Any] = json.loads(line)
    return report


def idle(server: Process, socketio: bool, cfg: Config) -> dict[str, Any]:
    """4: memory per socket and CPU with many idle sockets (heartbeats on)."""
    run_async(_warm_sockets(server.port, socketio))
    rss_before = server.rss_kb()
    per_worker = cfg.idle_sockets // cfg.idle_workers
    hold = 120.0 + cfg.idle_window + cfg.idle_sockets / 200
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.idle",
                "--port",
                str(server.port),
                "--first",
                str(k * per_worker),
                "--count",
                str(per_worker),
                "--hold",
                str(hold),
                *(["--socketio"] if socketio else []),
            ],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for k in range(cfg.idle_workers)
    ]
    try:
        started = time.monotonic()
        deadline = started + 60.0 + cfg.idle_sockets / 100
        opened = [_read_line(w, deadline) for w in workers]
        connect_seconds = time.monotonic() - started
        time.sleep(2.0)  # let the last handshakes settle
        rss_after = server.rss_kb()
        cpu_before, t0 = server.cpu_seconds(), time.monotonic()
        time.sleep(cfg.idle_window)
        cpu_used, elapsed = server.cpu_seconds() - cpu_before, time.monotonic() - t0
        rss_end = server.rss_kb()
    finally:
        for w in workers:
            assert w.stdin is not None
            w.stdin.close()
        ends = [_read_line(w, time.monotonic() + 30.0) for w in workers]
        for w in workers:
            w.wait(30.0)
    count = sum(o["opened"] for o in opened)
    return {
        "sockets": count,
        "failed": sum(o["failed"] for o in opened),
        "alive_at_end": sum(e["alive_at_end"] for e in ends),
        "connect_seconds": round(connect_seconds, 1),
        "rss_before_mb": round(rss_before / 1024, 1),
        "rss_after_mb": round(rss_after / 1024, 1),
        "rss_end_mb": round(rss_end / 1024, 1),
        # After the window, so a heartbeat round (bridge 20 s, Engine.IO 25 s) is included.
        "kb_per_socket": round((rss_end - rss_before) / count, 2) if count else None,
        "kb_per_socket_after_connect": round((rss_after - rss_before) / count, 2)
        if count
        else None,
        "idle_cpu_percent": round(100 * cpu_used / elapsed, 2),
        "window_s": round(elapsed, 1),
    }


def under_attack(server: Process, cfg: Config, rate: float) -> dict[str, Any]:
    """5: the latency workload twice on one server, clean and then while an attacker
    (``bench.attack``, a process on the load generator's core) keeps gzip bombs in flight
    and holds stalled bodies: what hostile traffic costs a victim conversation."""
    clean = run_async(latency(server, cfg, rate, 0.0))
    clean["loadavg_1min_after"] = os.getloadavg()[0]  # a busy machine shows here
    bound = 60.0 + 2 * (cfg.warmup + cfg.latency_seconds) + cfg.call_ids / 50
    attacker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.attack",
            "--port",
            str(server.port),
            "--bombs",
            str(cfg.attack_bombs),
            "--stalled",
            str(cfg.attack_stalled),
            "--seconds",
            str(bound),
        ],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )

    def counts() -> tuple[float, float, int]:
        """(server CPU seconds, time, bombs answered so far)."""
        assert attacker.stdin is not None
        attacker.stdin.write("counts\n")
        attacker.stdin.flush()
        bombs = sum(_read_line(attacker, time.monotonic() + 30.0)["bombs"].values())
        return server.cpu_seconds(), time.monotonic(), bombs

    try:
        _read_line(attacker, time.monotonic() + 60.0)  # the bomb built, the stalls open
        # The attack alone, no victim: its cost in server CPU (not in time, so less
        # sensitive to a busy machine) and how many bombs the server answers per second.
        time.sleep(1.0)
        cpu0, t0, bombs0 = counts()
        time.sleep(cfg.attack_alone_seconds)
        cpu1, t1, bombs1 = counts()
        attacked = run_async(latency(server, cfg, rate, 0.0))
        cpu2, t2, bombs2 = counts()
        attacked["loadavg_1min_after"] = os.getloadavg()[0]
    finally:
        assert attacker.stdin is not None
        attacker.stdin.close()
        try:
            report = _read_line(attacker, time.monotonic() + 60.0)
        finally:
            try:
                attacker.wait(30.0)
            except subprocess.TimeoutExpired:
                attacker.kill()
                attacker.wait()

    def ratio(key: str) -> float | None:
        a, c = attacked.get(key), clean.get(key)
        return round(a / c, 2) if a is not None and c else None

    return {
        "rate": rate,
        "clean": clean,
        "attacked": attacked,
        "attack": report,
        "ratio": {k: ratio(k) for k in ("p50_ms", "p99_ms", "p99_window_median_ms")},
        "alone": {
            "bombs_per_s": round((bombs1 - bombs0) / (t1 - t0), 1),
            "server_cpu_percent": round(100 * (cpu1 - cpu0) / (t1 - t0), 1),
            "server_cpu_ms_per_bomb": round(1e3 * (cpu1 - cpu0) / (bombs1 - bombs0), 2)
            if bombs1 > bombs0
            else None,
        },
        # With the victim: sockets opened, warm-up and the measured window.
        "with_victim_bombs_per_s": round((bombs2 - bombs1) / (t2 - t1), 1),
        "with_victim_server_cpu_s": round(cpu2 - cpu1, 2),
    }


# -- orchestration ---------------------------------------------------------------------------


def on_server(
    system: str, cores: set[int], work: Callable[[Process], dict[str, Any]]
) -> dict[str, Any]:
    """Run ``work`` against a fresh ``system``; a failure becomes a "not run" entry."""
    print(f"  {system} ...", end=" ", flush=True)
    try:
        with system_under_test(system, cores) as server:
            result = work(server)
    except Exception as exc:  # one broken server must not cost the rest of the run
        print(f"FAILED: {exc!r}")
        return {"not_run": f"failed: {exc!r}"}
    print(json.dumps(result))
    return result


def machine() -> dict[str, Any]:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_at_start": os.getloadavg(),
        "mem_total_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
    }


def run(cfg: Config, systems: list[str], skip: set[str]) -> dict[str, Any]:
    server_cores, client_cores = cpus()
    os.sched_setaffinity(0, client_cores)
    fd_limit = raise_fd_limit()
    not_run: dict[str, str] = {}
    runnable = [s for s in systems if s not in not_run]
    out: dict[str, Any] = {
        "machine": machine(),
        "config": dataclasses.asdict(cfg),
        "pinning": {"server_cores": sorted(server_cores), "client_cores": sorted(client_cores)},
        "fd_limit": fd_limit,
        "not_run": not_run,
        "ingest": {},
        "latency": {},
        "isolation": {},
        "latency_light": {},
        "isolation_light": {},
        "idle": {},
        "attack": {},
    }

    def ingest_for(per_call: int) -> Callable[[Process], dict[str, Any]]:
        return lambda srv: run_async(ingest(srv, cfg, per_call))

    if "ingest" not in skip:
        print("ingest (callbacks/s)")
        for system in runnable:
            out["ingest"][system] = {"0": on_server(system, server_cores, ingest_for(0))}
            if system in SOCKET_SYSTEMS:
                per = cfg.sockets_per_call
                out["ingest"][system][str(per)] = on_server(system, server_cores, ingest_for(per))
    b0 = out["ingest"].get("B0", {}).get("0", {}).get("callbacks_per_s")
    rate = b0 / 2 if b0 else 1000.0
    out["latency_rate"] = {"rate": rate, "source": "half of B0's ingest" if b0 else "default"}

    out["light_rate"] = cfg.light_rate

    def latency_for(at: float, stalled: float) -> Callable[[Process], dict[str, Any]]:
        return lambda srv: run_async(latency(srv, cfg, at, stalled))

    phases = (
        ("latency", "latency", rate, 0.0),
        ("isolation", "isolation", rate, cfg.stalled_fraction),
        ("latency", "latency_light", cfg.light_rate, 0.0),
        ("isolation", "isolation_light", cfg.light_rate, cfg.stalled_fraction),
    )
    for workload, key, at, stalled in phases:
        if workload in skip:
            continue
        print(f"{key} at {at:.0f} callbacks/s, {stalled:.0%} of sockets stalled")
        out[key] = {}
        for system in runnable:
            if system in SOCKET_SYSTEMS:
                out[key][system] = on_server(system, server_cores, latency_for(at, stalled))
    if "idle" not in skip:
        print(f"idle scale, {cfg.idle_sockets} sockets")
        for system in runnable:
            if system in cfg.idle_systems:
                out["idle"][system] = on_server(
                    system, server_cores, lambda srv: idle(srv, srv.name in SOCKETIO, cfg)
                )
    if "attack" not in skip:
        print(
            f"under attack at {cfg.light_rate:.0f} callbacks/s: {cfg.attack_bombs} gzip bombs "
            f"in flight, {cfg.attack_stalled} stalled bodies"
        )
        for system in runnable:
            if system.startswith("bridge"):
                out["attack"][system] = on_server(
                    system, server_cores, lambda srv: under_attack(srv, cfg, cfg.light_rate)
                )
    out["targets"] = targets(out)
    return out


def profile(cfg: Config, systems: list[str]) -> None:
    """The bridge under pyinstrument through the ingest workload with sockets."""
    server_cores, client_cores = cpus()
    os.sched_setaffinity(0, client_cores)
    raise_fd_limit()
    per = cfg.sockets_per_call
    for system in systems:
        if system.startswith("bridge"):
            print(f"ingest, {per} sockets per call_id, {system} under pyinstrument")
            work = lambda srv: run_async(ingest(srv, cfg, per))  # noqa: E731
            on_server(f"{PROFILED}{system}", server_cores, work)
            print(f"profile written to {RESULTS / f'profile-{system}.txt'}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a ~1 minute smoke run")
    parser.add_argument("--systems", nargs="+", choices=SYSTEMS, default=list(SYSTEMS))
    parser.add_argument(
        "--skip",
        nargs="+",
        default=[],
        choices=["ingest", "latency", "isolation", "idle", "attack"],
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "latest.json")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="only profile the bridge (pyinstrument) under ingest with sockets; "
        "writes bench/results/profile-<system>.txt",
    )
    parser.add_argument(
        "--report", type=Path, help="print the table and targets of an earlier run's JSON"
    )
    args = parser.parse_args()
    if args.report:
        out = json.loads(args.report.read_text())
        out["targets"] = targets(out)
        print(table(out))
        return
    cfg = QUICK if args.quick else Config()
    if args.profile:
        profile(cfg, args.systems)
        return
    started = time.monotonic()
    out = run(cfg, args.systems, set(args.skip))
    out["quick"] = args.quick
    out["wall_seconds"] = round(time.monotonic() - started, 1)
    out["machine"]["loadavg_at_end"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print()
    print(table(out))
    print(f"\n{out['wall_seconds']} s; written to {args.out}")
