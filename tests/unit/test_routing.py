from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub import topics
from hub.calendar import Zone
from hub.categories import ancestors, categories, category_code
from hub.model import Channel, Complaint, Location, SourceRef, tracking_id_for
from hub.routing import Agency, Directory, Level, RegistryError, Rule

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
DIRECTORY = Directory.load()


def complaint(category: str | None, region: str | None, target: str | None = None) -> Complaint:
    source = SourceRef(system="web", message_id=f"{category}-{region}-{target}")
    return Complaint(
        tracking_id=tracking_id_for(source),
        source=source,
        channel=Channel.WEB,
        description="x",
        category=category,
        target_agency=target,
        location=Location(region_code=region),
        submitted_at=NOW,
        received_at=NOW,
    )


@pytest.mark.parametrize(
    ("category", "region", "agency", "reason"),
    [
        ("health", "32.75", "kota-bekasi-dinkes", "rule"),
        ("health", "32.75.01.1001", "kota-bekasi-dinkes", "rule"),
        ("health", "32.16", "kab-bekasi-dinkes", "rule"),  # Kabupaten, not Kota, Bekasi
        ("water", "32.75", "kota-bekasi-tirta-patriot", "rule"),  # child category beats parent
        ("health", "36.73", "prov-banten-dinkes", "rule"),  # province rule covers its cities
        ("tourism", "32.75", "kota-bekasi", "coordinator"),
        ("tourism", "32.01", "prov-jabar", "coordinator"),  # no regency coordinator: province
        ("banking", "32.75", "ojk", "rule"),
        ("tourism", None, "kemenpanrb", "national"),
        (None, "99", "kemenpanrb", "national"),
    ],
)
def test_route(category: str | None, region: str | None, agency: str, reason: str) -> None:
    decision = DIRECTORY.route(complaint(category, region))
    assert (decision.agency.code, decision.reason) == (agency, reason)


def test_explicit_target_wins_when_known() -> None:
    assert DIRECTORY.route(complaint("health", "32.75", "kota-bekasi-rsud")).agency.code == (
        "kota-bekasi-rsud"
    )
    assert DIRECTORY.route(complaint("health", "32.75", "no-such")).agency.code == (
        "kota-bekasi-dinkes"
    )


def test_reroute_walks_down_the_candidates() -> None:
    c = complaint("health", "32.75")
    order = [d.agency.code for d in DIRECTORY.candidates(c)]
    assert order == ["kota-bekasi-dinkes", "kota-bekasi", "prov-jabar", "kemenpanrb"]
    assert DIRECTORY.route(c, exclude={"kota-bekasi-dinkes"}).agency.code == "kota-bekasi"
    assert DIRECTORY.route(c, exclude=set(order)).agency.code == "kemenpanrb"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("national: x\nagencies: []\n", "national agency 'x' is not in agencies"),
        (
            "national: a\nagencies:\n - {code: a, name: A, level: national}\n"
            "rules:\n - {agency: b}\n",
            "rules.#1: agency 'b' is unknown",
        ),
        (
            "national: a\nagencies:\n - {code: a, name: A, level: national, zone: CET}\n",
            "agencies.#1.zone",
        ),
        (
            "national: a\nagencies:\n - {code: a, name: A, level: national}\n"
            " - {code: s, name: S, level: province, region: '73', zone: WIB}\n",
            "agencies.#2: Value error, zone WIB is not that of region 73",
        ),
        ("national: [", "cannot read agency registry"),
        # Each of these loaded, and then misrouted without a word or froze the router.
        (
            "national: a\nagencies:\n - {code: a, name: A, level: national, parent: c}\n"
            " - {code: b, name: B, level: province, region: '32', parent: a}\n"
            " - {code: c, name: C, level: regency_city, region: '32.75', parent: b}\n",
            "agency a: its parents lead back to it (a → c → b → a)",
        ),
        (
            "national: a\nagencies:\n - {code: a, name: A, level: national}\n"
            " - {code: k, name: K, level: regency_city, region: '32.61', parent: a}\n",
            "agency k: region 32.61 is in no region table of today",
        ),
        (
            "national: a\nagencies:\n - {code: a, name: A, level: national}\n"
            "rules:\n - {agency: a, category: health, region: '32.16.01'}\n",
            "rules.#1: region 32.16.01 is a district or village",
        ),
        (
            "national: a\nagencies:\n - {code: a, name: A, level: national}\n"
            " - {code: k, name: K, level: regency_city, region: '32.75', parent: a}\n"
            " - {code: j, name: J, level: regency_city, region: '32.75', parent: a}\n",
            "agencies k and j both coordinate region 32.75",
        ),
        (
            "national: a\nagencies:\n - {code: a, name: A, level: national}\n"
            " - {code: k, name: K, level: regency_city, region: '32.75.01', parent: a}\n",
            "agency k: region 32.75.01 is a district or village",
        ),
        # Agency topics: the hub's own follow-up topic took every complaint routed there back
        # as a malformed follow-up, each a dead letter the agency never saw; a name Apache Kafka
        # refuses would fail every send, which the hub takes for a broker outage and waits
        # out, all intake standing still (the embedded broker takes any name).
        (
            "national: a\nagencies:\n - {code: a, name: A, level: national}\n"
            f" - {{code: k, name: K, level: opd, parent: a, topic: {topics.FOLLOW_UP}}}\n",
            f"agency k: topic {topics.FOLLOW_UP!r} is one the hub itself reads or writes",
        ),
        (
            "national: a\nagencies:\n - {code: a, name: A, level: national}\n"
            f" - {{code: k, name: K, level: opd, parent: a, topic: {topics.raw('web')}}}\n",
            f"agency k: topic {topics.raw('web')!r} is one the hub itself reads or writes",
        ),
        (
            "national: a\nagencies:\n - {code: a, name: A, level: national}\n"
            " - {code: k, name: K, level: opd, parent: a, topic: 'dinas k/masuk'}\n",
            "agencies.#2.topic",
        ),
    ],
)
def test_bad_registry_is_refused_with_the_place(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "agencies.yaml"
    path.write_text(text)
    with pytest.raises(RegistryError, match=re.escape(message)):
        Directory.load(path)


def scanned(directory: Directory, c: Complaint) -> list[str]:
    """The router's answer by scanning every rule: what the rule index must agree with."""
    chain = ancestors(c.category) if c.category else []
    region = c.location.region_code or ""
    regions = [".".join(region.split(".")[:d]) for d in (2, 1)] if region else []
    scored = []
    for order, rule in enumerate(directory.rules):
        if rule.category is not None and rule.category not in chain:
            continue
        if rule.region is not None and rule.region not in regions:
            continue
        category_score = len(chain) - chain.index(rule.category) if rule.category else 0
        region_score = 3 - regions.index(rule.region) if rule.region else 0
        scored.append((-category_score, -region_score, order, rule.agency))
    return [agency for *_, agency in sorted(scored)]


CATEGORY_CODES = sorted(categories())
REGION_CODES = ["32", "32.75", "32.16", "36", "36.73", "61.72"]


@settings(max_examples=200, deadline=None)
@given(
    rules=st.lists(st.tuples(st.sampled_from(sorted(DIRECTORY.agencies)),
                             st.none() | st.sampled_from(CATEGORY_CODES),
                             st.none() | st.sampled_from(REGION_CODES)), max_size=40),
    category=st.none() | st.sampled_from(CATEGORY_CODES),
    region=st.none() | st.sampled_from([*REGION_CODES, "32.75.01.1001", "99"]),
)
def test_rule_index_agrees_with_a_scan_of_every_rule(
    rules: list[tuple[str, str | None, str | None]], category: str | None, region: str | None
) -> None:
    directory = Directory(
        DIRECTORY.national.code, DIRECTORY.agencies.values(),
        [Rule(agency=a, category=cat, region=reg) for a, cat, reg in rules],
    )
    # The same directory asked again, after other questions, answers from its memo.
    for c in (complaint(category, region), complaint(None, region), complaint(category, None),
              complaint(category, region)):
        indexed = [d.agency.code for d in directory.candidates(c) if d.reason == "rule"]
        expected = list(dict.fromkeys(scanned(directory, c)))
        assert indexed == [code for code in expected if code != c.target_agency]


@pytest.mark.parametrize(("region", "zone"), [
    ("61.72", Zone.WIB),  # Kota Singkawang, Kalimantan Barat
    ("62.01", Zone.WIB),  # Kotawaringin Barat, Kalimantan Tengah
    ("64", Zone.WITA),  # Kalimantan Timur
    ("51.71", Zone.WITA),  # Kota Denpasar
    ("73.71", Zone.WITA),  # Kota Makassar
    ("82", Zone.WIT),  # Maluku Utara
    ("96.71", Zone.WIT),  # Kota Sorong, Papua Barat Daya
    (None, Zone.WIB),  # a national agency: Jakarta's
])
def test_an_agency_without_a_zone_takes_its_regions(region: str | None, zone: Zone) -> None:
    assert Agency(code="a", name="A", level=Level.PROVINCE, region=region).zone is zone


@pytest.mark.parametrize(("written", "code"), [
    ("Kependudukan", "civil-registry"), ("Dukcapil", "civil-registry"),
    ("Akta Kelahiran", "civil-registry"), ("eKTP", "civil-registry"), ("Air Minum", "water"),
    ("Sosial", "social-welfare"), ("PUPR", "infrastructure"),
    ("Pekerjaan Umum", "infrastructure"), ("Pendidikan dan Kebudayaan", "education"),
    ("Jalan Berlubang", "infrastructure"), ("Parkir Liar", "transport"),
    ("Kesehatan.", "health"), (" akta  kelahiran ", "civil-registry"),
    ("BPJS Kesehatan", None),  # a national body, not the city's health office
])
def test_category_words_as_citizens_and_provinces_write_them(
    written: str, code: str | None,
) -> None:
    # Each was "other": the complaint waited at the region's coordinator, not the office.
    assert category_code(written) == code


def test_an_office_in_a_district_is_an_agency_of_its_regency(tmp_path: Path) -> None:
    # A kecamatan office or a puskesmas sits in a district: the registry refused it.
    path = tmp_path / "agencies.yaml"
    path.write_text("national: a\nagencies:\n - {code: a, name: A, level: national}\n"
                    " - {code: k, name: K, level: regency_city, region: '32.75', parent: a}\n"
                    " - {code: kec, name: Kec, level: opd, region: '32.75.01', parent: k}\n")
    directory = Directory.load(path)
    assert directory.coordinator_of("32.75.01") is directory.agencies["k"]
