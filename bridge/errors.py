"""Refusals that leave as an HTTP answer: status plus JSON ``{"error", "detail"}``."""

from __future__ import annotations


class HandshakeRefused(Exception):
    """A request turned away before it was served (for a socket: before the upgrade, so
    the client never receives a frame). The error middleware answers and counts it."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
