"""The evaluators' report, on a database the hub's own intake and follow-up code filled."""

from __future__ import annotations

import csv
import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from alembic import command

import hub
from hub import metrics, migrate, store, topics, watcher
from hub.calendar import Zone, load_calendar_config
from hub.deadlines import Rules
from hub.followup import store_follow_ups
from hub.intake import Record, plan_intake, store_intake
from hub.model import FollowUpEvent, SourceRef, Status, tracking_id_for
from hub.report import ReportError, run_report
from hub.routing import Directory
from hub.settings import Settings

RULES = Rules.of(Directory.load(), load_calendar_config())
# The week of Monday 3 February 2025 has no holiday: each weekday is a working day.
MONDAY = "2025-02-03"


def wib(local: str) -> datetime:
    return datetime.fromisoformat(local).replace(tzinfo=Zone.WIB.tzinfo)


class Hub:
    """Feeds the database through the hub's own units of work, at chosen times."""

    def __init__(self, url: str) -> None:
        self.engine = store.make_engine(url)
        migrate.upgrade_engine(self.engine)
        self.offset = 0

    def record(self, topic: str, value: bytes, at: datetime) -> Record:
        self.offset += 1
        return Record(topic, 0, self.offset, None, value,
                      {"content-type": "application/json", "hub-received-at": at.isoformat()}, at)

    def complain(self, ref: str, category: str, region: str, at: datetime, *,
                 text: str | None = None, phone: str | None = None) -> str:
        form = {"id": ref, "isi": text or f"Keluhan {category} nomor {ref}, mohon dibantu.",
                "kategori": category, "lokasi": {"kode_wilayah": region},
                "pelapor": {"telepon": phone or f"+628121000{self.offset:04d}"}}
        record = self.record(topics.raw("web"), json.dumps(form).encode(), at)
        with store.transaction(self.engine) as conn:
            store_intake(conn, plan_intake([record], RULES, at), RULES, at)
        return tracking_id_for(SourceRef(system="web", message_id=ref))

    def follow_up(self, tracking_id: str, agency: str, *steps: tuple[Status, datetime],
                  to: str | None = None) -> None:
        """Each step as `agency`; a disposition hands the complaint `to` another agency."""
        for status, at in steps:
            target = to if status is Status.DISPOSITIONED else None
            event = FollowUpEvent(event_id=f"{tracking_id}-{status}-{at.isoformat()}",
                                  tracking_id=tracking_id, agency_code=agency, status=status,
                                  at=at, target_agency=target)
            record = self.record(topics.FOLLOW_UP, event.model_dump_json().encode(), at)
            with store.transaction(self.engine) as conn:
                applied = store_follow_ups(conn, [record], RULES, at)
            assert not applied.dead_letters, applied.dead_letters


@pytest.fixture
def filled(database_url: str) -> str:
    hub = Hub(database_url)
    received = wib(f"{MONDAY} 09:00")
    dinkes, dbmsda = "kota-bekasi-dinkes", "kota-bekasi-dbmsda"
    c1 = hub.complain("c1", "kesehatan", "32.75", received, text="Antrean puskesmas Bekasi "
                      "Selatan panjang sekali sejak pagi.", phone="+6281299990001")
    hub.follow_up(c1, dinkes, (Status.VERIFIED, wib("2025-02-04 10:00")),
                  (Status.DISPOSITIONED, wib("2025-02-04 11:00")),
                  (Status.IN_PROGRESS, wib("2025-02-05 12:00")),  # 1.5 working days
                  (Status.RESPONDED, wib("2025-02-06 12:00")),
                  (Status.CLOSED, wib("2025-02-07 12:00")))
    c2 = hub.complain("c2", "kesehatan", "32.75", received)
    hub.follow_up(c2, dinkes, (Status.DISPOSITIONED, wib("2025-02-04 08:00")),
                  (Status.NEEDS_INFO, wib("2025-02-06 00:00")),  # 2 working days
                  (Status.REPORTER_REPLIED, wib("2025-02-07 10:00")))
    c3 = hub.complain("c3", "kesehatan", "32.75", received)  # verified, then nothing: breach
    hub.follow_up(c3, dinkes, (Status.VERIFIED, wib("2025-02-04 10:00")))
    c4 = hub.complain("c4", "kesehatan", "32.75", received)
    hub.follow_up(c4, dinkes, (Status.DISPOSITIONED, wib("2025-02-05 10:00")),
                  (Status.IN_PROGRESS, wib("2025-02-11 18:00")))  # 5.75 working days: breach
    # The same citizen repeats c1 through another door: a duplicate, not a complaint more.
    hub.complain("c1-again", "kesehatan", "32.75", wib(f"{MONDAY} 10:00"),
                 text="Antrean puskesmas Bekasi Selatan panjang sekali sejak pagi!",
                 phone="+6281299990001")
    d1 = hub.complain("d1", "jalan", "32.75", received)
    hub.follow_up(d1, dbmsda, (Status.DISPOSITIONED, wib(f"{MONDAY} 11:00")),
                  (Status.RESPONDED, wib(f"{MONDAY} 15:00")),  # same day: 0 working days
                  (Status.CLOSED, wib("2025-02-10 09:00")))
    d2 = hub.complain("d2", "jalan", "32.75", received)
    hub.follow_up(d2, dbmsda, (Status.DISPOSITIONED, wib("2025-02-04 09:00")),
                  (Status.RESPONDED, wib("2025-02-05 09:00")),  # 1.375 working days
                  (Status.CLOSED, wib("2025-02-06 09:00")))
    # Friday 23:30 in Jakarta is in the week; Saturday 00:30 is not, though still Friday in UTC.
    hub.complain("e1", "kesehatan", "32.16", wib("2025-02-07 23:30"))
    hub.complain("e2", "kesehatan", "32.16", wib("2025-02-08 00:30"))
    hub.complain("late", "kesehatan", "32.75", wib("2025-02-10 09:00"))  # after the week
    hub.engine.dispose()
    return database_url


def report(url: str, tmp_path: Path, agency: str | None = None) -> dict[str, dict[str, str]]:
    out = tmp_path / "report.csv"
    run_report(Settings(database_url=url), MONDAY, "2025-02-07", agency=agency, csv_path=out,
               png_path=tmp_path / "report.png")
    with out.open(encoding="utf-8") as rows:
        return {row["agency"]: row for row in csv.DictReader(rows)}


def test_both_rates_times_and_breaches_per_agency(
    filled: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    rows = report(filled, tmp_path)
    assert list(rows) == ["kota-bekasi-dbmsda", "kota-bekasi-dinkes", "kab-bekasi-dinkes"]
    dinkes = rows["kota-bekasi-dinkes"]
    assert {k: dinkes[k] for k in ("complaints", "followed_up", "not_followed_up", "resolved",
                                   "breaches")} == {
        "complaints": "4", "followed_up": "3", "not_followed_up": "1", "resolved": "1",
        "breaches": "2"}
    assert (dinkes["follow_up_rate"], dinkes["resolution_rate"]) == ("0.7500", "0.2500")
    # Times 1.5, 2 and 5.75 working days: median 2, p90 2 + 0.8 * 3.75.
    assert dinkes["first_follow_up_median_working_days"] == "2.00"
    assert dinkes["first_follow_up_p90_working_days"] == "5.00"
    dbmsda = rows["kota-bekasi-dbmsda"]
    assert (dbmsda["complaints"], dbmsda["follow_up_rate"], dbmsda["resolution_rate"],
            dbmsda["breaches"]) == ("2", "1.0000", "1.0000", "0")
    assert dbmsda["first_follow_up_median_working_days"] == "0.69"  # (0 + 1.375) / 2
    kab = rows["kab-bekasi-dinkes"]
    assert (kab["complaints"], kab["follow_up_rate"], kab["breaches"]) == ("1", "0.0000", "1")
    assert kab["first_follow_up_median_working_days"] == ""
    shown = capsys.readouterr().out
    # Not a terminal: each row whole on its line, no figure cut to fit 80 columns.
    (dbmsda_row,) = [line for line in shown.splitlines() if "kota-bekasi-dbmsda" in line]
    assert [cell.strip() for cell in dbmsda_row.split("│")[1:-1]] == [
        "kota-bekasi-dbmsda", "2", "2", "2", "100.0%", "100.0%", "0", "100.0%", "0.7", "1.2",
        "0"], dbmsda_row
    assert "1 - not followed up / total" in shown
    assert "resolved / total" in shown
    assert "all agencies" in shown
    assert (tmp_path / "report.png").read_bytes().startswith(b"\x89PNG")


def test_a_complaint_handed_on_is_the_new_holders_to_follow_up(
    database_url: str, tmp_path: Path,
) -> None:
    # Dinkes works on both, then hands them to the hospital: one the hospital takes up on
    # Wednesday, the other it leaves. Dinkes's follow-up is not the hospital's.
    hub = Hub(database_url)
    dinkes, rsud = "kota-bekasi-dinkes", "kota-bekasi-rsud"
    taken, left = (hub.complain(ref, "kesehatan", "32.75", wib(f"{MONDAY} 09:00"))
                   for ref in ("h1", "h2"))
    for tracking_id in (taken, left):
        hub.follow_up(tracking_id, dinkes, (Status.DISPOSITIONED, wib(f"{MONDAY} 09:30")),
                      (Status.IN_PROGRESS, wib(f"{MONDAY} 10:00")))
        hub.follow_up(tracking_id, dinkes, (Status.DISPOSITIONED, wib(f"{MONDAY} 12:00")),
                      to=rsud)
    hub.follow_up(taken, rsud, (Status.IN_PROGRESS, wib("2025-02-05 12:00")))
    hub.engine.dispose()
    row = report(database_url, tmp_path)[rsud]
    assert {k: row[k] for k in ("complaints", "followed_up", "not_followed_up")} == {
        "complaints": "2", "followed_up": "1", "not_followed_up": "1"}
    assert row["first_follow_up_median_working_days"] == "1.50"  # from its own routing
    assert dinkes not in report(database_url, tmp_path)


def test_one_agency(filled: str, tmp_path: Path) -> None:
    assert list(report(filled, tmp_path, agency="kota-bekasi-dbmsda")) == ["kota-bekasi-dbmsda"]
    quiet = report(filled, tmp_path, agency="ojk")
    assert quiet["ojk"]["complaints"] == "0"
    assert quiet["ojk"]["follow_up_rate"] == ""


@pytest.mark.parametrize(("date_from", "date_to", "agency", "reason"), [
    ("2025-02-30", "2025-03-01", None, "--from '2025-02-30' is not a date (YYYY-MM-DD)"),
    ("2025-02-01", "3 Feb", None, "--to '3 Feb' is not a date (YYYY-MM-DD)"),
    ("2025-03-01", "2025-02-01", None, "--from 2025-03-01 is after --to 2025-02-01"),
    ("2025-02-01", "2025-03-01", "dinas-fiktif", "unknown agency 'dinas-fiktif'"),
])
def test_bad_input_is_one_line(
    tmp_path: Path, date_from: str, date_to: str, agency: str | None, reason: str
) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path}/hub.db")
    migrate.upgrade(settings.database_url)
    with pytest.raises(ReportError, match="^" + reason.replace("(", r"\(").replace(")", r"\)")):
        run_report(settings, date_from, date_to, agency=agency, csv_path=None, png_path=None)


def test_a_missing_or_empty_database_is_an_error_not_a_new_file(tmp_path: Path) -> None:
    missing = tmp_path / "none.db"
    with pytest.raises(ReportError, match="no database at"):
        run_report(Settings(database_url=f"sqlite:///{missing}"), MONDAY, MONDAY, agency=None,
                   csv_path=None, png_path=None)
    assert not missing.exists()
    empty = tmp_path / "empty.db"
    sa.create_engine(f"sqlite:///{empty}").connect().close()
    with pytest.raises(ReportError, match="cannot read complaints from the database"):
        run_report(Settings(database_url=f"sqlite:///{empty}"), MONDAY, MONDAY, agency=None,
                   csv_path=None, png_path=None)


@pytest.mark.parametrize("name", ["chart.txt", "chart"])
def test_the_chart_is_a_png_at_the_path_given_whatever_its_suffix(
    filled: str, tmp_path: Path, name: str
) -> None:
    run_report(Settings(database_url=filled), MONDAY, "2025-02-07", agency=None, csv_path=None,
               png_path=tmp_path / name)
    assert (tmp_path / name).read_bytes().startswith(b"\x89PNG")
    assert not (tmp_path / f"{name}.png").exists()


def test_a_follow_up_older_than_the_routing_is_cleared_by_migration_0008(
    database_url: str, tmp_path: Path,
) -> None:
    # Before 0008 a hand-on kept the earlier holder's first follow-up on the row, and the new
    # holder's own did not replace it: the migration takes that from the history, or none.
    hub = Hub(database_url)
    taken, left = (hub.complain(ref, "kesehatan", "32.75", wib(f"{MONDAY} 09:00"))
                   for ref in ("m1", "m2"))
    for tracking_id in (taken, left):
        hub.follow_up(tracking_id, "kota-bekasi-dinkes",
                      (Status.DISPOSITIONED, wib(f"{MONDAY} 12:00")), to="kota-bekasi-rsud")
    hub.follow_up(taken, "kota-bekasi-rsud", (Status.IN_PROGRESS, wib("2025-02-05 12:00")))
    with hub.engine.connect() as conn:  # the schema as 0007 left it
        command.downgrade(migrate.config(conn), "0007")
        conn.commit()
    table = store.table_of(store.ComplaintRow)
    with store.transaction(hub.engine) as conn:
        conn.execute(sa.update(table).values(first_follow_up_at=wib(f"{MONDAY} 10:00")))
    hub.engine.dispose()
    assert report(database_url, tmp_path)["kota-bekasi-rsud"]["followed_up"] == "2"
    migrate.upgrade(database_url)
    row = report(database_url, tmp_path)["kota-bekasi-rsud"]
    assert (row["followed_up"], row["first_follow_up_median_working_days"]) == ("1", "1.50")


def test_breaches_are_counted_and_named_by_the_configured_limit(
    filled: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    packaged = (Path(__file__).parents[2] / "hub" / "data" / "deadlines.yaml").read_text()
    assert "first_follow_up: 5 " in packaged
    deadlines = tmp_path / "deadlines.yaml"
    deadlines.write_text(packaged.replace("first_follow_up: 5 ", "first_follow_up: 1 "))
    out = tmp_path / "report.csv"
    run_report(Settings(database_url=filled, deadlines_file=deadlines), MONDAY, "2025-02-07",
               agency="kota-bekasi-dinkes", csv_path=out, png_path=None)
    shown = capsys.readouterr().out
    assert "> 1 working days" in shown and "> 5" not in shown
    assert "later than 1 working days" in " ".join(shown.split())
    with out.open(encoding="utf-8") as rows:
        (row,) = csv.DictReader(rows)
    assert row["breaches"] == "4"  # 1.5, 2 and 5.75 working days, and one not followed up


def test_an_archived_complaint_owes_no_follow_up(database_url: str, tmp_path: Path) -> None:
    # Two spam reports archived with a reason counted as not followed up for ever: 50 %.
    hub = Hub(database_url)
    received = wib(f"{MONDAY} 09:00")
    ids = [hub.complain(f"a{n}", "jalan", "32.75", received) for n in range(3)]
    hub.follow_up(ids[0], "kota-bekasi-dbmsda", (Status.DISPOSITIONED, wib(f"{MONDAY} 10:00")),
                  (Status.IN_PROGRESS, wib(f"{MONDAY} 11:00")))
    for tracking_id in ids[1:]:
        event = FollowUpEvent(event_id=f"{tracking_id}-archived", tracking_id=tracking_id,
                              agency_code="kota-bekasi-dbmsda", status=Status.ARCHIVED,
                              at=wib(f"{MONDAY} 12:00"), reason="Iklan, bukan pengaduan.")
        record = hub.record(topics.FOLLOW_UP, event.model_dump_json().encode(), event.at)
        with store.transaction(hub.engine) as conn:
            assert not store_follow_ups(conn, [record], RULES, event.at).dead_letters
    with store.transaction(hub.engine) as conn:
        watcher.refresh_gauges(conn, RULES, wib("2025-02-14 12:00"))
    hub.engine.dispose()
    row = report(database_url, tmp_path)["kota-bekasi-dbmsda"]
    assert (row["complaints"], row["followed_up"], row["not_followed_up"]) == ("1", "1", "0")
    assigned = {state: metrics.assigned.labels("kota-bekasi-dbmsda", state)._value.get()
                for state in ("not_followed_up", "followed_up", "resolved")}
    assert assigned == {"not_followed_up": 0, "followed_up": 1, "resolved": 0}


def test_a_complaint_archived_after_the_limit_is_still_a_breach(
    database_url: str, tmp_path: Path,
) -> None:
    # Archiving owes no follow-up, but deciding so weeks late was a breach: archiving made
    # it vanish from every column, the watcher's escalation of it notwithstanding.
    hub = Hub(database_url)
    received = wib(f"{MONDAY} 09:00")
    prompt, late = (hub.complain(f"s{n}", "jalan", "32.75", received) for n in range(2))
    weeks_on = wib("2025-02-24 12:00")
    # The prompt archive reaches the hub weeks on (an agency system syncing late): judged by
    # when the hub applied it, it was a breach.
    for tracking_id, at, applied in ((prompt, wib(f"{MONDAY} 12:00"), weeks_on),
                                     (late, weeks_on, weeks_on)):
        event = FollowUpEvent(event_id=f"{tracking_id}-archived", tracking_id=tracking_id,
                              agency_code="kota-bekasi-dbmsda", status=Status.ARCHIVED,
                              at=at, reason="Iklan, bukan pengaduan.")
        record = hub.record(topics.FOLLOW_UP, event.model_dump_json().encode(), applied)
        with store.transaction(hub.engine) as conn:
            assert not store_follow_ups(conn, [record], RULES, applied).dead_letters
    hub.engine.dispose()
    row = report(database_url, tmp_path)["kota-bekasi-dbmsda"]
    assert (row["complaints"], row["breaches"]) == ("0", "1")


def test_an_agency_taken_out_of_the_registry_is_reported_alone_as_in_the_table(
    filled: str, tmp_path: Path,
) -> None:
    # The whole table showed its row by its code, and `--agency <code>` said "unknown agency".
    packaged = yaml.safe_load((Path(hub.__file__).parent / "data" / "agencies.yaml").read_text())
    gone = "kota-bekasi-dbmsda"
    packaged["agencies"] = [a for a in packaged["agencies"] if a["code"] != gone]
    packaged["rules"] = [r for r in packaged["rules"] if r["agency"] != gone]
    registry = tmp_path / "agencies.yaml"
    registry.write_text(yaml.safe_dump(packaged))
    out = tmp_path / "one.csv"
    settings = Settings(database_url=filled, agencies_file=registry)
    run_report(settings, MONDAY, "2025-02-07", agency=gone, csv_path=out, png_path=None)
    with out.open(encoding="utf-8") as rows:
        (row,) = csv.DictReader(rows)
    assert (row["agency"], row["complaints"]) == (gone, "2")


def test_resolved_complaints_are_told_apart_by_who_closed_them(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    # Evaluators read the share closed by the reporter against the share closed for want of
    # a reply; the report counted both only as resolved.
    hub = Hub(database_url)
    dbmsda = "kota-bekasi-dbmsda"
    confirmed, silent, reopened = (hub.complain(ref, "jalan", "32.75", wib(f"{MONDAY} 09:00"))
                                   for ref in ("k1", "k2", "k3"))
    for tracking_id in (confirmed, silent, reopened):
        hub.follow_up(tracking_id, dbmsda, (Status.DISPOSITIONED, wib(f"{MONDAY} 10:00")),
                      (Status.RESPONDED, wib(f"{MONDAY} 11:00")))
    hub.follow_up(confirmed, dbmsda, (Status.CLOSED, wib("2025-02-05 09:00")))
    swept_at = wib("2025-03-03 09:00")
    with store.transaction(hub.engine) as conn:
        assert len(watcher.sweep(conn, RULES, swept_at).pending) == 2  # both auto-closed
        table = store.table_of(store.ComplaintRow)
        closed_at = conn.execute(sa.select(table.c.closed_at).where(
            table.c.tracking_id == reopened)).scalar_one()
    # The reporter of the third replied a minute before its close, processed after it: it
    # reopens, is answered again, and the reporter confirms. Its close is the reporter's.
    reply = FollowUpEvent(event_id="k3-reply", tracking_id=reopened, agency_code=dbmsda,
                          status=Status.REPORTER_REPLIED, at=closed_at - timedelta(minutes=1))
    record = hub.record(topics.FOLLOW_UP, reply.model_dump_json().encode(), swept_at)
    with store.transaction(hub.engine) as conn:
        assert not store_follow_ups(conn, [record], RULES, swept_at).dead_letters
    hub.follow_up(reopened, dbmsda, (Status.RESPONDED, wib("2025-03-03 10:00")),
                  (Status.CLOSED, wib("2025-03-04 10:00")))
    hub.engine.dispose()
    row = report(database_url, tmp_path)[dbmsda]
    assert {k: row[k] for k in ("complaints", "resolved", "resolution_rate", "closed_by_reporter",
                                "auto_closed", "closed_by_reporter_share")} == {
        "complaints": "3", "resolved": "3", "resolution_rate": "1.0000",
        "closed_by_reporter": "2", "auto_closed": "1", "closed_by_reporter_share": "0.6667"}
    (shown,) = [line for line in capsys.readouterr().out.splitlines() if dbmsda in line]
    assert [cell.strip() for cell in shown.split("│")[1:-1]][5:8] == ["100.0%", "1", "66.7%"]
