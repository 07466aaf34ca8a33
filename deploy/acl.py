"""Kafka topics, principals and ACLs for LAPOR Hub, generated from the agency registry.

    python deploy/acl.py --format strimzi     > deploy/k8s/generated/strimzi.yaml
    python deploy/acl.py --format kafka-acls  > deploy/k8s/generated/kafka-acls.sh

The plan (least privilege, every ACL on an exact topic name unless it says prefix):
- agency <code>      reads its topic lapor.agency.<code> (groups lapor.agency.<code>.*),
                     writes lapor.followup;
- adapter-<source>   writes lapor.raw.<source>;
- lapor-hub          reads lapor.raw.* and lapor.followup (groups lapor-hub-*), writes
                     lapor.agency.*, lapor.notification, lapor.deadletter and lapor.raw.*
                     (its HTTP ingress publishes there), reads and writes lapor.retry; may
                     create lapor.* topics, so an agency added to the registry gets its topic
                     before its KafkaTopic exists;
- lapor-hub-replay   `lapor-hub dlq replay`, run by an operator: writes lapor.raw.* and
                     lapor.followup, where dead letters go back to. The hub itself cannot
                     write follow-ups, so it can never speak for an agency.

Topic names follow HUB_TOPIC_PREFIX (default `lapor`) and the registry's `topic:` overrides;
the registry is HUB_AGENCIES_FILE or --agencies (the packaged demo data otherwise).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from hub import topics
from hub.adapters import SOURCES
from hub.routing import Directory
from hub.settings import get_settings

Pattern = Literal["literal", "prefix"]
Resource = Literal["topic", "group"]
DAY_MS = 24 * 3600 * 1000
# How long each kind of topic keeps records: long enough for a consumer that was away.
RETENTION_DAYS = {"raw": 7, "followup": 7, "agency": 30, "notification": 7, "deadletter": 90,
                  "retry": 7}


@dataclass(frozen=True, slots=True)
class Acl:
    resource: Resource
    name: str
    pattern: Pattern
    operations: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    role: Literal["hub", "replay", "adapter", "agency"]
    acls: tuple[Acl, ...]


def read(resource: Resource, name: str, pattern: Pattern = "literal") -> Acl:
    return Acl(resource, name, pattern, ("Read", "Describe") if resource == "topic" else ("Read",))


def write(name: str, pattern: Pattern = "literal") -> Acl:
    return Acl("topic", name, pattern, ("Write", "Describe"))


def kafka_topics(directory: Directory) -> dict[str, str]:
    """Every topic the hub uses, with its kind (for retention)."""
    found = {topics.raw(s): "raw" for s in SOURCES}
    found |= {topics.FOLLOW_UP: "followup", topics.NOTIFICATION: "notification",
              topics.DEAD_LETTER: "deadletter", topics.RETRY: "retry"}
    found |= {a.topic_name: "agency" for a in directory.agencies.values()}
    return found


def plan(directory: Directory, hub_group: str) -> list[Principal]:
    prefix = topics.PREFIX
    hub = Principal("lapor-hub", "hub", (
        read("topic", topics.raw(""), "prefix"),
        read("topic", topics.FOLLOW_UP),
        read("topic", topics.RETRY),
        read("group", f"{hub_group}-", "prefix"),
        write(topics.raw(""), "prefix"),
        write(topics.agency(""), "prefix"),
        *(write(a.topic_name) for a in directory.agencies.values()
          if not a.topic_name.startswith(topics.agency(""))),
        write(topics.NOTIFICATION),
        write(topics.DEAD_LETTER),
        write(topics.RETRY),
        Acl("topic", f"{prefix}.", "prefix", ("Create", "Describe")),
    ))
    replay = Principal("lapor-hub-replay", "replay", (
        write(topics.raw(""), "prefix"),
        write(topics.FOLLOW_UP),
    ))
    adapters = [
        Principal(f"adapter-{source}", "adapter", (write(topics.raw(source)),))
        for source in SOURCES
    ]
    # Agency codes are prefixes of one another (kota-bekasi, kota-bekasi-dinkes): topic ACLs
    # are literal, and group prefixes end in a dot, which a code cannot contain.
    agencies = [
        Principal(agency.code, "agency", (
            read("topic", agency.topic_name),
            read("group", topics.agency_group(agency.topic_name), "prefix"),
            write(topics.FOLLOW_UP),
        ))
        for agency in sorted(directory.agencies.values(), key=lambda a: a.code)
    ]
    return [hub, replay, *adapters, *agencies]


def k8s_name(name: str) -> str:
    return name.lower().replace("_", "-")


def strimzi(
    principals: Sequence[Principal], names: dict[str, str], cluster: str, partitions: int,
    replicas: int,
) -> str:
    labels = {"strimzi.io/cluster": cluster, "app.kubernetes.io/part-of": "lapor-hub"}
    documents: list[dict[str, Any]] = [
        {
            "apiVersion": "kafka.strimzi.io/v1beta2",
            "kind": "KafkaTopic",
            "metadata": {"name": k8s_name(topic), "labels": labels},
            "spec": {
                "topicName": topic,
                "partitions": partitions,
                "replicas": replicas,
                "config": {
                    "retention.ms": RETENTION_DAYS[kind] * DAY_MS,
                    "min.insync.replicas": min(2, replicas),
                },
            },
        }
        for topic, kind in sorted(names.items())
    ]
    documents += [
        {
            "apiVersion": "kafka.strimzi.io/v1beta2",
            "kind": "KafkaUser",
            "metadata": {
                "name": k8s_name(p.name), "labels": {**labels, "lapor.go.id/role": p.role}
            },
            "spec": {
                "authentication": {"type": "scram-sha-512"},
                "authorization": {
                    "type": "simple",
                    "acls": [
                        {
                            "resource": {"type": acl.resource, "name": acl.name,
                                         "patternType": acl.pattern},
                            "operations": list(acl.operations),
                            "host": "*",
                        }
                        for acl in p.acls
                    ],
                },
            },
        }
        for p in principals
    ]
    header = "# Generated by deploy/acl.py from the agency registry: do not edit by hand.\n"
    return header + yaml.safe_dump_all(documents, sort_keys=False)


def kafka_acls(principals: Sequence[Principal]) -> str:
    lines = [
        "#!/bin/sh",
        "# Generated by deploy/acl.py from the agency registry: do not edit by hand.",
        "# BOOTSTRAP and ADMIN_CONFIG (a client properties file of an admin) must be set.",
        "set -eu",
    ]
    for p in principals:
        for acl in p.acls:
            ops = " ".join(f"--operation {op}" for op in acl.operations)
            lines.append(
                f'kafka-acls.sh --bootstrap-server "$BOOTSTRAP" --command-config "$ADMIN_CONFIG"'
                f" --add --allow-principal {shlex.quote('User:' + p.name)} {ops}"
                f" --{acl.resource} {shlex.quote(acl.name)}"
                f" --resource-pattern-type {acl.pattern}"
            )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--format", choices=["strimzi", "kafka-acls"], default="strimzi")
    parser.add_argument("--agencies", type=Path, help="Registry file (default HUB_AGENCIES_FILE).")
    parser.add_argument("--cluster", default="lapor", help="Strimzi Kafka cluster name.")
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--replicas", type=int, default=3)
    args = parser.parse_args(argv)
    settings = get_settings()
    directory = Directory.load(args.agencies or settings.agencies_file)
    principals = plan(directory, settings.kafka_group)
    if args.format == "strimzi":
        out = strimzi(principals, kafka_topics(directory), args.cluster, args.partitions,
                      args.replicas)
    else:
        out = kafka_acls(principals)
    sys.stdout.write(out)


if __name__ == "__main__":
    main()
