"""Logging: human-readable lines, or one JSON object per line for log collectors."""

from __future__ import annotations

import logging
import re
import sys
import time

import orjson
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message"}


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
        entry.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


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


def setup(level: str, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactTokens())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)


class AccessLogger(AbstractAccessLogger):
    """One line per request, with the route's ``call_id`` as a field of its own (for
    ``/ws/{call_id}`` and ``/chat/{call_id}``) so a session's requests can be found."""

    @property
    def enabled(self) -> bool:
        # aiohttp asks once per connection: at WARNING, no per-request work at all.
        return self.logger.isEnabledFor(logging.INFO)

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        match_info = getattr(request, "match_info", {})
        self.logger.info(
            '%s "%s %s" %s %.3fs',
            request.remote,
            request.method,
            request.path_qs,
            response.status,
            time,
            extra={"call_id": match_info.get("call_id"), "status": response.status},
        )
