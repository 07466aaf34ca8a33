"""`lapor-hub report`: the evaluators' table per agency, read from the hub's database.

For the complaints received in [from, to] (days in the holding agency's time zone), per
agency that holds them now:

- followed up: the complaint got a first follow-up (in progress, a question to the reporter,
  an answer), or is closed; resolved: closed (lifecycle.counts_as_resolved);
- follow-up rate = 1 - not followed up / total, and resolution rate = resolved / total, the
  two definitions DOMAIN.md asks to keep apart, with the same states as the hub's
  lapor_complaints_assigned gauge (a duplicate counts as its original, so not at all);
- time to first follow-up, median and p90, in working days from the routing to the agency
  that holds the complaint, on the agency's calendar with time waiting for the reporter cut
  out, as the lapor_follow_up_latency_seconds histogram measures it. A complaint whose first
  follow-up came from an earlier holder (one that then declined it) has no time here;
- breaches: complaints whose first follow-up came later than the first-follow-up limit (5
  working days) after that routing, or had not come when the limit passed (as of now, or of
  archiving). Measured on the stored times rather than counted from escalations, so a
  watcher that was down, or swept late, changes nothing;
- resolved, split by how it closed: confirmed by the reporter (the agency's `closed` event)
  or auto-closed by the deadline watcher when the reporter did not reply within the
  auto-close limit after the answer (its close in the history has reason `auto_close`), and
  the share closed by the reporter = closed by the reporter / resolved.
"""

from __future__ import annotations

import contextlib
import csv
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from hub import lifecycle, store
from hub.calendar import WORKING_DAY_SECONDS, DeadlineKind, Interval, Zone, load_calendar_config
from hub.deadlines import Rules, intervals
from hub.followup import AUTO_CLOSE_REASON
from hub.model import ReportType, Status
from hub.routing import Directory, RegistryError
from hub.settings import Settings
from hub.terminal import print_whole

TARGET = 0.9
"""Follow-up rate target; lapor:follow_up_rate:target in deploy/prometheus says the same."""
TABLE: sa.Table = store.table_of(store.ComplaintRow)
HISTORY: sa.Table = store.table_of(store.HistoryRow)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class ReportError(ValueError):
    """The report cannot be made; the message says why in one line."""


@dataclass(slots=True)
class Figures:
    """One agency's row of the table."""

    agency: str
    name: str
    complaints: int = 0
    followed_up: int = 0
    resolved: int = 0
    auto_closed: int = 0
    """Resolved by the deadline watcher's auto-close, not confirmed by the reporter."""
    breaches: int = 0
    days_to_first_follow_up: list[float] = field(default_factory=list)

    @property
    def not_followed_up(self) -> int:
        return self.complaints - self.followed_up

    @property
    def follow_up_rate(self) -> float | None:
        return 1 - self.not_followed_up / self.complaints if self.complaints else None

    @property
    def resolution_rate(self) -> float | None:
        return self.resolved / self.complaints if self.complaints else None

    @property
    def closed_by_reporter(self) -> int:
        return self.resolved - self.auto_closed

    @property
    def closed_by_reporter_share(self) -> float | None:
        return self.closed_by_reporter / self.resolved if self.resolved else None

    @property
    def median_days(self) -> float | None:
        days = self.days_to_first_follow_up
        return statistics.median(days) if days else None

    @property
    def p90_days(self) -> float | None:
        days = self.days_to_first_follow_up
        if len(days) < 2:
            return days[0] if days else None
        return statistics.quantiles(days, n=10, method="inclusive")[8]

    def add(self, other: Figures) -> None:
        self.complaints += other.complaints
        self.followed_up += other.followed_up
        self.resolved += other.resolved
        self.auto_closed += other.auto_closed
        self.breaches += other.breaches
        self.days_to_first_follow_up += other.days_to_first_follow_up


def run_report(
    settings: Settings, date_from: str, date_to: str, *, agency: str | None,
    csv_path: Path | None, png_path: Path | None,
) -> None:
    """Print the table; also write it as CSV and draw it as PNG when paths are given.

    Raises:
        ReportError: bad dates, an unknown agency, or no database to read.
    """
    first, last = _day(date_from, "--from"), _day(date_to, "--to")
    if first > last:
        raise ReportError(f"--from {first} is after --to {last}")
    if first.year < 2 or last.year > 9998:  # a local day's bounds in UTC must exist
        raise ReportError("days between 0002-01-01 and 9998-12-31, please")
    rules = _rules(settings)
    rows = _load(settings.database_url, first, last, agency)
    figures = summarize(rows, rules, first, last, datetime.now(UTC))
    if agency is not None and not figures:
        # An agency taken out of the registry is reported by its code while complaints of
        # the period name it, as in the whole table; asked for alone, it was "unknown".
        known = rules.directory.get(agency)
        if known is None:
            raise ReportError(f"unknown agency {agency!r}: not in the agency registry, and no "
                              "complaint of the period names it")
        figures = [Figures(agency, known.name)]
    limits = rules.config.deadlines
    _print(figures, first, last, limits.first_follow_up, limits.auto_close)
    if csv_path is not None:
        _write_csv(figures, csv_path)
    if png_path is not None:
        _draw(figures, first, last, png_path)


def _day(text: str, option: str) -> date:
    if _DATE.fullmatch(text):
        with contextlib.suppress(ValueError):  # 2025-02-30
            return date.fromisoformat(text)
    raise ReportError(f"{option} {text!r} is not a date (YYYY-MM-DD)")


def _rules(settings: Settings) -> Rules:
    try:
        directory = Directory.load(settings.agencies_file)
        config = load_calendar_config(settings.deadlines_file)
    except RegistryError as exc:
        raise ReportError(str(exc)) from exc
    except (OSError, ValidationError) as exc:
        reason = str(exc).splitlines()[0]
        raise ReportError(f"cannot read the deadlines file: {reason}") from exc
    return Rules.of(directory, config)


@dataclass(frozen=True, slots=True)
class Row:
    """What the report needs of one complaint."""

    agency: str
    status: Status
    report_type: ReportType
    needs_inspection: bool
    received_at: datetime
    routed_at: datetime
    ended_at: datetime
    """When it closed or was archived (as the agency stamped it); before that was kept, the
    last change the hub made."""
    first_follow_up_at: datetime | None
    pauses: tuple[Interval, ...]
    auto_closed: bool = False
    """Closed by the deadline watcher, not confirmed by the reporter."""


def _load(url: str, first: date, last: date, agency: str | None) -> list[Row]:
    """Complaints received around the period; local days are told apart in `summarize`."""
    missing = store.missing_sqlite_file(url)
    if missing:
        raise ReportError(f"no database at {missing}")
    # A day longer on each side covers every zone's local day.
    since = datetime.combine(first - timedelta(days=1), datetime.min.time(), UTC)
    until = datetime.combine(last + timedelta(days=2), datetime.min.time(), UTC)
    query = sa.select(
        TABLE.c.agency_code, TABLE.c.status, TABLE.c.report_type, TABLE.c.needs_inspection,
        TABLE.c.received_at, TABLE.c.routed_at,
        store.ended_at(TABLE),
        TABLE.c.first_follow_up_at, TABLE.c.pauses, _auto_closed(),
    ).where(
        TABLE.c.received_at >= since, TABLE.c.received_at < until,
        TABLE.c.duplicate_of.is_(None),
    )
    if agency is not None:
        query = query.where(TABLE.c.agency_code == agency)
    engine = store.make_engine(url)
    try:
        with engine.connect() as conn:
            found = conn.execute(query).all()
    except sa.exc.SQLAlchemyError as exc:
        reason = str(exc).strip().splitlines()[0]
        raise ReportError(f"cannot read complaints from the database: {reason}") from exc
    finally:
        engine.dispose()
    return [
        Row(code, Status(status), ReportType(kind), inspection, received, routed,
            ended, followed, _pauses(pauses), bool(auto))
        for code, status, kind, inspection, received, routed, ended, followed, pauses, auto
        in found
    ]


def _auto_closed() -> sa.ColumnElement[bool]:
    """Whether the complaint's close is the watcher's: its history holds an auto-close at the
    moment it closed, as hub.followup tells them apart (one reopened by a reply made in time
    and then confirmed is the reporter's)."""
    return sa.exists().where(
        HISTORY.c.tracking_id == TABLE.c.tracking_id,
        HISTORY.c.reason == AUTO_CLOSE_REASON,
        HISTORY.c.at == TABLE.c.closed_at,
    ).label("auto_closed")


def _pauses(stored: str) -> tuple[Interval, ...]:
    """Time waiting for the reporter (the JSON of complaint.pauses).

    A pause still open never matters here: asking the reporter is itself a follow-up.
    """
    return tuple(intervals(stored))


def summarize(
    rows: Sequence[Row], rules: Rules, first: date, last: date, now: datetime
) -> list[Figures]:
    """Per agency, best follow-up rate first (more complaints first among equals)."""
    by_agency: dict[str, Figures] = {}
    for row in rows:
        holder = rules.directory.get(row.agency)
        zone = holder.zone if holder else Zone.WIB
        if not first <= row.received_at.astimezone(zone.tzinfo).date() <= last:
            continue
        resolved = lifecycle.counts_as_resolved(row.status)

        def working(end: datetime, row: Row = row, zone: Zone = zone) -> float:
            return rules.calendar.working_seconds_between(row.routed_at, end, zone, row.pauses)

        limit = WORKING_DAY_SECONDS * rules.config.deadline_days(
            DeadlineKind.FIRST_FOLLOW_UP, row.report_type, row.needs_inspection
        )
        seconds = None if row.first_follow_up_at is None else working(row.first_follow_up_at)
        if seconds is not None:
            late = seconds > limit
        elif not resolved:
            late = working(row.ended_at if lifecycle.is_terminal(row.status) else now) > limit
        else:
            late = False
        archived = row.status is Status.ARCHIVED
        if archived and not late:
            continue
        figures = by_agency.setdefault(
            row.agency, Figures(row.agency, holder.name if holder else row.agency)
        )
        figures.breaches += late
        if archived:
            # Archived with a reason (spam, no public service) owes no follow-up: out of the
            # rates. Decided only after the limit passed, it was a breach all the same.
            continue
        figures.complaints += 1
        figures.followed_up += row.first_follow_up_at is not None or resolved
        figures.resolved += resolved
        figures.auto_closed += resolved and row.auto_closed
        if seconds is not None:
            figures.days_to_first_follow_up.append(seconds / WORKING_DAY_SECONDS)
    return sorted(
        by_agency.values(), key=lambda f: (-(f.follow_up_rate or 0), -f.complaints, f.agency)
    )


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _days(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _print(
    figures: list[Figures], first: date, last: date, limit_days: int, auto_close_days: int
) -> None:
    console = Console()
    if not figures:
        console.print(f"No complaints were received from {first} to {last}.")
        return
    table = Table(title=f"Follow-up of complaints received {first} to {last}", title_style="bold")
    table.add_column("agency", no_wrap=True)
    table.add_column("complaints", justify="right")
    table.add_column("followed up", justify="right")
    table.add_column("resolved", justify="right")
    table.add_column("follow-up rate\n1 - not followed up / total", justify="right")
    table.add_column("resolution rate\nresolved / total", justify="right")
    table.add_column("auto-closed\nno reply", justify="right")
    table.add_column("closed by reporter\nshare of resolved", justify="right")
    table.add_column("first follow-up\nmedian (working days)", justify="right")
    table.add_column("first follow-up\np90 (working days)", justify="right")
    table.add_column(f"breaches\n> {limit_days} working days", justify="right")
    total = Figures("all agencies", "all agencies")
    for f in figures:
        total.add(f)
        table.add_row(*_cells(f))
    if len(figures) > 1:
        table.add_section()
        table.add_row(*_cells(total), style="bold")
    table.caption = (
        "Follow-up rate counts every complaint with a first follow-up (in progress, asked the "
        "reporter, answered) or closed; resolution rate only closed ones. Times run from the "
        "routing to the agency holding the complaint, on its working days, without time "
        f"waiting for the reporter. A breach is a first follow-up later than {limit_days} "
        "working days "
        "(or none by then). Resolved complaints were closed by the reporter (confirmed) or "
        f"auto-closed, with no reply {auto_close_days} working days after the answer. "
        "Duplicates count as their original. Target follow-up rate: "
        f"{TARGET:.0%}."
    )
    print_whole(table, console)


def _cells(f: Figures) -> list[str]:
    return [
        f.agency, str(f.complaints), str(f.followed_up), str(f.resolved),
        _percent(f.follow_up_rate), _percent(f.resolution_rate), str(f.auto_closed),
        _percent(f.closed_by_reporter_share), _days(f.median_days),
        _days(f.p90_days), str(f.breaches),
    ]


CSV_COLUMNS = (
    "agency", "name", "complaints", "followed_up", "not_followed_up", "resolved",
    "follow_up_rate", "resolution_rate", "first_follow_up_median_working_days",
    "first_follow_up_p90_working_days", "breaches", "closed_by_reporter", "auto_closed",
    "closed_by_reporter_share",
)


def _write_csv(figures: list[Figures], path: Path) -> None:
    def number(value: float | None, digits: int) -> str:
        return "" if value is None else f"{value:.{digits}f}"

    try:
        with path.open("w", newline="", encoding="utf-8") as out:
            sheet = csv.writer(out)
            sheet.writerow(CSV_COLUMNS)
            for f in figures:
                sheet.writerow((
                    f.agency, f.name, f.complaints, f.followed_up, f.not_followed_up, f.resolved,
                    number(f.follow_up_rate, 4), number(f.resolution_rate, 4),
                    number(f.median_days, 2), number(f.p90_days, 2), f.breaches,
                    f.closed_by_reporter, f.auto_closed, number(f.closed_by_reporter_share, 4),
                ))
    except OSError as exc:
        raise ReportError(f"cannot write {path}: {exc.strerror}") from exc


def _draw(figures: list[Figures], first: date, last: date, path: Path) -> None:
    """Both rates per agency as paired bars, best follow-up rate on top, and the target."""
    shown = [f for f in reversed(figures) if f.complaints]
    height = max(3.0, 0.4 * len(shown) + 1.6)
    # A bare Figure on the Agg canvas: no pyplot, no global state, no display needed.
    fig = Figure(figsize=(10, height), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    pair = 0.38
    rows = range(len(shown))
    followed = [f.follow_up_rate or 0.0 for f in shown]
    resolved = [f.resolution_rate or 0.0 for f in shown]
    by_reporter = [f.closed_by_reporter / f.complaints for f in shown]
    ax.barh([r + pair / 2 for r in rows], followed, height=pair, color="#1b9e77",
            label="followed up: 1 - not followed up / total")
    # The resolved bar in two: confirmed by the reporter, then auto-closed for want of a reply.
    ax.barh([r - pair / 2 for r in rows], by_reporter, height=pair, color="#7570b3",
            label="resolved: resolved / total; closed by the reporter")
    ax.barh([r - pair / 2 for r in rows], [b - c for b, c in zip(resolved, by_reporter,
                                                                  strict=True)],
            left=by_reporter, height=pair, color="#bcbddc", label="resolved: auto-closed, no reply")
    for r, a, b in zip(rows, followed, resolved, strict=True):
        ax.text(a + 0.006, r + pair / 2, f"{a:.0%}", va="center", fontsize=8)
        ax.text(b + 0.006, r - pair / 2, f"{b:.0%}", va="center", fontsize=8, color="#555555")
    ax.axvline(TARGET, color="#d95f02", linestyle="--", linewidth=1.5,
               label=f"target: {TARGET:.0%} followed up")
    ax.set_yticks(list(rows), [f"{f.agency} (n={f.complaints})" for f in shown], fontsize=9)
    ax.set_ylim(-0.6, max(len(shown), 1) - 0.4)
    ax.set_xlim(0, 1.08)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.grid(axis="x", alpha=0.3)
    ax.spines[["top", "right"]].set_visible(False)
    ax.set_title(f"Follow-up rate and resolution rate per agency\ncomplaints received "
                 f"{first} to {last}", loc="left", pad=34)
    if shown:  # between the title and the bars
        ax.legend(loc="lower left", bbox_to_anchor=(0, 1), ncols=2, fontsize=8, frameon=False,
                  borderaxespad=0.1)
    else:
        ax.text(0.5, 0.5, "no complaints received in this period", ha="center",
                transform=ax.transAxes)
    try:
        # format: the file named, PNG whatever its suffix (matplotlib would refuse
        # "report.txt" and add ".png" to "report").
        fig.savefig(path, dpi=120, format="png")
    except OSError as exc:
        raise ReportError(f"cannot write {path}: {exc.strerror}") from exc
