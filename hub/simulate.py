"""`lapor-hub simulate`: realistic load on a running hub, and agencies that answer it.

Two halves, both stopped after `minutes`:

- Citizens post complaints to the hub's ingress `/intake/<source>` in each source's native
  payload (web form, mobile app, Twilio and SMSC webhooks, X, Meta, WhatsApp, Open311, the
  Jakarta and Central Java systems), with unique vendor ids. Now and then a payload carries
  an entry that is no complaint beside the real one (a WhatsApp receipt, a reaction, an
  untagged tweet: dead letters), is nothing but a receipt (ignored), or is refused.
- Agency responders consume every agency topic (group `<HUB_KAFKA_GROUP>-simulate-responders`)
  and answer each routing event along a legal lifecycle path: verify, pass down to a
  sub-unit (coordinators), follow up, ask the reporter, answer, close. About 10 % answer
  not_authority; each agency has a temper (prompt, steady, slow), and some never answer.

Time is compressed: a simulated day takes `SECONDS_PER_DAY` real seconds. A responder waits
that long and stamps its event with the simulated time, its routing time plus the simulated
delay, so the hub's working-day latency spreads over the deadline buckets as it would over
weeks. The hub's own clock is not compressed: deadlines fall due, and are escalated, in real
working days only.

The same seed gives the same payloads and the same agency behaviour. Against the same
database it also re-sends the same vendor ids, which the hub drops as already seen: the
command takes a new seed each run unless it is given one.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import heapq
import io
import itertools
import json
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from hub import terminal, topics
from hub.adapters.open311 import SERVICE_CATEGORIES
from hub.calendar import Zone
from hub.ingress_auth import credentials
from hub.kafka import client_options, start_together
from hub.model import FollowUpEvent, RoutingEvent, Status
from hub.routing import Directory
from hub.settings import Settings

SECONDS_PER_DAY = 1.0
"""Real seconds a simulated day takes."""
POSTERS = 8
"""HTTP requests in flight at once."""
MAX_HANDOVERS = 3
"""Times one complaint may be declined or passed down; re-routing could otherwise cycle."""
GROUP_SUFFIX = "simulate-responders"
STARTUP_GRACE = timedelta(seconds=5)
"""Routing events older than the run by more than this belong to someone else's traffic."""


class SimulationError(RuntimeError):
    """The simulation cannot run; the message says why in one line."""


# --- Citizens ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Place:
    region_code: str
    region: str
    area: str
    latitude: float
    longitude: float


PLACES = (
    Place("32.75", "Kota Bekasi", "Bekasi Selatan", -6.2474, 106.9960),
    Place("32.75", "Kota Bekasi", "Bekasi Timur", -6.2450, 107.0200),
    Place("32.16", "Kabupaten Bekasi", "Cikarang Pusat", -6.3640, 107.1720),
    Place("61.72", "Kota Singkawang", "Singkawang Barat", 0.9076, 108.9847),
    Place("62.01", "Kabupaten Kotawaringin Barat", "Pangkalan Bun", -2.6833, 111.6167),
    Place("36", "Provinsi Banten", "Kota Serang", -6.1200, 106.1503),
)
# (category word as citizens write it, title, problems)
SUBJECTS = (
    ("jalan", "Jalan rusak", ("Jalan berlubang cukup dalam", "Aspal mengelupas dan bergelombang",
                              "Jalan amblas di tepi saluran")),
    ("kesehatan", "Pelayanan puskesmas", ("Antrean puskesmas panjang dan pelayanan lambat",
                                          "Obat di apotek puskesmas sering kosong",
                                          "Petugas IGD menolak pasien BPJS")),
    ("pendidikan", "Masalah sekolah", ("Ada pungutan uang seragam di sekolah negeri",
                                       "Guru honorer belum digaji tiga bulan",
                                       "Atap ruang kelas bocor dan plafon retak")),
    ("adminduk", "Dokumen kependudukan", ("E-KTP belum dicetak padahal sudah rekam",
                                          "Pengurusan akta kelahiran berbelit",
                                          "Nama di kartu keluarga salah dan belum diperbaiki")),
    ("sampah", "Sampah menumpuk", ("Sampah tidak diangkut dan baunya menyengat",
                                   "Tempat pembuangan sementara meluber ke jalan")),
    ("pdam", "Air PDAM", ("Air PDAM mati", "Air PDAM keruh dan berbau",
                          "Pipa PDAM bocor dan airnya terbuang")),
    ("perizinan", "Perizinan lambat", ("Permohonan izin usaha tidak ada kabar",
                                       "Ada calo di loket perizinan")),
    ("bank", "Penagihan kasar", ("Bank menagih cicilan dengan ancaman",
                                 "Saldo tabungan berkurang tanpa transaksi")),
    ("bansos", "Bansos tidak tepat", ("Bantuan sosial tidak sampai ke warga yang berhak",
                                      "Nama kami dicoret dari penerima PKH")),
    ("parkir", "Parkir liar", ("Parkir liar memakan separuh badan jalan",
                               "Juru parkir memungut tarif di atas ketentuan")),
    ("pkl", "Trotoar dipakai PKL", ("Pedagang kaki lima menutup trotoar",)),
    ("banjir", "Banjir", ("Banjir setinggi lutut setiap hujan deras",
                          "Drainase tersumbat sehingga air masuk rumah")),
    ("phk", "Hak pekerja", ("Perusahaan mem-PHK tanpa pesangon",
                            "Upah di bawah UMK dan lembur tidak dibayar")),
    ("lampu jalan", "PJU mati", ("Lampu penerangan jalan mati sepanjang malam",
                                 "Tiang PJU miring hampir roboh")),
)
STREETS = ("Jl. Ahmad Yani", "Jl. Diponegoro", "Jl. Sudirman", "Jl. Pramuka", "Jl. Juanda",
           "Jl. Pemuda", "Jl. Veteran", "Jl. Cut Meutia", "Jl. Pahlawan", "Gang Melati",
           "Jl. Kartini", "Jl. Siliwangi", "Jl. Hasanudin", "Jl. Imam Bonjol", "Jl. Kenanga")
OPENINGS = ("Selamat pagi, saya ingin melapor.", "Mohon bantuannya.", "Lapor Pak/Bu.",
            "Assalamualaikum, izin menyampaikan keluhan.", "Kepada yang berwenang,",
            "Saya warga sekitar.", "Selamat siang admin LAPOR.", "Izin melaporkan kejadian ini.",
            "Tolong dibaca, ini sudah keterlaluan.", "Sekadar informasi untuk dinas terkait.",
            "Malam min.", "Dengan hormat,", "")
CONTEXTS = ("Kemarin sore kondisinya makin parah.",
            "Sudah beberapa kali dilaporkan lewat grup warga.", "Pak lurah katanya sudah tahu.",
            "Foto bisa kami kirim bila perlu.",
            "Tetangga juga mengeluhkan hal yang sama.", "Dulu pernah diperbaiki tapi rusak lagi.",
            "Petugas sempat datang lalu tidak kembali.", "Ini terjadi hampir setiap hari.",
            "Keadaan paling buruk saat jam sibuk pagi.", "Belum ada papan peringatan sama sekali.",
            "Kami khawatir bila musim hujan tiba.", "")
IMPACTS = ("Warga sangat dirugikan.", "Sudah ada yang celaka.", "Lansia kesulitan.",
           "Kami sudah lapor ke RT tetapi belum ada tindakan.", "Usaha warga terganggu.",
           "Anak-anak sekolah ikut terdampak.", "Pengendara motor sering terjatuh.",
           "Kami harus mengeluarkan biaya sendiri.", "Banyak pedagang rugi.", "")
REQUESTS = ("Mohon segera ditindaklanjuti.", "Mohon dicek ke lokasi.", "Terima kasih.",
            "Kami tunggu tanggapannya.", "Tolong jangan dibiarkan berlarut-larut.",
            "Semoga cepat ada solusi.", "Mohon kejelasan kapan ditangani.", "Salam.")
NAMES = ("Budi Santoso", "Siti Aminah", "Agus Salim", "Dewi Lestari", "Rina Kusuma",
         "Joko Widodo", "Sri Wahyuni", "Andi Pratama", "Nur Hidayah", "Yusuf Maulana")
JAKARTA = ("Jakarta Selatan", "Jakarta Timur", "Jakarta Pusat", "Jakarta Barat", "Jakarta Utara")
JAKARTA_CATEGORIES = ("Jalan Rusak", "Sampah", "Banjir", "Kesehatan", "Pendidikan")
JATENG_REGIONS = ("3374", "3372", "Kota Semarang", "Kabupaten Kudus", "Banyumas")
JATENG_CATEGORIES = ("Banjir", "Jalan Rusak", "PJU", "Pendidikan", "Kesehatan")
REPORT_TYPES = ("pengaduan", "pengaduan", "pengaduan", "aspirasi", "permintaan informasi")


@dataclass(frozen=True, slots=True)
class Scene:
    """What one citizen complains about, before any channel's format."""

    category: str
    title: str
    text: str
    place: Place
    address: str
    name: str
    phone: str
    """Local notation, 08…"""


@dataclass(frozen=True, slots=True)
class Payload:
    source: str
    content_type: str
    body: bytes


def _scene(rnd: random.Random, elsewhere: str | None = None) -> Scene:
    """A complaint in one of PLACES, or in `elsewhere` (a provincial system's own region)."""
    category, title, problems = rnd.choice(SUBJECTS)
    place = rnd.choice(PLACES)
    address = (f"{rnd.choice(STREETS)} No. {rnd.randint(1, 250)}, "
               f"RT {rnd.randint(1, 15):02d}/RW {rnd.randint(1, 12):02d}")
    where = elsewhere or f"{place.area}, {place.region}"
    since = f"sudah {rnd.randint(2, 9)} {rnd.choice(('hari', 'minggu', 'bulan'))}"
    problem = rnd.choice(problems)
    said = (f"{problem} di {address}, {where}, {since}." if rnd.random() < 0.6
            else f"Di {address}, {where}: {problem[0].lower()}{problem[1:]}, {since}.")
    parts = (rnd.choice(OPENINGS), said, rnd.choice(CONTEXTS), rnd.choice(IMPACTS),
             rnd.choice(REQUESTS))
    return Scene(
        category=category, title=title, text=" ".join(p for p in parts if p), place=place,
        address=address, name=rnd.choice(NAMES),
        phone=f"08{rnd.choice((12, 13, 21, 52, 57, 77))}{rnd.randrange(10**7, 10**8)}",
    )


def _e164(phone: str) -> str:
    return "+62" + phone[1:]


def _json(source: str, body: object) -> Payload:
    return Payload(source, "application/json", json.dumps(body, ensure_ascii=False).encode())


def _form(source: str, fields: dict[str, str]) -> Payload:
    return Payload(source, "application/x-www-form-urlencoded", urlencode(fields).encode())


def _web(source: str) -> Builder:
    def build(rnd: random.Random, ref: str, now: datetime) -> Payload:
        scene = _scene(rnd)
        kind = rnd.choice(REPORT_TYPES)
        form: dict[str, object] = {
            "id": f"sim-{ref}",
            "judul": scene.title,
            "isi": scene.text,
            "kategori": scene.category,
            "jenis_laporan": kind,
            "berkadar_pengawasan": kind == "pengaduan" and rnd.random() < 0.15,
            "lokasi": {"kode_wilayah": scene.place.region_code, "nama": scene.place.region,
                       "alamat": scene.address},
            "anonim": rnd.random() < 0.2,
            "rahasia": rnd.random() < 0.1,
            "pelapor": {"nama": scene.name, "telepon": _e164(scene.phone)},
            "tanggal_kejadian": (now - timedelta(days=rnd.randint(0, 30))).date().isoformat(),
            "dikirim_pada": now.isoformat(),
        }
        if rnd.random() < 0.3:
            form["lampiran"] = [f"https://lapor.go.id/lampiran/{ref}-{i}.jpg"
                                for i in range(rnd.randint(1, 3))]
        return _json(source, form)

    return build


def _sms_twilio(rnd: random.Random, ref: str, now: datetime) -> Payload:
    scene = _scene(rnd)
    sid = f"SM{rnd.getrandbits(128):032x}"
    fields = {
        "MessageSid": sid, "SmsMessageSid": sid, "SmsSid": sid,
        "AccountSid": f"AC{rnd.getrandbits(128):032x}", "From": _e164(scene.phone),
        "To": "+6221501708", "Body": scene.text,
        "NumSegments": str(math.ceil(len(scene.text) / 153)),
        "NumMedia": "0", "SmsStatus": "received", "FromCountry": "ID", "ToCountry": "ID",
        "ApiVersion": "2010-04-01",
    }
    if rnd.random() < 0.15:  # an MMS with a photo
        fields |= {"NumMedia": "1", "MediaContentType0": "image/jpeg",
                   "MediaUrl0": f"https://api.twilio.com/2010-04-01/Media/{sid}"}
    return _form("sms-twilio", fields)


def _sms_gateway(rnd: random.Random, ref: str, now: datetime) -> Payload:
    scene = _scene(rnd)
    message: dict[str, object] = {"id": f"smsc-sim-{ref}", "msisdn": scene.phone,
                                  "shortcode": "1708", "received": now.isoformat()}
    roll = rnd.random()
    if roll < 0.04:  # an empty SMS: refused
        message["text"] = "  "
    elif roll < 0.25:  # a long SMS whose parts the gateway forwards together, out of order
        cut = sorted(rnd.sample(range(1, len(scene.text)), 2))
        parts = [scene.text[:cut[0]], scene.text[cut[0]:cut[1]], scene.text[cut[1]:]]
        message["concat"] = {"ref": rnd.randint(1, 255), "total": 3}
        message["parts"] = rnd.sample(
            [{"part": i + 1, "text": text} for i, text in enumerate(parts)], 3
        )
    else:
        message["text"] = scene.text
    return _json("sms-gateway", message)


def _x(rnd: random.Random, ref: str, now: datetime) -> Payload:
    scene = _scene(rnd)
    author = str(rnd.randrange(10**17, 10**18))
    handle = f"warga_{rnd.randrange(10**4, 10**5)}"
    base = 1_800_000_000_000_000_000 + rnd.randrange(10**15)
    tweet: dict[str, object] = {
        "id": str(base), "author_id": author, "created_at": now.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "text": f"#LAPOR {scene.text[:220]} @LAPOR1708",
    }
    if rnd.random() < 0.3:
        tweet["geo"] = {"coordinates": {"type": "Point", "coordinates": [
            scene.place.longitude + rnd.uniform(-0.02, 0.02),
            scene.place.latitude + rnd.uniform(-0.02, 0.02)]}}
    tweets = [tweet]
    if rnd.random() < 0.15:  # the search also caught a tweet that is no complaint
        tweets.append({"id": str(base + 1), "author_id": author,
                       "created_at": tweet["created_at"], "text": "Macet lagi, sabar ya semua"})
    return _json("x", {"data": tweets, "includes": {"users": [
        {"id": author, "name": scene.name, "username": handle}]}})


def _meta(rnd: random.Random, ref: str, now: datetime) -> Payload:
    scene = _scene(rnd)
    when = int(now.timestamp())
    page = str(rnd.randrange(10**14, 10**15))
    if rnd.random() < 0.5:
        post = f"{page}_{rnd.randrange(10**14, 10**15)}"
        changes: list[dict[str, object]] = [{"field": "feed", "value": {
            "from": {"id": str(rnd.randrange(10**15, 10**16)), "name": scene.name},
            "post_id": post, "comment_id": f"{post}_{ref}", "parent_id": post,
            "created_time": when, "item": "comment", "verb": "add", "message": scene.text}}]
        if rnd.random() < 0.2:  # a like on the same post: not a complaint
            changes.append({"field": "feed", "value": {
                "from": {"id": str(rnd.randrange(10**15, 10**16)), "name": "Andi"},
                "post_id": post, "created_time": when, "item": "reaction",
                "reaction_type": "like", "verb": "add", "parent_id": post}})
        return _json("meta", {"object": "page",
                              "entry": [{"id": page, "time": when, "changes": changes}]})
    comment = {"field": "comments", "value": {
        "from": {"id": str(rnd.randrange(10**16, 10**17)),
                 "username": f"warga.{rnd.randrange(10**4, 10**5)}"},
        "media": {"id": str(rnd.randrange(10**16, 10**17)), "media_product_type": "FEED"},
        "id": f"ig-sim-{ref}", "text": scene.text}}
    return _json("meta", {"object": "instagram",
                          "entry": [{"id": page, "time": when, "changes": [comment]}]})


def _whatsapp(rnd: random.Random, ref: str, now: datetime) -> Payload:
    scene = _scene(rnd)
    wa_id = "62" + scene.phone[1:]
    status = {"id": f"wamid.sim-out-{ref}", "status": "read",
              "timestamp": str(int(now.timestamp())), "recipient_id": wa_id}
    value: dict[str, object] = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "6281100001708", "phone_number_id": "106540352242922"},
    }
    roll = rnd.random()
    if roll < 0.05:  # only a read receipt for the bot's own message: ignored
        value["statuses"] = [status]
    else:
        message: dict[str, object] = {"from": wa_id, "id": f"wamid.sim-{ref}",
                                      "timestamp": str(int(now.timestamp()))}
        if rnd.random() < 0.25:
            message |= {"type": "image", "image": {
                "caption": scene.text, "mime_type": "image/jpeg",
                "id": str(rnd.randrange(10**15, 10**16))}}
        else:
            message |= {"type": "text", "text": {"body": scene.text}}
        value["contacts"] = [{"profile": {"name": scene.name}, "wa_id": wa_id}]
        value["messages"] = [message]
        if roll < 0.2:  # a receipt in the same webhook call
            value["statuses"] = [status]
    return _json("whatsapp", {"object": "whatsapp_business_account", "entry": [
        {"id": "102290129340398", "changes": [{"value": value, "field": "messages"}]}]})


def _open311(rnd: random.Random, ref: str, now: datetime) -> Payload:
    scene = _scene(rnd)
    first, _, last = scene.name.partition(" ")
    fields = {
        "jurisdiction_id": "lapor.go.id",
        "service_code": rnd.choice(sorted(SERVICE_CATEGORIES)),
        "description": scene.text,
        "first_name": first, "last_name": last, "phone": scene.phone,
        "email": f"{first.lower()}.{ref}@example.org",
    }
    if rnd.random() < 0.7:
        fields |= {"lat": f"{scene.place.latitude + rnd.uniform(-0.02, 0.02):.5f}",
                   "long": f"{scene.place.longitude + rnd.uniform(-0.02, 0.02):.5f}"}
    else:
        fields["address_string"] = f"{scene.address}, {scene.place.region}"
    return _form("open311", fields)


def _jakarta(rnd: random.Random, ref: str, now: datetime) -> Payload:
    city = rnd.choice(JAKARTA)
    scene = _scene(rnd, city)
    return _json("prov-jakarta", {
        "id_laporan": f"JAKI-SIM-{ref}", "judul": scene.title, "isi": scene.text,
        "kategori": rnd.choice(JAKARTA_CATEGORIES),
        "jenis_laporan": rnd.choice(("Pengaduan", "Pengaduan", "Aspirasi", "Permintaan Informasi")),
        "status": "Menunggu", "wilayah": {"kota": city}, "alamat": scene.address,
        "pelapor": {"nama": scene.name, "no_hp": scene.phone},
        "anonim": rnd.random() < 0.2, "rahasia": rnd.random() < 0.1, "foto": [],
        "waktu_lapor": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    })


def _jateng(rnd: random.Random, ref: str, now: datetime) -> Payload:
    """An export of one to three rows, as a spreadsheet writes it."""
    out = io.StringIO()
    sheet = csv.writer(out, lineterminator="\r\n")
    sheet.writerow(("no_tiket", "tgl_lapor", "judul", "uraian", "kategori", "jenis", "status",
                    "kab_kota", "alamat", "nama_pelapor", "hp_pelapor", "email_pelapor",
                    "lampiran", "rahasia"))
    for i in range(rnd.randint(1, 3)):
        region = rnd.choice(JATENG_REGIONS)
        scene = _scene(rnd, "Jawa Tengah" if region.isdecimal() else region)
        sheet.writerow((
            f"LG-SIM-{ref}-{i}", now.astimezone(Zone.WIB.tzinfo).strftime("%d/%m/%Y %H:%M"),
            scene.title, scene.text, rnd.choice(JATENG_CATEGORIES), "Pengaduan",
            "Belum Diverifikasi", region, scene.address, scene.name, scene.phone, "", "",
            "Ya" if rnd.random() < 0.1 else "Tidak",
        ))
    return Payload("prov-jateng", "text/csv", ("\ufeff" + out.getvalue()).encode())


Builder = Callable[[random.Random, str, datetime], Payload]
# Source -> (share of the traffic, builder).
MIX: dict[str, tuple[int, Builder]] = {
    "web": (26, _web("web")),
    "mobile": (14, _web("mobile")),
    "sms-twilio": (10, _sms_twilio),
    "sms-gateway": (8, _sms_gateway),
    "x": (8, _x),
    "meta": (8, _meta),
    "whatsapp": (14, _whatsapp),
    "open311": (6, _open311),
    "prov-jakarta": (4, _jakarta),
    "prov-jateng": (2, _jateng),
}


def payload(seed: int, n: int, now: datetime) -> Payload:
    """The n-th payload of the run with this seed, as its source would send it at `now`."""
    rnd = random.Random(f"citizen:{seed}:{n}")
    name = rnd.choices(list(MIX), weights=[w for w, _ in MIX.values()])[0]
    return MIX[name][1](rnd, f"{seed}-{n}", now)


# --- Agencies ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Temper:
    """How an agency tends to answer."""

    pace: float
    """Multiplies every delay of its own."""
    silent: float
    """Share of complaints it never answers."""


TEMPERS = (Temper(0.4, 0.02), Temper(1.0, 0.06), Temper(2.5, 0.15))
"""Prompt, steady and slow agencies."""


def temper(seed: int, agency: str) -> Temper:
    return random.Random(f"agency:{seed}:{agency}").choices(TEMPERS, weights=(3, 4, 2))[0]


@dataclass(frozen=True, slots=True)
class Step:
    after: float
    """Simulated days after the previous step (or the routing)."""
    status: Status
    target_agency: str | None = None
    message: str | None = None
    reason: str | None = None


def plan(event: RoutingEvent, directory: Directory, seed: int, handovers: int = 0) -> list[Step]:
    """What the holder does with a complaint just routed to it; [] when it never answers.

    `handovers` counts how often the complaint was already declined or passed down: past
    MAX_HANDOVERS the holder keeps it. A path ends after a hand-over, which makes the
    next holder's routing event, and so its own plan.
    """
    rnd = random.Random(f"plan:{seed}:{event.event_id}")
    holder = directory.holding(event.agency_code)
    mood = temper(seed, holder.code)

    def days(low: float, high: float) -> float:
        return rnd.uniform(low, high) * mood.pace

    if rnd.random() < mood.silent:
        return []
    national = holder.code == directory.national.code
    may_hand_over = handovers < MAX_HANDOVERS
    received = event.reason != "disposition"  # a disposition lands as dispositioned
    if not national and may_hand_over and rnd.random() < 0.10:
        return [Step(days(0.2, 1.5), Status.NOT_AUTHORITY,
                     message=f"Bukan kewenangan {holder.name}.")]
    steps: list[Step] = []
    if received:
        if rnd.random() < (0.05 if national else 0.01):  # out of any agency's remit
            return [Step(days(0.1, 1), Status.ARCHIVED, reason="Bukan pengaduan pelayanan publik.")]
        steps.append(Step(days(0.1, 1.5), Status.VERIFIED))
    units = sorted(a.code for a in directory.agencies.values() if a.parent == holder.code)
    coordinating = event.reason in ("national", "coordinator")
    if units and may_hand_over and rnd.random() < (0.9 if coordinating else 0.2):
        target = rnd.choice(units)
        return [*steps, Step(days(0.1, 1), Status.DISPOSITIONED, target_agency=target,
                             message=f"Diteruskan ke {target}.")]
    if received:
        steps.append(Step(days(0.05, 0.5), Status.DISPOSITIONED))
    roll = rnd.random()
    if roll < 0.2:
        steps += [
            Step(days(0.3, 4), Status.NEEDS_INFO, message="Mohon kirim foto dan titik lokasi."),
            # The reporter's own time, which stops the clock.
            Step(rnd.uniform(0.5, 3), Status.REPORTER_REPLIED, message="Sudah saya kirim."),
            Step(days(0.5, 2), Status.IN_PROGRESS, message="Petugas dijadwalkan ke lokasi."),
        ]
    elif roll < 0.75:
        steps.append(Step(days(0.3, 4), Status.IN_PROGRESS, message="Sedang ditindaklanjuti."))
    if steps and steps[-1].status is Status.IN_PROGRESS and rnd.random() < 0.1:
        return steps  # started, then forgot about it
    steps.append(Step(days(0.5, 6), Status.RESPONDED, message="Sudah ditangani, terima kasih."))
    if rnd.random() < 0.6:
        # The reporter confirms, through the agency's system.
        steps.append(
            Step(rnd.uniform(0.5, 4), Status.CLOSED, message="Pelapor menyatakan selesai.")
        )
    return steps


def follow_ups(event: RoutingEvent, steps: list[Step]) -> list[tuple[float, FollowUpEvent]]:
    """The events of a plan with their simulated days since routing, stamped on that clock."""
    out: list[tuple[float, FollowUpEvent]] = []
    elapsed = 0.0
    for i, step in enumerate(steps):
        elapsed += step.after
        out.append((elapsed, FollowUpEvent(
            event_id=f"sim-{event.event_id}-{i}",
            tracking_id=event.tracking_id,
            agency_code=event.agency_code,
            status=step.status,
            at=event.routed_at + timedelta(days=elapsed),
            message=step.message,
            target_agency=step.target_agency,
            reason=step.reason,
        )))
    return out


# --- Running it -------------------------------------------------------------------------

@dataclass(slots=True)
class Tally:
    posted: int = 0
    """Complaints the ingress accepted."""
    ignored: int = 0
    refused: int = 0
    refused_by: dict[str, int] = field(default_factory=dict)
    """Refusals by the ingress's status code, or `unreachable`: a 401 (a token missing) or a
    503 (the broker away) is not the 422 of the stream's deliberately broken posts."""
    routed: int = 0
    """Routing events the responders picked up."""
    sent: int = 0
    """Follow-up events published."""
    unsent: int = 0
    """Follow-ups still scheduled when time ran out."""
    resent: int = 0
    """Follow-ups sent again after the broker did not take them (away, restarting)."""

    def refuse(self, why: str) -> None:
        self.refused += 1
        self.refused_by[why] = self.refused_by.get(why, 0) + 1

    def line(self) -> str:
        by = ", ".join(f"{why}: {n}" for why, n in sorted(self.refused_by.items()))
        resent = f" ({self.resent} sent again)" if self.resent else ""
        return (f"{self.posted} complaints · {self.routed} routed · {self.sent} follow-ups"
                f"{resent} · {self.refused} refused{f' ({by})' if by else ''} · "
                f"{self.ignored} ignored")


@dataclass(slots=True)
class Responders:
    """Every agency at once: one consumer over all agency topics, one producer."""

    settings: Settings
    directory: Directory
    seed: int
    tally: Tally
    since: datetime
    leave: frozenset[str] = frozenset()
    """Agencies left to people: their topics are not read, their complaints not answered."""
    consumer: AIOKafkaConsumer = field(init=False)
    producer: AIOKafkaProducer = field(init=False)
    due: list[tuple[float, int, FollowUpEvent]] = field(default_factory=list)
    """A heap of (monotonic time to send, tie-breaker, event)."""
    order: itertools.count[int] = field(default_factory=itertools.count)
    handovers: dict[str, int] = field(default_factory=dict)
    planned: set[str] = field(default_factory=set)

    async def start(self) -> None:
        options = client_options(self.settings)
        options["client_id"] = f"{self.settings.kafka_client_id}-simulate"
        self.consumer = AIOKafkaConsumer(
            *sorted({a.topic_name for a in self.directory.agencies.values()
                     if a.code not in self.leave}),
            **options,
            group_id=f"{self.settings.kafka_group}-{GROUP_SUFFIX}",
            auto_offset_reset="earliest",
            enable_auto_commit=True,
        )
        self.producer = AIOKafkaProducer(
            **options, acks="all", enable_idempotence=self.settings.kafka_idempotent_producer
        )
        await start_together(self.consumer, self.producer)

    async def stop(self) -> None:
        self.tally.unsent = len(self.due)
        for client in (self.consumer, self.producer):
            # With the broker away a client retries its goodbyes (commit, leave) for long.
            with contextlib.suppress(TimeoutError, KafkaError):
                await asyncio.wait_for(client.stop(), STOP_WAIT_S)

    async def run(self, end: float) -> None:
        while (now := time.monotonic()) < end:
            wait = min(0.2, end - now, max(0.0, self.due[0][0] - now) if self.due else 0.2)
            batch = await self.consumer.getmany(timeout_ms=max(1, int(wait * 1000)))
            for records in batch.values():
                for record in records:
                    self.take(record.value)
            await self.send_due(end)

    def take(self, value: bytes | None) -> None:
        try:
            event = RoutingEvent.model_validate_json(value or b"")
        except ValidationError:
            return  # escalations, and whatever else shares the topics
        if event.routed_at < self.since - STARTUP_GRACE or event.event_id in self.planned:
            return
        self.planned.add(event.event_id)
        self.tally.routed += 1
        steps = plan(event, self.directory, self.seed, self.handovers.get(event.tracking_id, 0))
        if any(s.status is Status.NOT_AUTHORITY or s.target_agency for s in steps):
            self.handovers[event.tracking_id] = self.handovers.get(event.tracking_id, 0) + 1
        received = time.monotonic()
        for days, follow_up in follow_ups(event, steps):
            due = received + days * SECONDS_PER_DAY
            heapq.heappush(self.due, (due, next(self.order), follow_up))

    async def send_due(self, end: float) -> None:
        """Send the follow-ups due by now; those the broker does not take by `end` (away or
        restarting) are due again a second later: the hub passes a repeat over."""
        ready: list[tuple[float, int, FollowUpEvent]] = []
        while self.due and self.due[0][0] <= time.monotonic():
            ready.append(heapq.heappop(self.due))
        if not ready:
            return
        try:
            async with asyncio.timeout(max(0.1, end - time.monotonic())):
                # In order, keyed by tracking id: one complaint's events in one partition.
                futures = [
                    await self.producer.send(
                        topics.FOLLOW_UP, e.model_dump_json().encode(),
                        key=e.tracking_id.encode(),
                        headers=[("content-type", b"application/json")],
                    )
                    for _, _, e in ready
                ]
                await asyncio.gather(*futures)
        except (KafkaError, TimeoutError):
            again = time.monotonic() + 1
            for _, order, event in ready:
                heapq.heappush(self.due, (again, order, event))
            self.tally.resent += len(ready)
            return
        self.tally.sent += len(ready)


async def _post(
    client: httpx.AsyncClient, settings: Settings, item: Payload, tally: Tally
) -> None:
    path = f"/intake/{item.source}"
    headers = {
        "content-type": item.content_type,
        "accept": "application/json",  # the tracking ids, not Twilio's TwiML
        **credentials(settings, item.source, f"{client.base_url}".rstrip("/") + path, item.body),
    }
    try:
        answer = await client.post(path, content=item.body, headers=headers)
    except httpx.HTTPError:
        tally.refuse("unreachable")
        return
    accepted = answer.json().get("accepted", []) if answer.is_success else None
    if accepted:
        tally.posted += len(accepted)
    elif accepted is not None:  # 200 for what is no complaint (a read receipt, a part)
        tally.ignored += 1
    else:
        tally.refuse(str(answer.status_code))


async def _post_all(client: httpx.AsyncClient, settings: Settings, seed: int, rate: float,
                    end: float, tally: Tally) -> None:
    """Post at `rate` per second until `end`; a full queue slows the pace to the hub's."""
    queue: asyncio.Queue[Payload | None] = asyncio.Queue(maxsize=2 * POSTERS)

    async def poster() -> None:
        while (item := await queue.get()) is not None:
            await _post(client, settings, item, tally)

    async with asyncio.TaskGroup() as group:
        for _ in range(POSTERS):
            group.create_task(poster())
        start = time.monotonic()
        for n in itertools.count():
            due = start + n / rate
            # The clock too: when the hub sets a slower pace than `rate`, `due` lags behind
            # it, and the run went on long after its minutes (its responders had stopped).
            if due >= end or time.monotonic() >= end:
                break
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            await queue.put(payload(seed, n, datetime.now(UTC)))
        for _ in range(POSTERS):
            await queue.put(None)


async def _ready(client: httpx.AsyncClient, url: str, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    problem = "no answer"
    while time.monotonic() < deadline:
        try:
            answer = await client.get("/readyz")
            if answer.status_code == 200:
                return
            problem = f"/readyz answered {answer.status_code}"
        except httpx.HTTPError as exc:
            problem = type(exc).__name__
        await asyncio.sleep(0.5)
    raise SimulationError(f"hub at {url} not ready within {within:.0f} s: {problem}")


def pace_problem(*, rate: float, minutes: float | None = None) -> str | None:
    """What is wrong with a pace the command line was given, if anything."""
    if not rate > 0:  # `not >`: NaN too
        return f"--rate must be above 0, not {rate}"
    if minutes is not None and not minutes > 0:
        return f"--minutes must be above 0, not {minutes}"
    return None


async def run_simulation(
    settings: Settings, url: str, *, minutes: float, rate: float, seed: int
) -> None:
    """Post complaints at `rate` per second and answer them as agencies, for `minutes`.

    Raises:
        SimulationError: bad arguments, or the hub is not ready.
    """
    if problem := pace_problem(minutes=minutes, rate=rate):
        raise SimulationError(problem)
    directory = Directory.load(settings.agencies_file)
    console = terminal.console(stderr=True)
    tally = Tally()
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        await _ready(client, url)
        responders = Responders(settings, directory, seed, tally, since=datetime.now(UTC))
        await responders.start()
        try:
            end = time.monotonic() + minutes * 60
            async with asyncio.TaskGroup() as group:
                group.create_task(_post_all(client, settings, seed, rate, end, tally))
                group.create_task(responders.run(end))
                await _show_progress(console, tally, minutes * 60, end)
        except* KafkaError as failed:
            raise SimulationError(f"broker: {failed.exceptions[0]}") from None
        finally:
            await responders.stop()
    console.print(f"simulated {minutes:g} min against {url}: {tally.line()}; "
                  f"{tally.unsent} follow-ups were still due when time ran out.")


STOP_WAIT_S = 10.0
"""Longest a responder client takes to stop (the broker may be away)."""
LOG_EVERY_S = 10.0
"""Seconds between progress lines when the output is a log, not a terminal."""


async def _show_progress(console: Console, tally: Tally, total: float, end: float) -> None:
    """A live bar on a terminal; a line every LOG_EVERY_S in a log, where rich's bar
    would leave one last frame cut at 80 columns ("13 ignor…")."""
    if not console.is_terminal:
        while (left := end - time.monotonic()) > 0:
            await asyncio.sleep(min(LOG_EVERY_S, left))
            console.print(f"simulate {tally.line()}")
        return
    columns = (TextColumn("[bold]simulate"), BarColumn(), TimeRemainingColumn(),
               TextColumn("{task.description}"))
    with Progress(*columns, console=console) as progress:
        shown = progress.add_task(tally.line(), total=total)
        while (left := end - time.monotonic()) > 0:
            progress.update(shown, completed=total - left, description=tally.line())
            await asyncio.sleep(min(0.5, left))
        progress.update(shown, completed=total, description=tally.line())
