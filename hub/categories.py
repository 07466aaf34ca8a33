"""The category tree and how free text from a channel maps onto its codes."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources

import yaml


@dataclass(frozen=True, slots=True)
class Category:
    code: str
    name: str
    parent: str | None
    aliases: tuple[str, ...]


@cache
def categories() -> dict[str, Category]:
    text = resources.files("hub.data").joinpath("categories.yaml").read_text("utf-8")
    rows = yaml.safe_load(text)
    return {
        row["code"]: Category(
            row["code"], row["name"], row.get("parent"), tuple(row.get("aliases", ()))
        )
        for row in rows
    }


@cache
def _lookup() -> dict[str, str]:
    table: dict[str, str] = {}
    for cat in categories().values():
        for word in (cat.code, cat.name, *cat.aliases):
            table[word.casefold()] = cat.code
    return table


def category_code(text: str | None) -> str | None:
    """The code for a category name, code or alias; None when unknown or absent."""
    if text is None:
        return None
    # As people and provincial systems write it: "Kesehatan.", "Akta  Kelahiran", "eKTP".
    return _lookup().get(" ".join(text.strip(" .,;:!").split()).casefold())


def ancestors(code: str) -> list[str]:
    """The code itself, then its parents up to the root: routing falls back along this."""
    chain: list[str] = []
    current: str | None = code
    while current is not None and current not in chain:
        chain.append(current)
        current = categories()[current].parent if current in categories() else None
    return chain
