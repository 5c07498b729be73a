"""The one exception for "no": a request, handshake or client frame the bridge turns down.

Raised wherever the decision is made and answered in one place per transport: the error
middleware (bridge.web.errors) answers HTTP with ``status`` and JSON ``{"error", "detail"}``;
a socket (bridge.live.socket) answers an ``error`` frame, or closes with 1008 when
``close`` is set."""

from __future__ import annotations


class Refusal(Exception):
    """``code`` is machine-readable (also the metrics label), ``detail`` is for people."""

    status = 400
    close = False  # on a socket: close it (1008) instead of answering an error frame

    def __init__(
        self, code: str, detail: str, *, status: int | None = None, close: bool | None = None
    ) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        if status is not None:
            self.status = status
        if close is not None:
            self.close = close


class StoreUnavailable(Refusal):
    """The store cannot be reached: nothing was stored, the sender may try again later."""

    status = 503

    def __init__(self, detail: str = "the session store is unavailable") -> None:
        super().__init__("store_unavailable", detail)
