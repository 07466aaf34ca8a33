"""Kemendagri region table and the code / free-text resolver."""

from __future__ import annotations

import pytest

from hub import regions
from hub.regions import Region, by_bps_code, by_code, mentioned, provinces, regencies, resolve

ALL = provinces() + regencies()


# --- the table -------------------------------------------------------------------------------


def test_counts_match_the_decree() -> None:
    # Kepmendagri 300.2.2-2138/2025: 38 provinces, 416 kabupaten + 98 kota = 514.
    assert len(provinces()) == 38
    assert len(regencies()) == 514
    assert sum(r.kind.startswith("kabupaten") for r in regencies()) == 416
    assert sum(r.kind.startswith("kota") for r in regencies()) == 98
    assert len({r.code for r in ALL}) == 552
    assert len({r.bps_code for r in ALL}) == 552


def test_every_province_has_regencies_and_every_regency_a_province() -> None:
    codes = {p.code for p in provinces()}
    assert all(regencies(p) for p in codes)
    assert {r.province_code for r in regencies()} == codes
    assert sum(len(regencies(p)) for p in codes) == 514
    assert regencies("99") == []


@pytest.mark.parametrize("region", regencies(), ids=lambda r: r.code)
def test_kind_agrees_with_code_and_name(region: Region) -> None:
    # The decree's rule: regency part 01-69 = kabupaten, 71-99 = kota.
    kk = int(region.code[3:])
    assert region.code[:2] == region.province_code
    if kk <= 69:
        assert region.kind in ("kabupaten", "kabupaten_administrasi")
    else:
        assert 71 <= kk <= 99
        assert region.kind in ("kota", "kota_administrasi")
    prefix = region.kind.replace("_", " ").title() + " "
    assert region.name.startswith(prefix)
    # "Administrasi" regions exist only in Jakarta.
    assert region.kind.endswith("administrasi") == (region.province_code == "31")


def test_new_papua_provinces() -> None:
    names = {p.code: p.name for p in provinces() if p.code.startswith("9")}
    assert names == {
        "91": "Papua",
        "92": "Papua Barat",
        "93": "Papua Selatan",
        "94": "Papua Tengah",
        "95": "Papua Pegunungan",
        "96": "Papua Barat Daya",
    }


@pytest.mark.parametrize("region", ALL, ids=lambda r: r.code)
def test_every_region_round_trips(region: Region) -> None:
    assert by_code(region.code) == region
    assert by_bps_code(region.bps_code) == region
    assert resolve(region.name) == region


def test_region_built_by_hand_derives_its_fields() -> None:
    # The placeholder API was Region(code, name); it still yields a usable region.
    assert Region("32.75", "Kota Bekasi") == Region("32.75", "Kota Bekasi", "kota", "32")
    assert Region("32", "Jawa Barat").kind == "province"


# --- codes -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("32", "32"),
        ("32.75", "32.75"),
        (" 32.16 ", "32.16"),
        ("32.75.01", "32.75"),
        ("32.75.01.1001", "32.75"),
        ("327501", "32.75"),  # undotted Kemendagri district (BPS districts have 7 digits)
        ("3275010", "32.75"),  # BPS district
        ("3275", "32.75"),  # Kemendagri and BPS agree here
        ("3216", "32.16"),
        ("6172", "61.72"),
        ("3275011001", "32.75"),
    ],
)
def test_by_code(code: str, expected: str) -> None:
    found = by_code(code)
    assert found is not None
    assert found.code == expected


@pytest.mark.parametrize(
    "code",
    [
        # The two schemes disagree: Kemendagri 31.71 is Jakarta Pusat, BPS 3171 Jakarta Selatan;
        # Kemendagri 11.01 is Aceh Selatan, BPS 1101 Simeulue. Guessing would misroute.
        "3171",
        "1101",
        # Undotted but only one scheme knows it: an old 2022 Kemendagri code (92.01 was Sorong)
        # or a BPS code of a new Papua province. Refused rather than guessed.
        "9201",
        "9501",
        "32.99",
        "99",
        "00.00",
        "3275x",
        "32-75",
        "12345",
        "3275012345678901",  # NIK-length: not a region code
        "",
    ],
)
def test_by_code_refuses(code: str) -> None:
    assert by_code(code) is None


def test_by_bps_code() -> None:
    assert by_bps_code("3171") == by_code("31.74")  # Jakarta Selatan
    assert by_bps_code("1101") == by_code("11.09")  # Simeulue
    assert by_bps_code("94") == by_code("91")  # BPS 94 = Papua
    assert by_bps_code("9271") == by_code("96.71")  # Kota Sorong
    assert by_bps_code("3275010") == by_code("32.75")
    assert by_bps_code("32.75") is None
    assert by_bps_code("9999") is None


# --- free text -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Kota Bekasi",
        "kota bekasi",
        "KOTA BEKASI",
        "Kota  Bekasi",
        "Pemkot Bekasi",
        "Pemerintah Kota Bekasi",
        "Kotamadya Bekasi",
        "Kodya Bekasi",
        "Bekasi (Kota)",
        "Kota Bekasi, Jawa Barat",
        "Kota Bekasy",
        "32.75",
        "3275",
    ],
)
def test_kota_bekasi(text: str) -> None:
    found = resolve(text)
    assert found is not None
    assert (found.code, found.name) == ("32.75", "Kota Bekasi")


@pytest.mark.parametrize(
    "text",
    [
        "Kabupaten Bekasi",
        "Kab. Bekasi",
        "Kab Bekasi",
        "KAB.BEKASI",
        "kab. bekasi",
        "Pemkab Bekasi",
        "Pemerintah Kabupaten Bekasi",
        "Bekasi (Kab.)",
        "Kab. Bekasy",
        "32.16",
        "3216",
    ],
)
def test_kabupaten_bekasi(text: str) -> None:
    found = resolve(text)
    assert found is not None
    assert (found.code, found.name) == ("32.16", "Kabupaten Bekasi")


@pytest.mark.parametrize(
    "text",
    [
        "Bekasi",
        "bekasi",
        "Bekasy",  # a typo of an ambiguous name stays ambiguous
        "Bekasi, Jawa Barat",  # both are in Jawa Barat
        "Bogor",
        "Malang",
        "Tangerang",
        "Semarang",
        "Bandung",
        "Cirebon",
        "Kediri",
        "Serang",
        "Sorong",
        "Jayapura",
        "Banjar",  # Kabupaten Banjar (Kalsel) vs Kota Banjar (Jabar)
    ],
)
def test_bare_names_of_a_kota_and_a_kabupaten_stay_unresolved(text: str) -> None:
    assert resolve(text) is None


def test_province_settles_an_ambiguous_name() -> None:
    assert resolve("Banjar", province_code="63") == by_code("63.03")
    assert resolve("Banjar", province_code="32") == by_code("32.79")
    assert resolve("Banjar, Kalimantan Selatan") == by_code("63.03")
    assert resolve("Kab. Banjar, Kalsel") == by_code("63.03")
    assert resolve("Bekasi", province_code="32") is None  # both are there
    assert resolve("Kota Bekasi", province_code="36") is None  # not in Banten
    assert resolve("32.75", province_code="36") is None
    assert resolve("Kota Bekasi, Banten") is None
    assert resolve("Kota Bekasi, Jawa Barat", province_code="36") is None


@pytest.mark.parametrize(
    ("text", "code"),
    [
        # A province and a region inside it share the name: the province holds the place
        # either way, so it is the answer; a kind word picks the city.
        ("Jambi", "15"),
        ("Kota Jambi", "15.71"),
        ("Bengkulu", "17"),
        ("Gorontalo", "75"),
        ("Kabupaten Gorontalo", "75.01"),
        ("Kota Gorontalo", "75.71"),
        ("Yogyakarta", "34"),
        ("Jogja", "34"),
        ("Kota Jogja", "34.71"),
        ("Kota Yogyakarta", "34.71"),
    ],
)
def test_province_and_city_of_the_same_name(text: str, code: str) -> None:
    assert resolve(text) == by_code(code)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("Provinsi Banten", "36"),
        ("Prov. Banten", "36"),
        ("Pemprov Banten", "36"),
        ("Banten", "36"),
        ("Jabar", "32"),
        ("Jateng", "33"),
        ("Jatim", "35"),
        ("Kalbar", "61"),
        ("Kalteng", "62"),
        ("DIY", "34"),
        ("DI Yogyakarta", "34"),
        ("DKI Jakarta", "31"),
        ("DKI", "31"),
        ("Provinsi DKI Jakarta", "31"),
        ("Daerah Khusus Ibukota Jakarta", "31"),
        ("Jakarta", "31"),
        ("Papua Barat Daya", "96"),
        ("Kepulauan Bangka Belitung", "19"),
        ("Kep. Riau", "21"),
    ],
)
def test_provinces_and_their_short_forms(text: str, code: str) -> None:
    assert resolve(text) == by_code(code)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        # Kemendagri numbers Jakarta Pusat, Utara, Barat, Selatan, Timur as 71-75; BPS 3171 is
        # Jakarta Selatan, which is where "31.71" for Jakarta Selatan comes from.
        ("Jakarta Selatan", "31.74"),
        ("Kota Jakarta Selatan", "31.74"),
        ("Kota Adm. Jakarta Selatan", "31.74"),
        ("Kota Administrasi Jakarta Selatan", "31.74"),
        ("Jaksel", "31.74"),
        ("Jakarta Pusat", "31.71"),
        ("Kepulauan Seribu", "31.01"),
        ("Kab. Adm. Kep. Seribu", "31.01"),
        ("Lima Puluh Kota", "13.07"),  # a kabupaten whose name ends in "Kota"
        ("Kabupaten Lima Puluh Kota", "13.07"),
        ("Kotabaru", "63.02"),
        ("Kota Kotamobagu", "71.74"),
        ("Tangsel", "36.74"),
        ("Solo", "33.72"),
        ("Palangka Raya", "62.71"),  # spacing variants of the listed names
        ("Kota Baubau", "74.72"),
        ("Fakfak", "92.03"),
        ("Tojo Una-Una", "72.09"),
        ("Siau Tagulandang Biaro", "71.09"),
    ],
)
def test_regency_spellings(text: str, code: str) -> None:
    assert resolve(text) == by_code(code)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("Singkawan", "61.72"),
        ("Kota Singkawan", "61.72"),
        ("Kota Bekasy", "32.75"),
        ("Kotawaringn Barat", "62.01"),
        ("Kab. Kotawaringin Brat", "62.01"),
        ("Kota Semarrang", "33.74"),
        ("Tasikmalya", None),  # typo of a name shared by a kota and a kabupaten
        ("Kota Tasikmalya", "32.78"),
    ],
)
def test_typos(text: str, code: str | None) -> None:
    assert resolve(text) == (by_code(code) if code else None)


def test_fuzz_never_crosses_kota_and_kabupaten() -> None:
    # "Kota Sidoarjo" does not exist; the nearest name is a kabupaten, so no answer.
    assert resolve("Kota Sidoarjo") is None
    assert resolve("Kota Sidoarjoo") is None
    assert resolve("Kabupaten Surabaya") is None
    assert resolve("Kab. Surabayah") is None
    assert resolve("Sidoarjo") == by_code("35.15")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "-",
        "Kota",
        "Kabupaten",
        "Provinsi",
        "hello world",
        "jalan rusak di depan pasar",
        "Kampung",  # one edit from Lampung, but typos keep the first letter
        "Bogr",  # short: no typo slack
        "Sumbr",
        "Atlantis",
        "Kota Atlantis",
        "Provinsi Bekasi",
        "Kota Jawa Barat",
    ],
)
def test_garbage_is_unresolved(text: str) -> None:
    assert resolve(text) is None


@pytest.mark.parametrize(
    ("text", "code", "name"),
    [
        ("Kota Bekasi", "32.75", "Kota Bekasi"),
        ("Kabupaten Bekasi", "32.16", "Kabupaten Bekasi"),
        ("Kota Singkawang", "61.72", "Kota Singkawang"),
        ("Kabupaten Kotawaringin Barat", "62.01", "Kabupaten Kotawaringin Barat"),
        ("Kobar", "62.01", "Kabupaten Kotawaringin Barat"),
        ("Provinsi Banten", "36", "Banten"),
        ("Kota Semarang", "33.74", "Kota Semarang"),
        ("Kota Administrasi Jakarta Selatan", "31.74", "Kota Administrasi Jakarta Selatan"),
    ],
)
def test_demo_regions(text: str, code: str, name: str) -> None:
    found = resolve(text)
    assert found is not None
    assert (found.code, found.name) == (code, name)


def test_lists_are_copies_in_code_order() -> None:
    first = regencies("36")
    first.clear()
    assert [r.code for r in regencies("36")] == [
        "36.01", "36.02", "36.03", "36.04", "36.71", "36.72", "36.73", "36.74",
    ]  # fmt: skip
    assert [p.code for p in provinces()] == sorted(p.code for p in provinces())


def test_table_is_read_once() -> None:
    assert regions._table() is regions._table()


@pytest.mark.parametrize(("text", "code"), [
    # A district named before its city is a regency's name somewhere else: it was taken.
    ("Kuningan, Jakarta Selatan", "31.74"),  # not Kabupaten Kuningan (Jawa Barat)
    ("Makasar, Jakarta Timur", "31.75"),  # not Kota Makassar (Sulawesi Selatan)
    ("Pinang, Kota Tangerang", "36.71"),  # not Kabupaten Pinrang
    ("Depok, Sleman", "34.04"),  # not Kota Depok
    ("Simpang, Kota Bekasi", "32.75"),  # not Kabupaten Sampang
    ("Jl. HR Rasuna Said Kav. 1, Kuningan, Jakarta Selatan 12950", "31.74"),
    ("Jl. Ahmad Yani No. 1, Kota Bekasi 17141", "32.75"),
    ("Jl. Sudirman 5, Kota Bandung, Jawa Barat", "32.73"),
    ("Bekasi Timur, Kota Bekasi", "32.75"),
    ("Kota Bekasi, Bekasi Timur", "32.75"),  # a part on the left counts with its kind word
    ("Puncak, Bogor", None),  # Bogor is a kota and a kabupaten; not Kabupaten Puncak (Papua)
    ("Jawa Barat, Indonesia", "32"),
])
def test_an_address_is_read_from_its_larger_place(text: str, code: str | None) -> None:
    assert resolve(text) == (by_code(code) if code else None)


@pytest.mark.parametrize(("text", "code"), [
    # Addresses still name the province a regency was in before it was split off.
    ("Kabupaten Merauke, Papua", "93.01"),  # Papua Selatan since 2022
    ("Jl. Trikora, Nabire, Papua", "94.01"),  # Papua Tengah
    ("Kabupaten Jayawijaya, Provinsi Papua", "95.01"),  # Papua Pegunungan
    ("Kota Sorong, Papua Barat", "96.71"),  # Papua Barat Daya
    ("Kota Tarakan, Kalimantan Timur", "65.71"),  # Kalimantan Utara since 2012
    ("Kabupaten Jayapura, Papua", "91.03"),  # still Papua
    ("Kota Jayapura, Papua Selatan", None),  # a new province holds none of the old one's
    ("Kabupaten Merauke, Jawa Barat", None),
])
def test_a_province_named_as_it_was_before_a_split_holds_its_regencies_of_today(
    text: str, code: str | None,
) -> None:
    assert resolve(text) == (by_code(code) if code else None)


@pytest.mark.parametrize("word", ["Pinang", "Simpang", "Pantai"])
def test_a_short_word_without_a_kind_word_is_no_typo_of_a_regency(word: str) -> None:
    # One edit from Pinrang, Sampang and Paniai: a junction or a beach sent to Madura or Papua.
    assert resolve(word) is None


@pytest.mark.parametrize(("text", "code"), [
    ("Air PDAM di Perumnas 3 Kota Bekasi tidak mengalir sejak 3 hari", "32.75"),
    ("Pelayanan e-KTP di Disdukcapil Kabupaten Bekasi lambat sekali", "32.16"),
    ("Jalan rusak di Kab. Bogor dekat pasar", "32.01"),
    ("Banjir di kota kami sudah tiga hari", None),  # no name after the kind word
    ("Jalan rusak di Bekasi", None),  # no kind word: Kota or Kabupaten?
    ("Dari Kota Bekasi ke Kabupaten Bekasi jalannya rusak", None),  # two: not guessed
    # Names of four words were cut to three: Ogan Komering Ulu (16.01), or nothing.
    ("Jalan rusak di Kabupaten Ogan Komering Ulu Timur, mohon diperbaiki", "16.08"),
    ("Jalan rusak di Kabupaten Ogan Komering Ulu Selatan mohon", "16.09"),
    ("Jalan rusak di Kabupaten Ogan Komering Ulu mohon", "16.01"),
    ("Jalan rusak di Kabupaten Penukal Abab Lematang Ilir mohon", "16.12"),
    ("Jalan rusak di Kabupaten Kepulauan Siau Tagulandang Biaro mohon", "71.09"),
    # Another name begins so: misspelt Padangsidimpuan (Sumatera Utara), not Kota Padang.
    ("Jalan rusak di Kota Padang Sidempuan mohon", None),
    ("Jalan rusak di Kota Padang yang dekat pantai", "13.71"),
    # ... but a word after the name that only begins like a longer name is no misspelling.
    ("Jalan rusak di Kabupaten Bandung bagian selatan", "32.04"),
    ("Jalan rusak di Kabupaten Bandung banjir lagi", "32.04"),
    ("Lampu mati di Kota Padang sih, tolong", "13.71"),
    ("Jembatan putus di Kabupaten Buru selama seminggu", "81.04"),
    ("Jalan rusak di Kabupaten Bandung Brat", None),  # Bandung Barat, misspelt
])
def test_a_regency_named_in_a_text_with_its_kind_word(text: str, code: str | None) -> None:
    assert mentioned(text) == (by_code(code) if code else None)
