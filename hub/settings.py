"""Settings from the environment, prefix `HUB_` (e.g. HUB_KAFKA_BOOTSTRAP)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from hub.model import MAX_EVENT_BYTES


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HUB_", extra="ignore")

    kafka_bootstrap: str = Field(
        default="127.0.0.1:9092", description="Kafka bootstrap servers, comma-separated."
    )
    kafka_client_id: str = "lapor-hub"
    kafka_group: str = Field(default="lapor-hub", description="Consumer group prefix.")
    kafka_idempotent_producer: bool = Field(
        default=False,
        description="Enable on Apache Kafka; the embedded broker rejects InitProducerId.",
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = (
        "PLAINTEXT"
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = None
    kafka_ssl_certfile: Path | None = None
    kafka_ssl_keyfile: Path | None = None
    topic_prefix: str = Field(default="lapor", pattern=r"^[a-zA-Z0-9._-]{1,100}$")
    topic_partitions: int = Field(default=3, ge=1, description="Partitions of topics we create.")
    topic_replication: int = Field(default=1, ge=1)

    database_url: str = "sqlite:///var/hub.db"
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=0, le=65535)
    max_body_bytes: int = Field(
        default=256 * 1024, ge=1, le=MAX_EVENT_BYTES,
        # A larger body would go to the raw topic as a record the broker refuses.
        description="Largest ingress body accepted; at most one Kafka record's worth.",
    )

    ingress_tokens: dict[str, SecretStr] = Field(
        default_factory=dict,
        description='Bearer token per source, JSON: {"web": "...", "prov-jakarta": "..."}.',
    )
    twilio_auth_token: SecretStr | None = Field(
        default=None, description="Checks X-Twilio-Signature on /intake/sms-twilio."
    )
    meta_app_secret: SecretStr | None = Field(
        default=None, description="Checks X-Hub-Signature-256 on /intake/meta and whatsapp."
    )
    meta_verify_token: SecretStr | None = Field(
        default=None, description="Answers Meta's webhook verification (GET hub.challenge)."
    )
    public_base_url: str | None = Field(
        default=None, description="The URL vendors call (for Twilio signatures behind a proxy)."
    )
    ingress_open: bool = Field(
        default=False, description="Accept sources without a credential. Development only."
    )
    agencies_file: Path | None = Field(
        default=None, description="Agency registry and routing rules (YAML); demo data if unset."
    )
    deadlines_file: Path | None = Field(
        default=None, description="Deadlines and collective leave (YAML); packaged if unset."
    )
    secret_key: SecretStr = Field(
        default=SecretStr("dev-only-secret-change-me"),
        description="Keys the reporter hashes (and identity encryption); set it in production.",
    )
    previous_secret_keys: list[SecretStr] = Field(
        default_factory=list, description="Older secret keys, still accepted to open old rows."
    )
    # Upper limits on the times below: past them a time the hub reckons with (now minus the
    # window) is before year 1, and every complaint, or every watch, failed with OverflowError.
    duplicate_window_hours: float = Field(
        default=72.0, gt=0, le=10 * 365 * 24,
        description="How far back a complaint may repeat another (at most ten years).",
    )
    batch_size: int = Field(default=1000, ge=1, description="Most records handled per batch.")
    batch_timeout_ms: int = Field(default=50, ge=1)
    fetch_max_wait_ms: int = Field(
        default=20, ge=0,
        description="Longest the broker may hold an intake fetch while it has no new records "
        "(follow-ups wait at least 100 ms, retries 500 ms).",
    )
    watcher_interval_s: float = Field(default=30.0, gt=0, le=24 * 3600)
    fragment_wait_minutes: float = Field(
        default=60.0, gt=0, le=365 * 24 * 60,
        description="How long the parts of a multi-part SMS may wait for a missing part "
        "(at most a year).",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"

    # Checked here, a server list or database URL the hub cannot use is one line naming
    # the variable (as `lapor-hub` says every bad setting), not a traceback from deep in
    # the client. The messages never repeat the value: a database URL may hold a password.
    @field_validator("kafka_bootstrap")
    @classmethod
    def _servers(cls, value: str) -> str:
        from aiokafka.conn import collect_hosts  # the client's own reading of the list

        try:
            servers = collect_hosts(value, randomize=False)
        except ValueError:
            servers = []
        if not servers or any(not host or not 0 < port < 65536 for host, port, _ in servers):
            raise ValueError("expected host:port, comma-separated")
        return value

    @field_validator("database_url")
    @classmethod
    def _database(cls, value: str) -> str:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError, NoSuchModuleError

        try:
            url = make_url(value)
        except (ArgumentError, ValueError):  # ValueError: a port that is not a number
            raise ValueError(
                "expected sqlite:///<file> or postgresql+psycopg://<user>@<host>/<database>"
            ) from None
        try:
            url.get_dialect()
        except NoSuchModuleError:
            raise ValueError(f"no database driver {url.drivername!r}") from None
        return value

    @field_validator("ingress_tokens", "secret_key", "previous_secret_keys")
    @classmethod
    def _not_blank(cls, value: SecretStr | list[SecretStr] | dict[str, SecretStr]) -> object:
        # A blank token (one left out of a template: {"web": ""}) let in every request
        # with "Authorization: Bearer ": the source open where a missing one is closed;
        # a blank secret key seals identities under a key everyone has.
        secrets = value.values() if isinstance(value, dict) else (
            value if isinstance(value, list) else [value])
        if any(not s.get_secret_value().strip() for s in secrets):
            raise ValueError("a secret may not be blank")
        return value

    @field_validator("log_level", "kafka_security_protocol", "kafka_sasl_mechanism",
                     mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        # Any case, as operators write them ("plaintext", "scram-sha-512").
        return value.upper() if isinstance(value, str) else value


class CannotServe(RuntimeError):
    """The settings name something the hub cannot use (a port taken, a TLS file missing,
    credentials left out); the CLI prints it in one line. Here, not in hub.app: the CLI
    names it while the settings themselves may be invalid, and importing hub.app reads them."""


@cache
def get_settings() -> Settings:
    return Settings()
