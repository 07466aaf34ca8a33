"""The simulation: native payloads the adapters accept, and agencies that follow the lifecycle."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from datetime import UTC, datetime

import httpx
import pytest
from aiokafka.errors import KafkaConnectionError

from hub.adapters import SOURCES, RawMessage, Rejection
from hub.calendar import load_calendar_config
from hub.deadlines import Rules
from hub.duplicates import Candidate, Pool, fingerprint
from hub.followup import Refusal, apply_follow_up
from hub.intake import routing_event
from hub.model import Complaint, RoutingEvent, Status
from hub.routing import Decision, Directory
from hub.settings import Settings
from hub.simulate import (
    MAX_HANDOVERS,
    MIX,
    Responders,
    Tally,
    _post_all,
    follow_ups,
    payload,
    plan,
)
from hub.store import ComplaintRow

RULES = Rules.of(Directory.load(), load_calendar_config())
NOW = datetime(2025, 2, 3, 2, 0, tzinfo=UTC)  # Monday 09:00 WIB
SEED = 1708


def normalized(seed: int, n: int) -> tuple[str, list[object]]:
    item = payload(seed, n, NOW)
    raw = RawMessage(item.source, item.body, item.content_type, NOW, message_id=f"ingress-{n}")
    assert item.content_type in SOURCES[item.source].content_types
    return item.source, list(SOURCES[item.source].normalize(raw))


def complaints(count: int, seed: int = SEED) -> list[Complaint]:
    return [o for n in range(count) for o in normalized(seed, n)[1] if isinstance(o, Complaint)]


def test_the_same_seed_gives_the_same_payloads_and_another_seed_others() -> None:
    first = [payload(SEED, n, NOW) for n in range(200)]
    assert first == [payload(SEED, n, NOW) for n in range(200)]
    assert first != [payload(SEED + 1, n, NOW) for n in range(200)]


def test_every_source_is_in_the_mix_and_its_payloads_become_complaints() -> None:
    seen: Counter[str] = Counter()
    refusals: Counter[str] = Counter()
    for n in range(600):
        source, outcomes = normalized(SEED, n)
        seen[source] += 1
        found = [o for o in outcomes if isinstance(o, Complaint)]
        reasons = {o.reason for o in outcomes if isinstance(o, Rejection)}
        # Beside real complaints only what is routinely no complaint; alone, an empty SMS
        # (refused) or a WhatsApp receipt (ignored).
        assert reasons <= {"not_a_complaint"} if found else reasons <= {"missing_field",
                                                                          "not_a_complaint"}
        refusals.update(reasons)
    assert set(seen) == set(MIX) == set(SOURCES)
    total = sum(seen.values())
    assert all(seen[s] / total > 0.01 for s in MIX)
    assert 0 < refusals["missing_field"] < total * 0.02
    assert 0 < refusals["not_a_complaint"] < total * 0.1


def test_vendor_ids_are_unique_and_complaints_rarely_look_like_duplicates() -> None:
    found = complaints(800)
    assert len({c.tracking_id for c in found}) == len(found)
    pool = Pool()
    repeated = 0
    for complaint in found:
        mine = fingerprint(complaint, RULES.secret)
        if pool.first_duplicate(complaint.tracking_id, mine):
            repeated += 1
        else:
            pool.add(Candidate(complaint.tracking_id, mine))
    assert repeated < len(found) * 0.02  # the hub would not route them


def test_complaints_reach_many_agencies_and_regions() -> None:
    held = Counter(RULES.directory.route(c).agency.code for c in complaints(600))
    assert len(held) >= 20
    assert held["kemenpanrb"] < sum(held.values()) * 0.7  # text-only channels go national


def row_for(complaint: Complaint, event: RoutingEvent) -> ComplaintRow:
    return ComplaintRow(
        tracking_id=complaint.tracking_id, source_system=complaint.source.system,
        source_message_id=complaint.source.message_id, channel=complaint.channel.value,
        report_type=complaint.report_type.value, needs_inspection=complaint.needs_inspection,
        agency_code=event.agency_code, status=Status.RECEIVED.value,
        document=complaint.model_dump_json(), received_at=NOW, routed_at=event.routed_at,
        updated_at=NOW,
    )


def walk(complaint: Complaint, seed: int) -> list[tuple[str, Status]]:
    """Every responder step through the hub's own decision, following its hand-overs."""
    event: RoutingEvent | None = routing_event(
        complaint, RULES.directory.route(complaint), 1, NOW, RULES
    )
    assert event is not None
    row = row_for(complaint, event)
    handovers = 0
    taken: list[tuple[str, Status]] = []
    while event is not None:
        steps = plan(event, RULES.directory, seed, handovers)
        handed = any(s.status is Status.NOT_AUTHORITY or s.target_agency for s in steps)
        handovers += handed
        routed = None
        for _, follow_up in follow_ups(event, steps):
            result = apply_follow_up(row, follow_up, RULES, NOW)
            assert not isinstance(result, Refusal), result
            taken.append((follow_up.agency_code, follow_up.status))
            for out in result.outbox:
                body = json.loads(out["value"])
                if body.get("type") == "routing":
                    routed = RoutingEvent.model_validate(body)
        assert (routed is not None) == handed
        event = routed
    return taken


@pytest.mark.parametrize("seed", [SEED, 7])
def test_responders_take_only_legal_paths_the_hub_accepts(seed: int) -> None:
    statuses: Counter[Status] = Counter()
    ends: Counter[Status] = Counter()
    for complaint in complaints(300, seed):
        taken = walk(complaint, seed)
        statuses.update(status for _, status in taken)
        ends[taken[-1][1] if taken else Status.RECEIVED] += 1
    for status in (Status.VERIFIED, Status.DISPOSITIONED, Status.IN_PROGRESS, Status.NEEDS_INFO,
                   Status.REPORTER_REPLIED, Status.RESPONDED, Status.CLOSED,
                   Status.NOT_AUTHORITY, Status.ARCHIVED):
        assert statuses[status] > 0, status
    total = sum(ends.values())
    assert 0.03 < statuses[Status.NOT_AUTHORITY] / total < 0.25
    assert ends[Status.RECEIVED] > 0  # some are never answered


def test_hand_overs_stop_after_the_limit() -> None:
    complaint = complaints(1)[0]
    decision = Decision(RULES.directory.agencies["kota-bekasi"], "coordinator")
    for n in range(200):
        event = routing_event(complaint, decision, n + 1, NOW, RULES)
        steps = plan(event, RULES.directory, SEED, handovers=MAX_HANDOVERS)
        assert all(s.status is not Status.NOT_AUTHORITY and not s.target_agency for s in steps)


def test_follow_ups_are_stamped_on_the_simulated_clock() -> None:
    complaint = complaints(1)[0]
    event = routing_event(complaint, RULES.directory.route(complaint), 1, NOW, RULES)
    for seed in range(50):
        steps = plan(event, RULES.directory, seed)
        timed = follow_ups(event, steps)
        assert [f.status for _, f in timed] == [s.status for s in steps]
        days = [d for d, _ in timed]
        assert days == sorted(days)
        assert all((f.at - NOW).total_seconds() == pytest.approx(d * 86_400) for d, f in timed)
        assert len({f.event_id for _, f in timed}) == len(timed)


def test_each_run_takes_a_new_seed_and_says_it_unless_given_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The hub takes a stream it has seen for complaints it already has: a second run with
    a fixed default seed would route nothing."""
    from typer.testing import CliRunner

    import hub.simulate
    from hub import cli

    seeds: list[int] = []

    async def simulated(*_: object, seed: int, **__: object) -> None:
        seeds.append(seed)

    monkeypatch.setattr(hub.simulate, "run_simulation", simulated)
    runner = CliRunner()
    for now in (1_795_000_000.5, 1_795_000_090.2):
        monkeypatch.setattr("hub.cli.time.time", lambda now=now: now)
        done = runner.invoke(cli.cli, ["simulate"])
        assert done.exit_code == 0, done.output
        assert f"seed {int(now)} (--seed {int(now)} sends this stream again)" in done.output
    done = runner.invoke(cli.cli, ["simulate", "--seed", "7"])
    assert done.exit_code == 0 and "seed" not in done.output, done.output
    assert seeds == [1_795_000_000, 1_795_000_090, 7]


@pytest.mark.parametrize(("args", "says"), [
    (["simulate", "--rate", "0"], "--rate must be above 0, not 0.0"),
    (["simulate", "--minutes", "-1"], "--minutes must be above 0, not -1.0"),
    (["simulate", "--rate", "nan"], "--rate must be above 0, not nan"),
    (["dev", "--rate", "0"], "--rate must be above 0, not 0.0"),
])
def test_a_pace_that_is_none_stops_with_one_line_before_anything_starts(
    args: list[str], says: str
) -> None:
    """`dev --rate 0` started the broker and the hub, then its feeder died of a
    ZeroDivisionError; `simulate` printed a seed for a stream it would not send."""
    from typer.testing import CliRunner

    from hub import cli

    done = CliRunner().invoke(cli.cli, args)
    assert (done.exit_code, done.output) == (2, f"lapor-hub: {says}\n")


def test_the_tally_says_why_posts_were_refused() -> None:
    # A 401 (no token for a source) looked like the stream's deliberate 422s: all "refused".
    tally = Tally()
    for why in ("422", "401", "401", "unreachable"):
        tally.refuse(why)
    assert "4 refused (401: 2, 422: 1, unreachable: 1) · 0 ignored" in tally.line()
    assert Tally().line().endswith("· 0 refused · 0 ignored")


async def test_posting_ends_on_the_clock_when_the_hub_sets_a_slower_pace() -> None:
    # `--rate 2000 --minutes 0.1` ran 73 s, not 6: the pace, slowed by a full queue, was
    # the only clock, and the responders had stopped at 6 s.
    async def slow_hub(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.05)
        return httpx.Response(202, json={"accepted": ["1"], "rejected": []})

    tally = Tally()
    async with httpx.AsyncClient(transport=httpx.MockTransport(slow_hub),
                                 base_url="http://hub") as client:
        end = time.monotonic() + 0.5
        await asyncio.wait_for(
            _post_all(client, Settings(ingress_open=True), 1, 1e9, end, tally), 30)
    # 8 posters at 20 a second each for half a second, not a billion posts.
    assert 0 < tally.posted < 200


async def test_follow_ups_the_broker_did_not_take_are_sent_again() -> None:
    # A restarted broker refused the follow-ups: simulate ended in a traceback.
    class RestartingBroker:
        def __init__(self) -> None:
            self.taken: list[bytes] = []
            self.down = True

        async def send(self, topic: str, value: bytes, **_: object) -> asyncio.Future[None]:
            if self.down:
                raise KafkaConnectionError("broker away")
            self.taken.append(value)
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done

    tally = Tally()
    responders = Responders(Settings(), RULES.directory, SEED, tally, since=NOW)
    broker = RestartingBroker()
    responders.producer = broker
    event = routing_event(complaints(1)[0], RULES.directory.route(complaints(1)[0]), 1, NOW,
                          RULES)
    responders.take(event.model_dump_json().encode())
    responders.due = [(0.0, order, e) for _, order, e in responders.due]  # all due now
    planned = len(responders.due)
    await responders.send_due(time.monotonic() + 5)
    assert (tally.sent, tally.resent, len(responders.due)) == (0, planned, planned)
    broker.down = False
    await asyncio.sleep(1.05)
    await responders.send_due(time.monotonic() + 5)
    assert (tally.sent, len(broker.taken), responders.due) == (planned, planned, [])
