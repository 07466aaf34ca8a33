"""The agency registry and the content-based router, both data.

Pure: `Directory.load` reads the operator's YAML once at start; routing itself
does no I/O. "No wrong door": every complaint gets an agency – a rule, the
citizen's explicit choice, the region's coordinator, or at last the national admin.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from hub import regions, topics
from hub.calendar import Zone
from hub.categories import ancestors, categories
from hub.model import AgencyCode, Complaint, RegionCode
from hub.operator_files import OperatorFileError, load_yaml

RouteReason = Literal[
    "rule", "explicit_target", "coordinator", "national", "reroute", "disposition"
]


class Level(StrEnum):
    NATIONAL = "national"
    MINISTRY = "ministry"
    AGENCY = "agency"
    PROVINCE = "province"
    REGENCY_CITY = "regency_city"
    OPD = "opd"
    BUMD = "bumd"


COORDINATING = (Level.PROVINCE, Level.REGENCY_CITY)
"""The levels whose agency coordinates its region: its complaints without a rule go there."""


def _zone_named(value: object) -> object:
    # The file says WIB/WITA/WIT; the enum's values are the IANA zones.
    return Zone[value] if isinstance(value, str) and value in Zone.__members__ else value


class Agency(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    code: AgencyCode
    name: str = Field(min_length=1)
    level: Level
    parent: AgencyCode | None = None
    region: RegionCode | None = None
    zone: Zone = Zone.WIB
    """The agency's local time, whose days are its working days: its region's zone, else WIB."""
    topic: str | None = Field(default=None, pattern=topics.NAME_PATTERN)

    @field_validator("zone", mode="before")
    @classmethod
    def _zone_by_name(cls, value: object) -> object:
        return _zone_named(value)

    @field_validator("topic")
    @classmethod
    def _not_dots(cls, value: str | None) -> str | None:
        if value in (".", ".."):
            raise ValueError("a topic cannot be named '.' or '..'")
        return value

    @model_validator(mode="before")
    @classmethod
    def _zone_of_region(cls, data: Any) -> Any:
        # A zone left out, or mistyped, would move every deadline of a WITA or WIT agency by
        # its first local hours: it follows from the region, and must agree with it.
        if not isinstance(data, dict) or not isinstance(data.get("region"), str):
            return data
        zone = regions.zone_of(data["region"])
        if zone is None:
            return data
        given = data.get("zone")
        if given is None:
            return {**data, "zone": zone}
        if _zone_named(given) != zone:
            raise ValueError(f"zone {given} is not that of region {data['region']} ({zone.name})")
        return data

    @property
    def topic_name(self) -> str:
        return self.topic or topics.agency(self.code)


class Rule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    agency: AgencyCode
    category: str | None = None
    region: RegionCode | None = None


class _File(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    national: AgencyCode
    agencies: tuple[Agency, ...]
    rules: tuple[Rule, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> _File:
        codes = [a.code for a in self.agencies]
        dupes = {c for c in codes if codes.count(c) > 1}
        if dupes:
            raise ValueError(f"agency codes repeated: {', '.join(sorted(dupes))}")
        known = set(codes)
        if self.national not in known:
            raise ValueError(f"national agency {self.national!r} is not in agencies")
        parents = {a.code: a.parent for a in self.agencies}
        coordinators: dict[str, str] = {}
        for a in self.agencies:
            if topics.is_hubs_own(a.topic_name):
                # Routed there, a complaint was read back as a raw record or a follow-up and
                # dead-lettered: its agency never got it.
                raise ValueError(f"agency {a.code}: topic {a.topic_name!r} is one the hub "
                                 "itself reads or writes")
            if a.parent is not None and a.parent not in known:
                raise ValueError(f"agency {a.code}: parent {a.parent!r} is unknown")
            line, up = [a.code], a.parent
            while up is not None:  # a loop froze the router on the first complaint
                line.append(up)
                if up == a.code:
                    raise ValueError(f"agency {a.code}: its parents lead back to it "
                                     f"({' → '.join(line)})")
                if up in line[:-1]:
                    break  # another agency's loop, named when that agency is checked
                up = parents.get(up)
            if a.region is not None:
                # An office in a district (a kecamatan, a puskesmas) is known by its regency.
                _known_region(f"agency {a.code}", a.region, deeper=a.level not in COORDINATING)
                if a.level in COORDINATING and (
                        other := coordinators.setdefault(a.region, a.code)) != a.code:
                    raise ValueError(f"agencies {other} and {a.code} both coordinate "
                                     f"region {a.region}: one was never routed to")
        for i, r in enumerate(self.rules):
            where = f"rules.#{i + 1}"
            if r.agency not in known:
                raise ValueError(f"{where}: agency {r.agency!r} is unknown")
            if r.category is not None and r.category not in categories():
                raise ValueError(f"{where}: category {r.category!r} is unknown")
            if r.region is not None:
                _known_region(where, r.region)
        return self


def _known_region(where: str, code: str, *, deeper: bool = False) -> None:
    """A province or a regency of the region table (or, `deeper`, a place within one): rules
    and coordinators match nothing deeper, and a code of no region (a typo) matched nothing,
    silently, all complaints going elsewhere."""
    if code.count(".") > 1 and not deeper:
        raise ValueError(f"{where}: region {code} is a district or village; routing knows "
                         "provinces (PP) and regencies and cities (PP.KK)")
    if regions.by_code(".".join(code.split(".")[:2])) is None:
        raise ValueError(f"{where}: region {code} is in no region table of today")


class RegistryError(OperatorFileError):
    """The agency file is not valid; the message says where."""


@dataclass(frozen=True, slots=True)
class Decision:
    agency: Agency
    reason: RouteReason


class Directory:
    """Agencies by code, the routing rules, and the router over them."""

    def __init__(self, national: str, agencies: Iterable[Agency], rules: Sequence[Rule]) -> None:
        self.agencies = {a.code: a for a in agencies}
        self.national = self.agencies[national]
        self.rules = tuple(rules)
        # Rules by (category, region), None for "any": a complaint looks up the few keys
        # it can match instead of scanning every rule (1,000 agencies, 1,000 rules).
        self._rule_index: dict[tuple[str | None, str | None], list[tuple[int, Rule]]] = {}
        for order, rule in enumerate(self.rules):
            self._rule_index.setdefault((rule.category, rule.region), []).append((order, rule))
        self._coordinators = {
            a.region: a for a in self.agencies.values() if a.region and a.level in COORDINATING
        }
        # The registry never changes after load, and a complaint's candidates depend only
        # on its explicit target, category and region: a few thousand combinations in
        # practice, worked out once each (it was a tenth of the intake's CPU).
        self._candidates_for = lru_cache(maxsize=65_536)(self._work_out_candidates)

    @classmethod
    def load(cls, path: Path | None = None) -> Directory:
        """Read and validate the registry; the packaged demo registry when no path is given."""
        parsed = load_yaml(_File, path, "agencies.yaml", "agency registry", RegistryError)
        return cls(parsed.national, parsed.agencies, parsed.rules)

    def get(self, code: str) -> Agency | None:
        return self.agencies.get(code)

    def holding(self, code: str) -> Agency:
        """The agency of a stored complaint or event; the national admin for a code the
        registry no longer has (an agency taken out of it since)."""
        return self.agencies.get(code) or self.national

    def coordinator_of(self, region: str | None) -> Agency | None:
        """The regency/city coordinator of a region, else its province's."""
        if not region:
            return None
        parts = region.split(".")
        for depth in (2, 1):
            found = self._coordinators.get(".".join(parts[:depth]))
            if found is not None:
                return found
        return None

    def supervisors(self, agency: Agency) -> set[str]:
        """Who stands above an agency: its parents, its region's coordinators and theirs,
        and the national admin – those an escalation about it goes to."""
        above: set[str] = {self.national.code}
        for start in (self.get(agency.parent or ""), self.coordinator_of(agency.region)):
            current = start
            while current is not None and current.code not in above:
                above.add(current.code)
                current = self.get(current.parent or "")
        above.discard(agency.code)
        return above

    def may_hand_to(self, actor: Agency, target: Agency) -> bool:
        """Whether `actor` may disposition a complaint to `target`: down (to an agency below
        it) or sideways (to one under its own parent or region coordinator); the national
        admin to any. Up is `not_authority`: the level above re-routes it."""
        if actor.code == self.national.code or actor.code in self.supervisors(target):
            return True
        if target.code in self.supervisors(actor):
            return False
        return bool(self._beside(actor) & self._beside(target))

    def _beside(self, agency: Agency) -> set[str | None]:
        """The parent and region coordinator an agency's peers share, short of the national
        admin (above every agency, it makes no two agencies peers)."""
        coordinator = self.coordinator_of(agency.region)
        return {agency.parent, coordinator.code if coordinator else None} - {
            None, self.national.code}

    def route(self, complaint: Complaint, exclude: Iterable[str] = ()) -> Decision:
        """The agency that should hold the complaint, skipping those in `exclude`.

        `exclude` holds agencies that already answered not_authority, so a re-route
        walks on to the next rule, then the coordinator, then the national admin.
        """
        skip = set(exclude)
        for decision in self.candidates(complaint):
            if decision.agency.code not in skip:
                return decision
        return Decision(self.national, "national")

    def candidates(self, complaint: Complaint) -> list[Decision]:
        """Every agency that could hold the complaint, best first."""
        return list(self._candidates_for(
            complaint.target_agency, complaint.category, complaint.location.region_code
        ))

    def _work_out_candidates(
        self, target: str | None, category: str | None, region: str | None
    ) -> tuple[Decision, ...]:
        found: list[Decision] = []
        explicit = self.agencies.get(target or "")
        if explicit is not None:
            found.append(Decision(explicit, "explicit_target"))
        found.extend(
            Decision(self.agencies[r.agency], "rule")
            for r in self._matching_rules(category, region)
        )
        coordinator = self.coordinator_of(region)
        while coordinator is not None:
            found.append(Decision(coordinator, "coordinator"))
            coordinator = self.get(coordinator.parent or "")
            if coordinator is not None and coordinator.level not in (
                Level.PROVINCE,
                Level.REGENCY_CITY,
            ):
                break
        found.append(Decision(self.national, "national"))
        unique: dict[str, Decision] = {}
        for d in found:
            unique.setdefault(d.agency.code, d)
        return tuple(unique.values())

    def _matching_rules(self, category: str | None, region: str | None) -> list[Rule]:
        chain = ancestors(category) if category else []
        regions = [".".join(region.split(".")[:d]) for d in (2, 1)] if region else []
        # The more specific the match, the higher the score; then the file's order.
        category_scores = {c: len(chain) - chain.index(c) for c in chain} | {None: 0}
        region_scores = {r: 3 - regions.index(r) for r in regions} | {None: 0}
        scored: list[tuple[int, int, int, Rule]] = [
            (-category_score, -region_score, order, rule)
            for category, category_score in category_scores.items()
            for region_key, region_score in region_scores.items()
            for order, rule in self._rule_index.get((category, region_key), ())
        ]
        return [rule for *_, rule in sorted(scored, key=lambda s: s[:3])]
