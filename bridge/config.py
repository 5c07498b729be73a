"""Settings: environment variables prefixed ``BRIDGE_``, overridden by CLI flags."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

# templates/ and static/ sit beside the package in the source tree (installed with `pip -e`).
PROJECT_DIR = Path(__file__).resolve().parent.parent


class SignScheme(StrEnum):
    """How the vendor's ``X-AIRudder-Sign`` header is made (the spec does not say)."""

    HMAC_SHA256_HEX = "hmac-sha256-hex"  # hex digest of the raw body; "sha256=" prefix accepted
    HMAC_SHA256_BASE64 = "hmac-sha256-base64"
    STATIC = "static"  # the header carries the shared secret itself


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BRIDGE_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)

    # Comma-separated: during a rotation both the old and the new secret are accepted.
    signing_secret: SecretStr | None = None
    signing_scheme: SignScheme = SignScheme.HMAC_SHA256_HEX

    max_body_bytes: int = Field(1024 * 1024, ge=1024)
    history_limit: int = Field(500, ge=1, description="messages kept per call_id")
    session_ttl: float = Field(3600.0, gt=0, description="seconds an idle session is kept")
    sweep_interval: float = Field(30.0, gt=0)
    max_sessions: int = Field(100_000, ge=1)

    send_queue: int = Field(256, ge=1, description="frames buffered per socket before 1013")
    ws_heartbeat: float = Field(20.0, gt=0)
    ws_max_msg_size: int = Field(16 * 1024, ge=256)
    max_text_length: int = Field(4000, ge=1)

    redis_url: str | None = Field(None, description="sessions in Redis, shared by processes")
    redis_timeout: float = Field(
        5.0, gt=0, description="seconds a Redis call may take before the store counts as down"
    )
    workers: int = Field(1, ge=1, description="processes sharing the port (needs redis_url)")

    upstream_url: str | None = None
    upstream_timeout: float = Field(10.0, gt=0)
    upstream_attempts: int = Field(6, ge=1)
    upstream_max_seconds: float = Field(60.0, gt=0)
    upstream_backoff: float = Field(0.5, gt=0, description="first retry delay, doubled each time")

    log_level: str = "INFO"
    log_format: str = Field("text", pattern="^(text|json)$")

    templates_dir: Path = PROJECT_DIR / "templates"
    static_dir: Path = PROJECT_DIR / "static"

    def signing_secrets(self) -> list[bytes]:
        if self.signing_secret is None:
            return []
        raw = self.signing_secret.get_secret_value()
        return [s.strip().encode() for s in raw.split(",") if s.strip()]
