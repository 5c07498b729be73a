"""Bounds on what one client can cost: sockets held, and client frames per second."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from bridge.config import Settings
from bridge.errors import HandshakeRefused


class SocketSlots:
    """Open sockets in this process, in all and per call_id, counted before the upgrade."""

    def __init__(self, total: int, per_call: int) -> None:
        self.total = total
        self.per_call = per_call
        self.open = 0
        self._by_call: Counter[str] = Counter()

    @contextmanager
    def take(self, call_id: str) -> Iterator[None]:
        """Hold one slot for ``call_id`` while the block runs, or :class:`HandshakeRefused`."""
        if self.open >= self.total:
            raise HandshakeRefused(503, "server_full", "too many open sockets, try again later")
        if self._by_call[call_id] >= self.per_call:
            raise HandshakeRefused(
                429, "too_many_sockets", f"at most {self.per_call} sockets per call_id"
            )
        self.open += 1
        self._by_call[call_id] += 1
        try:
            yield
        finally:
            self.open -= 1
            self._by_call[call_id] -= 1
            if not self._by_call[call_id]:
                del self._by_call[call_id]


# A client sending at exactly the rate refills 1/rate x rate = 0.999... tokens: not a refusal.
FLOAT_SLACK = 1e-9


@dataclass(frozen=True)
class Verdict:
    """What to do with a client frame that may not reach the handler."""

    code: str
    detail: str
    close: bool = False  # close the socket (1008) instead of answering with an error frame


class FrameGate:
    """Per socket: a token bucket of ``frame_burst`` frames refilled at ``frames_per_second``,
    and the widget token's expiry. A socket that keeps sending while refused, without ever
    pausing long enough to refill its bucket, is closed after ``frame_abuse_limit`` refusals."""

    def __init__(
        self,
        settings: Settings,
        token_expires: int | None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.rate = settings.frames_per_second
        self.burst = float(settings.frame_burst)
        self.abuse_limit = settings.frame_abuse_limit
        self.token_expires = token_expires
        self._clock = clock or time.monotonic
        self._tokens = self.burst
        self._stamp = self._clock()
        self._refused = 0

    def check(self) -> Verdict | None:
        """None when the frame may be handled."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if self._tokens >= self.burst:
            self._refused = 0  # the client paused: it is not abusing
        if self._tokens < 1 - FLOAT_SLACK:
            self._refused += 1
            if self._refused >= self.abuse_limit:
                return Verdict("rate_limited", "too many frames, closing", close=True)
            return Verdict(
                "rate_limited", f"at most {self.rate:g} frames per second; this one was dropped"
            )
        self._tokens -= 1
        if self.token_expires is not None and time.time() >= self.token_expires:
            return Verdict(
                "token_expired", "the widget token has expired: reconnect with a new token"
            )
        return None
