"""Complaints open while the operator changes the agency registry between restarts."""

from __future__ import annotations

from dataclasses import replace

import sqlalchemy as sa

from hub.model import Status
from hub.service import Hub
from tests.support import FakePublisher
from tests.unit.test_follow_up_refusals import clinic_complaint, handed_on, send, without


async def test_the_national_admin_takes_to_itself_a_complaint_whose_agency_left(
    driven: tuple[Hub, FakePublisher],
) -> None:
    # "dispositioned --to <national admin>" by the national admin was taken and written in the
    # history, but the complaint stayed with the departed code: the admin's next step was
    # refused not_holder, and the departed agency's figures kept it.
    service, publisher = driven
    tracking_id, holder = await clinic_complaint(service, publisher, "left-self-1")
    national = service.rules.directory.national.code
    service.rules = replace(service.rules, directory=without(service.rules.directory, holder))
    assert not await send(service, publisher, tracking_id, national, Status.DISPOSITIONED,
                          target_agency=national)
    (routed,) = handed_on(publisher)
    assert (routed["agency_code"], routed["reason"]) == (national, "disposition")
    assert not await send(service, publisher, tracking_id, national, Status.IN_PROGRESS)
    with service.engine.connect() as conn:
        held = conn.execute(sa.text("SELECT agency_code FROM complaint WHERE tracking_id = :t"),
                            {"t": tracking_id}).scalar_one()
    assert held == national
