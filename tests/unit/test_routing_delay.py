"""lapor_routing_delay_seconds: once per complaint routed, from its receipt to the broker's ack."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from hub import metrics
from hub.service import Hub
from tests.support import FakePublisher, web_record


def sample(suffix: str, **labels: str) -> float:
    value = metrics.REGISTRY.get_sample_value(
        f"lapor_routing_delay_seconds{suffix}", {"channel": "web", **labels}
    )
    return value or 0.0


def observed() -> tuple[float, float, float]:
    """Count, sum, and how many took at most 10 s."""
    return sample("_count"), sample("_sum"), sample("_bucket", le="10.0")


async def test_each_routed_complaint_is_timed_once_from_its_receipt(
    driven: tuple[Hub, FakePublisher],
) -> None:
    service, publisher = driven
    count, total, fast = observed()
    began = time.monotonic()
    now = datetime.now(UTC)
    late = web_record(
        "delay-1", "Jembatan gantung di Desa Sukamaju putus sejak banjir bulan lalu",
        region="32.16", received_at=now - timedelta(seconds=30),
    )
    await service.intake([
        late,
        web_record("delay-2", "Antrean pembuatan KTP elektronik di kecamatan sampai sore hari",
                   received_at=now),
    ])
    took = time.monotonic() - began
    assert len(publisher.sent) == 2
    after = observed()
    assert after[0] - count == 2
    # 30 s waiting before the hub saw it, plus the intake itself, once per complaint.
    assert 30.0 <= after[1] - total <= 30.0 + 2 * took
    assert after[2] - fast == 1  # only the one received just now

    # Delivered again: stored already, not routed again, so not timed again.
    await service.intake([late])
    assert observed()[0] == after[0]
