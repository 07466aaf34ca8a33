"""HUB_KAFKA_* security settings reach aiokafka and FastStream alike: SASL and (mutual) TLS."""

from __future__ import annotations

import socket
import ssl
import threading
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any, cast

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from faststream.kafka.security import parse_security
from faststream.security import SASLPlaintext, SASLScram256, SASLScram512

from hub.app import security
from hub.kafka import client_options
from hub.settings import CannotServe, Settings

Key = ec.EllipticCurvePrivateKey


def issue(
    folder: Path, name: str, issuer: tuple[x509.Certificate, Key] | None = None
) -> tuple[x509.Certificate, Key]:
    """A throwaway certificate (a CA when there is no issuer), written as name.pem/.key."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer[0].subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if issuer:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(IPv4Address("127.0.0.1"))]
            ),
            critical=False,
        )
    cert = builder.sign(issuer[1] if issuer else key, hashes.SHA256())
    (folder / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / f"{name}.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert, key


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Our CA with a broker and a client certificate; a stranger CA with a broker certificate."""
    folder = tmp_path_factory.mktemp("pki")
    ca = issue(folder, "ca")
    issue(folder, "broker", ca)
    issue(folder, "lapor-hub", ca)
    issue(folder, "stranger-broker", issue(folder, "stranger-ca"))
    return folder


def settings(**values: Any) -> Settings:
    return Settings(kafka_bootstrap="kafka-0:9093,kafka-1:9093", **values)


def handshake(client: ssl.SSLContext, pki: Path, broker: str = "broker") -> str | None:
    """TLS to a local server that demands a client certificate from our CA.

    Returns the client certificate's common name as the server saw it.
    """
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(pki / f"{broker}.pem", pki / f"{broker}.key")
    server.load_verify_locations(pki / "ca.pem")
    server.verify_mode = ssl.CERT_REQUIRED
    seen: list[str] = []
    with socket.create_server(("127.0.0.1", 0)) as listener:

        def serve() -> None:
            conn, _ = listener.accept()
            try:
                with server.wrap_socket(conn, server_side=True) as tls:
                    peer = tls.getpeercert() or {}
                    subject = cast(tuple[tuple[tuple[str, str], ...], ...],
                                   peer.get("subject", ()))
                    seen.extend(v for rdn in subject for k, v in rdn if k == "commonName")
                    tls.sendall(b"ok")
            except (ssl.SSLError, OSError):
                conn.close()

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        with (
            socket.create_connection(listener.getsockname(), timeout=5) as raw,
            client.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            tls.recv(2)
        thread.join(5)
    return seen[0] if seen else None


def test_plaintext_has_no_security() -> None:
    options = client_options(settings())
    assert options == {
        "bootstrap_servers": "kafka-0:9093,kafka-1:9093",
        "client_id": "lapor-hub",
        "security_protocol": "PLAINTEXT",
    }
    assert security(settings()) is None


@pytest.mark.parametrize(
    ("mechanism", "kind"),
    [("PLAIN", SASLPlaintext), ("SCRAM-SHA-256", SASLScram256), ("SCRAM-SHA-512", SASLScram512)],
)
@pytest.mark.parametrize("protocol", ["SASL_PLAINTEXT", "SASL_SSL"])
async def test_sasl_reaches_aiokafka_and_faststream_alike(
    mechanism: str, kind: type[SASLPlaintext], protocol: str
) -> None:
    config = settings(
        kafka_security_protocol=protocol,
        kafka_sasl_mechanism=mechanism,
        kafka_sasl_username="hub",
        kafka_sasl_password="s3cret",
    )
    options = client_options(config)
    assert options["security_protocol"] == protocol
    assert options["sasl_mechanism"] == mechanism
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("hub", "s3cret")
    assert ("ssl_context" in options) == (protocol == "SASL_SSL")
    found = security(config)
    assert type(found) is kind
    # FastStream's consumers and our producer must open the same kind of connection.
    faststream = parse_security(found)
    for key in ("security_protocol", "sasl_mechanism", "sasl_plain_username",
                "sasl_plain_password"):
        assert faststream[key] == options[key], key
    if protocol == "SASL_SSL":
        assert faststream["ssl_context"].verify_mode == ssl.CERT_REQUIRED
    else:
        assert faststream["ssl_context"] is None
    # aiokafka accepts the options as they are (it checks them when a client is made).
    AIOKafkaProducer(**options)
    AIOKafkaAdminClient(**options)


def test_sasl_without_credentials_fails_at_start() -> None:
    config = settings(kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="SCRAM-SHA-512")
    with pytest.raises(CannotServe, match="HUB_KAFKA_SASL_USERNAME"):  # one line from the CLI
        client_options(config)


def test_tls_with_our_ca_and_a_client_certificate(pki: Path) -> None:
    config = settings(
        kafka_security_protocol="SSL",
        kafka_ssl_cafile=pki / "ca.pem",
        kafka_ssl_certfile=pki / "lapor-hub.pem",
        kafka_ssl_keyfile=pki / "lapor-hub.key",
    )
    context = client_options(config)["ssl_context"]
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert handshake(context, pki) == "lapor-hub"
    found = security(config)
    assert found is not None
    faststream = parse_security(found)
    assert faststream["security_protocol"] == "SSL"
    assert handshake(faststream["ssl_context"], pki) == "lapor-hub"


def test_tls_trusts_only_the_configured_ca(pki: Path) -> None:
    config = settings(
        kafka_security_protocol="SSL",
        kafka_ssl_cafile=pki / "ca.pem",
        kafka_ssl_certfile=pki / "lapor-hub.pem",
        kafka_ssl_keyfile=pki / "lapor-hub.key",
    )
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(client_options(config)["ssl_context"], pki, broker="stranger-broker")


def test_tls_without_a_client_certificate_is_refused_by_a_broker_that_wants_one(
    pki: Path,
) -> None:
    config = settings(kafka_security_protocol="SSL", kafka_ssl_cafile=pki / "ca.pem")
    with pytest.raises((ssl.SSLError, ConnectionError)):
        handshake(client_options(config)["ssl_context"], pki)
