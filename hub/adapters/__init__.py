"""Channel adapters: one module per source, and the registry that names them.

Adding a source is one module with a `normalize(raw) -> list[Outcome]` function plus
one line in `SOURCES` (a provincial system: one line in `provincial.DIALECTS`). The
source name is also the raw topic's suffix (`lapor.raw.<source>`) and the ingress
path (`/intake/<source>`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import ParamSpec, Protocol

from hub.adapters import meta, open311, sms_gateway, sms_twilio, web, whatsapp, x
from hub.adapters.base import (
    Adapter,
    Fragment,
    Outcome,
    RawMessage,
    Rejection,
    placed_by_text,
)
from hub.adapters.provincial import DIALECTS
from hub.model import Complaint

__all__ = [
    "SOURCES", "Fragment", "Outcome", "RawMessage", "Rejection", "Source", "find_source",
]

P = ParamSpec("P")


class Joiner(Protocol):
    """A source's joiner: complete groups of fragments, or all of them when `partial`."""

    def __call__(self, parts: list[Fragment], partial: bool = False) -> list[Outcome]: ...


@dataclass(frozen=True, slots=True)
class Source:
    name: str
    channel: str
    """The channel family (`--channel` on the command line)."""
    normalize: Adapter
    content_types: tuple[str, ...]
    """Content types the ingress accepts for this source."""
    description: str
    join: Joiner | None = None
    """Joins fragments (multi-part SMS) once all parts are in; None if it sends none."""
    relays: bool = False
    """A vendor relaying people's messages (SMS, X, Meta, WhatsApp): a refusal reaches no
    one who could act on it (the vendor retries or drops a 4xx), so the ingress keeps the
    message and the hub makes a dead letter of it."""


_JSON = "application/json"
_FORM = "application/x-www-form-urlencoded"

def _placed(produce: Callable[P, list[Outcome]]) -> Callable[P, list[Outcome]]:
    """`produce` with each complaint given the region its text names, if it had none, and
    each complaint once (`distinct`)."""
    def outcomes(*args: P.args, **kwargs: P.kwargs) -> list[Outcome]:
        return distinct([placed_by_text(o) if isinstance(o, Complaint) else o
                         for o in produce(*args, **kwargs)])
    return outcomes


def distinct(outcomes: list[Outcome]) -> list[Outcome]:
    """Each complaint once: an entry with the message id of one before it is that message
    again, passed over – or, with other content, refused (an export with a ticket number
    twice: the second row was dropped as a repeat, its own text and place with it)."""
    seen: dict[str, Complaint] = {}
    kept: list[Outcome] = []
    for outcome in outcomes:
        if not isinstance(outcome, Complaint) or (
                first := seen.setdefault(outcome.tracking_id, outcome)) is outcome:
            kept.append(outcome)
        elif first != outcome:
            message_id = outcome.source.message_id
            kept.append(Rejection("conflicting_entry", f"{message_id} comes twice in this "
                                  "message with other content; the first is kept", message_id))
    return kept


SOURCES: dict[str, Source] = {
    s.name: replace(s, normalize=_placed(s.normalize), join=s.join and _placed(s.join))
    for s in (
        Source("web", "web", web.normalize, ("application/json",), "lapor.go.id web form"),
        Source("mobile", "mobile", web.normalize, ("application/json",), "LAPOR! mobile app"),
        Source("sms-twilio", "sms", sms_twilio.normalize, (_FORM,), "SMS 1708 via Twilio",
               relays=True),
        Source(
            "sms-gateway", "sms", sms_gateway.normalize, (_JSON,), "SMS 1708 via SMSC gateway",
            join=sms_gateway.join_fragments, relays=True,
        ),
        Source("x", "x", x.normalize, (_JSON,), "X (Twitter) #LAPOR @LAPOR1708", relays=True),
        Source("meta", "meta", meta.normalize, (_JSON,), "Facebook page and Instagram webhooks",
               relays=True),
        Source(whatsapp.SOURCE, "whatsapp", whatsapp.normalize, (_JSON,),
               "WhatsApp Cloud API webhook", relays=True),
        Source("open311", "open311", open311.normalize, (_FORM,), "Open311 GeoReport v2 POST"),
        *(
            Source(name, "provincial", d.normalize, d.content_types, d.description)
            for name, d in DIALECTS.items()
        ),
    )
}


def find_source(channel: str, source: str | None = None) -> Source:
    """Resolve `--channel C [--source S]`: S may be a full source name or a variant of C,
    and C alone may be a source name (sms-twilio, prov-jakarta), as the ingress paths say.

    Variants are named `<channel>-<variant>` (sms-twilio), provincial ones `prov-<name>`.
    """
    if channel in SOURCES:
        named = SOURCES[channel]
        if source in (None, named.name, named.name.split("-", 1)[-1]):
            return named
        raise KeyError(f"--channel {channel} is a source already; --source {source} names "
                       "another: give one of them")
    if source is not None:
        for name in (source, f"{channel}-{source}", f"prov-{source}"):
            if name in SOURCES and SOURCES[name].channel == channel:
                return SOURCES[name]
        known = ", ".join(s.name for s in SOURCES.values() if s.channel == channel)
        if not known:
            raise KeyError(f"unknown channel {channel!r}; channels: "
                           f"{', '.join(sorted(channels()))}; sources: {', '.join(SOURCES)}")
        raise KeyError(f"no source {source!r} for channel {channel!r}; known: {known}")
    matches = [s for s in SOURCES.values() if s.channel == channel]
    if not matches:
        raise KeyError(f"unknown channel {channel!r}; channels: "
                       f"{', '.join(sorted(channels()))}; sources: {', '.join(SOURCES)}")
    return matches[0]


def channels() -> set[str]:
    return {s.channel for s in SOURCES.values()}
