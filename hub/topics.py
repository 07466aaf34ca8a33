"""Topic names: one convention, one place.

    lapor.raw.<source>        raw bytes from one source (channel adapter, provincial system)
    lapor.agency.<agency>     routing events for one agency (what its system subscribes to,
                              in consumer groups named lapor.agency.<agency>.<name>)
    lapor.followup            follow-up events from every agency, keyed by tracking id
    lapor.notification        status changes for the citizen, by original channel
    lapor.deadletter          what can never succeed as sent, with reason and original bytes
    lapor.retry               records that failed for an unknown reason, waiting for a retry

`lapor` is the default prefix (HUB_TOPIC_PREFIX). Everything about one complaint is
keyed by its tracking id, so it stays in one partition and in order.
"""

from __future__ import annotations

from hub.settings import get_settings

# HUB_TOPIC_PREFIX separates environments (or test runs) sharing one cluster.
PREFIX = get_settings().topic_prefix
FOLLOW_UP = f"{PREFIX}.followup"
NOTIFICATION = f"{PREFIX}.notification"
DEAD_LETTER = f"{PREFIX}.deadletter"
RETRY = f"{PREFIX}.retry"
OWN = (FOLLOW_UP, NOTIFICATION, DEAD_LETTER, RETRY)
"""The hub's own topics beside the raw ones."""
NAME_PATTERN = r"^[a-zA-Z0-9._-]{1,249}$"
"""Kafka's own rule for a topic name: Apache Kafka refuses any other, every send to it."""


def raw(source: str) -> str:
    return f"{PREFIX}.raw.{source}"


def is_hubs_own(topic: str) -> bool:
    """Whether the hub itself reads or writes `topic` (no agency's topic may be one)."""
    return topic in OWN or topic.startswith(raw(""))


def agency(code: str) -> str:
    return f"{PREFIX}.agency.{code}"


def agency_group(topic: str, name: str = "") -> str:
    """A consumer group of the agency reading `topic`: the topic, a dot, a name of its own.
    The ACL plan (deploy/acl.py) grants an agency the groups under its topic's prefix, the
    dot keeping kota-bekasi out of kota-bekasi-dinkes's."""
    return f"{topic}.{name}"
