"""deploy/: the compose file, the Kubernetes manifests and the Kafka ACL plan hold together.

Offline: compose is checked by its structure (and by `docker compose config` where that
works), built-in Kubernetes kinds against their schemas (kubernetes-validate), Strimzi and
Prometheus Operator resources by their required fields, and the ACL plan by evaluating it
the way Kafka's authorizer does.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml

from hub.adapters import SOURCES
from hub.agency_client import client_group
from hub.routing import Directory
from hub.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
KUBERNETES_VERSION = "1.32.0"
SETTINGS = {f"HUB_{name.upper()}" for name in Settings.model_fields}
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
KAFKA_TOPIC = re.compile(r"^[a-zA-Z0-9._-]{1,249}$")
STRIMZI_OPERATIONS = {"Read", "Write", "Create", "Delete", "Alter", "Describe", "ClusterAction",
                      "AlterConfigs", "DescribeConfigs", "IdempotentWrite", "All"}


def run_acl(fmt: str) -> str:
    # The plan follows HUB_TOPIC_PREFIX and HUB_AGENCIES_FILE: generate with the defaults.
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    out = subprocess.run([sys.executable, str(DEPLOY / "acl.py"), "--format", fmt],
                         capture_output=True, text=True, check=True, env=env, cwd=ROOT)
    return out.stdout


# -- compose -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return data


def env_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    assert isinstance(env, dict), "environment as a mapping"
    return {k: str(v) for k, v in env.items()}


def test_compose_runs_a_three_node_kraft_cluster(compose: dict[str, Any]) -> None:
    services = compose["services"]
    brokers = sorted(name for name in services if name.startswith("kafka-"))
    assert len(brokers) == 3
    envs = {name: env_of(services[name]) for name in brokers}
    voters = {f"{e['KAFKA_NODE_ID']}@{name}:9093" for name, e in envs.items()}
    assert len({e["KAFKA_NODE_ID"] for e in envs.values()}) == 3
    for name, env in envs.items():
        assert services[name]["image"].startswith("apache/kafka:3.9")
        assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
        assert set(env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")) == voters
        assert f"INTERNAL://{name}:9092" in env["KAFKA_ADVERTISED_LISTENERS"].split(",")
        assert "CONTROLLER://:9093" in env["KAFKA_LISTENERS"].split(",")
        assert int(env["KAFKA_MIN_INSYNC_REPLICAS"]) < int(env["KAFKA_DEFAULT_REPLICATION_FACTOR"])
        assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "3"
        assert any(v.endswith(":/var/lib/kafka/data") for v in services[name]["volumes"])
    assert len({e["CLUSTER_ID"] for e in envs.values()}) == 1


def test_compose_hub_is_scaled_on_postgres_and_the_cluster(compose: dict[str, Any]) -> None:
    services = compose["services"]
    hub, migrate = services["hub"], services["migrate"]
    assert hub["command"] == ["lapor-hub", "run"]
    assert hub["deploy"]["replicas"] >= 2
    env = env_of(hub)
    # A fixed host port cannot serve several replicas: a range, one port for each.
    (published,) = hub["ports"]
    first, last = (int(p) for p in published.split(":")[-2].split("-"))
    assert last - first + 1 >= hub["deploy"]["replicas"]
    assert published.endswith(f":{env['HUB_HTTP_PORT']}")
    assert set(env) <= SETTINGS, f"not a hub setting: {set(env) - SETTINGS}"
    assert sorted(env["HUB_KAFKA_BOOTSTRAP"].split(",")) == [
        f"kafka-{i}:9092" for i in (1, 2, 3)
    ]
    assert env["HUB_KAFKA_IDEMPOTENT_PRODUCER"] == "true"
    assert env["HUB_TOPIC_REPLICATION"] == "3"
    assert env["HUB_HTTP_HOST"] == "0.0.0.0"
    db = urlsplit(env["HUB_DATABASE_URL"])
    postgres = env_of(services["postgres"])
    assert db.scheme == "postgresql+psycopg"
    assert (db.hostname, db.port, db.path) == ("postgres", 5432, f"/{postgres['POSTGRES_DB']}")
    assert db.username == postgres["POSTGRES_USER"]
    # The migration runs once, to completion, before any hub starts.
    assert migrate["command"] == ["lapor-hub", "db", "upgrade"]
    assert env_of(migrate)["HUB_DATABASE_URL"] == env["HUB_DATABASE_URL"]
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert hub["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert all(hub["depends_on"][f"kafka-{i}"]["condition"] == "service_healthy"
               for i in (1, 2, 3))


def test_compose_files_and_volumes_exist(compose: dict[str, Any]) -> None:
    named = set(compose.get("volumes") or {})
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name}: {source} is missing"
            else:
                assert source in named, f"{name}: volume {source} is not declared"
        build = service.get("build")
        if build:
            assert (DEPLOY / build["context"] / build["dockerfile"]).is_file()
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert "FROM python:3.11-slim" in dockerfile
    assert "pip install ." in dockerfile


def test_compose_monitoring_matches_the_prometheus_and_grafana_files(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    mounts = dict(v.split(":")[:2] for v in services["grafana"]["volumes"])
    providers = yaml.safe_load(
        (DEPLOY / "grafana/provisioning/dashboards/lapor-hub.yml").read_text()
    )["providers"]
    assert {p["options"]["path"] for p in providers} <= {mounts["./grafana/dashboards"]}
    datasources = yaml.safe_load(
        (DEPLOY / "grafana/provisioning/datasources/prometheus.yml").read_text()
    )["datasources"]
    assert {urlsplit(d["url"]).hostname for d in datasources} <= set(services)
    # Replicas share the name `hub`: only DNS discovery finds each of them.
    config = yaml.safe_load((DEPLOY / "prometheus/prometheus.yml").read_text())
    discovered = {(n, d["port"]) for job in config["scrape_configs"]
                  for d in job.get("dns_sd_configs", []) for n in d["names"]}
    assert ("hub", int(env_of(services["hub"])["HUB_HTTP_PORT"])) in discovered


def test_docker_compose_accepts_the_file() -> None:
    docker = shutil.which("docker") or "docker"
    try:
        usable = subprocess.run([docker, "compose", "version"], capture_output=True,
                                check=False).returncode == 0
    except FileNotFoundError:
        usable = False
    if not usable:
        pytest.skip("no `docker compose` here: the structure tests above stand in for it")
    out = subprocess.run(
        [docker, "compose", "-f", str(DEPLOY / "compose.yaml"), "config", "--quiet"],
        capture_output=True, text=True, check=False,
        env={**os.environ, "HUB_SECRET_KEY": "test-only"},
    )
    assert out.returncode == 0, out.stderr


# -- Kubernetes ----------------------------------------------------------------------------

def manifests() -> list[dict[str, Any]]:
    files = sorted(K8S.glob("*.yaml")) + sorted((K8S / "generated").glob("*.yaml"))
    return [doc for f in files if f.name != "kustomization.yaml"
            for doc in yaml.safe_load_all(f.read_text()) if doc]


def by_kind(kind: str) -> list[dict[str, Any]]:
    return [m for m in manifests() if m["kind"] == kind]


def test_builtin_kinds_match_the_kubernetes_schemas() -> None:
    checked = 0
    for manifest in manifests():
        if manifest["apiVersion"].split("/")[0] in ("kafka.strimzi.io", "monitoring.coreos.com"):
            continue
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
        checked += 1
    assert checked >= 5


def test_strimzi_resources_have_what_the_operators_require() -> None:
    for manifest in manifests():
        if not manifest["apiVersion"].startswith("kafka.strimzi.io/"):
            continue
        assert manifest["apiVersion"] == "kafka.strimzi.io/v1beta2"
        meta, spec = manifest["metadata"], manifest["spec"]
        assert DNS_SUBDOMAIN.match(meta["name"]), meta["name"]
        assert meta["labels"]["strimzi.io/cluster"] == "lapor"
        if manifest["kind"] == "KafkaTopic":
            assert KAFKA_TOPIC.match(spec["topicName"])
            assert spec["partitions"] >= 1
            assert 1 <= spec["config"]["min.insync.replicas"] < spec["replicas"]
        else:
            assert manifest["kind"] == "KafkaUser"
            assert spec["authentication"]["type"] in ("scram-sha-512", "tls", "tls-external")
            assert spec["authorization"]["type"] == "simple"
            for acl in spec["authorization"]["acls"]:
                assert acl["resource"]["type"] in ("topic", "group", "cluster", "transactionalId")
                assert acl["resource"]["patternType"] in ("literal", "prefix")
                assert set(acl["operations"]) <= STRIMZI_OPERATIONS


def test_hub_deployment_references_hold_together() -> None:
    (deployment,) = by_kind("Deployment")
    (service,) = by_kind("Service")
    (monitor,) = by_kind("ServiceMonitor")
    (job,) = by_kind("Job")
    configs = {c["metadata"]["name"]: c for c in by_kind("ConfigMap")}
    users = {u["metadata"]["name"] for u in by_kind("KafkaUser")}
    pod = deployment["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    assert deployment["spec"]["replicas"] >= 2
    assert container["args"] == ["lapor-hub", "run"]
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == [
        "lapor-hub", "db", "upgrade"]
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == container["image"]
    config = configs[container["envFrom"][0]["configMapRef"]["name"]]["data"]
    names = set(config) | {e["name"] for e in container["env"]}
    assert names <= SETTINGS, f"not a hub setting: {names - SETTINGS}"
    assert {"HUB_DATABASE_URL", "HUB_SECRET_KEY", "HUB_KAFKA_SASL_PASSWORD"} <= names
    # The SASL identity is a KafkaUser of the ACL plan; Strimzi names its secret after it.
    assert config["HUB_KAFKA_SASL_USERNAME"] in users
    password = next(e for e in container["env"] if e["name"] == "HUB_KAFKA_SASL_PASSWORD")
    assert password["valueFrom"]["secretKeyRef"]["name"] == config["HUB_KAFKA_SASL_USERNAME"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert Path(config["HUB_KAFKA_SSL_CAFILE"]).parent == Path(mounts["kafka-ca"])
    assert Path(config["HUB_AGENCIES_FILE"]).parent == Path(mounts["agencies"])
    labels = pod["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"][
        "labels"].items()
    ports = {p["name"] for p in service["spec"]["ports"]}
    assert {e["port"] for e in monitor["spec"]["endpoints"]} <= ports
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    # The start (migrations waiting on the upgrade Job's lock among them) may take minutes:
    # the liveness probe alone restarted a pod whose start took over 90 s.
    start = container["startupProbe"]
    assert start["httpGet"]["path"] == "/healthz"
    assert start["periodSeconds"] * start["failureThreshold"] >= 600


def test_kustomize_renders_every_manifest() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl not found")
    out = subprocess.run([kubectl, "kustomize", str(K8S)], capture_output=True, text=True,
                         check=True)
    rendered = [d for d in yaml.safe_load_all(out.stdout) if d]
    assert len(rendered) == len(manifests())


def test_generated_manifests_are_up_to_date() -> None:
    fresh = run_acl("strimzi")
    committed = (K8S / "generated" / "strimzi.yaml").read_text()
    assert fresh == committed, "run: python deploy/acl.py --format strimzi > " \
                               "deploy/k8s/generated/strimzi.yaml (and --format kafka-acls)"
    assert run_acl("kafka-acls") == (K8S / "generated" / "kafka-acls.sh").read_text()


# -- the ACL plan --------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Grant:
    principal: str
    operation: str
    resource: str
    name: str
    pattern: str


def grants_from_strimzi(text: str) -> set[Grant]:
    return {
        Grant(user["metadata"]["name"], op, acl["resource"]["type"], acl["resource"]["name"],
              acl["resource"]["patternType"])
        for user in yaml.safe_load_all(text) if user and user["kind"] == "KafkaUser"
        for acl in user["spec"]["authorization"]["acls"] for op in acl["operations"]
    }


def grants_from_kafka_acls(text: str) -> set[Grant]:
    found: set[Grant] = set()
    for line in text.splitlines():
        if not line.startswith("kafka-acls.sh"):
            continue
        words = shlex.split(line)
        value = {w: words[i + 1] for i, w in enumerate(words[:-1]) if w.startswith("--")}
        resource = "topic" if "--topic" in value else "group"
        ops = [words[i + 1] for i, w in enumerate(words) if w == "--operation"]
        found |= {Grant(value["--allow-principal"].removeprefix("User:"), op, resource,
                        value[f"--{resource}"], value["--resource-pattern-type"]) for op in ops}
    return found


class Authorizer:
    """Kafka's allow rule: an ACL matches a literal name, or a prefix of it."""

    def __init__(self, grants: Iterable[Grant]) -> None:
        self.grants = list(grants)

    def allows(self, principal: str, operation: str, resource: str, name: str) -> bool:
        return any(
            g.principal == principal and g.operation in (operation, "All")
            and g.resource == resource
            and (name == g.name if g.pattern == "literal" else name.startswith(g.name))
            for g in self.grants
        )


@pytest.fixture(scope="module")
def plan() -> tuple[Authorizer, set[Grant]]:
    grants = grants_from_strimzi(run_acl("strimzi"))
    return Authorizer(grants), grants


def test_both_formats_state_the_same_acls(plan: tuple[Authorizer, set[Grant]]) -> None:
    _, grants = plan
    assert grants_from_kafka_acls(run_acl("kafka-acls")) == grants
    script = K8S / "generated" / "kafka-acls.sh"
    assert subprocess.run(["sh", "-n", str(script)], check=False).returncode == 0


def test_an_agency_reads_only_its_topic_and_writes_only_follow_ups(
    plan: tuple[Authorizer, set[Grant]],
) -> None:
    acl, _ = plan
    agencies = Directory.load(None).agencies
    topics = {a.code: a.topic_name for a in agencies.values()}
    shared = ["lapor.followup", "lapor.notification", "lapor.deadletter", "lapor.retry",
              *(f"lapor.raw.{s}" for s in SOURCES)]
    for code, own in topics.items():
        assert acl.allows(code, "Read", "topic", own), code
        assert acl.allows(code, "Read", "group", f"{own}.dashboard")
        # The reference client, `lapor-hub agency <code>`, under the agency's credentials.
        assert acl.allows(code, "Read", "group", client_group(agencies[code])), code
        assert acl.allows(code, "Write", "topic", "lapor.followup")
        # kota-bekasi must not read kota-bekasi-dinkes, though one code prefixes the other.
        for other in [t for c, t in topics.items() if c != code] + shared:
            assert not acl.allows(code, "Read", "topic", other), (code, other)
        for other in [*topics.values(), *shared]:
            if other != "lapor.followup":
                assert not acl.allows(code, "Write", "topic", other), (code, other)
        assert not acl.allows(code, "Read", "group", "lapor-hub-intake")
        assert not acl.allows(code, "Create", "topic", own)


def test_an_adapter_writes_only_its_raw_topic(plan: tuple[Authorizer, set[Grant]]) -> None:
    acl, grants = plan
    everything = [f"lapor.raw.{s}" for s in SOURCES] + ["lapor.followup", "lapor.notification",
                                                         "lapor.deadletter", "lapor.agency.ojk"]
    for source in SOURCES:
        principal = f"adapter-{source}"
        assert acl.allows(principal, "Write", "topic", f"lapor.raw.{source}")
        assert [t for t in everything if acl.allows(principal, "Write", "topic", t)] == [
            f"lapor.raw.{source}"]
        assert {g.operation for g in grants if g.principal == principal} == {"Write", "Describe"}


def test_the_hub_reads_its_inputs_and_writes_its_outputs(
    plan: tuple[Authorizer, set[Grant]],
) -> None:
    acl, grants = plan
    for source in SOURCES:
        assert acl.allows("lapor-hub", "Read", "topic", f"lapor.raw.{source}")
    assert acl.allows("lapor-hub", "Read", "topic", "lapor.followup")
    assert acl.allows("lapor-hub", "Read", "group", "lapor-hub-intake")
    assert acl.allows("lapor-hub", "Read", "group", "lapor-hub-followup")
    for agency in Directory.load(None).agencies.values():
        assert acl.allows("lapor-hub", "Write", "topic", agency.topic_name)
        assert not acl.allows("lapor-hub", "Read", "topic", agency.topic_name)
    for topic in ("lapor.notification", "lapor.deadletter"):
        assert acl.allows("lapor-hub", "Write", "topic", topic)
        assert not acl.allows("lapor-hub", "Read", "topic", topic)
    assert acl.allows("lapor-hub", "Read", "topic", "lapor.retry")
    assert acl.allows("lapor-hub", "Write", "topic", "lapor.retry")
    # Follow-ups speak for an agency: the hub never writes them, only an operator's replay.
    assert not acl.allows("lapor-hub", "Write", "topic", "lapor.followup")
    assert acl.allows("lapor-hub-replay", "Write", "topic", "lapor.followup")
    assert all(acl.allows("lapor-hub-replay", "Write", "topic", f"lapor.raw.{s}") for s in SOURCES)
    assert not {g.operation for g in grants if g.principal == "lapor-hub-replay"} - {
        "Write", "Describe"}
