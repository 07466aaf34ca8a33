"""Prometheus metrics: one prefix, base units, label values from the registry and enums only.

Follow-up latency is measured in *working* seconds (each working day of the
agency's calendar counts 86,400 s, weekends, holidays and time waiting for the
reporter count 0), so the bucket edges at N × 86,400 s are the deadlines
themselves: "within 5 working days" is the `le="432000"` bucket, exactly.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.registry import Collector

# A `_created` series beside every labelled counter and histogram (a sixth of all of ours:
# 356 of 2,277 lines after 70 s of `lapor-hub dev`) that no rule or panel reads.
disable_created_metrics()  # type: ignore[no-untyped-call]

DAY = 86_400.0
# Edges on the deadlines (3 verification, 5 first follow-up and settle, 10 auto-close,
# 14 and 60 settle) plus a few below a day so fast agencies are visible too.
LATENCY_BUCKETS = tuple(d * DAY for d in (0.125, 0.5, 1, 2, 3, 5, 10, 14, 30, 60, 90))

REGISTRY = CollectorRegistry(auto_describe=True)

received = Counter(
    "lapor_complaints_received_total",
    "Complaints normalized from raw messages, by channel and source.",
    ["channel", "source"],
    registry=REGISTRY,
)
duplicates = Counter(
    "lapor_complaints_duplicate_total",
    "Complaints recognised as duplicates and not routed again, by kind.",
    ["kind"],
    registry=REGISTRY,
)
routed = Counter(
    "lapor_complaints_routed_total",
    "Routing events published, by agency and why that agency.",
    ["agency", "reason"],
    registry=REGISTRY,
)
dead_letters = Counter(
    "lapor_dead_letters_total",
    "Messages dead-lettered, by stage and reason.",
    ["stage", "reason"],
    registry=REGISTRY,
)
follow_ups = Counter(
    "lapor_follow_ups_total",
    "Follow-up events applied, by agency and status.",
    ["agency", "status"],
    registry=REGISTRY,
)
STAGES = ("verification", "first_follow_up", "settle", "close")
"""verification, first follow-up and settle (the first answer, `responded`) are timed from
the routing to the holder, as their deadlines are; close from receipt: the citizen's whole
wait, across holders and the reporter's time to reply."""
latency = Histogram(
    "lapor_follow_up_latency_seconds",
    "Working seconds to each stage, per agency: verification, first_follow_up and settle "
    "(the first answer) from routing to the holder, close from receipt (see module docs).",
    ["agency", "stage"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)


CLOSED_BY = ("reporter", "auto_close")
"""reporter: the agency's `closed` event, the reporter's confirmation; auto_close: the deadline
watcher's, no reply within the auto-close limit after the answer (hub.followup's
AUTO_CLOSE_REASON tells them apart, as `lapor-hub report` does)."""
closes = Counter(
    "lapor_complaints_closed_total",
    "Complaints closed, by the agency holding them and by whom: reporter (confirmed) or "
    "auto_close (no reply within the auto-close limit after the answer).",
    ["agency", "by"],
    registry=REGISTRY,
)


def agencies_known(codes: Iterable[str]) -> None:
    """Every agency's latency and close series from the start, at zero: a series born at its
    first observation starts at 1, and rate() cannot see that step – an agency's first late
    answer after a start was invisible to the SLO rules and alerts."""
    for code in codes:
        for stage in STAGES:
            latency.labels(code, stage)
        for by in CLOSED_BY:
            closes.labels(code, by)
# Wall-clock seconds, unlike the follow-up latency: the hub's own time, door to agency topic.
ROUTING_DELAY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
routing_delay = Histogram(
    "lapor_routing_delay_seconds",
    "Seconds from the hub receiving a complaint to the broker acknowledging its first "
    "routing event, by channel.",
    ["channel"],
    buckets=ROUTING_DELAY_BUCKETS,
    registry=REGISTRY,
)
# Where an intake batch's time goes when the routing delay grows: the hub's CPU, the
# database or the broker. Per batch, not per complaint: the step counts are batches.
INTAKE_STEP_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300
)
INTAKE_STEPS = ("normalize", "store", "send")
intake_step = Histogram(
    "lapor_intake_step_seconds",
    "Seconds an intake batch spent in each step: normalize (and route), store (one "
    "transaction, waits for an unreachable database included), send (routing events until "
    "the broker acknowledged them, waits for an unreachable broker included).",
    ["step"],
    buckets=INTAKE_STEP_BUCKETS,
    registry=REGISTRY,
)
for _step in INTAKE_STEPS:
    intake_step.labels(_step)  # every step's series from the start, at zero
ingress_answers = Counter(
    "lapor_ingress_answers_total",
    "Answers of POST /intake/<source> (and Meta's GET handshake), by source and HTTP "
    "status: 200/202 taken; 4xx refused, nothing published (401 credentials, 408/413 the "
    "body, 415 content type, 422 nothing to accept); 503 the broker away.",
    ["source", "status"],
    registry=REGISTRY,
)
breaches = Counter(
    "lapor_deadline_breaches_total",
    "Deadlines passed without the expected action, by agency and deadline.",
    ["agency", "deadline"],
    registry=REGISTRY,
)
open_complaints = Gauge(
    "lapor_open_complaints",
    "Complaints an agency holds that are not closed or archived.",
    ["agency"],
    registry=REGISTRY,
)
assigned = Gauge(
    "lapor_complaints_assigned",
    "Complaints an agency holds, by follow-up state, for the follow-up rate 1 - not "
    "followed up / total: every complaint, those still within their deadline included.",
    ["agency", "state"],
    registry=REGISTRY,
)
FIRST_FOLLOW_UP_STATES = ("within_deadline", "overdue", "followed_up_7d")
first_follow_up = Gauge(
    "lapor_complaints_first_follow_up",
    "Complaints an agency holds, by their first follow-up now (for the follow-up alert): "
    "within_deadline (none yet, its first-follow-up deadline still ahead or its clock "
    "stopped), overdue (none yet and that deadline passed), followed_up_7d (first followed "
    "up in the last 7 days); complaints followed up before are in none.",
    ["agency", "state"],
    registry=REGISTRY,
)
oldest_open = Gauge(
    "lapor_oldest_open_complaint_age_seconds",
    "Wall-clock age of the oldest open complaint an agency holds.",
    ["agency"],
    registry=REGISTRY,
)
agency_info = Gauge(
    "lapor_agency_info",
    "Always 1: the agency's region, level and coordinator, for joins in queries.",
    ["agency", "region", "level", "parent"],
    registry=REGISTRY,
)
consumer_lag = Gauge(
    "lapor_consumer_lag_messages",
    "Messages behind the partition's high watermark, per topic and partition.",
    ["group", "topic", "partition"],
    registry=REGISTRY,
)
outbox_pending = Gauge(
    "lapor_outbox_pending",
    "Events stored but not yet acknowledged by the broker.",
    registry=REGISTRY,
)
collective_leave_unlisted = Gauge(
    "lapor_collective_leave_unlisted",
    "1 for a year that deadlines set now can run into with no collective leave (cuti "
    "bersama) known, in the deadlines file or the holidays package: those days count as "
    "working days there.",
    ["year"],
    registry=REGISTRY,
)
watch_failures = Counter(
    "lapor_deadline_watch_failures_total",
    "Complaints the deadline watch could not handle (named in the log; tried again each pass).",
    registry=REGISTRY,
)
ready = Gauge(
    "lapor_ready",
    "1 when the broker and database are reachable, 0 otherwise.",
    registry=REGISTRY,
)


def totals(sample: str, label: str, source: Collector = REGISTRY) -> dict[str, float]:
    """This process's samples named `sample`, summed per value of `label`.

    `source`: one metric, so a caller on a hot path collects only that one (default:
    every metric in REGISTRY).
    """
    found: dict[str, float] = {}
    for family in source.collect():
        for s in family.samples:
            if s.name == sample:
                key = s.labels.get(label, "")
                found[key] = found.get(key, 0.0) + s.value
    return found
