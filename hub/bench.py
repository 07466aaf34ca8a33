"""`lapor-hub bench`: the hub's throughput and latency against the broker's ceiling.

One command, with its own embedded broker and SQLite files in a temp dir, measures:

1. ceiling   plain aiokafka: consume -> parse -> produce -> commit, batches of 1,000;
             and the latency phase's load through such a relay (the latency ceiling)
2. naive     one FastStream handler per message awaiting each `broker.publish`
2b. prototype the issue's plain batched prototype: consume a batch -> validate with pydantic
             -> one bulk insert into SQLite -> publish to ten topics -> commit
3. hub       the real app (`hub.app.build`, its batch subscriber) draining pre-loaded raw
             topics: normalize -> deduplicate -> route -> SQLite -> agency topics -> commit
4. latency   1,000 complaints/s offered to that same hub: raw publish -> routing event
             read by an independent consumer
5. scale     the hub with 10 and with 1,000 agency topics; peak RSS of the hub processes

Each hub runs in a child process (`python -m hub.bench _child CONFIG`): its peak RSS is
its own, and its topic prefix (read at import) is fresh. HUB_BENCH_SCALE (default 1)
multiplies message counts and the latency duration; the smoke test runs a tiny scale.
Progress goes to stderr; stdout holds the table or the one JSON object.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import csv
import gc
import io
import json
import logging
import os
import platform
import random
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zlib
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import parse_qsl, urlencode

import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from pydantic import BaseModel, TypeAdapter
from rich.console import Console
from rich.table import Table

from hub import metrics, store, topics
from hub.adapters import SOURCES, RawMessage
from hub.app import build
from hub.embedded_broker import EmbeddedBroker
from hub.model import Complaint
from hub.routing import Directory
from hub.settings import Settings

PARTITIONS = 3  # as the hub creates its topics (Settings.topic_partitions)
LATENCY_RATE = 1000.0
# The embedded broker answers JoinGroup after half the session timeout: 1 s instead of 5 s
# for the bench's own groups. The hub keeps its defaults (its start-up is not timed).
FAST_JOIN: dict[str, Any] = {"session_timeout_ms": 2000, "heartbeat_interval_ms": 500}
TARGETS = {"ratio": 0.50, "p99_ms": 100.0, "agencies_1000_vs_10": 0.8, "peak_rss_mb": 300.0}


@dataclass(frozen=True, slots=True)
class Plan:
    drain: int
    """Messages pre-loaded for the ceiling and the hub phase (the naive one reads a part)."""
    naive: int
    scale: int
    """Messages for each scale run (10 and 1,000 agencies)."""
    latency_s: float

    @classmethod
    def of(cls, *, quick: bool) -> Plan:
        factor = scale_factor()
        drain, naive, scale, seconds = (
            (10_000, 2_000, 5_000, 5.0) if quick else (100_000, 20_000, 50_000, 30.0)
        )
        return cls(
            drain=max(int(drain * factor), 50),
            naive=max(int(naive * factor), 20),
            scale=max(int(scale * factor), 50),
            latency_s=max(seconds * factor, 1.0),
        )


def scale_factor() -> float:
    return float(os.environ.get("HUB_BENCH_SCALE") or 1)


# --- messages --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Message:
    """A raw record as the ingress writes it: key, native body, envelope headers."""

    source: str
    key: bytes
    value: bytes
    content_type: str
    message_id: str

    def headers(self, received_at: datetime) -> list[tuple[str, bytes]]:
        return [
            ("content-type", self.content_type.encode()),
            ("hub-message-id", self.message_id.encode()),
            ("hub-received-at", received_at.isoformat().encode()),
        ]


# Kategori words the channels use (aliases in categories.yaml) and their category codes.
CATEGORIES = {
    "puskesmas": "health",
    "sekolah": "education",
    "ktp": "civil-registry",
    "izin": "permits",
    "sampah": "environment",
    "jalan": "infrastructure",
    "pdam": "water",
    "angkutan": "transport",
    "bansos": "social-welfare",
    "phk": "labour",
}
DEMO_REGIONS = ("32.75", "32.16", "61.72", "62.01", "36")
# Share of each source in the mix: web forms and WhatsApp dominate, as at LAPOR!.
MIX = {
    "web": 30, "mobile": 12, "whatsapp": 16, "sms-twilio": 10, "x": 8, "sms-gateway": 6,
    "meta": 6, "open311": 4, "prov-jakarta": 4, "prov-jateng": 4,
}


def region_pool(size: int = 100) -> list[tuple[str, str]]:
    """The demo regions plus regencies/cities from the Kemendagri table, deterministic."""
    text = resources.files("hub.data").joinpath("regions.csv").read_text("utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    names = {r["code"]: r["name"] for r in rows}
    others = [
        (r["code"], r["name"])
        for r in rows
        if r["kind"] != "province" and r["code"] not in DEMO_REGIONS
    ]
    random.Random(8).shuffle(others)
    return [(c, names[c]) for c in DEMO_REGIONS] + others[: size - len(DEMO_REGIONS)]


FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures"


def _fixture(source: str, name: str) -> bytes:
    """A native payload from tests/fixtures: the bench runs from a checkout (`make bench`)."""
    try:
        return (FIXTURES / source / name).read_bytes()
    except OSError as exc:
        raise RuntimeError(f"bench needs the repository's tests/fixtures: {exc}") from exc


ISSUES = {
    "puskesmas": "antrean puskesmas sangat panjang dan dokter jaga sering tidak ada",
    "sekolah": "pungutan uang seragam dan buku di sekolah negeri tanpa dasar aturan",
    "ktp": "e-KTP yang diajukan tiga bulan lalu belum juga dicetak",
    "izin": "pengurusan izin usaha mikro tidak ada kabar sejak berkas diserahkan",
    "sampah": "sampah di TPS tidak diangkut seminggu dan baunya menyengat",
    "jalan": "jalan berlubang dalam yang sudah membuat beberapa pengendara motor jatuh",
    "pdam": "air PDAM tidak mengalir sejak beberapa hari padahal tagihan tetap datang",
    "angkutan": "angkutan kota sering ngetem lama dan menaikkan tarif seenaknya",
    "bansos": "bantuan sosial tidak sampai ke warga yang terdaftar sebagai penerima",
    "phk": "pesangon karyawan yang terkena PHK belum dibayar perusahaan",
}
DETAILS = (
    "Sudah dilaporkan ke RT dan kelurahan tetapi belum ada tindak lanjut.",
    "Kondisi ini sudah berlangsung lebih dari dua minggu.",
    "Banyak warga lanjut usia dan anak-anak yang terdampak.",
    "Foto kondisi terakhir bisa kami kirimkan bila diperlukan.",
    "Kami berharap petugas bisa meninjau langsung ke lokasi.",
    "Setiap hujan deras keadaannya menjadi jauh lebih parah.",
)
STREETS = ("Merdeka", "Sudirman", "Diponegoro", "Ahmad Yani", "Pemuda", "Pahlawan", "Veteran",
           "Gatot Subroto", "Imam Bonjol", "Pramuka", "Kartini", "Siliwangi")


class Generator:
    """Unique, realistic raw messages: the fixture shapes with fresh ids and contents.

    Each message yields exactly one complaint (checked on a sample), so complaints/s and
    messages/s are the same number. Every complaint has its own reporter, place and
    opening words, so the hub's duplicate detection (rightly) finds none. Web and mobile
    forms spread over 100 regions x 10 categories, which the scale registries route on.
    """

    def __init__(self, run: str, seed: int = 1708) -> None:
        self.run = run
        self.rnd = random.Random(seed)
        self.regions = region_pool()
        self.sources = list(MIX)
        self.weights = [MIX[s] for s in self.sources]
        self.n = 0
        self.t_twilio = [
            dict(parse_qsl(_fixture("sms-twilio", n).decode(), keep_blank_values=True))
            for n in ("inbound_sms.urlencoded", "long_sms.urlencoded", "mms_with_photos.urlencoded")
        ]
        self.t_open311 = [
            dict(parse_qsl(_fixture("open311", n).decode(), keep_blank_values=True))
            for n in ("pothole.urlencoded", "address_only.urlencoded")
        ]
        self.t_sms = json.loads(_fixture("sms-gateway", "single.json"))
        self.t_wa = _fixture("whatsapp", "text_message.json").decode()
        self.t_x = _fixture("x", "tweet_lookup.json").decode()
        feed = json.loads(_fixture("meta", "page_feed.json"))
        feed["entry"] = [{**feed["entry"][0], "changes": feed["entry"][0]["changes"][:1]}]
        self.t_meta = json.dumps(feed)
        self.t_jakarta = [
            json.loads(_fixture("prov-jakarta", n)) for n in ("menunggu.json", "selesai.json")
        ]
        text = _fixture("prov-jateng", "export.csv").decode("utf-8-sig")
        header, *rows = csv.reader(io.StringIO(text))
        # The export's complete rows (the fixture also holds broken ones, on purpose).
        self.t_jateng = (header, [r for r in rows if r and r[0].endswith(("101", "103", "107"))])

    def take(self, count: int) -> list[Message]:
        return [self.one() for _ in range(count)]

    def one(self) -> Message:
        self.n += 1
        source = self.rnd.choices(self.sources, self.weights)[0]
        uid = f"{self.run}{self.n:08d}"
        body, content_type = getattr(self, "make_" + source.replace("-", "_"))(uid)
        return Message(source, uid.encode(), body, content_type, f"bench-{uid}")

    # What makes each complaint its own: text, reporter, place (all derived from n).

    def story(self, word: str | None = None) -> str:
        rt, rw = self.n % 1000, self.n // 1000 % 1000
        issue = ISSUES[word or self.rnd.choice(list(ISSUES))]
        return (f"Warga RT {rt:03d}/RW {rw:03d} melaporkan {issue}. {self.rnd.choice(DETAILS)} "
                "Mohon segera ditindaklanjuti, terima kasih.")

    def phone(self) -> str:
        return f"+62813{self.n % 10**8:08d}"

    def address(self) -> str:
        return f"Jl. {self.rnd.choice(STREETS)} No. {self.n % 997 + 1}, RT {self.n % 1000:03d}"

    def coordinates(self) -> tuple[float, float]:
        # One ~100 m cell per complaint (the duplicate check's place key rounds to 0.001).
        return -6.1 - (self.n % 1000) * 0.001, 106.5 + (self.n // 1000 % 1000) * 0.001

    def make_web(self, uid: str) -> tuple[bytes, str]:
        code, name = self.rnd.choice(self.regions)
        word = self.rnd.choice(list(CATEGORIES))
        form = {
            "id": f"web-{uid}",
            "judul": f"Laporan {word} di {name}",
            "isi": self.story(word),
            "kategori": word,
            "jenis_laporan": self.rnd.choice(("pengaduan", "pengaduan", "aspirasi")),
            "lokasi": {"kode_wilayah": code, "nama": name, "alamat": self.address()},
            "anonim": self.rnd.random() < 0.2,
            "rahasia": self.rnd.random() < 0.1,
            "pelapor": {"nama": "Siti Aminah", "telepon": self.phone()},
        }
        return json.dumps(form).encode(), "application/json"

    make_mobile = make_web

    def make_sms_twilio(self, uid: str) -> tuple[bytes, str]:
        form = dict(self.rnd.choice(self.t_twilio))
        sid = "SM" + uuid.UUID(int=self.rnd.getrandbits(128)).hex
        form.update(MessageSid=sid, SmsSid=sid, SmsMessageSid=sid, Body=self.story(),
                    From=self.phone())
        return urlencode(form).encode(), "application/x-www-form-urlencoded"

    def make_open311(self, uid: str) -> tuple[bytes, str]:
        form = {**self.rnd.choice(self.t_open311), "device_id": uid, "description": self.story(),
                "phone": self.phone(), "address_string": self.address()}
        if "lat" in form:
            form["lat"], form["long"] = (f"{v:.4f}" for v in self.coordinates())
        return urlencode(form).encode(), "application/x-www-form-urlencoded"

    def make_sms_gateway(self, uid: str) -> tuple[bytes, str]:
        body = {**self.t_sms, "id": f"smsc-{uid}", "text": self.story(), "msisdn": self.phone()}
        return json.dumps(body).encode(), "application/json"

    def make_whatsapp(self, uid: str) -> tuple[bytes, str]:
        body = json.loads(self.t_wa)
        value = body["entry"][0]["changes"][0]["value"]
        sender = self.phone().removeprefix("+")
        value["contacts"][0]["wa_id"] = sender
        message = value["messages"][0]
        message.update(id="wamid." + base64.b64encode(uid.encode()).decode(), **{"from": sender})
        message["text"]["body"] = self.story()
        return json.dumps(body).encode(), "application/json"

    def make_x(self, uid: str) -> tuple[bytes, str]:
        body = json.loads(self.t_x)
        tweet, user = body["data"], body["includes"]["users"][0]
        tweet_id = str(1_800_000_000_000_000_000 + self.rnd.getrandbits(56))
        user_id = str(1_500_000_000_000_000_000 + self.n)
        tweet.update(id=tweet_id, edit_history_tweet_ids=[tweet_id], author_id=user_id,
                     text=f"#LAPOR {self.story()} @LAPOR1708")
        user.update(id=user_id, username=f"warga_{uid}")
        lat, lng = self.coordinates()
        tweet["geo"]["coordinates"]["coordinates"] = [lng, lat]
        return json.dumps(body).encode(), "application/json"

    def make_meta(self, uid: str) -> tuple[bytes, str]:
        body = json.loads(self.t_meta)
        value = body["entry"][0]["changes"][0]["value"]
        value.update(comment_id=f"801234567890123_{uid}", message=self.story())
        value["from"] = {"id": str(7_302_918_273_000_000 + self.n), "name": f"Warga {uid}"}
        return json.dumps(body).encode(), "application/json"

    def make_prov_jakarta(self, uid: str) -> tuple[bytes, str]:
        body = {**self.rnd.choice(self.t_jakarta), "id_laporan": f"JAKI-{uid}",
                "isi": self.story(), "alamat": self.address()}
        body["pelapor"] = {**body["pelapor"], "no_hp": self.phone()}
        if "lat" in body:
            body["lat"], body["lng"] = self.coordinates()
        return json.dumps(body).encode(), "application/json"

    def make_prov_jateng(self, uid: str) -> tuple[bytes, str]:
        header, rows = self.t_jateng
        row = dict(zip(header, self.rnd.choice(rows), strict=True))
        row.update(no_tiket=f"LG-{uid}", uraian=self.story(), hp_pelapor=self.phone(),
                   alamat=self.address())
        out = io.StringIO()
        csv.writer(out).writerows([header, [row[h] for h in header]])
        return out.getvalue().encode(), "text/csv"


def check_messages(messages: Sequence[Message], received_at: datetime) -> list[str]:
    """Tracking ids of the messages (one complaint each, or it fails), via the real adapters."""
    found = []
    for m in messages:
        raw = RawMessage(m.source, m.value, m.content_type, received_at, m.message_id)
        complaints = [o for o in SOURCES[m.source].normalize(raw) if isinstance(o, Complaint)]
        if len(complaints) != 1:
            raise RuntimeError(f"generator: a {m.source} message gave {len(complaints)} complaints")
        found.append(complaints[0].tracking_id)
    return found


def write_registry(path: Path, agencies: int, regions: Sequence[tuple[str, str]]) -> None:
    """An agency registry with `agencies` agencies (and topics) spreading the complaints.

    10: one agency per category, the rest (and channels without category) go national.
    1,000: one agency per (category, region) pair of the web/mobile forms.
    """
    national = "bench-national"
    codes = [national]
    rules: list[dict[str, str]] = []
    if agencies <= len(CATEGORIES):
        for i, cat in enumerate(list(CATEGORIES.values())[: agencies - 1]):
            codes.append(f"bench-{i:04d}")
            rules.append({"category": cat, "agency": codes[-1]})
    else:
        pairs = [(cat, code) for cat in CATEGORIES.values() for code, _ in regions]
        for i, (cat, region) in enumerate(pairs[: agencies - 1]):
            codes.append(f"bench-{i:04d}")
            rules.append({"category": cat, "region": region, "agency": codes[-1]})
    doc = {
        "national": national,
        "agencies": [
            {"code": national, "name": "Admin Nasional", "level": "national", "zone": "WIB"},
            *(
                {"code": c, "name": f"Instansi {c}", "level": "opd", "parent": national,
                 "zone": "WIB"}
                for c in codes[1:]
            ),
        ],
        "rules": rules,
    }
    path.write_text(json.dumps(doc))  # JSON is YAML


# --- broker helpers --------------------------------------------------------------------


def raw_topic(prefix: str, source: str) -> str:
    """`hub.topics.raw(source)` as a hub whose HUB_TOPIC_PREFIX is `prefix` names it."""
    return f"{prefix}.raw.{source}"


async def create_topics(bootstrap: str, names: Sequence[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(n, PARTITIONS, 1) for n in names])
    finally:
        await admin.close()


async def preload(bootstrap: str, prefix: str, messages: Sequence[Message]) -> float:
    """Create the raw topics and fill them; returns the load's own messages/s."""
    await create_topics(bootstrap, [raw_topic(prefix, s) for s in SOURCES])
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=5, max_batch_size=512 * 1024
    )
    await producer.start()
    started = time.perf_counter()
    try:
        now = datetime.now(UTC)
        futures = [
            await producer.send(
                raw_topic(prefix, m.source), m.value, key=m.key, headers=m.headers(now)
            )
            for m in messages
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return len(messages) / (time.perf_counter() - started)


def parse(value: bytes, content_type: str) -> object:
    """What the ceiling does per record: decode the native body (JSON, form or CSV)."""
    if content_type == "application/json":
        return json.loads(value)
    if content_type == "text/csv":
        return list(csv.reader(io.StringIO(value.decode("utf-8-sig"))))
    return parse_qsl(value.decode())


def _content_type(headers: Sequence[tuple[str, bytes]]) -> str:
    return next((v.decode() for k, v in headers if k == "content-type"), "application/json")


# --- 1. ceiling ------------------------------------------------------------------------


Batch = dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]


async def pass_on(
    consumer: AIOKafkaConsumer, producer: AIOKafkaProducer,
    batches: Batch,
    topic_of: Callable[[bytes | None], str],
) -> int:
    """The ceiling's work on a fetched batch: parse each record, send it on to
    `topic_of(its key)`, await the acknowledgements, commit. Returns how many."""
    futures = []
    for records in batches.values():
        for r in records:
            parse(r.value, _content_type(r.headers))
            futures.append(await producer.send(topic_of(r.key), r.value, key=r.key))
    if futures:
        await asyncio.gather(*futures)
        await consumer.commit()
    return len(futures)


async def drain_batches(
    bootstrap: str, prefix: str, expected: int, group: str,
    work: Callable[[AIOKafkaConsumer, AIOKafkaProducer, Batch], Awaitable[int]],
) -> dict[str, float]:
    """Consume the raw topics in batches of up to 1,000 with plain aiokafka, handing each to
    `work` (which sends, commits and says how many it took), until `expected` are done."""
    consumer = AIOKafkaConsumer(
        *(raw_topic(prefix, s) for s in SOURCES),
        bootstrap_servers=bootstrap,
        group_id=f"{prefix}-{group}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=1000,
        **FAST_JOIN,
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=2, max_batch_size=256 * 1024
    )
    await consumer.start()
    await producer.start()
    done, first, last = 0, 0.0, 0.0
    try:
        deadline = time.monotonic() + 120
        while done < expected and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=100, max_records=1000)
            if not batches:
                continue
            first = first or time.perf_counter()
            done += await work(consumer, producer, batches)
            last = time.perf_counter()
    finally:
        await consumer.stop()
        await producer.stop()
    return {"n": done, "per_s": done / (last - first) if last > first else 0.0}


async def ceiling(bootstrap: str, prefix: str, expected: int) -> dict[str, float]:
    """Plain aiokafka in batches of up to 1,000: the most a Python consumer does here."""
    out = f"{prefix}.ceiling.out"
    await create_topics(bootstrap, [out])
    return await drain_batches(
        bootstrap, prefix, expected, "ceiling",
        lambda consumer, producer, batches: pass_on(consumer, producer, batches,
                                                    lambda _key: out),
    )


# --- 2. naive --------------------------------------------------------------------------


async def naive(bootstrap: str, prefix: str, expected: int) -> dict[str, float]:
    """The obvious FastStream handler: one message at a time, awaiting each publish.

    With the defaults a newcomer keeps: FastStream decodes the body by its content type,
    and its default ack policy commits on its own.
    """
    out = f"{prefix}.naive.out"
    await create_topics(bootstrap, [out])
    quiet = logging.getLogger("hub.bench.naive")
    quiet.setLevel(logging.WARNING)
    broker = KafkaBroker(bootstrap, logger=quiet)
    state = {"n": 0, "first": 0.0, "last": 0.0}
    finished = asyncio.Event()

    @broker.subscriber(  # type: ignore[untyped-decorator]
        *(raw_topic(prefix, s) for s in SOURCES),
        group_id=f"{prefix}-naive",
        auto_offset_reset="earliest",
        **FAST_JOIN,
    )
    async def handle(body: Any, msg: KafkaMessage) -> None:
        state["first"] = state["first"] or time.perf_counter()
        await broker.publish(msg.body, topic=out, key=cast(Any, msg.raw_message).key)
        state["n"] += 1
        if state["n"] >= expected:
            state["last"] = state["last"] or time.perf_counter()
            finished.set()

    await broker.start()
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(finished.wait(), timeout=120)
    finally:
        await broker.stop()
    n, span = min(int(state["n"]), expected), state["last"] - state["first"]
    return {"n": n, "per_s": n / span if span > 0 else 0.0}


# --- 2b. the plain batched prototype -----------------------------------------------------


class PrototypeRecord(BaseModel):
    """What the prototype validates per record: its envelope and its parsed body."""

    source: str
    message_id: str
    received_at: datetime
    body: dict[str, Any] | list[Any]


PROTOTYPE_TOPICS = 10


async def prototype(bootstrap: str, prefix: str, expected: int, work: Path) -> dict[str, float]:
    """The batched prototype the speed target was set by, on the ceiling's messages: a batch
    of up to 1,000 parsed and validated with pydantic, one bulk insert into SQLite (the
    hub's engine settings), each record published to one of ten topics, then commit.

    No normalization, duplicate check, routing or history: the yardstick for what the
    hub's own work costs on top of batching, in the same run.
    """
    outs = [f"{prefix}.prototype.{i}" for i in range(PROTOTYPE_TOPICS)]
    await create_topics(bootstrap, outs)
    engine = store.make_engine(f"sqlite:///{work}/{prefix}-prototype.db")
    table = sa.Table(
        "message", sa.MetaData(),
        sa.Column("message_id", sa.String, primary_key=True),
        sa.Column("source", sa.String, nullable=False),
        sa.Column("received_at", store.UtcDateTime(), nullable=False),
        sa.Column("document", sa.String, nullable=False),
    )
    table.metadata.create_all(engine)
    batch_of = TypeAdapter(list[PrototypeRecord])

    async def handle(consumer: AIOKafkaConsumer, producer: AIOKafkaProducer,
                   batches: Batch) -> int:
        records = [r for rs in batches.values() for r in rs]
        valid = batch_of.validate_python([_prototype_fields(r) for r in records])
        documents = [v.model_dump_json() for v in valid]
        with engine.begin() as conn:
            conn.execute(sa.insert(table), [
                {"message_id": v.message_id, "source": v.source,
                 "received_at": v.received_at, "document": d}
                for v, d in zip(valid, documents, strict=True)
            ])
        futures = [
            await producer.send(outs[zlib.crc32(r.key or b"") % PROTOTYPE_TOPICS],
                                d.encode(), key=r.key)
            for r, d in zip(records, documents, strict=True)
        ]
        await asyncio.gather(*futures)
        await consumer.commit()
        return len(records)

    try:
        return await drain_batches(bootstrap, prefix, expected, "prototype", handle)
    finally:
        engine.dispose()


def _prototype_fields(r: ConsumerRecord[bytes, bytes]) -> dict[str, Any]:
    headers = {k: v.decode() for k, v in r.headers}
    body = parse(r.value, headers.get("content-type", "application/json"))
    return {
        "source": r.topic.rsplit(".", 1)[-1],
        "message_id": headers["hub-message-id"],
        "received_at": headers["hub-received-at"],
        "body": dict(body) if isinstance(body, list) and body and isinstance(body[0], tuple)
        else body,
    }


# --- 1b. latency ceiling: a relay that only parses records and passes them on ---------


@dataclass
class RelayConfig:
    bootstrap: str
    prefix: str
    codes: list[str]
    """Agency codes: each record goes to one of their topics, chosen by its key."""


def relay_topic(prefix: str, codes: Sequence[str], key: bytes | None) -> str:
    return topics_agency(prefix, codes[zlib.crc32(key or b"") % len(codes)])


async def relay_main(config: RelayConfig) -> None:
    """Consume the raw topics with the hub's fetch and batch settings, parse each record,
    send it on to an agency topic (acks=all, no linger, as the hub's producer), await the
    acknowledgements, commit. The hub's own work (validation, routing, storage) is left
    out, so its latency is what the broker and the Kafka clients alone cost at the
    offered load: the latency ceiling. Says `ready` once it holds partitions, `stopped`
    after `stop` (or when stdin closes)."""
    settings = Settings()
    consumer = AIOKafkaConsumer(
        *(raw_topic(config.prefix, s) for s in SOURCES),
        bootstrap_servers=config.bootstrap, group_id=f"{config.prefix}-relay",
        auto_offset_reset="earliest", enable_auto_commit=False,
        fetch_max_wait_ms=settings.fetch_max_wait_ms, **FAST_JOIN,
    )
    producer = AIOKafkaProducer(bootstrap_servers=config.bootstrap, acks="all", linger_ms=0)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def listen() -> None:  # any word, or the parent going away, stops the relay
        sys.stdin.readline()
        loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=listen, daemon=True).start()
    await consumer.start()
    await producer.start()
    try:
        while not consumer.assignment() and not stop.is_set():
            await consumer.getmany(timeout_ms=100)
        _say({"event": "ready"})
        while not stop.is_set():
            batches = await consumer.getmany(
                timeout_ms=settings.batch_timeout_ms, max_records=settings.batch_size
            )
            await pass_on(consumer, producer, batches,
                          lambda key: relay_topic(config.prefix, config.codes, key))
    finally:
        await consumer.stop()
        await producer.stop()
    _say({"event": "stopped"})


# --- 3.-5. the hub, in a child process -------------------------------------------------


@dataclass
class ChildConfig:
    bootstrap: str
    prefix: str
    database_url: str
    expected: int
    agencies_file: str | None = None


class ChildProcess:
    """A bench child (`python -m hub.bench MODE CONFIG`) that says `BENCH {json}` lines on
    stdout and takes words on stdin. `env` is added to the child's environment."""

    def __init__(self, mode: str, config: dict[str, Any], prefix: str, workdir: Path,
                 env: dict[str, str] | None = None) -> None:
        self.prefix = prefix
        path = workdir / f"{prefix}.json"
        path.write_text(json.dumps(config))
        self.log_path = workdir / f"{prefix}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            child_command(mode, str(path), prefix),
            env={**os.environ, **(env or {})},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )

    async def read(self, event: str, within: float = 900) -> dict[str, Any]:
        """The child's next line, which must be `event`; raises with its log's tail if not."""
        stdout = self.proc.stdout
        assert stdout is not None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                while line := await asyncio.to_thread(stdout.readline):
                    if line.startswith("BENCH "):
                        said = dict(json.loads(line.removeprefix("BENCH ")))
                        if said.get("event") == event:
                            return said
                        break
        self.kill()
        tail = self.log_path.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"bench child {self.prefix}: no {event!r}\n{tail}")

    def tell(self, word: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(word + "\n")
        self.proc.stdin.flush()

    async def stop(self) -> dict[str, Any]:
        """Tell the child to stop; returns what it said on `stopped`."""
        self.tell("stop")
        final = await self.read("stopped", 60)
        await asyncio.to_thread(self.proc.wait, 30)
        return final

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


class HubChild(ChildProcess):
    """The real hub (`build(Settings)` and its lifespan) in its own process.

    It says `ready` when its subscriber hands over the first batch (it then waits for
    `go` on stdin, so that start-ups can overlap while drains never do), `drained` after
    `expected` records, `stopped` with its peak RSS after `stop`.
    """

    def __init__(self, config: ChildConfig, workdir: Path) -> None:
        super().__init__("_child", asdict(config), config.prefix, workdir, {
            "HUB_TOPIC_PREFIX": config.prefix,
            "HUB_KAFKA_BOOTSTRAP": config.bootstrap,
            "HUB_DATABASE_URL": config.database_url,
        })
        self.config = config
        self.codes: list[str] = []
        """The hub's agency codes, as it loaded them (known once drained)."""

    async def drain(self) -> dict[str, Any]:
        """Let the hub go; returns what it did, with routing events counted on the topics."""
        self.tell("go")
        said = await self.read("drained")
        self.codes = said.pop("agency_codes")
        routed, events = await count_routed(self.config.bootstrap, self.config.prefix,
                                            self.codes, said["records"])
        span = said["seconds"]
        # Complaints/s: distinct complaints whose routing event reached the agency topics.
        return {**said, "agency_topics": len(self.codes), "routed": routed,
                "events_sent_twice": events - routed,
                "per_s": routed / span if span > 0 else 0.0}

    async def peak_rss_after_stop(self) -> float:
        """Stop the hub; returns its peak RSS in MB."""
        return float((await self.stop())["peak_rss_mb"])


def child_command(mode: str, config_path: str, prefix: str) -> list[str]:
    """A bench child's command; HUB_BENCH_CHILD_WRAP puts a profiler in front of it.

    E.g. `py-spy record -o /tmp/{prefix}.svg --` ({prefix} tells the runs apart).
    """
    wrap = os.environ.get("HUB_BENCH_CHILD_WRAP", "").replace("{prefix}", prefix).split()
    return [*wrap, sys.executable, "-m", "hub.bench", mode, config_path]


def _say(event: dict[str, Any]) -> None:
    sys.stdout.write("BENCH " + json.dumps(event) + "\n")
    sys.stdout.flush()


def _counts(engine: sa.Engine) -> dict[str, int]:
    """What the database holds (routing events are counted on the topics, by the parent)."""
    with engine.connect() as conn:
        return {
            table: int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())
            for table in ("complaint", "dead_letter")
        }


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def step_seconds() -> dict[str, float]:
    """Seconds spent so far in each intake step (lapor_intake_step_seconds), this process."""
    return metrics.totals("lapor_intake_step_seconds_sum", "step", metrics.intake_step)


def peak_rss_mb(field: str = "VmHWM") -> float:
    """This process's peak RSS: VmHWM, which (unlike ru_maxrss) starts afresh at exec.

    ru_maxrss keeps the high-water mark of the image before execve, here the bench parent
    and its pre-generated messages. `field="VmRSS"` gives the RSS now.
    """
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def child_main(config: ChildConfig) -> None:
    """Start the hub app in-process; on `go` time the drain, then serve until `stop`."""
    # hub.topics read HUB_TOPIC_PREFIX at import: the parent set it for this process.
    if topics.raw("web") != raw_topic(config.prefix, "web"):
        raise RuntimeError("HUB_TOPIC_PREFIX was not set for the hub child")
    settings = Settings(
        kafka_bootstrap=config.bootstrap,
        database_url=config.database_url,
        kafka_group=f"{config.prefix}-hub",
        topic_prefix=config.prefix,
        agencies_file=Path(config.agencies_file) if config.agencies_file else None,
    )
    app, hub = build(settings)
    state = {"ready": 0.0, "first": 0.0, "last": 0.0, "cpu": 0.0, "records": 0, "batches": 0}
    go, drained, stop = asyncio.Event(), asyncio.Event(), asyncio.Event()
    intake = hub.intake
    # HUB_BENCH_TRACE=FILE: one line per batch – start (unix s), records, age of its oldest
    # record at the start (ms since the producer's send), ms until stored and published,
    # then the ms of each of those steps (lapor_intake_step_seconds: normalize, store, send).
    trace_path = os.environ.get("HUB_BENCH_TRACE", "").replace("{prefix}", config.prefix)
    trace: list[str] = []

    async def timed(records: Any) -> None:
        if not go.is_set():
            state["ready"] = time.time()
            _say({"event": "ready"})
            await go.wait()
        # From the first batch the subscriber hands over to the last one stored, published,
        # acknowledged by the broker and marked sent (the subscriber commits right after).
        if not state["first"]:
            state["first"], state["cpu"] = time.time(), _cpu_s()
        began, steps = time.time(), step_seconds() if trace_path else {}
        await intake(records)
        if trace_path:
            oldest = min(r.timestamp for r in records).timestamp()
            took = {step: 1000 * (s - steps[step]) for step, s in step_seconds().items()}
            trace.append(f"{began:.4f} {len(records)} {1000 * (began - oldest):.1f} "
                         f"{1000 * (time.time() - began):.1f} "
                         + " ".join(f"{took[step]:.1f}" for step in metrics.INTAKE_STEPS))
        state["records"] += len(records)
        state["batches"] += 1
        if state["records"] >= config.expected and not drained.is_set():
            state["last"], state["cpu"] = time.time(), _cpu_s() - state["cpu"]
            drained.set()

    loop = asyncio.get_running_loop()

    def listen() -> None:  # a daemon thread: a pending readline must not hold up the exit
        for line in sys.stdin:
            loop.call_soon_threadsafe((go if line.strip() == "go" else stop).set)
        loop.call_soon_threadsafe(stop.set)  # the parent went away

    hub.intake = timed  # type: ignore[method-assign]
    started = time.time()
    threading.Thread(target=listen, daemon=True).start()
    async with app.start_lifespan_context():
        # `stop` too: a parent that went away before `go` (killed, or failed) would
        # otherwise leave this hub waiting for ever.
        ends = [asyncio.create_task(e.wait()) for e in (drained, stop)]
        await asyncio.wait(ends, timeout=1800, return_when=asyncio.FIRST_COMPLETED)
        for end in ends:
            end.cancel()
        if not drained.is_set():
            if stop.is_set():
                return
            raise TimeoutError("the hub did not drain within 30 minutes")
        found = await asyncio.to_thread(_counts, hub.engine)
        span = state["last"] - state["first"]
        _say({
            "event": "drained", **found, "records": state["records"],
            "batches": state["batches"], "seconds": round(span, 3),
            "ready_s": round(state["ready"] - started, 2),
            # CPU time of the whole hub process per complaint: unlike complaints/s, it
            # hardly moves when other processes compete for the cores.
            "cpu_ms_per_complaint": round(1000 * state["cpu"] / max(state["records"], 1), 3),
            "rss_mb_drained": round(peak_rss_mb("VmRSS"), 1),
            "agency_codes": list(hub.rules.directory.agencies),
        })
        await stop.wait()
    if trace_path:
        await asyncio.to_thread(Path(trace_path).write_text, "".join(f"{t}\n" for t in trace))
    _say({"event": "stopped", "peak_rss_mb": peak_rss_mb()})


# --- 4. latency ------------------------------------------------------------------------


async def agency_reader(bootstrap: str, prefix: str, codes: Sequence[str]) -> AIOKafkaConsumer:
    """A consumer of every agency partition from the start, independent of the hub (no group).

    Fetch wait 50 ms, not 5: polling 200 times a second over every agency partition cost the
    embedded broker a fifth of a core before the offered load had even built up, so the
    instrument slowed what it measured. At 50 ms an event still reached the reader as soon
    (27-29 ms after the hub's send at the median, against 24-31 ms) and p99 fell from
    340-592 ms to 177-229 ms (three and five 30 s runs at 1,000/s).
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest",
        fetch_max_wait_ms=50, max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    await consumer.start()
    await consumer.topics()  # metadata for the agency topics the hub created
    consumer.assign([
        TopicPartition(t, p)
        for t in {topics_agency(prefix, c) for c in codes}
        for p in consumer.partitions_for_topic(t) or ()
    ])
    return consumer


async def read_all(
    consumer: AIOKafkaConsumer, expected: int, quiet_s: float = 5.0
) -> tuple[int, int]:
    """Read until `expected` distinct keys came, or nothing for `quiet_s`.

    Returns (distinct keys, records): a key is a tracking id, so more records than keys
    are events sent twice. (A first fetch over thousands of partitions takes a while:
    an empty poll proves nothing.)
    """
    keys: set[bytes | None] = set()
    count, last = 0, time.monotonic()
    while len(keys) < expected and time.monotonic() - last < quiet_s:
        batch = await consumer.getmany(timeout_ms=200, max_records=10_000)
        for records in batch.values():
            count += len(records)
            keys.update(r.key for r in records)
            last = time.monotonic()
    return len(keys), count


async def count_routed(
    bootstrap: str, prefix: str, codes: Sequence[str], expected: int
) -> tuple[int, int]:
    """Routing events on the agency topics: what the agencies got, however the hub sent it."""
    consumer = await agency_reader(bootstrap, prefix, codes)
    try:
        # 30 s of quiet before a short count is believed: once, 5 s cut the count of
        # 1,000 topics at 47,927 of 50,000 (the same phase again found all 50,000).
        return await read_all(consumer, expected, quiet_s=30.0)
    finally:
        await consumer.stop()


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far (None once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def sample_cpu(
    pids: dict[str, int], into: dict[str, list[float]], every: float = 5.0
) -> None:
    """Each process's share of one core (%) per `every` seconds, until cancelled."""
    last = {name: cpu_seconds(pid) for name, pid in pids.items()}
    while True:
        began = time.monotonic()
        await asyncio.sleep(every)
        span = time.monotonic() - began
        for name, pid in pids.items():
            now, before = cpu_seconds(pid), last[name]
            if now is not None and before is not None:
                into.setdefault(name, []).append(round(100 * (now - before) / span))
            last[name] = now


async def latency(
    bootstrap: str, prefix: str, codes: Sequence[str], messages: Sequence[Message],
    keys: Sequence[bytes], rate: float, before: int, pids: dict[str, int] | None = None,
) -> dict[str, Any]:
    """Offer `rate` messages/s; time raw publish -> event on an agency topic, read by our
    consumer. `keys[i]` is the key of the event that `messages[i]` causes (for the hub,
    its tracking id).

    The consumer reads from the start, so first it skips what the drain phase left there.
    `pids` names processes whose CPU is sampled every 5 s meanwhile (broker, hub, ...).
    """
    cpu_pct: dict[str, list[float]] = {}
    tracking = {key: i for i, key in enumerate(keys)}
    sent = [0.0] * len(messages)
    seen: dict[int, float] = {}
    stamped: dict[int, float] = {}
    consumer = await agency_reader(bootstrap, prefix, codes)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    await producer.start()
    try:
        await read_all(consumer, before)  # skip the drain phase's events (`before` complaints)

        async def receive() -> None:
            while len(seen) < len(messages):
                batch = await consumer.getmany(timeout_ms=100, max_records=2000)
                now = time.time()
                for records in batch.values():
                    for r in records:
                        i = tracking.get(r.key)
                        if i is not None and i not in seen:
                            seen[i] = now
                            stamped[i] = r.timestamp / 1000  # the hub's send() (CreateTime)

        receiving = asyncio.create_task(receive())
        sampling = asyncio.create_task(sample_cpu({**(pids or {}), "bench": os.getpid()},
                                                  cpu_pct))
        tick = 0.01  # rate*tick messages every 10 ms, on an absolute schedule (no drift)
        per_tick = max(int(rate * tick), 1)
        start = time.perf_counter()
        futures = []
        for n in range(0, len(messages), per_tick):
            delay = start + n // per_tick * tick - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            for i in range(n, min(n + per_tick, len(messages))):
                m, at = messages[i], datetime.now(UTC)
                sent[i] = at.timestamp()
                futures.append(await producer.send(
                    raw_topic(prefix, m.source), m.value, key=m.key, headers=m.headers(at)
                ))
        offered_s = time.perf_counter() - start
        sampling.cancel()
        await asyncio.gather(*futures)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(receiving, timeout=60)
    finally:
        await producer.stop()
        await consumer.stop()
    waits = sorted((seen[i] - sent[i]) * 1000 for i in seen)
    if not waits:
        raise RuntimeError("latency: no routing event arrived")
    # Split: raw publish -> the hub's send() of the event (record timestamps, ms precision).
    in_hub = sorted((stamped[i] - sent[i]) * 1000 for i in stamped)
    return {
        "n": len(messages),
        "received": len(waits),
        "offered_per_s": len(messages) / offered_s if offered_s > 0 else 0.0,
        "p50_ms": statistics.median(waits),
        "p99_ms": _pct(waits, 0.99),
        "max_ms": waits[-1],
        "to_hub_send_p50_ms": statistics.median(in_hub),
        "to_hub_send_p99_ms": _pct(in_hub, 0.99),
        "cpu_pct_by_5s": cpu_pct,
    }


def _pct(ordered: Sequence[float], q: float) -> float:
    return ordered[min(int(len(ordered) * q), len(ordered) - 1)]


def topics_agency(prefix: str, code: str) -> str:
    """`hub.topics.agency(code)` as a hub with HUB_TOPIC_PREFIX `prefix` names it."""
    return f"{prefix}.agency.{code}"


# --- the run ---------------------------------------------------------------------------


class Progress:
    def __init__(self, console: Console | None) -> None:
        self.console = console

    def __call__(self, text: str) -> None:
        if self.console is not None:
            self.console.print(f"[dim]{time.strftime('%H:%M:%S')}[/] {text}", highlight=False)


@dataclass
class Run:
    plan: Plan
    say: Progress
    boot: str
    work: Path
    run: str
    gen: Generator
    broker_pid: int | None = None

    async def start_hub(
        self, prefix: str, messages: Sequence[Message], agencies: int | None = None
    ) -> HubChild:
        """Pre-load the raw topics, then start a hub on them (it waits for `go`)."""
        registry = None
        if agencies is not None:
            registry = self.work / f"agencies-{agencies}.yaml"
            write_registry(registry, agencies, self.gen.regions)
        await preload(self.boot, prefix, messages)
        config = ChildConfig(self.boot, prefix, f"sqlite:///{self.work}/{prefix}.db",
                             len(messages), str(registry) if registry else None)
        return HubChild(config, self.work)

    async def hub(self, child: HubChild, latency_msgs: Sequence[Message]) -> tuple[
        dict[str, Any], dict[str, float], float
    ]:
        """Phases 3 and 4 on one hub (packaged registry): drain, then the fixed load."""
        self.say("3/5 hub: the real app draining the raw topics (packaged agency registry)")
        drained = await child.drain()
        self.say(f"    {drained['per_s']:,.0f} complaints/s ({drained['complaint']:,} stored, "
                 f"{drained['routed']:,} routed, {drained['batches']} batches)")
        self.say(f"4/5 latency: {LATENCY_RATE:,.0f} complaints/s offered for "
                 f"{self.plan.latency_s:.0f} s")
        tids = [t.encode() for t in check_messages(latency_msgs, datetime.now(UTC))]
        lat = await self.latency(child, child.codes, latency_msgs, tids, drained["routed"],
                                 "hub")
        return drained, lat, await child.peak_rss_after_stop()

    async def baselines(self, drain_msgs: Sequence[Message],
                        latency_msgs: Sequence[Message]) -> tuple[dict[str, float], ...]:
        """Phases 1 and 2: the ceiling (throughput, then latency through a relay), the
        naive handler and the batched prototype – the hub's yardsticks, in this run."""
        prefix, plan, say = f"c{self.run}", self.plan, self.say
        await preload(self.boot, prefix, drain_msgs)
        say("1/5 ceiling: aiokafka consume -> parse -> produce -> commit")
        c = await ceiling(self.boot, prefix, plan.drain)
        say(f"    {c['per_s']:,.0f} msg/s")
        floor = await self.relay(f"r{self.run}", list(Directory.load(None).agencies),
                                 latency_msgs)
        say(f"2/5 naive: one FastStream handler per message ({plan.naive:,} messages)")
        nv = await naive(self.boot, prefix, plan.naive)
        say(f"    {nv['per_s']:,.0f} msg/s")
        say("    prototype: batch -> pydantic -> one SQLite insert -> ten topics -> commit")
        pt = await prototype(self.boot, prefix, plan.drain, self.work)
        say(f"    {pt['per_s']:,.0f} msg/s")
        return c, floor, nv, pt

    async def relay(self, prefix: str, codes: Sequence[str],
                    messages: Sequence[Message]) -> dict[str, Any]:
        """Phase 1b: the latency phase's load through a relay that only parses and passes on."""
        self.say(f"1/5 ceiling, latency: a plain aiokafka relay, {LATENCY_RATE:,.0f} msg/s "
                 f"offered for {self.plan.latency_s:.0f} s")
        await create_topics(self.boot, [raw_topic(prefix, s) for s in SOURCES]
                            + [topics_agency(prefix, c) for c in codes])
        child = ChildProcess("_relay", asdict(RelayConfig(self.boot, prefix, list(codes))),
                             prefix, self.work)
        try:
            await child.read("ready", 120)
            lat = await self.latency(child, codes, messages, [m.key for m in messages], 0,
                                     "relay")
            await child.stop()
        finally:
            child.kill()
        return lat

    async def latency(self, child: ChildProcess, codes: Sequence[str],
                      messages: Sequence[Message], keys: Sequence[bytes], before: int,
                      name: str) -> dict[str, Any]:
        """The fixed load through `child` (its CPU sampled as `name`, beside the broker's),
        said when done."""
        lat = await latency(self.boot, child.prefix, codes, messages, keys, LATENCY_RATE,
                            before, {name: child.proc.pid}
                            | ({"broker": self.broker_pid} if self.broker_pid else {}))
        self.say(f"    p50 {lat['p50_ms']:,.1f} ms, p99 {lat['p99_ms']:,.1f} ms, "
                 f"max {lat['max_ms']:,.1f} ms")
        return lat

    async def scale(self, agencies: int, child: HubChild) -> tuple[dict[str, Any], float]:
        self.say(f"5/5 scale: {agencies:,} agency topics, {child.config.expected:,} messages")
        drained = await child.drain()
        self.say(f"    {drained['per_s']:,.0f} complaints/s")
        return drained, await child.peak_rss_after_stop()


async def measure(plan: Plan, say: Progress, *, overlap: bool) -> dict[str, Any]:
    """All phases. `overlap` starts the main hub up front, during phases 1 and 2, and the
    two scale hubs together after the latency phase (start-up is mostly waiting for the
    broker's group join); drains still run one at a time."""
    began = time.perf_counter()
    run = uuid.uuid4().hex[:6]
    gen = Generator(run)
    drain_msgs = gen.take(plan.drain)
    check_messages(drain_msgs[:300], datetime.now(UTC))  # one complaint each, none rejected
    latency_msgs = gen.take(int(LATENCY_RATE * plan.latency_s))
    scale_msgs = drain_msgs[: plan.scale]
    # The load generator's own collector pauses (it holds every message) would show up
    # as the hub's latency: what is made so far lives to the end, out of its sight.
    gc.collect()
    gc.freeze()
    children: list[HubChild] = []
    with tempfile.TemporaryDirectory(prefix="lapor-bench-") as tmp, EmbeddedBroker() as broker:
        r = Run(plan, say, broker.bootstrap, Path(tmp), run, gen, broker.pid)
        say(f"broker {r.boot}; {plan.drain:,} raw messages, "
            f"{sum(len(m.value) for m in drain_msgs) / len(drain_msgs):.0f} bytes on average")
        try:
            if overlap:
                children = [await r.start_hub(f"h{run}", drain_msgs)]
                say("starting the hub (the broker's group joins take a while)")
                await children[0].read("ready")
            c, floor, nv, pt = await r.baselines(drain_msgs, latency_msgs)
            if not overlap:
                children.append(await r.start_hub(f"h{run}", drain_msgs))
                await children[-1].read("ready")
            h, lat, hub_peak = await r.hub(children[0], latency_msgs)
            # The scale hubs start only now: idle, they still poll the broker, and the
            # latency phase is the one hub's alone.
            if overlap:
                children += [await r.start_hub(f"s10x{run}", scale_msgs, 10),
                             await r.start_hub(f"s1000x{run}", scale_msgs, 1000)]
                for child in children[1:]:
                    await child.read("ready")
            else:
                children.append(await r.start_hub(f"s10x{run}", scale_msgs, 10))
                await children[-1].read("ready")
            s10, peak10 = await r.scale(10, children[1])
            if not overlap:
                children.append(await r.start_hub(f"s1000x{run}", scale_msgs, 1000))
                await children[-1].read("ready")
            s1000, peak1000 = await r.scale(1000, children[2])
        finally:
            for child in children:
                child.kill()
    peaks = {"hub": hub_peak, "agencies_10": peak10, "agencies_1000": peak1000}
    result: dict[str, Any] = {
        "ceiling_per_s": round(c["per_s"]),
        "naive_per_s": round(nv["per_s"]),
        "prototype_per_s": round(pt["per_s"]),
        "prototype_ratio": round(pt["per_s"] / c["per_s"], 3) if c["per_s"] else 0.0,
        "hub_per_s": round(h["per_s"]),
        "ratio": round(h["per_s"] / c["per_s"], 3) if c["per_s"] else 0.0,
        "p50_ms": round(lat["p50_ms"], 1),
        "p99_ms": round(lat["p99_ms"], 1),
        "max_ms": round(lat["max_ms"], 1),
        "ceiling_p50_ms": round(floor["p50_ms"], 1),
        "ceiling_p99_ms": round(floor["p99_ms"], 1),
        "ceiling_max_ms": round(floor["max_ms"], 1),
        "agencies_10_per_s": round(s10["per_s"]),
        "agencies_1000_per_s": round(s1000["per_s"]),
        "peak_rss_mb": round(max(peaks.values()), 1),
        "n": {
            "ceiling": int(c["n"]), "naive": int(nv["n"]), "prototype": int(pt["n"]),
            "hub": h["routed"],
            "latency_sent": int(lat["n"]), "latency_received": int(lat["received"]),
            "ceiling_latency_sent": int(floor["n"]),
            "ceiling_latency_received": int(floor["received"]),
            "agencies_10": s10["routed"], "agencies_1000": s1000["routed"],
        },
        "hub_cpu_ms_per_complaint": {k: r["cpu_ms_per_complaint"] for k, r in
                                     (("hub", h), ("agencies_10", s10), ("agencies_1000", s1000))},
        "latency_offered_per_s": round(lat["offered_per_s"]),
        "latency_to_hub_send_ms": {"p50": round(lat["to_hub_send_p50_ms"], 1),
                                   "p99": round(lat["to_hub_send_p99_ms"], 1)},
        "latency_cpu_pct_by_5s": lat["cpu_pct_by_5s"],
        "ceiling_latency_cpu_pct_by_5s": floor["cpu_pct_by_5s"],
        "peak_rss_mb_by_run": {k: round(v, 1) for k, v in peaks.items()},
        "runs": {"hub": h, "agencies_10": s10, "agencies_1000": s1000},
    }
    result["targets_met"] = {
        "ratio": result["ratio"] >= TARGETS["ratio"],
        "p99_ms": result["p99_ms"] <= TARGETS["p99_ms"],
        "agencies_1000_vs_10": result["agencies_1000_per_s"]
        >= TARGETS["agencies_1000_vs_10"] * result["agencies_10_per_s"],
        "peak_rss_mb": result["peak_rss_mb"] <= TARGETS["peak_rss_mb"],
    }
    result["seconds"] = round(time.perf_counter() - began, 1)
    return result


NOTES = {
    "messages": "fixture shapes of 10 sources with fresh ids, texts, reporters and places: "
    "one complaint each, no duplicates, no dead letters",
    "ceiling": "aiokafka getmany(1000) -> json/form/csv parse -> produce (acks=all) -> commit",
    "naive": "FastStream per-message subscriber awaiting broker.publish; default ack policy",
    "prototype": "the ceiling's messages: aiokafka getmany(1000) -> parse -> pydantic "
    "validation of the batch -> one bulk INSERT into SQLite (hub engine settings) -> produce "
    "each to one of ten topics (acks=all) -> commit",
    "hub": "hub.app.build(Settings) lifespan in a child process, packaged agency registry; "
    "routing events (counted on the agency topics) / seconds from the first batch handed to "
    "Hub.intake to the return of the last one (stored, published, acknowledged); includes "
    "the hub's cold-start costs after its consumer joined",
    "latency": "offered 1,000/s after the drain; producer send() -> routing event received by "
    "an independent consumer (fetch_max_wait 50 ms)",
    "ceiling_latency": "the same load and reader through a plain aiokafka relay in its own "
    "process on fresh topics: the hub's fetch and batch settings, parse, produce to the "
    "packaged registry's agency topics (acks=all, no linger), commit; no validation or storage",
    "peak_rss_mb": "max over the hub child processes of their VmHWM (peak RSS since exec); "
    "broker, load generator and consumers are other processes",
}


T = TypeVar("T")


def run_until_terminated(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(main)`, where SIGTERM cancels `main` and then exits with status 143.

    The signal handler raising SystemExit wherever Python happened to be could land in a
    finalizer, which swallows it (the bench then ran on and exited 0), or skip the `with`
    that stops the embedded broker (its guard stopped it seconds later). A cancellation
    unwinds `main` at an await, through every `with` and `finally`.
    """
    async def guarded() -> T:
        task = asyncio.ensure_future(main)
        terminated = False

        def terminate() -> None:
            nonlocal terminated
            terminated = True
            task.cancel()

        loop = asyncio.get_running_loop()
        before = signal.getsignal(signal.SIGTERM)
        loop.add_signal_handler(signal.SIGTERM, terminate)
        try:
            return await task
        except asyncio.CancelledError:
            if terminated:
                raise SystemExit(128 + signal.SIGTERM) from None
            raise
        finally:
            loop.remove_signal_handler(signal.SIGTERM)
            signal.signal(signal.SIGTERM, before)

    return asyncio.run(guarded())


def run_bench(*, quick: bool, as_json: bool) -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    plan = Plan.of(quick=quick)
    err = Console(stderr=True)
    load_before = os.getloadavg()[0]
    if load_before > 0.5:
        err.print(f"[yellow]load average {load_before:.1f}: other processes compete for the "
                  "cores, the numbers will be low and noisy[/]")
    say = Progress(None if as_json and quick else err)
    # Quick runs overlap the hubs' start-ups to stay short; full runs start each hub just
    # before its phase, so no idle hub sits beside a measurement for minutes.
    result = run_until_terminated(measure(plan, say, overlap=quick))
    result.update({
        "quick": quick,
        "scale": scale_factor(),
        "plan": asdict(plan),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "load_avg_1m": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
        "git": _git(),
        "targets": TARGETS,
        "notes": NOTES,
    })
    if not quick:
        folder = Path(os.environ.get("HUB_BENCH_RESULTS", "bench/results"))
        folder.mkdir(parents=True, exist_ok=True)
        text = json.dumps(result, indent=2) + "\n"
        stamped = folder / f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
        stamped.write_text(text)
        (folder / "latest.json").write_text(text)
        err.print(f"wrote {stamped} and {folder / 'latest.json'}")
    if as_json:
        sys.stdout.write(json.dumps(result) + "\n")
    else:
        Console().print(table(result))


def _cpu_model() -> str | None:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return None


def _git() -> dict[str, Any] | None:
    """Which code was measured: the commit, and whether the tree had local changes."""
    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, check=True,
                                capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "hub"], cwd=root,
                               check=True, capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return {"commit": commit, "hub_changed": bool(dirty)}


def table(result: dict[str, Any]) -> Table:
    met, n = result["targets_met"], result["n"]
    ok = {True: "[green]met[/]", False: "[red]missed[/]"}
    t = Table(title=f"LAPOR Hub bench ({'quick' if result['quick'] else 'full'}, "
              f"{result['cpus']} CPUs, Python {result['python']})")
    for name, justify in (("measure", "left"), ("value", "right"), ("n", "right"),
                          ("target", "left")):
        t.add_column(name, justify=justify)  # type: ignore[arg-type]
    rows: list[tuple[str, str, int | None, str]] = [
        ("ceiling (aiokafka batch)", f"{result['ceiling_per_s']:,} msg/s", n["ceiling"], ""),
        ("naive (FastStream per message)", f"{result['naive_per_s']:,} msg/s", n["naive"], ""),
        ("prototype (batch, pydantic, one insert)", f"{result['prototype_per_s']:,} msg/s",
         n["prototype"], f"ratio {result['prototype_ratio']:.2f}"),
        ("hub intake", f"{result['hub_per_s']:,} complaints/s", n["hub"], ""),
        ("ratio hub / ceiling", f"{result['ratio']:.2f}", None, f">= 0.50 {ok[met['ratio']]}"),
        ("latency p50 at 1,000/s", f"{result['p50_ms']:,.1f} ms", n["latency_received"], ""),
        ("latency p99 at 1,000/s", f"{result['p99_ms']:,.1f} ms", None,
         f"<= 100 ms {ok[met['p99_ms']]}"),
        ("latency max at 1,000/s", f"{result['max_ms']:,.1f} ms", None, ""),
        ("latency ceiling p50 / p99 (aiokafka relay)",
         f"{result['ceiling_p50_ms']:,.1f} / {result['ceiling_p99_ms']:,.1f} ms",
         n["ceiling_latency_received"], ""),
        ("10 agency topics", f"{result['agencies_10_per_s']:,} complaints/s",
         n["agencies_10"], ""),
        ("1,000 agency topics", f"{result['agencies_1000_per_s']:,} complaints/s",
         n["agencies_1000"], f">= 0.8 x 10 {ok[met['agencies_1000_vs_10']]}"),
        ("hub peak RSS", f"{result['peak_rss_mb']:,.0f} MB", None,
         f"<= 300 MB {ok[met['peak_rss_mb']]}"),
    ]
    for name, value, count, target in rows:
        t.add_row(name, value, "" if count is None else f"{count:,}", target)
    t.caption = f"{result['seconds']:.0f} s, {result['platform']}"
    return t


def _main(argv: Sequence[str]) -> None:
    if len(argv) != 2 or argv[0] not in ("_child", "_relay"):
        sys.exit("usage: python -m hub.bench _child|_relay CONFIG  "
                 "(run `lapor-hub bench` instead)")
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    config = json.loads(Path(argv[1]).read_text())
    if argv[0] == "_relay":
        asyncio.run(relay_main(RelayConfig(**config)))
    else:
        asyncio.run(child_main(ChildConfig(**config)))


if __name__ == "__main__":
    _main(sys.argv[1:])
