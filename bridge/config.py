"""Settings: environment variables prefixed ``BRIDGE_``, overridden by CLI flags."""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import Field, PrivateAttr, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bridge.assets import asset_dir
from bridge.setting_types import Host, HttpUrl, LogLevel, Origins, RedisUrl


class StartupError(Exception):
    """A setting or the environment prevents starting: one line for the operator."""


class SignScheme(StrEnum):
    """How the vendor's ``X-AIRudder-Sign`` header is made (the spec does not say)."""

    HMAC_SHA256_HEX = "hmac-sha256-hex"  # hex digest of the raw body; "sha256=" prefix accepted
    HMAC_SHA256_BASE64 = "hmac-sha256-base64"
    STATIC = "static"  # the header carries the shared secret itself


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BRIDGE_", extra="ignore")

    host: Host = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)

    # Comma-separated: during a rotation both the old and the new secret are accepted.
    signing_secret: SecretStr | None = None
    signing_scheme: SignScheme = SignScheme.HMAC_SHA256_HEX

    # Comma-separated like signing_secret; the FIRST one signs new widget tokens.
    # Unset: anyone who knows a call_id can join its session (development only).
    widget_secret: SecretStr | None = None
    # Comma-separated origins (https://shop.example) whose pages may open sockets and
    # embed the widget; empty = any origin (development only).
    allowed_origins: Origins = ""
    # /demo and /demo/send, which post (signed) sample callbacks to ANY call_id for anyone
    # who asks. Unset: on only in development (no signing or widget secret set).
    demo: bool | None = None

    max_body_bytes: int = Field(1024 * 1024, ge=1024, description="a body, also once inflated")
    body_timeout: float = Field(5.0, gt=0, description="seconds to receive a body before 408")
    idle_timeout: float = Field(
        15.0, gt=0, description="seconds a connection may wait for a request's headers (idle too)"
    )
    history_limit: int = Field(500, ge=1, description="messages kept per call_id")
    history_bytes: int = Field(2 << 20, ge=1024, description="message bytes kept per call_id")
    max_message_bytes: int = Field(64 << 10, ge=256, description="largest encoded message")
    # De-duplication outlives the session (docs/security.md, "Replayed callbacks").
    dedup_retention: float = Field(86400.0, gt=0, description="seconds after a call's last")
    dedup_per_call: int = Field(5000, ge=1, description="identities remembered per call_id")
    dedup_total: int = Field(500_000, ge=1, description="identities remembered in all")
    max_callback_age: float | None = Field(None, gt=0, description="seconds; unset: no check")
    session_ttl: float = Field(3600.0, gt=0, description="seconds an idle session is kept")
    sweep_interval: float = Field(30.0, gt=0)
    max_sessions: int = Field(
        100_000, ge=2, description="sessions kept in memory; the longest-idle unwatched goes"
    )

    send_queue: int = Field(256, ge=1, description="frames buffered per socket before 1013")
    send_buffer_bytes: int = Field(
        256 * 1024, ge=1, description="unsent bytes a socket may hold before 1013"
    )
    ws_heartbeat: float = Field(20.0, gt=0)
    ws_max_msg_size: int = Field(16 * 1024, ge=256)
    max_text_length: int = Field(4000, ge=1)
    max_sockets: int = Field(10_000, ge=1, description="open sockets in this process")
    max_sockets_per_call: int = Field(20, ge=1, description="open sockets on one call_id")
    frames_per_second: float = Field(5.0, gt=0, description="client frames, per socket")
    frame_burst: int = Field(20, ge=1, description="client frames allowed at once")
    frame_abuse_limit: int = Field(
        50, ge=1, description="rate-limited frames on one socket before it is closed (1008)"
    )

    store: Literal["sqlite", "memory", "redis"] | None = Field(
        None, description="where sessions live; default: redis with redis_url, else sqlite"
    )
    data_dir: Path | None = Field(
        None, description="the SQLite store's directory; default: the platform's state dir"
    )
    redis_url: RedisUrl | None = Field(None, description="sessions in Redis, shared by processes")
    redis_timeout: float = Field(
        5.0, gt=0, description="seconds a Redis call may take before the store counts as down"
    )
    redis_sentinels: str = Field(
        "", description="host:port,... of Redis Sentinels, asked for the master (docs/redis.md)"
    )
    redis_master: str = Field("mymaster", min_length=1, description="the Sentinel master name")
    redis_cluster: bool = Field(False, description="BRIDGE_REDIS_URL is a node of a Redis Cluster")
    redis_wait: int | None = Field(
        None,
        ge=0,
        description="ms a write waits for a replica before it is acknowledged (503 after); 0: "
        "off; default 1000 with Sentinel or Cluster, 0 on one Redis",
    )
    workers: int = Field(1, ge=1, description="processes sharing the port (needs redis_url)")
    event_loop: Literal["auto", "uvloop", "asyncio"] = Field(
        "auto", description="auto: uvloop when it is installed"
    )

    upstream_url: HttpUrl | None = None
    upstream_timeout: float = Field(10.0, gt=0)
    upstream_attempts: int = Field(6, ge=1)
    upstream_max_seconds: float = Field(60.0, gt=0)
    upstream_backoff: float = Field(0.5, gt=0, description="first retry delay, doubled each time")
    delivery_sweep: float = Field(
        5.0, gt=0, description="seconds between looks for queued messages nobody forwards"
    )

    log_level: LogLevel = "INFO"
    log_format: Literal["text", "json"] = "text"
    access_log: bool = Field(True, description="one line per request, at INFO")
    log_queue: int = Field(10_000, ge=1, description="log lines held while stderr is slow")

    templates_dir: Path = asset_dir("templates")
    static_dir: Path = asset_dir("static")

    @model_validator(mode="after")
    def _room_to_evict(self) -> Settings:
        # Every watched session has a socket, so with fewer sockets than sessions there is
        # always an unwatched session to evict when the store is full: no one is refused.
        if self.max_sockets >= self.max_sessions:
            raise ValueError(
                f"BRIDGE_MAX_SOCKETS ({self.max_sockets}) must be lower than "
                f"BRIDGE_MAX_SESSIONS ({self.max_sessions})"
            )
        if self.max_message_bytes > self.history_bytes:
            raise ValueError("BRIDGE_MAX_MESSAGE_BYTES must not exceed BRIDGE_HISTORY_BYTES")
        if self.store_kind() == "redis" and not (self.redis_url or self.redis_sentinels):
            raise ValueError("BRIDGE_STORE=redis needs BRIDGE_REDIS_URL")
        if self.redis_cluster and (self.redis_sentinels or not self.redis_url):
            raise ValueError("BRIDGE_REDIS_CLUSTER needs BRIDGE_REDIS_URL, without sentinels")
        self.sentinel_addresses()  # a bad address stops the start
        return self

    # Split once: the signing secrets are read on every callback.
    _signing_secrets: list[bytes] = PrivateAttr(default_factory=list)
    _widget_secrets: list[bytes] = PrivateAttr(default_factory=list)

    def model_post_init(self, context: object) -> None:
        self._signing_secrets = _split(self.signing_secret)
        self._widget_secrets = _split(self.widget_secret)

    def signing_secrets(self) -> list[bytes]:
        return self._signing_secrets

    def widget_secrets(self) -> list[bytes]:
        return self._widget_secrets

    def store_kind(self) -> Literal["sqlite", "memory", "redis"]:
        if self.store is not None:
            return self.store
        return "redis" if self.redis_url or self.redis_sentinels else "sqlite"

    def redis_mode(self) -> Literal["single", "sentinel", "cluster"]:
        if self.redis_sentinels:
            return "sentinel"
        return "cluster" if self.redis_cluster else "single"

    def redis_wait_ms(self) -> int:
        """How long a write waits for a replica (``WAIT 1 <ms>``); 0: it does not."""
        if self.redis_wait is not None:
            return self.redis_wait
        return 0 if self.redis_mode() == "single" else 1000

    def sentinel_addresses(self) -> list[tuple[str, int]]:
        addresses = []
        for item in filter(None, (a.strip() for a in self.redis_sentinels.split(","))):
            host, _, port = item.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"BRIDGE_REDIS_SENTINELS: {item!r} is not host:port")
            addresses.append((host.strip("[]"), int(port)))
        return addresses

    def data_path(self) -> Path:
        """Where the SQLite store lives: the setting, else systemd's ``$STATE_DIRECTORY``,
        else the XDG state directory; never the current directory."""
        if self.data_dir is not None:
            return self.data_dir
        systemd = os.environ.get("STATE_DIRECTORY")
        if systemd:
            return Path(systemd.split(":")[0])
        xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        return Path(xdg) / "airudder-bridge"

    def demo_enabled(self) -> bool:
        if self.demo is not None:
            return self.demo
        return not (self.signing_secrets() or self.widget_secrets())

    def origins(self) -> frozenset[str]:
        return frozenset(
            o.strip().rstrip("/").lower() for o in self.allowed_origins.split(",") if o.strip()
        )


def _split(secret: SecretStr | None) -> list[bytes]:
    """A comma-separated secret setting as its list of secrets (rotation: old and new)."""
    if secret is None:
        return []
    return [s.strip().encode() for s in secret.get_secret_value().split(",") if s.strip()]
