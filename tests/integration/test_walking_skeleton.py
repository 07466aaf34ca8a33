"""A web complaint flows end to end on the real broker and a real database."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import tomllib
import uuid
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaProducer

from hub import store
from hub.adapters import SOURCES
from hub.model import RoutingEvent
from tests.support import LAPOR_HUB, HubProcess, consume_all, events, produce

pytestmark = pytest.mark.broker


@pytest.fixture(scope="module")
def hub(
    kafka_bootstrap: str, module_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HubProcess]:
    folder = tmp_path_factory.mktemp("hub")
    with HubProcess(
        kafka_bootstrap, module_database_url, log_path=folder / "hub.log"
    ) as process:
        yield process


def web_form(ref: str, **overrides: object) -> bytes:
    form: dict[str, object] = {
        "id": ref,
        "judul": "Jalan rusak",
        # Distinct people and words: identical ones would be linked as duplicates.
        "isi": f"Laporan {ref}: jalan berlubang di Jl. Ahmad Yani dekat Summarecon.",
        "kategori": "jalan",
        "lokasi": {"kode_wilayah": "32.75", "nama": "Kota Bekasi"},
        "pelapor": {"nama": "Budi Santoso", "telepon": f"+62812{zlib.crc32(ref.encode()):08d}"[:15]},
    }
    form.update(overrides)
    return json.dumps(form).encode()


def complaint_count(hub: HubProcess, tracking_id: str) -> int:
    engine = sa.create_engine(hub.database_url)
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.text("SELECT count(*) FROM complaint WHERE tracking_id = :t"), {"t": tracking_id}
            ).scalar_one()
        )


async def test_raw_web_complaints_reach_their_agency_topics(hub: HubProcess) -> None:
    run = uuid.uuid4().hex[:6]
    forms = [
        (web_form(f"{run}-road"), "kota-bekasi-dbmsda"),
        (web_form(f"{run}-clinic", kategori="kesehatan", isi="Antrian puskesmas panjang."),
         "kota-bekasi-dinkes"),
        (web_form(f"{run}-banten", kategori="sekolah", lokasi={"kode_wilayah": "36"},
                  isi="Pungutan seragam di SMA negeri di Kota Serang."),
         "prov-banten-dindikbud"),
    ]
    await produce(
        hub.bootstrap,
        hub.topic("raw.web"),
        [(None, body, {"content-type": "application/json"}) for body, _ in forms],
    )
    for body, agency in forms:
        records = await consume_all(hub.bootstrap, hub.topic(f"agency.{agency}"), expect=1)
        routed = [RoutingEvent.model_validate(e) for e in events(records)]
        mine = [e for e in routed if e.complaint.source.message_id == json.loads(body)["id"]]
        assert len(mine) == 1
        event = mine[0]
        assert event.agency_code == agency
        assert event.reason == "rule"
        assert records[0].key.decode() == event.tracking_id
        assert complaint_count(hub, event.tracking_id) == 1


async def test_a_raw_message_delivered_twice_is_one_complaint_and_one_routing_event(
    hub: HubProcess,
) -> None:
    body = web_form(f"twice-{uuid.uuid4().hex[:8]}", kategori="pdam")
    headers = {"content-type": "application/json"}
    await produce(hub.bootstrap, hub.topic("raw.web"), [(None, body, headers)])
    await produce(hub.bootstrap, hub.topic("raw.web"), [(None, body, headers)])
    topic = hub.topic("agency.kota-bekasi-tirta-patriot")
    records = await consume_all(hub.bootstrap, topic, expect=1, settle=5.0)
    mine = [e for e in events(records) if e["complaint"]["source"]["message_id"] in body.decode()]
    assert len(mine) == 1
    assert complaint_count(hub, mine[0]["tracking_id"]) == 1


async def test_a_header_not_in_utf8_or_null_costs_no_record_of_its_batch(hub: HubProcess) -> None:
    # FastStream's batch parser failed on the stray byte before the hub saw the batch, and the
    # next commit passed over it: every record fetched beside it was lost.
    odd = {1: b"\xff\xfe", 2: None}
    await all_three_routed(hub, "header", lambda i: {
        "headers": [("content-type", b"application/json"), ("trace", odd.get(i, b"ok"))]})


async def test_a_timestamp_past_year_9999_costs_no_record_of_its_batch(hub: HubProcess) -> None:
    # Reading it failed the batch before any record was looked at, and the next commit passed
    # over it: every record fetched beside it was lost.
    await all_three_routed(hub, "stamp", lambda i: {
        "headers": [("content-type", b"application/json")],
        "timestamp_ms": 300_000_000_000_000 if i == 1 else None})


async def all_three_routed(
    hub: HubProcess, name: str, odd: Callable[[int], dict[str, Any]],
) -> None:
    """Three web forms in one batch, the second or third sent with `odd(i)`'s oddities: all
    three must reach their agency."""
    run = uuid.uuid4().hex[:6]
    bodies = [web_form(f"{run}-{name}-{i}", kategori="pdam") for i in range(3)]
    producer = AIOKafkaProducer(bootstrap_servers=hub.bootstrap, acks="all", linger_ms=50)
    await producer.start()
    try:
        sent = [await producer.send(hub.topic("raw.web"), body, key=run.encode(), **odd(i))
                for i, body in enumerate(bodies)]
        for future in sent:
            await future
    finally:
        await producer.stop()
    topic = hub.topic("agency.kota-bekasi-tirta-patriot")
    ids = {json.loads(body)["id"] for body in bodies}
    records = await consume_all(hub.bootstrap, topic, expect=3, timeout=20, settle=3.0)
    routed = {e["complaint"]["source"]["message_id"] for e in events(records)} & ids
    assert routed == ids


async def test_ingress_answers_with_the_tracking_id_the_agency_receives(hub: HubProcess) -> None:
    body = web_form(f"http-{uuid.uuid4().hex[:8]}", anonim=True)
    answer = httpx.post(
        f"{hub.base_url}/intake/web", content=body, headers={"content-type": "application/json"}
    )
    assert answer.status_code == 202, answer.text
    (tracking_id,) = answer.json()["accepted"]
    records = await consume_all(hub.bootstrap, hub.topic("agency.kota-bekasi-dbmsda"), expect=1)
    mine = [r for r in records if r.key.decode() == tracking_id]
    assert len(mine) == 1
    assert json.loads(mine[0].value)["complaint"]["reporter"] == {
        "name": None, "nik": None, "phone": None, "email": None, "handle": None
    }
    assert b"Budi" not in mine[0].value
    assert json.loads(body)["pelapor"]["telepon"][1:].encode() not in mine[0].value


async def test_malformed_raw_message_is_a_dead_letter_with_original_bytes(hub: HubProcess) -> None:
    junk = b'{"isi": "tidak lengkap", ' + uuid.uuid4().hex.encode()
    await produce(hub.bootstrap, hub.topic("raw.web"), [(b"k1", junk, {})])
    records = await consume_all(hub.bootstrap, hub.topic("deadletter"), expect=1)

    mine = [e for e in events(records) if base64.b64decode(e["original"]) == junk]
    assert len(mine) == 1
    assert mine[0]["reason"] == "invalid_json"
    assert mine[0]["topic"] == hub.topic("raw.web")


def test_ingress_refuses_what_it_cannot_accept(hub: HubProcess) -> None:
    url = f"{hub.base_url}/intake/web"
    assert httpx.post(url, content=b"x=1", headers={"content-type": "text/plain"}).status_code == 415
    assert httpx.post(url, content=b"{}", headers={"content-type": "application/json"}).status_code == 422
    big = b'{"isi": "' + b"a" * 400_000 + b'"}'
    assert httpx.post(url, content=big, headers={"content-type": "application/json"}).status_code == 413
    assert httpx.get(url).status_code == 405
    # A mistyped source: the answer says which paths and sources there are.
    typo = httpx.post(f"{hub.base_url}/intake/wa", content=b"{}",
                      headers={"content-type": "application/json"})
    assert typo.status_code == 404
    assert typo.json()["error"] == "no such path: /intake/wa"
    assert typo.json()["sources"] == sorted(SOURCES)
    assert typo.json()["paths"] == [
        "POST /intake/<source>", "GET /intake/open311/services.json",
        "GET, POST /intake/open311/requests.json", "GET /metrics", "GET /healthz", "GET /readyz"]


def test_version() -> None:
    project = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text("utf-8"))
    out = subprocess.run([LAPOR_HUB, "--version"], capture_output=True, text=True, check=True)
    assert out.stdout == f"lapor-hub {project['project']['version']}\n"


def test_normalize_command(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_bytes(web_form("cli-1"))
    out = subprocess.run(
        [LAPOR_HUB, "normalize", "--channel", "web", str(good)], capture_output=True, text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["category"] == "infrastructure"
    bad = subprocess.run(
        [LAPOR_HUB, "normalize", "--channel", "web", "-"], input="{nope", capture_output=True,
        text=True, check=False,
    )
    assert bad.returncode == 2
    assert bad.stdout == ""
    assert len(bad.stderr.strip().splitlines()) == 1
    assert "invalid_json" in bad.stderr
    assert "Traceback" not in bad.stderr
    # A channel with several sources: the first was a guess, and the line says so.
    gateway = Path(__file__).parents[1] / "fixtures" / "sms-gateway" / "single.json"
    guessed = subprocess.run([LAPOR_HUB, "normalize", "--channel", "sms", str(gateway)],
                             capture_output=True, text=True, check=False)
    assert (guessed.returncode, guessed.stderr) == (2, "lapor-hub: invalid_form: body is not a "
                                                    "form (read as sms-twilio; sms-gateway "
                                                    "reads it: --source)\n")
    # A part of a long SMS is the gateway's too: it was told only that it is no form.
    first_part = subprocess.run([LAPOR_HUB, "normalize", "--channel", "sms",
                                 str(gateway.with_name("fragment_1.json"))],
                                capture_output=True, text=True, check=False)
    assert (first_part.returncode, first_part.stderr) == (2, "lapor-hub: invalid_form: body is "
                                                          "not a form (read as sms-twilio; "
                                                          "sms-gateway reads it: --source)\n")
    # Refused by the right source: no hint.
    no_body = subprocess.run([LAPOR_HUB, "normalize", "--channel", "sms", "-"],
                             input="MessageSid=SM1&From=%2B6281398765432&Body=",
                             capture_output=True, text=True, check=False)
    assert (no_body.returncode, no_body.stderr) == (2, "lapor-hub: missing_field: Body is "
                                                    "required\n")
    chosen = subprocess.run(
        [LAPOR_HUB, "normalize", "--channel", "sms", "--source", "gateway", str(gateway)],
        capture_output=True, text=True, check=False,
    )
    assert chosen.returncode == 0, chosen.stderr
    # A part of a long SMS is no bad input: the line says what it is.
    part = subprocess.run(
        [LAPOR_HUB, "normalize", "--channel", "sms", "--source", "gateway",
         str(gateway.with_name("fragment_1.json"))], capture_output=True, text=True, check=False)
    assert (part.returncode, part.stderr) == (2, "lapor-hub: part 1 of 3 of a multi-part SMS: "
                                              "the hub makes the complaint when all its parts "
                                              "are in\n")
    # --content-type is checked as the ingress checks it (415); no adapter reads it.
    csv = subprocess.run([LAPOR_HUB, "normalize", "--content-type", "text/csv", str(good)],
                         capture_output=True, text=True, check=False)
    assert (csv.returncode, csv.stderr) == (2, "lapor-hub: content type 'text/csv' not accepted "
                                            "by web; it takes application/json\n")


@pytest.mark.parametrize(("env", "says"), [
    ({"HUB_MAX_BODY_BYTES": "2000000", "HUB_HTTP_PORT": "http"},
     ["bad setting HUB_", "HUB_MAX_BODY_BYTES", "HUB_HTTP_PORT"]),
    ({"HUB_KAFKA_BOOTSTRAP": "::::", "HUB_LOG_LEVEL": "chatty"},
     ["HUB_KAFKA_BOOTSTRAP: Value error, expected host:port", "HUB_LOG_LEVEL"]),
    ({"HUB_DATABASE_URL": "postgresql+psycopg://hub:sekrit@db:port/hub"},
     ["HUB_DATABASE_URL: Value error, expected sqlite:///"]),
    ({"HUB_DATABASE_URL": "mongodb://hub:sekrit@db/hub"}, ["no database driver 'mongodb'"]),
    ({"HUB_DATABASE_URL": "sqlite:///{tmp}/bad.yaml/hub.db"},
     ["cannot make the folder of the SQLite database", "bad.yaml"]),
    ({"HUB_AGENCIES_FILE": "{tmp}/missing.yaml"}, ["cannot read agency registry", "missing.yaml"]),
    ({"HUB_AGENCIES_FILE": "{tmp}/bad.yaml"}, ["agency registry: national: Field required"]),
    ({"HUB_DEADLINES_FILE": "{tmp}/bad.yaml"}, ["deadlines file: deadlines: Field required"]),
    # Tracebacks before: a value meant as JSON that is none, TLS files, SASL credentials.
    ({"HUB_INGRESS_TOKENS": "notjson"}, ["bad setting HUB_INGRESS_TOKENS: not valid JSON"]),
    ({"HUB_KAFKA_SECURITY_PROTOCOL": "sasl_plaintext"},
     ["HUB_KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT needs HUB_KAFKA_SASL_USERNAME"]),
    ({"HUB_KAFKA_SECURITY_PROTOCOL": "SSL", "HUB_KAFKA_SSL_CAFILE": "{tmp}/missing.pem"},
     ["HUB_KAFKA_SSL_CAFILE", "missing.pem", "No such file"]),
    ({"HUB_KAFKA_SECURITY_PROTOCOL": "SSL", "HUB_KAFKA_SSL_CAFILE": "{tmp}/bad.yaml"},
     ["HUB_KAFKA_SSL_CAFILE", "bad.yaml"]),
    # Times the hub cannot reckon with: a traceback at start (inf, 1e308), or taken and then
    # every complaint failed (1e8 hours: the window began before year 1) or the watch never
    # ran (inf).
    ({"HUB_DUPLICATE_WINDOW_HOURS": "inf"}, ["bad setting HUB_DUPLICATE_WINDOW_HOURS"]),
    ({"HUB_DUPLICATE_WINDOW_HOURS": "1e8"}, ["bad setting HUB_DUPLICATE_WINDOW_HOURS"]),
    ({"HUB_FRAGMENT_WAIT_MINUTES": "1e308"}, ["bad setting HUB_FRAGMENT_WAIT_MINUTES"]),
    ({"HUB_WATCHER_INTERVAL_S": "inf"}, ["bad setting HUB_WATCHER_INTERVAL_S"]),
])
def test_what_the_operator_must_fix_stops_the_hub_with_one_line_saying_it(
    tmp_path: Path, env: dict[str, str], says: list[str],
) -> None:
    (tmp_path / "bad.yaml").write_text("nothing: here\n")
    out = subprocess.run(
        [LAPOR_HUB, "run"], capture_output=True, text=True, check=False, timeout=60,
        env={**os.environ, "HUB_DATABASE_URL": f"sqlite:///{tmp_path}/hub.db",
             **{k: v.format(tmp=tmp_path) for k, v in env.items()}},
    )
    assert out.returncode == 2
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith("lapor-hub: ") and all(s in line for s in says), line
    assert "2000000" not in line and "sekrit" not in line  # values: some are secrets
    assert not (tmp_path / "hub.db").exists()


@pytest.mark.parametrize("command", [["run"], ["dev", "--port", "0"]], ids=["run", "dev"])
def test_a_busy_http_port_stops_the_hub_before_it_starts_with_one_line(
    tmp_path: Path, command: list[str],
) -> None:
    """Found busy by uvicorn, `run` exited 3 after the broker side had started, and `dev`
    hung on its way out, its broker left running."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = subprocess.run(
            [LAPOR_HUB, *command], capture_output=True, text=True, check=False, timeout=60,
            cwd=tmp_path, env={**os.environ, "HUB_DATABASE_URL": f"sqlite:///{tmp_path}/hub.db",
                               "HUB_HTTP_PORT": str(port)},
        )
    assert out.returncode == 2, out.stderr
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith(f"lapor-hub: HTTP: cannot listen on 127.0.0.1:{port}: "), line
    assert not (tmp_path / "hub.db").exists()


@pytest.mark.parametrize(("url", "says"), [
    ("postgresql+psycopg://nobody@127.0.0.1:1/hub", "lapor-hub: database: connection failed"),
    ("sqlite:///{tmp}/missing.db", "lapor-hub: no database at"),
    ("sqlite:///{tmp}/empty.db", "lapor-hub: database: no such table: dead_letter "
     "(lapor-hub db upgrade makes the tables)"),
])
def test_an_operator_command_without_its_database_says_so_in_one_line(
    tmp_path: Path, url: str, says: str,
) -> None:
    (tmp_path / "empty.db").touch()  # a file, but no hub's database
    out = subprocess.run(
        [LAPOR_HUB, "dlq", "list"], capture_output=True, text=True, check=False, timeout=60,
        env={**os.environ, "HUB_DATABASE_URL": url.format(tmp=tmp_path)},
    )
    assert out.returncode == 2
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith(says), line


def test_a_postgresql_database_not_made_yet_is_named_not_taken_for_missing_tables(
    postgres_admin: sa.Engine,
) -> None:
    # "db upgrade makes the tables" was the advice for a database that does not exist.
    url = postgres_admin.url.set(database=f"hub_absent_{uuid.uuid4().hex[:8]}")
    out = subprocess.run(
        [LAPOR_HUB, "db", "upgrade"], capture_output=True, text=True, check=False, timeout=60,
        env={**os.environ, "HUB_DATABASE_URL": url.render_as_string(hide_password=False)},
    )
    assert out.returncode == 2, out.stderr
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith("lapor-hub: database: connection failed"), line
    assert line.endswith("(the hub makes tables, not databases: CREATE DATABASE it first)"), line


@pytest.mark.parametrize("command", [["dlq", "list"], ["dlq", "replay", "--all"]])
def test_dlq_on_a_database_without_its_tables_says_so_in_one_line(
    database_url: str, command: list[str],
) -> None:
    # PostgreSQL's missing table is no OperationalError: dlq ended in an 85-line traceback.
    if file := store.sqlite_file(database_url):
        file.touch()
    out = subprocess.run(
        [LAPOR_HUB, *command], capture_output=True, text=True, check=False, timeout=60,
        env={**os.environ, "HUB_DATABASE_URL": database_url},
    )
    assert out.returncode == 2, out.stderr
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith("lapor-hub: database: ") and line.endswith(
        "(lapor-hub db upgrade makes the tables)"), line


@pytest.mark.parametrize(("env", "says"), [
    ({"HUB_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/hub"},
     "lapor-hub: database: connection failed"),
    ({"HUB_DATABASE_URL": "sqlite:///{tmp}/hub.db", "HUB_KAFKA_BOOTSTRAP": "127.0.0.1:1"},
     "lapor-hub: broker: KafkaConnectionError: Unable to bootstrap"),
])
def test_the_hub_without_its_database_or_broker_at_start_stops_saying_so_without_traceback(
    tmp_path: Path, env: dict[str, str], says: str,
) -> None:
    out = subprocess.run(
        [LAPOR_HUB, "run"], capture_output=True, text=True, check=False, timeout=60,
        env={**os.environ, **{k: v.format(tmp=tmp_path) for k, v in env.items()}},
    )
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines()[-1].startswith(says), out.stderr
