"""The access log's fast path: a request's line costs a tuple appended to a list on the
event loop; the log writer thread formats what piled up (a few µs a line: the timestamp
is formatted once a second) and writes it in one buffered write, flushed once per batch.

Lines are exactly what :class:`bridge.logs.TextFormatter` or ``JsonFormatter`` would print
for the same record, tokens redacted (``RedactTokens``)."""

from __future__ import annotations

import re
import time
from collections import deque
from typing import NamedTuple

import orjson

LOGGER = "aiohttp.access"
FLUSH_EVERY = 0.05  # seconds a line may wait in the buffer
_TOKEN = re.compile(r"([?&]token=)[^&\s\"']+")


class AccessLine(NamedTuple):
    created: float
    remote: str | None
    method: str
    path_qs: str  # as sent (raw_path): what the request line said, as nginx logs it
    status: int
    seconds: float
    call_id: str | None


def _redact(text: str) -> str:
    return _TOKEN.sub(r"\1[redacted]", text) if "token=" in text else text


class AccessLines:
    """Lines not yet written, at most ``size`` (``append`` says False past it: dropped)."""

    def __init__(self, size: int, json: bool) -> None:
        self.size = size
        self.json = json
        self.pending: deque[AccessLine] = deque()
        self._second = -1
        self._stamp = ""

    def append(self, line: AccessLine) -> bool:
        if len(self.pending) >= self.size:
            return False
        self.pending.append(line)
        return True

    def take(self) -> str:
        """Everything pending, formatted, one line each ("" when nothing is)."""
        out = []
        pending = self.pending
        while pending:
            out.append(self.format(pending.popleft()))
        return "".join(out)

    def _ts(self, created: float) -> str:
        second = int(created)
        if second != self._second:
            self._second = second
            if self.json:
                self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            else:
                self._stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
        msecs = int((created - second) * 1000)
        return f"{self._stamp}.{msecs:03d}Z" if self.json else f"{self._stamp},{msecs:03d}"

    def format(self, line: AccessLine) -> str:
        message = _redact(
            f'{line.remote} "{line.method} {line.path_qs}" {line.status} {line.seconds:.3f}s'
        )
        call_id = _redact(line.call_id) if line.call_id else None
        if self.json:
            entry: dict[str, object] = {
                "ts": self._ts(line.created),
                "level": "info",
                "logger": LOGGER,
                "message": message,
                "status": line.status,
            }
            if call_id:
                entry["call_id"] = call_id
            return orjson.dumps(entry).decode() + "\n"
        text = f"{self._ts(line.created)} INFO {LOGGER}: {message}"
        return f"{text} call_id={call_id}\n" if call_id else text + "\n"
