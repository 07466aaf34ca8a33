"""Connection settings shared by every Kafka client the hub opens."""

from __future__ import annotations

import ssl
from typing import Any, Protocol

from hub.settings import CannotServe, Settings


def client_options(settings: Settings) -> dict[str, Any]:
    """aiokafka keyword arguments for bootstrap, TLS and SASL, from `HUB_KAFKA_*`."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap,
        "client_id": settings.kafka_client_id,
        "security_protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_security_protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = _tls(settings)
    if settings.kafka_security_protocol.startswith("SASL"):
        # aiokafka checks PLAIN credentials only, SCRAM's would fail at the first connection.
        if not settings.kafka_sasl_username or not settings.kafka_sasl_password:
            raise CannotServe(
                f"HUB_KAFKA_SECURITY_PROTOCOL={settings.kafka_security_protocol} needs "
                "HUB_KAFKA_SASL_USERNAME and HUB_KAFKA_SASL_PASSWORD"
            )
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism or "PLAIN"
        options["sasl_plain_username"] = settings.kafka_sasl_username
        options["sasl_plain_password"] = settings.kafka_sasl_password.get_secret_value()
    return options


def _tls(settings: Settings) -> ssl.SSLContext:
    """The TLS context of HUB_KAFKA_SSL_*; a file missing or not PEM is one line naming it."""
    variable, file = "HUB_KAFKA_SSL_CAFILE", settings.kafka_ssl_cafile
    try:
        context = ssl.create_default_context(cafile=str(file) if file else None)
        if settings.kafka_ssl_certfile:
            variable, file = "HUB_KAFKA_SSL_CERTFILE", settings.kafka_ssl_certfile
            key = settings.kafka_ssl_keyfile
            context.load_cert_chain(str(file), str(key) if key else None)
    except (OSError, ssl.SSLError) as exc:  # SSLError is an OSError; its reason says more
        why = getattr(exc, "reason", None) or exc.strerror or type(exc).__name__
        raise CannotServe(f"{variable} (or its key file) {file}: {why}") from exc
    return context


class Client(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


async def start_together(*clients: Client) -> None:
    """Start aiokafka clients; if one cannot (the broker out of reach), stop them all before
    the error goes on, or aiokafka warns of each "Unclosed" client after the one line."""
    try:
        for client in clients:
            await client.start()
    except BaseException:
        for client in clients:
            await client.stop()
        raise
