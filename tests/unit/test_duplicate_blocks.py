"""Earlier complaints sharing a blocking key are read latest first, at most BLOCK_LIMIT of
them: a key on thousands of rows (a call-centre number) must not make every later batch
compare with all of them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from hub.duplicates import BLOCK_LIMIT, fingerprint
from hub.intake import _candidates, normalize_record
from hub.model import Complaint
from hub.service import Hub
from tests.support import FakePublisher, reworded, unlike_text, web_record

REPORTER = {"telepon": "+6281234567890"}


async def test_a_later_batch_compares_with_the_latest_of_a_block_only(
    driven: tuple[Hub, FakePublisher],
) -> None:
    service, publisher = driven
    count = BLOCK_LIMIT + 10
    for i in range(count):  # one batch each: the candidates come from the database
        await service.intake([web_record(f"old-{i}", unlike_text(i), pelapor=REPORTER)])
    # Read from the database: the latest BLOCK_LIMIT of the block, oldest of them first.
    (complaint,) = normalize_record(
        web_record("probe", reworded(unlike_text(0)), pelapor=REPORTER)
    )
    assert isinstance(complaint, Complaint)
    with service.engine.connect() as conn:
        found = _candidates(conn, [fingerprint(complaint, service.rules.secret)],
                            datetime.now(UTC) - timedelta(days=1), complaint.received_at)
    assert len(found) == BLOCK_LIMIT
    publisher.sent.clear()
    await service.intake([
        web_record("again-latest", reworded(unlike_text(count - 1)), pelapor=REPORTER),
        web_record("again-oldest", reworded(unlike_text(0)), pelapor=REPORTER),
    ])
    events = {json.loads(p.value)["type"]: json.loads(p.value) for p in publisher.sent}
    assert set(events) == {"duplicate", "routing"}
    assert events["duplicate"]["duplicate"]["source"]["message_id"] == "again-latest"
    assert events["routing"]["complaint"]["source"]["message_id"] == "again-oldest"
