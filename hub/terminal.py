"""Output for people: tables printed whole, lines never cut or wrapped into a log."""

from __future__ import annotations

import re

from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table


def console(*, stderr: bool = False) -> Console:
    """A console that wraps lines on a terminal, but not into a file or a pipe, where rich
    would break them at 80 columns (a log line in two, a date split from its field)."""
    out = Console(stderr=stderr)
    out.soft_wrap = not out.is_terminal
    return out


def shortened(text: str, most: int) -> str:
    """`text`, or its first `most` characters and "…": a cut must show, or a sentence reads
    as if it ended there ("allowed after in_progress:")."""
    return text if len(text) <= most else text[:most - 1] + "…"


_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e"
                       "\u2066-\u2069]")
"""What a terminal obeys rather than shows: C0 and C1 controls (an escape sequence clears
the screen, hides a link, sets the clipboard; a carriage return writes over a line) but
the line feed and tab, and the bidirectional controls that reorder what is read."""


def printable(text: str) -> str:
    """`text` with each terminal control written as its escape (`\\x1b`, `\\u202e`):
    what citizens write is shown to people, never obeyed by their terminal."""
    return _CONTROLS.sub(lambda m: ascii(m[0])[1:-1], text)


def shown(text: str) -> str:
    """What a citizen or sender wrote, for a terminal: rich's markup escaped ("[rusak]"
    would be read as a style, "[/]" stop the output) and the terminal's controls written
    out (an escape sequence would clear the screen, hide a link or set the clipboard; a
    bidi override reverse what is read)."""
    return escape(printable(text))


WIDE = 240
"""Columns for a table when the output is not a terminal (rich would take 80)."""


def print_whole(table: Table, console: Console | None = None) -> None:
    """Print `table` at its natural width when the terminal is narrower, or the output is
    a file or a pipe: rich would squeeze the columns and cut cells ("10…", a column gone),
    and a figure or a reason cut short is wrong, not just untidy."""
    console = console or Console()
    wide = Console(width=WIDE)
    if not console.is_terminal or console.width < Measurement.get(
        wide, wide.options, table
    ).maximum:
        console = wide
    console.print(table)
