"""Provincial and regional complaint systems: one dialect module per system.

A dialect maps its system's field names, status words (`STATUS_WORDS`) and region
format onto the canonical model. Adding a province is one module here and one line
in `DIALECTS`; `hub.adapters` registers each dialect as a source of channel "provincial".
"""

from __future__ import annotations

from dataclasses import dataclass

from hub.adapters.base import Adapter
from hub.adapters.provincial import jakarta, jateng

__all__ = ["DIALECTS", "Dialect", "jakarta", "jateng"]


@dataclass(frozen=True, slots=True)
class Dialect:
    normalize: Adapter
    content_types: tuple[str, ...]
    description: str


DIALECTS: dict[str, Dialect] = {
    "prov-jakarta": Dialect(jakarta.normalize, ("application/json",), "Jakarta JAKI push"),
    "prov-jateng": Dialect(jateng.normalize, ("text/csv",), "Central Java batch export (CSV)"),
}
"""Source name -> dialect."""
