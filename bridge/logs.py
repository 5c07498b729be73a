"""Logging: human-readable lines, or one JSON object per line for log collectors.

Nothing that logs ever waits for stderr: records go into a bounded queue and one thread
writes them. When stderr's reader stalls the queue fills and further lines are dropped,
counted in ``bridge_log_lines_dropped_total``; the event loop keeps serving and SIGTERM
still stops the process. ``call_id`` is on every line that has one, in both formats.
"""

from __future__ import annotations

import atexit
import logging
import queue
import re
import sys
import threading
import time
import time as _time
from types import TracebackType
from typing import TextIO

import orjson
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from prometheus_client import Counter

from bridge.access_log import FLUSH_EVERY, AccessLine, AccessLines

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message"}
ACCESS_LOGGER = "aiohttp.access"
QUEUE_SIZE = 10_000  # lines held while stderr is slow (BRIDGE_LOG_QUEUE)
STOP_TIMEOUT = 2.0  # seconds the writer gets to drain at exit
# Set by a handler that finds the call_id in the body (the webhook), for its access line.
CALL_ID = web.RequestKey("call_id", str)

DROPPED = Counter(
    "bridge_log_lines_dropped",
    "Log lines dropped because stderr was not read fast enough",
    registry=None,  # registered in each app's registry by bridge.metrics
)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        # Fields passed with extra= (call_id above all) become keys of their own.
        entry.update(
            {k: v for k, v in record.__dict__.items() if k not in _STANDARD and v is not None}
        )
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc"] = record.exc_text
        return orjson.dumps(entry, default=str).decode()


class TextFormatter(logging.Formatter):
    """``time LEVEL logger: message call_id=...``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        call_id = getattr(record, "call_id", None)
        return f"{line} call_id={call_id}" if call_id else line


class RedactTokens(logging.Filter):
    """Widget tokens travel in the socket URL (``?token=``), which access logs print:
    a log reader must not be able to join the session with one."""

    PATTERN = re.compile(r"([?&]token=)[^&\s\"']+")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "token=" in message:
            record.msg, record.args = self._redact(message), None
        for key, value in record.__dict__.items():  # extra= fields (the access log has some)
            if key not in _STANDARD and isinstance(value, str) and "token=" in value:
                setattr(record, key, self._redact(value))
        return True

    def _redact(self, text: str) -> str:
        return self.PATTERN.sub(r"\1[redacted]", text)


class DroppingQueueHandler(logging.Handler):
    """Hands records to the writer thread; never blocks: a full queue drops the line."""

    def __init__(self, lines: queue.Queue[logging.LogRecord | None]) -> None:
        super().__init__()
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.put_nowait(self._prepare(record))
        except queue.Full:
            DROPPED.inc()
        except Exception:  # pragma: no cover - as logging.Handler does
            self.handleError(record)

    def _prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        """Freeze what may change after this call (the args, the exception)."""
        prepared = logging.makeLogRecord(record.__dict__)
        prepared.msg, prepared.args = record.getMessage(), None
        if record.exc_info:
            prepared.exc_text = logging.Formatter().formatException(record.exc_info)
            prepared.exc_info = None
        return prepared


class Writer(threading.Thread):
    """The one thread that writes log lines to the stream (stderr)."""

    def __init__(self, formatter: logging.Formatter, stream: TextIO, size: int) -> None:
        super().__init__(name="log-writer", daemon=True)
        self.lines: queue.Queue[logging.LogRecord | None] = queue.Queue(maxsize=size)
        self.formatter = formatter
        self.stream = stream
        self.redact = RedactTokens()
        self.access = AccessLines(size, isinstance(formatter, JsonFormatter))

    def run(self) -> None:
        record: logging.LogRecord | bool | None = True
        while record is not None:
            try:
                record = self.lines.get(timeout=FLUSH_EVERY)
            except queue.Empty:
                record = False  # the access lines' turn
            try:
                text = self.access.take()  # what piled up, in one write
                if isinstance(record, logging.LogRecord):
                    self.redact.filter(record)
                    text += self.formatter.format(record) + "\n"
                if text:
                    self.stream.write(text)
                    self.stream.flush()
            except Exception:  # noqa: S112 - a line that cannot be written is dropped
                continue

    def stop(self) -> None:
        """Write what is queued, waiting a bounded time (stderr may be stalled)."""
        try:
            self.lines.put(None, timeout=STOP_TIMEOUT)
        except queue.Full:
            return
        self.join(STOP_TIMEOUT)


_writer: Writer | None = None


def setup(level: str, fmt: str, access_log: bool = True, queue_size: int = QUEUE_SIZE) -> None:
    """Route every logger, uncaught exceptions included, through the queue to stderr."""
    global _writer
    if _writer is not None:
        _writer.stop()
    formatter = JsonFormatter() if fmt == "json" else TextFormatter()
    _writer = Writer(formatter, sys.stderr, queue_size)
    _writer.start()
    logging.basicConfig(
        level=level.upper(), handlers=[DroppingQueueHandler(_writer.lines)], force=True
    )
    # Its own switch: the access log off leaves the application's INFO lines on.
    logging.getLogger(ACCESS_LOGGER).setLevel(logging.NOTSET if access_log else logging.WARNING)
    sys.excepthook = _log_crash
    threading.excepthook = _log_thread_crash


def stop() -> None:
    if _writer is not None:
        _writer.stop()


atexit.register(stop)


def _log_crash(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    logging.getLogger("bridge").critical("crashed: %s", exc, exc_info=(kind, exc, tb))


def _log_thread_crash(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is not None:
        _log_crash(args.exc_type, args.exc_value, args.exc_traceback)


class AccessLogger(AbstractAccessLogger):
    """One line per request, with the ``call_id`` as a field of its own: the route's (for
    ``/ws/{call_id}`` and ``/chat/{call_id}``) or the one a handler found in the body
    (``request[CALL_ID]``, the webhook), so a session's requests can be found."""

    @property
    def enabled(self) -> bool:
        # aiohttp asks once per connection: at WARNING, no per-request work at all.
        return self.logger.isEnabledFor(logging.INFO)

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        call_id = _route_call_id(request) or request.get(CALL_ID)
        line = AccessLine(
            _time.time(), request.remote, request.method, request.raw_path, response.status,
            time, call_id,
        )  # fmt: skip
        # Formatted and written by the writer thread: a tuple on the event loop.
        if _writer is not None:
            if not _writer.access.append(line):
                DROPPED.inc()
            return
        extra: dict[str, object] = {"status": response.status}
        if call_id:
            extra["call_id"] = call_id
        self.logger.info(_message(line), extra=extra)


def _message(line: AccessLine) -> str:
    return f'{line.remote} "{line.method} {line.path_qs}" {line.status} {line.seconds:.3f}s'


def _route_call_id(request: web.BaseRequest) -> str | None:
    """The route's ``call_id``; None for a request that never reached routing (one aiohttp
    could not parse: its ``match_info`` is unset, and reading it fails an assertion)."""
    try:
        match_info = request.match_info  # type: ignore[attr-defined]
    except (AttributeError, AssertionError):
        return None
    call_id = match_info.get("call_id") if match_info is not None else None
    return call_id if isinstance(call_id, str) else None
