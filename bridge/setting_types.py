"""The checked types of settings that pydantic alone would take as any string.

Each refuses a bad value with a sentence naming what is wrong; ``bridge.startup`` prints it
as one line with the ``BRIDGE_*`` variable and the value. URLs need their scheme and a
host; origins are ``scheme://host[:port]`` with nothing that could reach a header
(``;``, spaces, quotes) and no ``*`` (an empty list is how to allow any site).
"""

from __future__ import annotations

import ipaddress
import logging
import re
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator

_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_ORIGIN_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?$")
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def host(value: str) -> str:
    """An IP address, a host name, or empty (every interface)."""
    if value == "":
        return value
    try:
        ipaddress.ip_address(value)
        return value
    except ValueError:
        pass
    labels = value.rstrip(".").split(".")
    if len(value) > 253 or not all(_LABEL.match(label) for label in labels):
        raise ValueError("not an IP address or a host name")
    if all(label.isdigit() for label in labels):
        raise ValueError("not a valid IP address")
    return value


def log_level(value: object) -> str:
    level = str(value).strip().upper()
    if level not in LEVELS or not isinstance(logging.getLevelName(level), int):
        raise ValueError(f"must be one of {', '.join(LEVELS)}")
    return level


def _url(value: str, schemes: tuple[str, ...], example: str) -> str:
    if any(c.isspace() or ord(c) < 32 for c in value):
        raise ValueError("must not contain spaces or control characters")
    parts = urlsplit(value)
    if parts.scheme.lower() not in schemes:
        raise ValueError(
            f"needs a scheme ({' or '.join(s + '://' for s in schemes)}), e.g. {example}"
        )
    try:
        parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
    except ValueError:
        raise ValueError("has a port that is not a number from 0 to 65535") from None
    if parts.scheme.lower() != "unix" and not parts.hostname:
        raise ValueError(f"needs a host, e.g. {example}")
    return value


def http_url(value: str) -> str:
    return _url(value, ("http", "https"), "https://bot.example/api/messages")


def redis_url(value: str) -> str:
    return _url(value, ("redis", "rediss", "unix"), "redis://127.0.0.1:6379/0")


def origins(value: str) -> str:
    """Comma-separated origins, each checked; returned as given."""
    problems = []
    for item in (o.strip() for o in value.split(",")):
        try:
            origin(item) if item else None
        except ValueError as exc:
            problems.append(str(exc))
    if problems:
        raise ValueError("; ".join(problems))
    return value


def origin(item: str) -> str:
    if "*" in item:
        raise ValueError(
            f"{item!r}: no wildcards; list each site, or leave the setting empty to allow "
            "any site (development only)"
        )
    parts = urlsplit(item.rstrip("/"))
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{item!r} is not an origin: it needs a scheme, e.g. https://shop.example")
    if parts.path or parts.query or parts.fragment or "@" in parts.netloc:
        raise ValueError(f"{item!r} is not an origin: scheme://host[:port] only, no path")
    if not _ORIGIN_HOST.match(parts.netloc):
        raise ValueError(f"{item!r} is not an origin: the host has characters no host has")
    try:
        parts.port  # noqa: B018 - validates it
    except ValueError:
        raise ValueError(f"{item!r} has a port that is not a number from 0 to 65535") from None
    return item


Host = Annotated[str, AfterValidator(host)]
LogLevel = Annotated[str, BeforeValidator(log_level)]
HttpUrl = Annotated[str, AfterValidator(http_url)]
RedisUrl = Annotated[str, AfterValidator(redis_url)]
Origins = Annotated[str, AfterValidator(origins)]
