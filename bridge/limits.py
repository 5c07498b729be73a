"""Bounds on what one client can cost: sockets held, and client frames per second."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from bridge.config import Settings
from bridge.refusals import Refusal

# The most a character can take in a JSON frame: an astral one escaped as a surrogate pair,
# "\ud83d\ude00". The rest of a send frame (type, client_msg_id) fits in the slack.
ESCAPED_CHAR = 12
FRAME_SLACK = 1024


def frame_limit(settings: Settings) -> int:
    """The largest client frame read: ``BRIDGE_WS_MAX_MSG_SIZE``, raised so that any text
    within ``BRIDGE_MAX_TEXT_LENGTH`` fits however it is escaped (it gets ``text_too_long``
    or is taken, never a 1009 close)."""
    return max(settings.ws_max_msg_size, settings.max_text_length * ESCAPED_CHAR + FRAME_SLACK)


class SocketSlots:
    """Open sockets in this process, in all and per call_id, counted before the upgrade."""

    def __init__(self, total: int, per_call: int) -> None:
        self.total = total
        self.per_call = per_call
        self.open = 0
        self._by_call: Counter[str] = Counter()

    @contextmanager
    def take(self, call_id: str) -> Iterator[None]:
        """Hold one slot for ``call_id`` while the block runs, or :class:`Refusal`."""
        if self.open >= self.total:
            raise Refusal("server_full", "too many open sockets, try again later", status=503)
        if self._by_call[call_id] >= self.per_call:
            raise Refusal(
                "too_many_sockets", f"at most {self.per_call} sockets per call_id", status=429
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

    def check(self) -> None:
        """Pass a frame to its handler, or :class:`Refusal` (``close`` set: close the socket)."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if self._tokens >= self.burst:
            self._refused = 0  # the client paused: it is not abusing
        if self._tokens < 1 - FLOAT_SLACK:
            self._refused += 1
            if self._refused >= self.abuse_limit:
                raise Refusal("rate_limited", "too many frames, closing", close=True)
            raise Refusal(
                "rate_limited", f"at most {self.rate:g} frames per second; this one was dropped"
            )
        self._tokens -= 1
        if self.token_expires is not None and time.time() >= self.token_expires:
            raise Refusal(
                "token_expired", "the widget token has expired: reconnect with a new token"
            )
