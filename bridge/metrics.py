"""Prometheus metrics, one registry per application so tests can run many apps."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


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
        self.rejections = Counter(
            "bridge_rejections", "Requests and frames refused, by reason", ["reason"], registry=r
        )
        self.sockets = Gauge("bridge_open_sockets", "Open WebSocket connections", registry=r)
        self.sessions = Gauge("bridge_sessions", "Sessions kept by this process", registry=r)
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
        self.upstream_waiting = Gauge(
            "bridge_upstream_waiting", "Person messages waiting for the bot", registry=r
        )
        self.upstream_oldest = Gauge(
            "bridge_upstream_oldest_seconds",
            "Age of the oldest person message waiting for the bot",
            registry=r,
        )
        self.latency = Histogram(
            "bridge_callback_to_socket_seconds",
            "From a callback being accepted to its frame being written to a socket",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
            registry=r,
        )
