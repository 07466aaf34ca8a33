"""Connection settings shared by every Kafka client the hub opens."""

from __future__ import annotations

import ssl
from typing import Any, Protocol

from hub.settings import Settings


def client_options(settings: Settings) -> dict[str, Any]:
    """aiokafka keyword arguments for bootstrap, TLS and SASL, from `HUB_KAFKA_*`."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap,
        "client_id": settings.kafka_client_id,
        "security_protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_security_protocol in ("SSL", "SASL_SSL"):
        context = ssl.create_default_context(
            cafile=str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None
        )
        if settings.kafka_ssl_certfile:
            context.load_cert_chain(
                str(settings.kafka_ssl_certfile),
                str(settings.kafka_ssl_keyfile) if settings.kafka_ssl_keyfile else None,
            )
        options["ssl_context"] = context
    if settings.kafka_security_protocol.startswith("SASL"):
        # aiokafka checks PLAIN credentials only, SCRAM's would fail at the first connection.
        if not settings.kafka_sasl_username or not settings.kafka_sasl_password:
            raise ValueError(
                f"HUB_KAFKA_SECURITY_PROTOCOL={settings.kafka_security_protocol} needs "
                "HUB_KAFKA_SASL_USERNAME and HUB_KAFKA_SASL_PASSWORD"
            )
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism or "PLAIN"
        options["sasl_plain_username"] = settings.kafka_sasl_username
        options["sasl_plain_password"] = settings.kafka_sasl_password.get_secret_value()
    return options


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
