"""What every AIRudder payload model shares: config, id and URL types, the union tag mark.

Its own module so that the content kinds (``bridge/kinds/``) and the callback that holds
them (``airudder.py``) both build on it without importing each other.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

# Union tags show up in pydantic's error locations; the ":" marks them so that
# airudder.error_path() can drop them and report the field path a sender recognises.
TAG_MARK = ":"


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an absolute http(s) URL")
    return value


HttpUrlStr = Annotated[str, Field(min_length=1, max_length=4096), AfterValidator(_http_url)]
Id = Annotated[str, Field(min_length=1, max_length=256)]


def _not_only_dots(value: str) -> str:
    # "." and ".." would name other paths in /ws/{call_id} and /chat/{call_id}.
    if not value.strip("."):
        raise ValueError("must not consist of dots only")
    return value


CallId = Annotated[
    str,
    Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:@-]+$"),
    AfterValidator(_not_only_dots),
]


class Model(BaseModel):
    """Unknown fields are ignored because real senders add fields over time."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class Media(Model):
    origin_url: HttpUrlStr
    name: str | None = None


def field(value: Any, name: str) -> Any:
    """``value[name]`` or ``value.name``: discriminators see raw input when validating and
    model instances when serializing."""
    return value.get(name) if isinstance(value, dict) else getattr(value, name, None)
