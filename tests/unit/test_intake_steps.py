"""lapor_intake_step_seconds: each intake batch's time, split into normalize, store and send."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from hub import metrics
from hub.service import Hub
from tests.support import FakePublisher, web_record

ACK_WAIT = 0.3


class SlowBroker(FakePublisher):
    """Acknowledges each send after ACK_WAIT seconds."""

    async def send(self, pending: Sequence[Any]) -> list[int]:
        await asyncio.sleep(ACK_WAIT)
        return await super().send(pending)


def steps(suffix: str) -> dict[str, float]:
    return {
        step: metrics.REGISTRY.get_sample_value(
            f"lapor_intake_step_seconds{suffix}", {"step": step}
        ) or 0.0
        for step in metrics.INTAKE_STEPS
    }


async def test_each_batch_is_timed_once_per_step_and_the_wait_for_the_broker_is_send(
    driven: tuple[Hub, FakePublisher],
) -> None:
    service, _ = driven
    service.publisher = SlowBroker()  # type: ignore[assignment]
    counts, sums = steps("_count"), steps("_sum")
    batch = [web_record("steps-1", "Lampu penerangan jalan di Jalan Merdeka mati sejak seminggu"),
             web_record("steps-2", "Saluran air di depan pasar tersumbat sampah dan meluap")]
    await service.intake(batch)
    assert len(service.publisher.sent) == 2  # type: ignore[attr-defined]
    after = steps("_sum")
    assert {s: n - counts[s] for s, n in steps("_count").items()} == dict.fromkeys(
        metrics.INTAKE_STEPS, 1.0
    )
    assert after["send"] - sums["send"] >= ACK_WAIT
    assert after["normalize"] > sums["normalize"]
    assert after["store"] > sums["store"]

    # Delivered again: nothing new to send, and still one batch through every step.
    await service.intake(batch)
    assert {s: n - counts[s] for s, n in steps("_count").items()} == dict.fromkeys(
        metrics.INTAKE_STEPS, 2.0
    )
    assert steps("_sum")["send"] - after["send"] < ACK_WAIT  # nothing waited for the broker

