"""Start-up checks: every setting, unknown ``BRIDGE_*`` variables, the listening address.

A problem is one line naming the variable (or flag) and its value, then exit status 2,
never a traceback. In JSON mode (``BRIDGE_LOG_FORMAT=json``) the lines are JSON objects.
"""

from __future__ import annotations

import difflib
import logging
import os
import socket
import sys
import time
from collections.abc import Mapping
from typing import Any, NoReturn

import orjson
from pydantic import ValidationError
from pydantic_settings import SettingsError

from bridge import logs
from bridge.config import Settings

log = logging.getLogger(__name__)

PREFIX = "BRIDGE_"
PROGRAM = "airudder-bridge"
SECRET_FIELDS = frozenset({"signing_secret", "widget_secret"})
MIN_SECRET_BYTES = 32  # RFC 7518: an HS256 key as long as the hash


def variable(field: str) -> str:
    return PREFIX + field.upper()


def flag(field: str) -> str:
    return "--" + field.replace("_", "-")


def json_mode(environ: Mapping[str, str] | None = None) -> bool:
    """JSON output asked for, read before the settings are known to be valid."""
    raw = (os.environ if environ is None else environ).get(PREFIX + "LOG_FORMAT", "")
    return raw.strip().lower() == "json"


def load(overrides: dict[str, Any]) -> Settings:
    """The settings from the environment and the CLI flags in ``overrides``; on any bad
    value, one line per problem and exit 2."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        fail([_describe(error, overrides) for error in exc.errors()])
    except SettingsError as exc:  # a value pydantic-settings could not even decode
        fail([f"{exc}"])


def _describe(error: Any, overrides: Mapping[str, Any]) -> str:
    message = str(error["msg"]).removeprefix("Value error, ")
    if not error["loc"]:
        return message  # a check across settings: the message names them
    field = str(error["loc"][0])
    shown = "[hidden]" if field in SECRET_FIELDS else repr(error["input"])
    if field in overrides:
        return f"{flag(field)} {shown}: {message} ({variable(field)})"
    return f"{variable(field)}={shown}: {message}"


def fail(problems: list[str], code: int = 2) -> NoReturn:
    logs.stop()  # what was logged before comes first
    as_json = json_mode()
    for problem in problems:
        if as_json:
            entry = {
                "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "level": "error",
                "logger": __name__,
                "message": problem,
            }
            sys.stderr.write(orjson.dumps(entry).decode() + "\n")
        else:
            sys.stderr.write(f"{PROGRAM}: {problem}\n")
    sys.stderr.flush()
    sys.exit(code)


def unknown_variables(environ: Mapping[str, str] | None = None) -> list[str]:
    """``BRIDGE_*`` variables that are no setting (a typo is otherwise silently ignored)."""
    known = [variable(name) for name in Settings.model_fields]
    names = os.environ if environ is None else environ
    return sorted(name for name in names if name.startswith(PREFIX) and name not in known)


def warn(settings: Settings, environ: Mapping[str, str] | None = None) -> None:
    """Once logging is set up: what is suspicious but not wrong."""
    known = [variable(name) for name in Settings.model_fields]
    for name in unknown_variables(environ):
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        log.warning("%s is not a setting and is ignored%s", name, hint)
    if any(len(s) < MIN_SECRET_BYTES for s in settings.widget_secrets()):
        log.warning(
            "BRIDGE_WIDGET_SECRET is shorter than %d bytes: tokens (HS256) are easier to "
            "forge; use e.g. `openssl rand -hex 32`",
            MIN_SECRET_BYTES,
        )


def check_address(settings: Settings, reuse_port: bool) -> None:
    """Bind the listening address once, so that a port in use or an address this machine
    does not have is one line and exit 2 (before any worker starts)."""
    where = f"{settings.host or '*'}:{settings.port}"
    try:
        infos = socket.getaddrinfo(
            settings.host or None, settings.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        fail([f"cannot listen on {where}: {exc.strerror} (BRIDGE_HOST / --host)"])
    for family, kind, proto, _, address in infos:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                fail([f"cannot listen on {where}: {exc.strerror} (BRIDGE_HOST, BRIDGE_PORT)"])


def settings_help() -> str:
    """Every setting with its default, for ``serve --help``."""
    lines = ["settings (environment variables; a flag above overrides its variable):"]
    for name, field in Settings.model_fields.items():
        default = "unset" if field.default is None else field.default
        if name in ("templates_dir", "static_dir"):
            default = "(inside the package)"
        described = f"  {field.description}" if field.description else ""
        lines.append(f"  {variable(name):30} {default}{described}")
    lines.append("An .env.example with every setting is in deploy/; the README explains them.")
    return "\n".join(lines)
