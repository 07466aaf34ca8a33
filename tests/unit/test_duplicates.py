from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hub.duplicates import BLOCK_LIMIT, Candidate, Pool, fingerprint
from hub.model import Channel, Complaint, Location, Reporter, SourceRef, tracking_id_for
from tests.support import reworded, unlike_text

NOW = datetime(2026, 11, 23, tzinfo=UTC)
KEY = b"k"


def complaint(ref: str, text: str, *, phone: str | None = None, handle: str | None = None,
              lat: float | None = None, category: str | None = None) -> Complaint:
    source = SourceRef(system="web", message_id=ref)
    return Complaint(
        tracking_id=tracking_id_for(source), source=source, channel=Channel.WEB, description=text,
        category=category, reporter=Reporter(phone=phone, handle=handle),
        location=Location(latitude=lat, longitude=106.99 if lat else None),
        submitted_at=NOW, received_at=NOW,
    )


def check(first: Complaint, second: Complaint) -> tuple[str, str] | None:
    pool = Pool([Candidate(first.tracking_id, fingerprint(first, KEY))])
    return pool.first_duplicate(second.tracking_id, fingerprint(second, KEY))


def test_same_words_through_two_doors_is_one_complaint() -> None:
    text = "Gorong-gorong ambrol di Jl. Cut Meutia dekat stasiun, mohon segera diperbaiki"
    sms = complaint("a", text, phone="+6281311112222")
    tweet = complaint("b", f"#LAPOR {text} @LAPOR1708", handle="warga_bks")
    assert check(sms, tweet) == (sms.tracking_id, "text")


def test_same_reporter_and_place_with_reworded_text() -> None:
    a = complaint("a", "Lampu jalan mati di depan masjid Al Ikhlas sejak kemarin malam",
                  phone="+6281311112222")
    b = complaint("b", "Sejak kemarin malam lampu jalan mati di depan masjid Al Ikhlas",
                  phone="+6281311112222")
    assert check(a, b) == (a.tracking_id, "reporter")


def test_different_complaints_sharing_a_phrase_stay_apart() -> None:
    a = complaint("a", "Jalan berlubang di Jl. Melati nomor 12 Kota Bekasi mohon diperbaiki",
                  lat=-6.241, category="infrastructure")
    b = complaint("b", "Jalan berlubang di Jl. Kenanga nomor 40 Kota Bekasi mohon diperbaiki "
                  "karena sudah ada korban jatuh dari motor", lat=-6.241,
                  category="infrastructure")
    assert check(a, b) is None


def test_keys_hide_the_number() -> None:
    fp = fingerprint(complaint("a", "x y", phone="+6281311112222"), KEY)
    assert fp.reporter_key is not None
    assert "6281311112222" not in fp.reporter_key


def test_a_block_compares_only_its_latest_candidates() -> None:
    """A phone on every row of a province's export names no one: comparing each complaint
    with all the others sharing it was quadratic. Only the latest BLOCK_LIMIT count."""
    texts = [unlike_text(i) for i in range(BLOCK_LIMIT + 10)]
    olds = [complaint(f"old-{i}", t, phone="+6281234567890") for i, t in enumerate(texts)]
    pool = Pool(Candidate(c.tracking_id, fingerprint(c, KEY)) for c in olds)

    def again(i: int) -> tuple[str, str] | None:
        repeat = complaint(f"new-{i}", reworded(texts[i]), phone="+6281234567890")
        return pool.first_duplicate(repeat.tracking_id, fingerprint(repeat, KEY))

    assert again(len(texts) - 1) == (olds[-1].tracking_id, "reporter")
    assert again(len(texts) - BLOCK_LIMIT) == (olds[-BLOCK_LIMIT].tracking_id, "reporter")
    assert again(len(texts) - BLOCK_LIMIT - 1) is None  # fell out of the block


def at(ref: str, text: str, region: str | None = None, **kw: object) -> Complaint:
    c = complaint(ref, text, **kw)  # type: ignore[arg-type]
    return c.model_copy(update={"location": c.location.model_copy(update={"region_code": region})})


def test_texts_that_differ_in_a_fact_are_two_complaints() -> None:
    # A duplicate is not routed: these were linked, and the second never reached an agency.
    phone = "+6281311112222"
    pairs = [
        ("Lampu jalan mati di Jl. Mawar Kelurahan Jatiasih sejak tiga hari",
         "Lampu jalan mati di Jl. Melati Kelurahan Jatiasih sejak tiga hari"),
        ("Ada pungutan liar uang seragam di SDN Margahayu 3 Bekasi Timur",
         "Ada pungutan liar uang seragam di SDN Margahayu 5 Bekasi Timur"),
        ("Lampu penerangan jalan mati di Gang Haji Naim RT 01 RW 05 sudah seminggu",
         "Lampu penerangan jalan mati di Gang Haji Naim RT 02 RW 05 sudah seminggu"),
        ("Bantuan sosial BPNT belum cair di Desa Sukamaju Kecamatan Cibitung bulan ini",
         "Bantuan sosial BPNT belum cair di Desa Sukajaya Kecamatan Cibitung bulan ini"),
        # A short word in the place of another: two blocks, two schools.
        ("Rumah warga di Perumahan Griya Asri Blok A terendam banjir setinggi lutut sejak kemarin",
         "Rumah warga di Perumahan Griya Asri Blok B terendam banjir setinggi lutut sejak kemarin"),
        ("Gaji guru honorer di SMA Negeri Tambun belum dibayar selama tiga bulan terakhir",
         "Gaji guru honorer di SMP Negeri Tambun belum dibayar selama tiga bulan terakhir"),
    ]
    for first, second in pairs:
        assert check(complaint("a", first, phone=phone), complaint("b", second, phone=phone)) is None
        assert check(complaint("a", first), complaint("b", second)) is None  # by the text key


def test_complaints_in_two_regions_or_places_are_two_complaints() -> None:
    text = "Selamat siang, saya mau menanyakan e-KTP saya belum jadi sudah tiga bulan menunggu"
    assert check(at("a", text, "32.75"), at("b", text, "32.16")) is None
    assert check(at("a", text, "32.75"), at("b", text, "32.75")) is not None
    # Photo-only Open311 reports from one phone: the service name for text, 2 km apart.
    one, two = (complaint(ref, "Pothole", phone="+6281311112222", lat=lat,
                          category="infrastructure") for ref, lat in (("a", -6.241), ("b", -6.259)))
    assert check(one, two) is None


def test_a_typo_a_greeting_or_the_sms_keyword_is_no_difference() -> None:
    text = "lampu penerangan jalan mati sepanjang Jl. Ahmad Yani depan Stasiun Bekasi"
    tweet = complaint("x", f"#LAPOR {text} @LAPOR1708", handle="warga")
    for sms in (f"LAPOR {text}", f"Selamat pagi, {text}", text.replace("Stasiun", "Stasion")):
        assert check(tweet, complaint("s", sms, phone="+6281311112222")) == (
            tweet.tracking_id, "text"), sms


def test_reports_further_apart_than_the_window_are_two_complaints() -> None:
    # One provincial export held a January report and the same words from June: all its rows
    # came at one moment, so the June one was linked to January's and never routed.
    text = "Lampu penerangan jalan di Jl. Pemuda depan Lawang Sewu mati total"
    phone = "+6281234567890"
    january = complaint("jan", text, phone=phone).model_copy(
        update={"submitted_at": datetime(2026, 1, 5, 1, 15, tzinfo=UTC)})
    window = timedelta(hours=72)
    for submitted, linked in ((datetime(2026, 6, 20, 12, 40, tzinfo=UTC), False),
                              (datetime(2026, 1, 7, 9, 0, tzinfo=UTC), True)):
        later = complaint("later", text, phone=phone).model_copy(
            update={"submitted_at": submitted})
        pool = Pool([Candidate(january.tracking_id, fingerprint(january, KEY))], window)
        found = pool.first_duplicate(later.tracking_id, fingerprint(later, KEY))
        assert (found is not None) == linked, submitted
