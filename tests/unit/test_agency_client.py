from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import threading
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import IO

import pytest

from hub.agency_client import HELP, STATUSES, greet, parse_command, show
from hub.model import (
    Channel,
    Complaint,
    Deadline,
    EscalationEvent,
    FollowUpEvent,
    Location,
    Reporter,
    RoutingEvent,
    SourceRef,
    Status,
    TakenEvent,
)
from tests.support import LAPOR_HUB, produce

TID = "123456789012345678"
NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def test_a_typed_line_becomes_a_follow_up() -> None:
    event = parse_command(f"{TID} dispositioned --to kota-bekasi-rsud Mohon ditindaklanjuti", "a")
    assert isinstance(event, FollowUpEvent)
    assert (event.status, event.target_agency, event.message) == (
        Status.DISPOSITIONED, "kota-bekasi-rsud", "Mohon ditindaklanjuti",
    )
    assert event.agency_code == "a"


def test_received_takes_a_complaint_back_and_archived_needs_a_reason() -> None:
    back = parse_command(f"{TID} received", "a")
    assert isinstance(back, FollowUpEvent) and back.status is Status.RECEIVED
    assert parse_command(f"{TID} archived", "a") == (
        "not sent: archived needs a reason, typed after it")
    archived = parse_command(f"{TID} archived Bukan pengaduan pelayanan publik", "a")
    assert isinstance(archived, FollowUpEvent)
    assert archived.reason == "Bukan pengaduan pelayanan publik"


def test_bad_lines_say_why() -> None:
    assert parse_command("", "a") == HELP
    assert parse_command(f"{TID} done", "a") == f"not sent: no status 'done'; statuses: {STATUSES}"
    assert str(parse_command("12 responded", "a")).startswith(
        "not sent: '12' is no tracking id (18 digits)")
    # A line without its tracking id took the first word for one: "no status 'line'".
    assert str(parse_command("garbage line", "a")).startswith(
        "not sent: 'garbage' is no tracking id (18 digits)")
    registry = {"a", "kota-bekasi-rsud"}
    assert parse_command(f"{TID} dispositioned --to kota-bekasi-rsu", "a", registry) == (
        "not sent: no agency 'kota-bekasi-rsu' in the registry")
    assert parse_command(f"{TID} dispositioned --to", "a", registry) == (
        "not sent: --to needs an agency code")
    sent = parse_command(f"{TID} dispositioned --to kota-bekasi-rsud", "a", registry)
    assert isinstance(sent, FollowUpEvent) and sent.target_agency == "kota-bekasi-rsud"


def test_a_note_too_long_is_named_with_its_limit() -> None:
    # pydantic's first line alone, "1 validation error for FollowUpEvent", said neither.
    for line, said in ((f"{TID} archived {'x' * 1001}", "not sent: reason: "),
                       (f"{TID} responded {'x' * 20_001}", "not sent: message: ")):
        refused = str(parse_command(line, "a"))
        assert refused.startswith(said) and "at most" in refused


def test_to_goes_anywhere_in_the_line_and_only_with_dispositioned() -> None:
    # Later in the line it was part of the message, and nothing was handed on.
    registry = {"a", "kota-bekasi-rsud"}
    sent = parse_command(f"{TID} dispositioned Mohon ditindaklanjuti --to kota-bekasi-rsud",
                         "a", registry)
    assert isinstance(sent, FollowUpEvent)
    assert (sent.target_agency, sent.message) == ("kota-bekasi-rsud", "Mohon ditindaklanjuti")
    for status in ("verified", "not_authority"):  # the hub ignores a target on these
        assert parse_command(f"{TID} {status} --to kota-bekasi-rsud", "a", registry) == (
            "not sent: --to goes with dispositioned only")


def test_a_deadline_is_shown_by_its_last_day(capsys: pytest.CaptureFixture[str]) -> None:
    # Due at 00:00 on 1 December: an agency reading "01 Dec" acted a day late.
    wib = timezone(timedelta(hours=7))
    complaint = Complaint(
        tracking_id=TID, source=SourceRef(system="web", message_id="m-2"), channel=Channel.WEB,
        description="Jalan rusak", category="jalan", location=Location(region_code="32.75"),
        submitted_at=NOW, received_at=NOW,
    )
    event = RoutingEvent(
        event_id="e-2", tracking_id=TID, agency_code="kota-bekasi-dbmsda", reason="rule",
        routed_at=NOW, confidential=False, complaint=complaint,
        deadlines=(Deadline(kind="verification", due_at=datetime(2026, 12, 1, tzinfo=wib)),),
    )
    show(event.model_dump_json().encode())
    assert "verification by 30 Nov" in capsys.readouterr().out


def test_an_escalation_is_shown_by_its_last_day(capsys: pytest.CaptureFixture[str]) -> None:
    # A Papua agency's settle deadline: Mon 28 Sep 00:00 WIT. Shown in UTC it read
    # "2026-09-27 15:00 UTC", hours before the deadline's own end of the 27th.
    wit = timezone(timedelta(hours=9))
    event = EscalationEvent(
        event_id="x-1", tracking_id=TID, agency_code="prov-papua", coordinator_code="kemenpanrb",
        deadline="settle", status=Status.IN_PROGRESS, due_at=datetime(2026, 9, 28, tzinfo=wit),
        at=NOW,
    )
    show(event.model_dump_json().encode())
    assert "prov-papua missed settle (due by 27 Sep)" in capsys.readouterr().out


def test_a_complaint_taken_from_the_agency_is_shown_so(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # It was an unreadable event: the officer never learnt the complaint was no longer theirs.
    moved = TakenEvent(event_id="taken-1", tracking_id=TID, agency_code="kota-bekasi-dinkes",
                       by_agency="kota-bekasi", status=Status.DISPOSITIONED,
                       to_agency="kota-bekasi-rsud", message="Mohon [segera]", at=NOW)
    archived = moved.model_copy(update={"event_id": "taken-2", "status": Status.ARCHIVED,
                                        "to_agency": None, "reason": "Laporan ganda"})
    for event in (moved, archived):
        show(event.model_dump_json().encode())
    assert capsys.readouterr().out.splitlines() == [
        f"taken {TID} by kota-bekasi, to kota-bekasi-rsud: no longer yours to answer – "
        "Mohon [segera]",
        f"taken {TID} by kota-bekasi, archived: no longer yours to answer – Laporan ganda",
    ]


def test_in_a_pipe_a_complaint_keeps_its_lines_whole(capsys: pytest.CaptureFixture[str]) -> None:
    """Rich broke the lines at 80 columns into a log: a description in pieces."""
    text = ("Jalan berlubang dalam di depan SDN 3 sudah dua bulan, tiga pengendara motor jatuh "
            "minggu ini dan warga sudah melapor ke kelurahan tanpa hasil.")
    complaint = Complaint(
        tracking_id=TID, source=SourceRef(system="web", message_id="m-2"), channel=Channel.WEB,
        description=text, location=Location(region_code="32.75"), submitted_at=NOW,
        received_at=NOW,
    )
    event = RoutingEvent(event_id="e-2", tracking_id=TID, agency_code="kota-bekasi-dbmsda",
                         reason="rule", routed_at=NOW, confidential=False, complaint=complaint)
    show(event.model_dump_json().encode())
    assert any(line.strip() == text for line in capsys.readouterr().out.splitlines())


def test_the_greeting_shows_the_whole_usage(capsys: pytest.CaptureFixture[str]) -> None:
    greet("kota-bekasi-dinkes", "lapor.agency.kota-bekasi-dinkes")
    shown = " ".join(capsys.readouterr().out.split())
    assert "<status> [--to AGENCY] [message] statuses: received, needs_info" in shown, shown


def test_what_citizens_wrote_is_shown_as_written(capsys: pytest.CaptureFixture[str]) -> None:
    """Rich reads "[rusak]" as a style (and drops it) and stops at a stray "[/]"."""
    complaint = Complaint(
        tracking_id=TID, source=SourceRef(system="web", message_id="m-1"), channel=Channel.WEB,
        title="[PENTING]", description="Jalan [rusak] parah, lihat foto [/] di atas",
        category="jalan", location=Location(region_code="32.75"),
        reporter=Reporter(name="Budi [RT 03]"), submitted_at=NOW, received_at=NOW,
    )
    event = RoutingEvent(event_id="e-1", tracking_id=TID, agency_code="kota-bekasi-dbmsda",
                         reason="rule", routed_at=NOW, confidential=False, complaint=complaint)
    show(event.model_dump_json().encode())
    show(b"[/] not json")
    shown = capsys.readouterr().out
    for written in ("[PENTING]", "Jalan [rusak] parah, lihat foto [/] di atas", "Budi [RT 03]",
                    "[/] not json"):
        assert written in shown, shown


def test_without_its_broker_the_client_stops_with_one_line_and_closes_its_clients() -> None:
    out = subprocess.run(
        [LAPOR_HUB, "agency", "kota-bekasi-dinkes"],
        capture_output=True, text=True, check=False, timeout=60, stdin=subprocess.DEVNULL,
        env={**os.environ, "HUB_KAFKA_BOOTSTRAP": "127.0.0.1:1"},
    )
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip().splitlines()[-1].startswith(
        "lapor-hub: broker: KafkaConnectionError"), out.stderr
    assert "Unclosed" not in out.stderr and "Traceback" not in out.stderr, out.stderr


@pytest.mark.broker
def test_the_client_reads_the_topic_the_registry_gives_its_agency(
    kafka_bootstrap: str, tmp_path: Path,
) -> None:
    # An agency with its own topic in the registry: the client read lapor.agency.<code>.
    topic = f"dinkes-inbox-{uuid.uuid4().hex[:8]}"
    packaged = (Path(__file__).parents[2] / "hub" / "data" / "agencies.yaml").read_text()
    line = "  - {code: kota-bekasi-dinkes, name: Dinas Kesehatan Kota Bekasi,"
    assert line in packaged
    registry = tmp_path / "agencies.yaml"
    registry.write_text(packaged.replace(line, line.replace(", name", f", topic: {topic}, name")))
    complaint = Complaint(
        tracking_id=TID, source=SourceRef(system="web", message_id="m-3"), channel=Channel.WEB,
        description="Antrean puskesmas panjang", location=Location(region_code="32.75"),
        submitted_at=NOW, received_at=NOW,
    )
    event = RoutingEvent(event_id="e-3", tracking_id=TID, agency_code="kota-bekasi-dinkes",
                         reason="rule", routed_at=NOW, confidential=False, complaint=complaint)
    asyncio.run(produce(kafka_bootstrap, topic,
                        [(TID.encode(), event.model_dump_json().encode(), {})]))
    shown = _listened({"HUB_KAFKA_BOOTSTRAP": kafka_bootstrap,
                       "HUB_AGENCIES_FILE": str(registry)}, TID)
    assert f"listening on {topic}" in " ".join(shown.split())


@pytest.mark.broker
def test_an_event_the_hub_sent_again_is_shown_once(kafka_bootstrap: str) -> None:
    # After a crash, or while another instance takes over the work, the hub sends a routing
    # event again under its id: the officer was shown the complaint twice, as if two.
    prefix = f"a{uuid.uuid4().hex[:8]}"
    later = "123456789012345679"
    complaint = Complaint(
        tracking_id=TID, source=SourceRef(system="web", message_id="m-4"), channel=Channel.WEB,
        description="Sampah menumpuk di pasar", location=Location(region_code="32.75"),
        submitted_at=NOW, received_at=NOW,
    )
    routed = RoutingEvent(event_id=f"route-{TID}-1", tracking_id=TID,
                          agency_code="kota-bekasi-dinkes", reason="rule", routed_at=NOW,
                          confidential=False, complaint=complaint).model_dump_json().encode()
    escalated = EscalationEvent(
        event_id=f"escalation-{TID}-1", tracking_id=TID, agency_code="kota-bekasi-dinkes",
        coordinator_code="kota-bekasi-dinkes", deadline="verification", status=Status.RECEIVED,
        due_at=NOW, at=NOW).model_dump_json().encode()
    other = RoutingEvent(event_id=f"route-{later}-1", tracking_id=later,
                         agency_code="kota-bekasi-dinkes", reason="rule", routed_at=NOW,
                         confidential=False, complaint=complaint.model_copy(
                             update={"tracking_id": later})).model_dump_json().encode()
    # One key, one partition: the later complaint is shown after the others.
    asyncio.run(produce(kafka_bootstrap, f"{prefix}.agency.kota-bekasi-dinkes", [
        (TID.encode(), value, {}) for value in (routed, routed, escalated, escalated, other)]))
    shown = _listened({"HUB_KAFKA_BOOTSTRAP": kafka_bootstrap, "HUB_TOPIC_PREFIX": prefix},
                      later)
    assert shown.count(f"{TID} (rule)") == 1
    assert shown.count(f"escalation {TID}") == 1
    assert f"{later} (rule)" in shown


def _listened(env: dict[str, str], until: str) -> str:
    """What `lapor-hub agency kota-bekasi-dinkes --listen-only` printed, up to and with the
    first line holding `until` (all of it, if it never came within 60 s)."""
    client = subprocess.Popen(
        [LAPOR_HUB, "agency", "kota-bekasi-dinkes", "--listen-only"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, **env},
    )
    stop = threading.Timer(60, client.kill)  # its output then ends, whatever it printed
    stop.start()
    try:
        assert client.stdout is not None
        return _until(client.stdout, until)
    finally:
        stop.cancel()
        client.terminate()
        client.wait(10)


def _until(stream: IO[str], text: str) -> str:
    """What the stream printed, up to and with the first line holding `text`."""
    seen = []
    for line in stream:
        seen.append(line)
        if text in line:
            break
    return "".join(seen)


@pytest.mark.broker
def test_ctrl_c_at_the_prompt_stops_the_client_at_once(kafka_bootstrap: str) -> None:
    # The prompt's reader thread held the exit until Enter was pressed.
    leader, follower = os.openpty()
    process = subprocess.Popen(
        [LAPOR_HUB, "agency", "kota-bekasi-dinkes"], stdin=follower, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, env={**os.environ, "HUB_KAFKA_BOOTSTRAP": kafka_bootstrap},
    )
    os.close(follower)
    try:
        assert process.stdout is not None
        assert b"listening on" in process.stdout.readline()
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=15) == 130
    finally:
        process.kill()
        os.close(leader)


def test_the_national_admin_is_not_offered_a_decline() -> None:
    # The hub refuses it as a dead letter, which the client never shows.
    assert parse_command(f"{TID} not_authority bukan wewenang", "kemenpanrb", national=True) == (
        "not sent: the national admin cannot decline a complaint; disposition it (--to) or "
        "archive it with a reason")
    assert isinstance(parse_command(f"{TID} not_authority bukan wewenang", "a"), FollowUpEvent)


def test_terminal_controls_a_citizen_wrote_do_not_reach_the_officers_terminal(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A citizen's escape sequences went to the liaison officer's terminal as they came: a
    screen cleared, a hidden link (OSC 8), the clipboard set (OSC 52), text reversed by a
    bidi override. They are shown as visible escapes instead."""
    complaint = Complaint(
        tracking_id=TID, source=SourceRef(system="web", message_id="m-3"), channel=Channel.WEB,
        title="Jalan\x1b[2J rusak",
        description="Klik \x1b]8;;http://evil.example/\x1b\\di sini\x1b]8;;\x1b\\ "
                    "\x1b]52;c;cm0gLXJmIH4=\x07\u202egnitset\x9b31m",
        category="jalan\x07", location=Location(region_code="32.75"),
        reporter=Reporter(name="Budi\x1b[8m"), submitted_at=NOW, received_at=NOW,
    )
    event = RoutingEvent(event_id="e-3", tracking_id=TID, agency_code="kota-bekasi-dbmsda",
                         reason="rule", routed_at=NOW, confidential=False, complaint=complaint)
    show(event.model_dump_json().encode())
    shown = capsys.readouterr().out
    assert not [c for c in shown if c in "\x1b\x07\x9b\u202e"], repr(shown)
    assert "Jalan\\x1b[2J rusak" in shown and "\\u202egnitset" in shown, shown


def test_an_event_that_is_no_object_is_unreadable_and_the_reader_goes_on(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A JSON array raised AttributeError, which ended the reader: no complaint shown again.
    for raw in (b"[1, 2]", b"42", b'"text"', b"null"):
        show(raw)
    assert capsys.readouterr().out.count("unreadable event") == 4
