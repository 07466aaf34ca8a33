"""X (Twitter): tweets tagged `#LAPOR ... @LAPOR1708`, as API v2 tweet objects.

The payload is a tweet lookup or filtered-stream response: `data` (one tweet or a
list), `includes.users`, `includes.media`, `includes.places`, and `errors` for ids
the lookup could not return. Requested fields: author_id, created_at, entities,
geo, attachments, referenced_tweets, note_tweet; expansions author_id,
attachments.media_keys, geo.place_id (a place's full_name comes by default).

A long post's `text` is its first 280 characters and a link; the whole post is in
`note_tweet.text`, which is what the tags are looked for in and what the agency reads.
"""

from __future__ import annotations

import html
import re
from functools import partial
from typing import Any

from hub.adapters.base import (
    Outcome,
    RawMessage,
    RejectedError,
    Rejection,
    as_coordinate,
    as_list,
    as_object,
    as_text,
    entry_outcome,
    iso_datetime,
    locate,
    message_id_of,
    parse_json_object,
    rejecting,
)
from hub.model import Attachment, Channel, Complaint, Location, Reporter, SourceRef, tracking_id_for

# X's own hashtag and mention rules: preceded by no word character, ended by one.
_TAG = re.compile(r"(?<!\w)#lapor(?!\w)", re.IGNORECASE)
_MENTION = re.compile(r"(?<!\w)@lapor1708(?!\w)", re.IGNORECASE)


@rejecting
def normalize(raw: RawMessage) -> list[Outcome]:
    """Each tweet is one complaint if it carries both #LAPOR and @LAPOR1708."""
    payload = parse_json_object(raw)
    data = payload.get("data")
    tweets = data if isinstance(data, list) else [] if data is None else [data]
    includes = _Includes(as_object(payload.get("includes"), "includes"))
    outcomes: list[Outcome] = [
        entry_outcome(_id(tweet), partial(_complaint, raw, tweet, includes)) for tweet in tweets
    ]
    outcomes.extend(_lookup_errors(payload.get("errors")))
    if not outcomes:
        raise RejectedError("invalid_payload", "no tweets in data")
    return outcomes


class _Includes:
    """The expansions, indexed by the keys tweets refer to them with."""

    def __init__(self, includes: dict[str, Any]) -> None:
        self.users = _index(includes.get("users"), "id", "includes.users")
        self.media = _index(includes.get("media"), "media_key", "includes.media")
        self.places = _index(includes.get("places"), "id", "includes.places")


def _index(value: Any, key: str, field_name: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for item in as_list(value, field_name):
        item_key = message_id_of(item.get(key)) if isinstance(item, dict) else None
        if item_key is not None:
            found.setdefault(item_key, item)
    return found


def _id(tweet: Any) -> str | None:
    return message_id_of(tweet.get("id")) if isinstance(tweet, dict) else None


def _complaint(raw: RawMessage, tweet: Any, includes: _Includes) -> Complaint:
    if not isinstance(tweet, dict):
        raise RejectedError("invalid_payload", "a tweet must be an object")
    tweet_id = as_text(tweet.get("id"), "id", required=True) or ""
    text = as_text(tweet.get("text"), "text", required=True) or ""
    note = tweet.get("note_tweet")
    whole = note.get("text") if isinstance(note, dict) else None
    # A note_tweet not as documented costs the post only its length, not the complaint.
    text = whole if isinstance(whole, str) and whole.strip() else text
    # A retweet repeats someone else's complaint, which arrives on its own.
    if any(
        isinstance(ref, dict) and ref.get("type") == "retweeted"
        for ref in as_list(tweet.get("referenced_tweets"), "referenced_tweets")
    ):
        raise RejectedError("not_a_complaint", "retweet")
    if not (_TAG.search(text) and _MENTION.search(text)):
        raise RejectedError("not_a_complaint", "tweet lacks #LAPOR or @LAPOR1708")
    source = SourceRef(system=raw.source, message_id=tweet_id)
    author = includes.users.get(message_id_of(tweet.get("author_id")) or "", {})
    username = as_text(author.get("username"), "includes.users[].username")
    return Complaint(
        tracking_id=tracking_id_for(source),
        source=source,
        channel=Channel.X,
        description=_description(text),
        location=_location(as_object(tweet.get("geo"), "geo"), includes),
        reporter=Reporter(handle=f"@{username}" if username else None),
        attachments=_attachments(tweet, includes),
        submitted_at=iso_datetime(tweet.get("created_at"), "created_at") or raw.received_at,
        received_at=raw.received_at,
    )


def _description(text: str) -> str:
    """The text without the tag and the mention; API v2 escapes &, < and > as HTML."""
    stripped = _MENTION.sub(" ", _TAG.sub(" ", html.unescape(text)))
    description = "\n".join(" ".join(line.split()) for line in stripped.splitlines()).strip()
    if not description:
        raise RejectedError("missing_field", "tweet has no text beside #LAPOR @LAPOR1708")
    return description


def _location(geo: dict[str, Any], includes: _Includes) -> Location:
    point = as_object(geo.get("coordinates"), "geo.coordinates")
    pair = as_list(point.get("coordinates"), "geo.coordinates.coordinates")
    longitude = latitude = None
    if len(pair) == 2:  # GeoJSON order: longitude first
        longitude = as_coordinate(pair[0], "geo longitude")
        latitude = as_coordinate(pair[1], "geo latitude")
    elif pair:
        raise RejectedError("invalid_field", "geo.coordinates must be [longitude, latitude]")
    place = includes.places.get(message_id_of(geo.get("place_id")) or "", {})
    # full_name is what X returns by default ("Kuningan, Jakarta Selatan"), and the larger
    # place in it settles a district's name that is also a regency's elsewhere; `name`
    # comes only when a poller asks for it.
    full_name = as_text(place.get("full_name"), "includes.places[].full_name")
    name = as_text(place.get("name"), "includes.places[].name")
    location = locate(full_name or name, latitude=latitude, longitude=longitude)
    if location.region_code is None and full_name and name:
        location = locate(name, latitude=latitude, longitude=longitude)
    return location


def _attachments(tweet: dict[str, Any], includes: _Includes) -> tuple[Attachment, ...]:
    attached = as_object(tweet.get("attachments"), "attachments")
    keys = as_list(attached.get("media_keys"), "attachments.media_keys")
    found = []
    for key in keys:
        media = includes.media.get(message_id_of(key) or "")
        attachment = _attachment(media) if media else None
        if attachment is not None:
            found.append(attachment)
    return tuple(found)


def _attachment(media: dict[str, Any]) -> Attachment | None:
    """Photos carry `url`; videos and GIFs carry variants (best bit rate wins) and a preview."""
    url = as_text(media.get("url"), "includes.media[].url")
    if url:
        return Attachment(url=url)
    variants = [
        v
        for v in as_list(media.get("variants"), "includes.media[].variants")
        if isinstance(v, dict) and isinstance(v.get("url"), str) and v["url"]
    ]
    if variants:
        best = max(variants, key=_bit_rate)
        return Attachment(
            url=best["url"], media_type=as_text(best.get("content_type"), "variant content_type")
        )
    preview = as_text(media.get("preview_image_url"), "includes.media[].preview_image_url")
    return Attachment(url=preview) if preview else None


def _bit_rate(variant: dict[str, Any]) -> int:
    rate = variant.get("bit_rate")
    return rate if isinstance(rate, int) else -1


def _lookup_errors(value: Any) -> list[Outcome]:
    """Ids the lookup could not return (deleted, protected): each one told, none lost."""
    if not isinstance(value, list):
        return []
    return [
        Rejection(
            "source_error",
            str(error.get("detail") or error.get("title") or "lookup error")[:500],
            message_id_of(error.get("resource_id")),
        )
        for error in value
        if isinstance(error, dict)
    ]
