"""Prometheus metrics, one registry per application so tests can run many apps.

Under ``serve --workers N`` the supervisor sets ``PROMETHEUS_MULTIPROC_DIR`` before it
starts the workers: prometheus-client then keeps every worker's values in files there, and
whichever worker answers ``/metrics`` sums them all (open sockets: over the living
workers), with ``process_*`` per worker (a ``pid`` label). One process: its own registry
with its ``process_*`` metrics.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable

from prometheus_client import (
    PLATFORM_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Metric,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from bridge import logs

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.callbacks = Counter(
            "bridge_callbacks",
            "Vendor callbacks by event and outcome",
            ["event", "outcome"],
            registry=r,
        )
        # The two children every callback counts into, looked up once: labels() takes a
        # lock and builds a tuple each call.
        self.stored = self.callbacks.labels("message.send", "stored")
        self.ignored = self.callbacks.labels("other", "ignored")
        self.rejections = Counter(
            "bridge_rejections", "Requests and frames refused, by reason", ["reason"], registry=r
        )
        self.sockets = Gauge(
            "bridge_open_sockets",
            "Open WebSocket connections",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.delivered = Counter(
            "bridge_messages_delivered", "Message frames written to sockets", registry=r
        )
        self.overflows = Counter(
            "bridge_queue_overflows",
            "Sockets closed because their send queue was full",
            registry=r,
        )
        self.forwards = Counter(
            "bridge_upstream_forwards",
            "Person messages forwarded upstream, by outcome (failed = gave up)",
            ["outcome"],
            registry=r,
        )
        # Every worker reads the same queues from the shared store: one value, not a sum.
        self.upstream_waiting = Gauge(
            "bridge_upstream_waiting",
            "Person messages waiting for the bot",
            registry=r,
            multiprocess_mode="livemax",
        )
        self.upstream_oldest = Gauge(
            "bridge_upstream_oldest_seconds",
            "Age of the oldest person message waiting for the bot",
            registry=r,
            multiprocess_mode="livemax",
        )
        self.latency = Histogram(
            "bridge_send_queue_wait_seconds",
            "Time a frame waited in a socket's queue before it was written (most frames are "
            "written at once and never wait: bridge_messages_delivered_total counts all)",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
            registry=r,
        )
        r.register(logs.DROPPED)
        ProcessCollector(registry=r)
        r.register(PLATFORM_COLLECTOR)

    def count_sessions(self, count: Callable[[], int | None]) -> None:
        """``bridge_sessions``, read when scraped, for a store that knows its sessions (the
        memory store; on Redis they expire inside Redis, and there is no such gauge)."""
        if count() is None:
            return
        sessions = Gauge("bridge_sessions", "Sessions kept by this process", registry=self.registry)
        sessions.set_function(lambda: count() or 0)

    def exposition(self) -> bytes:
        """The text of ``/metrics``: all workers' when there are several."""
        path = os.environ.get(MULTIPROC_DIR)
        if not path:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=path)  # type: ignore[no-untyped-call]
        registry.register(WorkerProcesses(path))
        return generate_latest(registry)


class WorkerProcesses(Collector):
    """``process_*`` of every living worker that has metrics files, labelled by ``pid``."""

    FILE = re.compile(r"_(\d+)\.db$")

    def __init__(self, path: str) -> None:
        self.path = path

    def collect(self) -> Iterable[Metric]:
        pids = sorted(
            {int(m.group(1)) for f in os.listdir(self.path) if (m := self.FILE.search(f))}
        )
        merged: dict[str, Metric] = {}
        for pid in pids:
            if not os.path.exists(f"/proc/{pid}"):
                continue
            for family in ProcessCollector(pid=_fixed(pid), registry=None).collect():
                into = merged.setdefault(
                    family.name, Metric(family.name, family.documentation, family.type)
                )
                for sample in family.samples:
                    into.add_sample(sample.name, {**sample.labels, "pid": str(pid)}, sample.value)
        return merged.values()


def _fixed(pid: int) -> Callable[[], int]:
    return lambda: pid
