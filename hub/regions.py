"""Kemendagri region codes: resolve codes and free-text place names.

Data (``hub/data/regions.csv``): all 38 provinces and 514 regencies/cities (416 *kabupaten*,
98 *kota*) with their Kemendagri codes as set by Kepmendagri No. 300.2.2-2138 Tahun 2025. That
decree keeps the codes of Kepmendagri No. 100.1.1-6117 Tahun 2022, except for Papua Barat Daya.
The province was formed by UU 29/2022, a month after the 2022 decree, so it is new in 2025: it
is now 96, and its six regencies, numbered 92.xx under Papua Barat before, are now 96.xx.

- Codes and names: repository ``cahyadsn/wilayah``, ``db/wilayah_penduduk.sql`` (levels 1-2 of
  ``db/wilayah.sql``, "sesuai Kepmendagri No 300.2.2-2138 Tahun 2025"). Names are kept as
  written there except for four evident typos: the prefix "Kab" written out as "Kabupaten"
  (Timor Tengah Selatan, Pegunungan Bintang; fixed the same way upstream on 2026-01-29),
  "Kep." written out as "Kepulauan" (Siau Tagulandang Biaro), and "Papua Barat Oaya" → "Daya".
- ``bps_code``: the BPS code for the same region, from ``sumitroajiprabowo/kode-wilayah-id``,
  ``data/regencies.json`` (BPS SIG bridging, period 2025 S1). That bridge has no Kemendagri code
  for the four new Papua provinces. For those, the codes were matched by name within the
  province (each name is unique there). Every other code in the bridge agrees with the
  Kemendagri table by name. The one exception is Padangsidimpuan, whose name changed
  (UU 8/2023).

Kemendagri and BPS number regencies differently (Kemendagri 31.74 = Jakarta Selatan = BPS 3171;
Kemendagri 11.01 = Aceh Selatan, BPS 1101 = Simeulue), so an undotted 4-digit code is taken
only when both readings give the same region (see `by_code`).
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Literal

from rapidfuzz import process
from rapidfuzz.distance import OSA

from hub.calendar import Zone
from hub.model import REGION_CODE_PATTERN

Kind = Literal["province", "kabupaten", "kota", "kabupaten_administrasi", "kota_administrasi"]
KINDS: tuple[Kind, ...] = (
    "province",
    "kabupaten",
    "kota",
    "kabupaten_administrasi",
    "kota_administrasi",
)


@dataclass(frozen=True, slots=True)
class Region:
    code: str
    """Kemendagri code: `PP` for a province, `PP.KK` for a regency/city."""
    name: str
    """Official name, e.g. "Kota Bekasi", "Kabupaten Bekasi", "Jawa Barat"."""
    kind: Kind | Literal[""] = ""
    """province | kabupaten | kota | kabupaten_administrasi | kota_administrasi."""
    province_code: str = ""
    """Kemendagri code of the province (the region's own code for a province)."""
    bps_code: str = ""
    """BPS (statistics) code of the same region; differs from `code` for many regencies."""

    def __post_init__(self) -> None:
        # Keep `Region(code, name)` meaningful: the province and the kab/kota split follow from
        # the code (KK 01-69 kabupaten, 71-99 kota); only the "administrasi" variants cannot.
        if not self.province_code:
            object.__setattr__(self, "province_code", self.code[:2])
        if not self.kind:
            kind: Kind = "province" if len(self.code) == 2 else _kind_of(self.code)
            object.__setattr__(self, "kind", kind)

    @property
    def is_province(self) -> bool:
        return self.kind == "province"


def _kind_of(code: str) -> Kind:
    return "kota" if int(code[3:5]) >= 71 else "kabupaten"


# --- table -----------------------------------------------------------------------------------

_PREFIX = {
    "kabupaten": "Kabupaten ",
    "kota": "Kota ",
    "kabupaten_administrasi": "Kabupaten Administrasi ",
    "kota_administrasi": "Kota Administrasi ",
    "province": "",
}

# Well-known short forms only. Each maps to one code; a bare name that fits several regions is
# resolved by `_decide`, not here.
_ALIASES: dict[str, str] = {
    "nad": "11",
    "nanggroe aceh darussalam": "11",
    "sumut": "12",
    "sumbar": "13",
    "sumsel": "16",
    "babel": "19",
    "bangka belitung": "19",
    "kepri": "21",
    "jakarta": "31",
    "dki": "31",
    "dki jakarta": "31",
    "dkj": "31",
    "daerah khusus jakarta": "31",
    "jabar": "32",
    "jateng": "33",
    "diy": "34",
    "di yogyakarta": "34",
    "yogyakarta": "34",  # also the name of Kota Yogyakarta; `_decide` prefers the province
    "jatim": "35",
    "ntb": "52",
    "ntt": "53",
    "kalbar": "61",
    "kalteng": "62",
    "kalsel": "63",
    "kaltim": "64",
    "kaltara": "65",
    "sulut": "71",
    "sulteng": "72",
    "sulsel": "73",
    "sultra": "74",
    "sulbar": "76",
    "malut": "82",
    "pabar": "92",
    "pbd": "96",
    "jakpus": "31.71",
    "jakut": "31.72",
    "jakbar": "31.73",
    "jaksel": "31.74",
    "jaktim": "31.75",
    # As Google Maps writes them in the addresses it gives (GeoReport clients, forms).
    "jakarta sel": "31.74",
    "jakarta tim": "31.75",
    "jakarta bar": "31.73",
    "tangsel": "36.74",
    "solo": "33.72",
    "kobar": "62.01",
    "kotim": "62.02",
    "sitaro": "71.09",
}

# Word-level spellings folded before matching ("Kep. Seribu", "Kota Jogja").
_WORDS = {
    "kep": "kepulauan",
    "jogja": "yogyakarta",
    "yogya": "yogyakarta",
    "jogjakarta": "yogyakarta",
    "jkt": "jakarta",
    # Google Maps' own: "…, Kota Bks, Jawa Barat 17115", "…, Kota SBY, Jawa Timur 60111".
    "bks": "bekasi",
    "sby": "surabaya",
}

_KOTA = frozenset({"kota", "kota_administrasi"})
_KAB = frozenset({"kabupaten", "kabupaten_administrasi"})
_PROV = frozenset({"province"})

# Leading words that say which kind of region is meant; longest first.
_KIND_WORDS: tuple[tuple[tuple[str, ...], frozenset[str]], ...] = (
    (("pemerintah", "kota", "administrasi"), _KOTA),
    (("pemerintah", "kabupaten", "administrasi"), _KAB),
    (("pemerintah", "provinsi"), _PROV),
    (("pemerintah", "kota"), _KOTA),
    (("pemerintah", "kabupaten"), _KAB),
    (("kota", "administrasi"), _KOTA),
    (("kota", "adm"), _KOTA),
    (("kabupaten", "administrasi"), _KAB),
    (("kab", "administrasi"), _KAB),
    (("kab", "adm"), _KAB),
    (("kotamadya",), _KOTA),
    (("kodya",), _KOTA),
    (("pemkot",), _KOTA),
    (("kota",), _KOTA),
    (("kabupaten",), _KAB),
    (("kab",), _KAB),
    (("pemkab",), _KAB),
    (("provinsi",), _PROV),
    (("propinsi",), _PROV),
    (("prov",), _PROV),
    (("pemprov",), _PROV),
)
# "Bekasi (Kota)", "Bogor Kab." - BPS-style trailing kind.
_TRAILING_KIND = {"kota": _KOTA, "kab": _KAB, "kabupaten": _KAB}

_DOTTED = re.compile(REGION_CODE_PATTERN)
_DIGITS = re.compile(r"\d+")


@dataclass(frozen=True, slots=True)
class _Table:
    by_code: dict[str, Region]
    by_bps: dict[str, Region]
    names: dict[str, tuple[Region, ...]]
    """Normalised name (without the kind prefix) or alias -> regions."""
    compact: dict[str, tuple[Region, ...]]
    """The same keys without spaces ("palangka raya" = "palangkaraya")."""


def _norm(text: str) -> str:
    """Lower-case ASCII words separated by single spaces; punctuation dropped."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold()
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text).split())


def _base(region: Region) -> str:
    prefix = _PREFIX[region.kind] if region.kind else ""
    name = region.name[len(prefix) :] if region.name.startswith(prefix) else region.name
    return _norm(name)


def _load_rows() -> Iterable[dict[str, str]]:
    text = resources.files("hub.data").joinpath("regions.csv").read_text(encoding="utf-8")
    return csv.DictReader(io.StringIO(text))


@cache
def _table() -> _Table:
    by_code: dict[str, Region] = {}
    for row in _load_rows():
        if row["kind"] not in KINDS:
            raise ValueError(f"regions.csv: unknown kind {row['kind']!r} for {row['code']}")
        region = Region(
            row["code"], row["name"], row["kind"], row["province_code"], row["bps_code"]
        )
        by_code[region.code] = region
    names: dict[str, list[Region]] = {}
    for region in by_code.values():
        base = _base(region)
        names.setdefault(base, []).append(region)
        # Island regencies are usually named without it: "Yapen", "Mentawai", "Seribu".
        # Not for provinces: "Kepulauan Riau" without it is the province Riau.
        if base.startswith("kepulauan ") and not region.is_province:
            names.setdefault(base.removeprefix("kepulauan "), []).append(region)
    for alias, code in _ALIASES.items():
        names.setdefault(alias, []).append(by_code[code])
    compact: dict[str, list[Region]] = {}
    for key, regions in names.items():
        bucket = compact.setdefault(key.replace(" ", ""), [])
        bucket.extend(r for r in regions if r not in bucket)
    return _Table(
        by_code=by_code,
        by_bps={r.bps_code: r for r in by_code.values()},
        names={k: tuple(v) for k, v in names.items()},
        compact={k: tuple(v) for k, v in compact.items()},
    )


# --- public API ------------------------------------------------------------------------------


def provinces() -> list[Region]:
    """All 38 provinces, by code."""
    return [r for r in _table().by_code.values() if r.kind == "province"]


def regencies(province_code: str | None = None) -> list[Region]:
    """All 514 regencies/cities, or those of one province, by code."""
    return [
        r
        for r in _table().by_code.values()
        if r.kind != "province" and (province_code is None or r.province_code == province_code)
    ]


def by_code(code: str) -> Region | None:
    """The province or regency/city for a Kemendagri code.

    Accepts `PP`, `PP.KK` and deeper `PP.KK.CC[.DDDD]` (cut to `PP.KK`); undotted 6 digits
    (Kemendagri district) and 7 digits (BPS district). Undotted 4 or 10 digits could be either
    scheme, so they count only when the Kemendagri and the BPS reading name the same region
    ("3275" -> 32.75 Kota Bekasi; "3171" -> None: Jakarta Pusat vs BPS Jakarta Selatan).
    """
    code = code.strip()
    table = _table()
    if _DOTTED.fullmatch(code):
        return table.by_code.get(code[:5])
    if not _DIGITS.fullmatch(code):
        return None
    if len(code) == 6:
        return table.by_code.get(f"{code[:2]}.{code[2:4]}")
    if len(code) == 7:
        return table.by_bps.get(code[:4])
    if len(code) in (4, 10):
        kemendagri = table.by_code.get(f"{code[:2]}.{code[2:4]}")
        return kemendagri if kemendagri and table.by_bps.get(code[:4]) is kemendagri else None
    return None


# Keppres 41/1987: each province lies whole in one zone. Kalimantan Barat and Tengah are WIB,
# the rest of Kalimantan, Bali, Nusa Tenggara and Sulawesi WITA, Maluku and Papua WIT.
_WITA_PROVINCES = frozenset({"51", "52", "53", "63", "64", "65", "71", "72", "73", "74", "75",
                             "76"})
_WIT_PROVINCES = frozenset({"81", "82", "91", "92", "93", "94", "95", "96"})


def zone_of(code: str) -> Zone | None:
    """The time zone of the province a region code lies in; None for no known province."""
    region = by_code(code)
    if region is None:
        return None
    if region.province_code in _WITA_PROVINCES:
        return Zone.WITA
    return Zone.WIT if region.province_code in _WIT_PROVINCES else Zone.WIB


def by_bps_code(code: str) -> Region | None:
    """The region for a BPS code (`PP`, `PPKK`, or deeper: 7-digit district, 10-digit village)."""
    code = code.strip()
    if not _DIGITS.fullmatch(code) or len(code) not in (2, 4, 7, 10):
        return None
    return _table().by_bps.get(code[:2] if len(code) == 2 else code[:4])


def resolve(text: str, province_code: str | None = None) -> Region | None:
    """A region for a code or a free-text name; None when nothing matches clearly.

    Understands kind words ("Kota", "Kab.", "Pemkot", "Provinsi", ...), common short forms
    ("Jabar", "DIY", "Jaksel") and small typos. A name shared by a kota and a kabupaten
    ("Bekasi") stays unresolved unless the text or `province_code` settles it. A name shared
    by a province and a region inside it ("Jambi") resolves to the province, which contains
    the place either way.

    A text in parts is read as addresses are written, the place before the larger place:
    "Jl. Ahmad Yani No. 1, Kuningan, Jakarta Selatan 12950" is Kota Jakarta Selatan, its
    trailing province narrowing the search ("Kota Bekasi, Jawa Barat"). The last part that
    names a region decides; a part further left counts only with its kind word ("Kota
    Bekasi, Bekasi Timur"): a district's name (Kuningan, Makasar, Pinang) is also a regency's
    somewhere else, and a false match is worse than none. A province named as it was before
    a split holds the regencies split off ("Kabupaten Merauke, Papua" is Papua Selatan's).
    """
    text = text.strip()
    if not text:
        return None
    if "," not in text:
        if text[0].isdigit():
            found = by_code(text)
            return found if found and _within(found, province_code) else None
        return _match(text, province_code)
    parts = [_POSTCODE.sub("", part).strip() for part in text.split(",")]
    parts = [part for part in parts if part and _norm(part) not in _COUNTRY]
    province: Region | None = None
    read_place = False  # the last part that is no province was read
    for part in reversed(parts):
        if read_place and not _has_kind(part):
            continue  # matching it would only cost (fuzzy over every name) and mislead
        found = _match(part, province_code)
        if found is not None and found.is_province and province is None and not read_place:
            province, province_code = found, found.code  # narrows the parts before it
            continue
        if found is not None:
            return found
        read_place = True
    return province if province is not None and len(parts) == 1 else None


_REGENCY_LEAD = re.compile(r"\b(?:kota|kabupaten|kab|pemkot|pemkab|kodya|kotamadya)\b",
                           re.IGNORECASE)


def mentioned(text: str) -> Region | None:
    """The one regency a free text names with its kind word ("... di Kota Bekasi ..."),
    exactly as written; None when it names none, or several."""
    low = text.casefold()
    if "kota" not in low and "kab" not in low and "pem" not in low and "kodya" not in low:
        return None  # most texts name no regency: no work for them
    found: set[Region] = set()
    for lead in _REGENCY_LEAD.finditer(text):
        words = _words(text[lead.start():lead.start() + 120])
        # The kind words and the longest name first: "Kabupaten Ogan Komering Ulu Timur" is
        # not Ogan Komering Ulu (four words of name; at most three were tried).
        for length in range(_longest_mention(), 1, -1):
            kinds, rest = _split_kind(words[:length])
            region = _decide(_lookup(" ".join(rest), kinds, None), kinds) if rest else None
            if region is not None:
                if length < len(words) and _begins_other(" ".join(rest), words[length],
                                                         region, kinds):
                    break  # "Kota Padang Sidempuan": Padangsidimpuan, misspelt, not Padang
                found.add(region)
                break
    return found.pop() if len(found) == 1 else None


@cache
def _longest_mention() -> int:
    """Words in the longest kind lead plus the longest name."""
    return (max(len(lead) for lead, _ in _KIND_WORDS)
            + max(len(name.split()) for name in _table().names))


@cache
def _compact_keys() -> list[str]:
    return sorted(_table().compact)


def _begins_other(key: str, next_word: str, region: Region,
                  kinds: frozenset[str] | None) -> bool:
    """Whether `key` and the next word are another region's name, of these kinds, with the
    rest of it (five letters or more) misspelt by one edit: then the text names that one
    rather than `region`. "Padang Sidempuan" is Padangsidimpuan; "Bandung bagian", "Buru
    selama" and "Tangerang selama" are still Bandung, Buru and Tangerang."""
    start = key.replace(" ", "")
    keys, table = _compact_keys(), _table()
    for at in range(bisect_left(keys, start), len(keys)):
        if not keys[at].startswith(start):
            return False
        rest = keys[at][len(start):]
        if (len(rest) >= 5 and OSA.distance(next_word, rest, score_cutoff=1) <= 1
                and any(r != region for r in _keep(table.compact[keys[at]], kinds, None))):
            return True
    return False


_POSTCODE = re.compile(r"\s*\b\d{5}\s*$")
_COUNTRY = frozenset({"indonesia", "ri", "nkri"})


def _words(text: str) -> list[str]:
    """The text's normalised words, short forms written out ("jkt" is jakarta)."""
    return [_WORDS.get(w, w) for w in _norm(text).split()]


def _has_kind(text: str) -> bool:
    return _split_kind(_words(text))[0] is not None


# --- matching --------------------------------------------------------------------------------


# Provinces formed out of another whose name addresses still give ("Kabupaten Merauke,
# Papua"; X's places, older maps and ID cards too): the province as it was holds them. UU
# 14-16/2022 (Papua Selatan, Tengah, Pegunungan), UU 29/2022 (Papua Barat Daya), UU 20/2012
# (Kalimantan Utara).
_FORMED_FROM: dict[str, frozenset[str]] = {
    "91": frozenset({"93", "94", "95"}),
    "92": frozenset({"96"}),
    "64": frozenset({"65"}),
}


def _within(region: Region, province_code: str | None) -> bool:
    return (province_code is None or region.province_code == province_code
            or region.province_code in _FORMED_FROM.get(province_code, ()))


def _match(text: str, province_code: str | None) -> Region | None:
    words = _words(text)
    if not words:
        return None
    # The whole text first: "Lima Puluh Kota" is a kabupaten, not "Kota" + "Lima Puluh".
    whole = _lookup(" ".join(words), None, province_code)
    if whole:
        return _decide(whole, None)
    kinds, rest = _split_kind(words)
    if not rest:
        return None
    key = " ".join(rest)
    found = _lookup(key, kinds, province_code) or _fuzzy(key, kinds, province_code)
    return _decide(found, kinds)


def _split_kind(words: list[str]) -> tuple[frozenset[str] | None, list[str]]:
    for lead, kinds in _KIND_WORDS:
        if tuple(words[: len(lead)]) == lead:
            return kinds, words[len(lead) :]
    if len(words) > 1 and words[-1] in _TRAILING_KIND:
        return _TRAILING_KIND[words[-1]], words[:-1]
    return None, words


def _keep(
    regions: Iterable[Region], kinds: frozenset[str] | None, province_code: str | None
) -> list[Region]:
    out: list[Region] = []
    for r in regions:
        if (kinds is None or r.kind in kinds) and _within(r, province_code) and r not in out:
            out.append(r)
    return out


def _lookup(key: str, kinds: frozenset[str] | None, province_code: str | None) -> list[Region]:
    table = _table()
    exact = _keep(table.names.get(key, ()), kinds, province_code)
    return exact or _keep(table.compact.get(key.replace(" ", ""), ()), kinds, province_code)


def _fuzzy(key: str, kinds: frozenset[str] | None, province_code: str | None) -> list[Region]:
    """Regions whose name is within a few edits of `key`, among the allowed kinds only.

    The kind filter is applied before scoring, so a typo can never turn "Kota X" into
    "Kabupaten X". Short names get no slack: too many of them are one edit apart.
    Up to 1 edit (OSA: a swap counts once) for 6-10 letters (8-10 without a kind word), 2 beyond.
    """
    query = key.replace(" ", "")
    # Without a kind word a name is as likely a word or a district ("Pinang", "Simpang",
    # "Pantai": one edit from Pinrang, Sampang, Paniai): no slack below eight letters.
    shortest = 6 if kinds is not None else 8
    max_edits = 0 if len(query) < shortest else 1 if len(query) <= 10 else 2
    if max_edits == 0:
        return []
    table = _table()
    # Typos rarely hit the first letter; requiring it keeps "kampung" from becoming Lampung.
    pool = {
        k: v
        for k, v in table.compact.items()
        if k[0] == query[0] and _keep(v, kinds, province_code)
    }
    hits = process.extract(
        query, list(pool), scorer=OSA.distance, score_cutoff=max_edits, limit=None
    )
    if not hits:
        return []
    best = min(score for _, score, _ in hits)
    return _keep((r for k, s, _ in hits if s == best for r in pool[k]), kinds, province_code)


def _decide(found: list[Region], kinds: frozenset[str] | None) -> Region | None:
    if len(found) == 1:
        return found[0]
    if not found or kinds is not None:
        return None
    # "Jambi": province 15 and Kota Jambi 15.71 - the province holds every candidate, so it is
    # a true (if coarse) answer. "Bekasi": two regencies side by side - no answer is true.
    for region in found:
        if region.is_province and all(r.province_code == region.code for r in found):
            return region
    return None
