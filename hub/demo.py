"""Demo traffic: realistic, varied web-form complaints from the seed regions.

Each complaint combines a place, a problem, how long it has lasted and what it
causes, so different citizens' complaints differ as they do in life (and the
duplicate detector does not take them for one).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

REGIONS = (
    ("32.75", "Kota Bekasi", ("Jl. Ahmad Yani", "Jl. Juanda", "Jl. Chairil Anwar", "Jl. Kartini")),
    ("32.16", "Kabupaten Bekasi", ("Jl. Raya Cikarang", "Jl. Kalimalang", "Jl. Industri")),
    ("61.72", "Kota Singkawang", ("Jl. Diponegoro", "Jl. GM Situt", "Jl. Sejahtera")),
    ("62.01", "Kabupaten Kotawaringin Barat", ("Jl. Pangeran Antasari", "Jl. Iskandar")),
    ("36", "Provinsi Banten", ("Jl. Syech Nawawi", "Jl. Raya Serang", "Jl. Ahmad Yani")),
)
PROBLEMS = (
    ("jalan", "Jalan rusak", "jalan berlubang dan aspal terkelupas"),
    ("jalan", "Lampu jalan mati", "lampu penerangan jalan padam"),
    ("kesehatan", "Antrian puskesmas", "antrian pasien di puskesmas sangat panjang"),
    ("kesehatan", "Obat kosong", "stok obat di puskesmas kosong"),
    ("pendidikan", "Pungutan sekolah", "sekolah negeri meminta uang seragam"),
    ("adminduk", "E-KTP belum jadi", "e-KTP yang diajukan belum juga dicetak"),
    ("sampah", "Sampah menumpuk", "sampah rumah tangga tidak diangkut"),
    ("pdam", "Air PDAM mati", "air PDAM tidak mengalir"),
    ("perizinan", "Izin usaha lambat", "permohonan izin usaha tidak ada kabar"),
    ("lain-lain", "Pohon tumbang", "pohon besar tumbang menutup badan jalan"),
)
SINCE = ("sejak kemarin", "sudah tiga hari", "sudah dua minggu", "lebih dari sebulan")
EFFECT = (
    "warga kesulitan beraktivitas", "sudah ada pengendara yang jatuh", "anak-anak terganggu",
    "pedagang mengeluh sepi", "bau menyengat sampai ke rumah", "kami harus membeli air galon",
)
REPORT_TYPES = ("pengaduan", "pengaduan", "pengaduan", "aspirasi", "permintaan informasi")
NAMES = ("Budi Santoso", "Siti Aminah", "Agus Salim", "Dewi Lestari", "Rudi Hartono", "Nur Aini")


def web_complaints(seed: int = 1708) -> Iterator[dict[str, Any]]:
    """An endless stream of web-form bodies; the same seed gives the same stream."""
    rnd = random.Random(seed)
    n = 0
    while True:
        n += 1
        code, region, streets = rnd.choice(REGIONS)
        category, title, problem = rnd.choice(PROBLEMS)
        place = f"{rnd.choice(streets)} No. {rnd.randint(1, 250)} RT {rnd.randint(1, 15):02d}"
        text = (f"Di {place}, {region}, {problem} {rnd.choice(SINCE)}; "
                f"{rnd.choice(EFFECT)}. Mohon segera ditindaklanjuti.")
        yield {
            "id": f"demo-{seed}-{n}",
            "judul": title,
            "isi": text,
            "kategori": category,
            "jenis_laporan": rnd.choice(REPORT_TYPES),
            "lokasi": {"kode_wilayah": code, "nama": region, "alamat": place},
            "anonim": rnd.random() < 0.2,
            "rahasia": rnd.random() < 0.1,
            "pelapor": {
                "nama": rnd.choice(NAMES),
                "telepon": f"+62812{rnd.randrange(10**7, 10**8)}",
            },
        }
