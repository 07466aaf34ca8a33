"""Cross-channel duplicates: the same complaint sent through two doors is one complaint.

Pure. Each complaint gets up to three blocking keys – who (reporter phone or handle,
as a keyed hash), where (category and place), what (the opening words of its text) –
and a candidate that shares a key within the window must also have near-identical
text, about the same place. Keys keep the comparison to a handful of rows however many
complaints there are.

A duplicate is not routed on its own: a wrong link means a citizen's complaint never
reaches its agency, and its citizen hears another's answer. So the check errs on the side
of two complaints: texts that differ in a fact (a number, a name: Jl. Mawar or Jl. Melati,
RT 01 or RT 02, SD 3 or SD 5, Blok A or Blok B) are two complaints however alike the rest,
and so are two complaints in different regions or places. A missed duplicate costs an
agency a second look.
"""

from __future__ import annotations

import hashlib
import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from difflib import SequenceMatcher

from rapidfuzz import fuzz
from rapidfuzz.distance import OSA

from hub.model import Complaint

SIMILARITY = 90.0
"""rapidfuzz token-sort ratio (0–100) above which two texts say the same thing.

Token-sort, not token-set: a set ratio scores a short text inside a longer one as
equal, which would link different complaints that share a common phrase."""
_OPENING_WORDS = 6
_NOISE = re.compile(r"#\w+|@\w+|https?://\S+|[^\w\s]", re.UNICODE)
_KEYWORD = re.compile(r"^(?:lapor\s+)+")
"""The SMS keyword ("LAPOR <text>"); X's #LAPOR goes with the other hashtags."""
COURTESIES = frozenset({
    "assalamualaikum", "wr", "wb", "selamat", "pagi", "siang", "sore", "malam", "mohon",
    "tolong", "izin", "maaf", "bapak", "ibu", "pak", "bu", "admin", "min", "kak", "terima",
    "kasih", "segera", "ditindaklanjuti", "saya", "kami", "mau", "ingin", "melaporkan",
    "laporkan", "lapor"
})
"""Words that tell nothing of the complaint: one text having them and the other not is no
difference of fact."""


@dataclass(frozen=True, slots=True)
class Fingerprint:
    reporter_key: str | None
    place_key: str | None
    text_key: str | None
    text: str
    """Normalized description, what similarity is measured on."""
    region: str | None = None
    """The region code, when known: complaints in two regions are two complaints."""
    at: datetime | None = None
    """When the citizen reported it, when known: two reports further apart than the
    duplicate window are two complaints, however they came (one export can hold both)."""


def normalized(text: str) -> str:
    return " ".join(_NOISE.sub(" ", text.casefold()).split())


def keyed_digest(secret: bytes, value: str) -> str:
    """A keyed hash of something that names a person (a phone, an SMS's sender): comparable,
    never readable."""
    return hashlib.blake2b(value.encode(), key=secret[:64], digest_size=16).hexdigest()


def fingerprint(complaint: Complaint, secret: bytes) -> Fingerprint:
    """Blocking keys for a complaint. The reporter key is a keyed hash, never the number.

    An anonymous report has no reporter key: linked to another by its reporter, the agency
    holding either would learn who wrote the anonymous one ("same reporter").
    """
    reporter = None if complaint.anonymous else complaint.reporter.phone or (
        complaint.reporter.handle.casefold() if complaint.reporter.handle else None
    )
    loc = complaint.location
    place = None
    if complaint.category and loc.latitude is not None and loc.longitude is not None:
        # ~100 m cells: the same pothole reported twice lands in the same cell.
        place = f"{complaint.category}|{loc.latitude:.3f}|{loc.longitude:.3f}"
    elif complaint.category and loc.region_code and loc.address:
        place = f"{complaint.category}|{loc.region_code}|{normalized(loc.address)}"
    text = _KEYWORD.sub("", normalized(complaint.description))[:1000]
    words = text.split()
    # The opening past a greeting ("Selamat pagi, min, ..."), which one door has and another not.
    while words and words[0] in COURTESIES:
        words.pop(0)
    return Fingerprint(
        reporter_key=keyed_digest(secret, reporter) if reporter else None,
        place_key=keyed_digest(secret, place) if place else None,
        text_key=keyed_digest(secret, " ".join(words[:_OPENING_WORDS]))
        if len(words) >= _OPENING_WORDS else None,
        text=text,
        region=loc.region_code,
        at=complaint.submitted_at,
    )


def same_text(a: str, b: str) -> bool:
    """Near-identical, and no fact in one that the other lacks."""
    return fuzz.token_sort_ratio(a, b) >= SIMILARITY and not _differ_in_fact(a, b)


def _differ_in_fact(a: str, b: str) -> bool:
    """A word of one text that the other lacks and is no typo of: a number (RT 01, SD 5, a
    date) must be there as written; a word of four letters or more within one edit; a
    short word in the place of another (Blok A or Blok B, SMA or SMP). Courtesies, and
    short words one text has and the other not (di, yg), are passed over."""
    split_a, split_b = a.split(), b.split()
    if _short_word_swapped(split_a, split_b):
        return True
    words_a, words_b = set(split_a), set(split_b)
    for mine, theirs in ((words_a - words_b, words_b), (words_b - words_a, words_a)):
        for word in mine:
            if word in COURTESIES:
                continue
            if any(ch.isdigit() for ch in word):
                return True
            if len(word) >= 4 and not any(
                abs(len(word) - len(other)) <= 1 and OSA.distance(word, other) <= 1
                for other in theirs
            ):
                return True
    return False


def _short_word_swapped(a: list[str], b: list[str]) -> bool:
    """Whether, aligned word by word, a short word of one stands where the other has
    another short word."""
    for tag, i1, i2, j1, j2 in SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "replace" and any(
            len(x) < 4 and len(y) < 4 and x not in COURTESIES and y not in COURTESIES
            for x, y in zip(a[i1:i2], b[j1:j2], strict=False)
        ):
            return True
    return False


def same_place(a: Fingerprint, b: Fingerprint) -> bool:
    """Not known to be two places: two regions, or two places (cell, or address) known."""
    if a.region and b.region and a.region != b.region:
        return False
    return not (a.place_key and b.place_key and a.place_key != b.place_key)


@dataclass(frozen=True, slots=True)
class Candidate:
    tracking_id: str
    fingerprint: Fingerprint


KINDS = ("reporter", "place", "text")


def _keys(fp: Fingerprint) -> tuple[str | None, str | None, str | None]:
    return fp.reporter_key, fp.place_key, fp.text_key


BLOCK_LIMIT = 50
"""Latest candidates compared per blocking key. A key that many complaints share names no
one person or place (a province's call-centre number on every row of its export): each
new complaint was compared with all of them, so a 3,000-row export took 40 s to store, and
longer with every export in the window."""


class Pool:
    """Earlier complaints indexed by blocking key, so a lookup touches only its block:
    the latest BLOCK_LIMIT of it, oldest first."""

    def __init__(self, candidates: Iterable[Candidate] = (),
                 window: timedelta | None = None) -> None:
        self._window = window
        self._by_key: dict[tuple[str, str], deque[Candidate]] = {}
        for c in candidates:
            self.add(c)

    def add(self, candidate: Candidate) -> None:
        for kind, key in zip(KINDS, _keys(candidate.fingerprint), strict=True):
            if key is not None:
                block = self._by_key.setdefault((kind, key), deque(maxlen=BLOCK_LIMIT))
                block.append(candidate)

    def first_duplicate(self, tracking_id: str, mine: Fingerprint) -> tuple[str, str] | None:
        """The earliest candidate this complaint repeats, and the key that matched."""
        found: list[tuple[int, str, str]] = []
        for kind, key in zip(KINDS, _keys(mine), strict=True):
            if key is None:
                continue
            for order, c in enumerate(self._by_key.get((kind, key), ())):
                if (c.tracking_id != tracking_id and self._near(mine, c.fingerprint)
                        and same_place(mine, c.fingerprint)
                        and same_text(mine.text, c.fingerprint.text)):
                    found.append((order, c.tracking_id, kind))
                    break
        if not found:
            return None
        _, original, kind = min(found)
        return original, kind

    def _near(self, a: Fingerprint, b: Fingerprint) -> bool:
        """Reported within the window of each other, or not known to be further apart."""
        if self._window is None or a.at is None or b.at is None:
            return True
        return abs(a.at - b.at) <= self._window
