"""NetworkPolicies read as the cluster applies them, in a namespace that denies by default.

Who may reach the pods, and what the migration Job may reach when it runs.

A policy exists for the Job if helm or Argo CD has created it before the Job: a hook of the
Job's phase with a lower weight, a plain resource of the same install (helm applies
NetworkPolicies before Jobs; Argo CD by sync wave), or, on an upgrade, one the release
already has.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.chart.conftest import Render
from tests.chart.kube import NAMESPACE, Manifest, Release, hook_phases, hook_weight, sync_wave
from tests.chart.value_sets import VALUE_SETS, merge

PROMETHEUS = {"app.kubernetes.io/name": "prometheus"}
MONITORING = {"kubernetes.io/metadata.name": "monitoring"}


def _matches(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """A label selector: matchLabels and matchExpressions ({} selects everything)."""
    selector = selector or {}
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values")
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def _admits(
    peers: list[dict[str, Any]] | None, namespace: dict[str, str], pod: dict[str, str]
) -> bool:
    """Whether a pod (labels) in a namespace (labels) is one of `peers` (absent: everyone)."""
    if peers is None:
        return True
    own_namespace = namespace.get("kubernetes.io/metadata.name") == NAMESPACE
    for peer in peers:
        if "ipBlock" in peer:
            continue
        if "namespaceSelector" in peer:
            in_namespace = _matches(peer["namespaceSelector"], namespace)
        else:
            in_namespace = own_namespace
        if in_namespace and ("podSelector" not in peer or _matches(peer["podSelector"], pod)):
            return True
    return False


def _ingress_allowed(release: Release, namespace: dict[str, str], pod: dict[str, str]) -> bool:
    """Whether a client pod may reach the server pods' HTTP port."""
    server = release.server["spec"]["template"]["metadata"]["labels"]
    policies = [
        p for p in release.all("NetworkPolicy") if _matches(p["spec"]["podSelector"], server)
    ]
    assert policies
    return any(
        any(port["port"] == "http" for port in rule.get("ports", []))
        and _admits(rule.get("from"), namespace, pod)
        for policy in policies
        for rule in policy["spec"].get("ingress", [])
    )


def test_prometheus_in_another_namespace_scrapes_a_restricted_release(
    releases: dict[str, Release], render: Render
) -> None:
    release = releases["everything-on"]
    assert release.one("ServiceMonitor")
    assert _ingress_allowed(release, MONITORING, PROMETHEUS)
    assert not _ingress_allowed(release, MONITORING, {"app.kubernetes.io/name": "grafana"})
    assert _ingress_allowed(release, {"kubernetes.io/metadata.name": "ingress"}, {})
    # Its own selector value: another Prometheus label, or nobody.
    values = VALUE_SETS["everything-on"]
    custom = {
        "networkPolicy": {"metricsFrom": [{"namespaceSelector": {"matchLabels": MONITORING}}]}
    }
    scoped = render(merge(values, custom))
    assert _ingress_allowed(scoped, MONITORING, {"app": "vmagent"})
    assert not _ingress_allowed(scoped, {"kubernetes.io/metadata.name": "other"}, PROMETHEUS)
    closed = render(merge(values, {"networkPolicy": {"metricsFrom": []}}))
    assert not _ingress_allowed(closed, MONITORING, PROMETHEUS)


def test_without_ingress_from_every_client_may_connect(releases: dict[str, Release]) -> None:
    """The default (ingressFrom: []) restricts no client, so Prometheus needs no rule."""
    release = releases["bundled-postgresql"]
    assert _ingress_allowed(release, MONITORING, {"any": "pod"})


def _present_for(release: Release, job: Manifest, upgrade: bool) -> list[Manifest]:
    """The NetworkPolicies that exist when the migration Job's pod starts."""
    phases = hook_phases(job)
    present = []
    for policy in release.all("NetworkPolicy"):
        policy_phases = hook_phases(policy)
        if phases:
            phase = "pre-upgrade" if upgrade else "pre-install"
            assert phase in phases
            earlier_hook = phase in policy_phases and hook_weight(policy) < hook_weight(job)
            from_the_release = upgrade and not policy_phases
            if earlier_hook or from_the_release:
                present.append(policy)
        elif not policy_phases and sync_wave(policy) <= sync_wave(job):
            present.append(policy)
    return present


def _egress_to(
    policies: list[Manifest],
    pod: dict[str, str],
    port: int,
    protocol: str,
    target: dict[str, str] | None,
) -> bool:
    """Whether `pod` may open `port`/`protocol` to a pod labelled `target` (None: outside)."""
    selecting = [p for p in policies if _matches(p["spec"]["podSelector"], pod)]
    for policy in selecting:
        for rule in policy["spec"].get("egress", []):
            ports = {(p["port"], p.get("protocol", "TCP")) for p in rule.get("ports", [])}
            if ports and (port, protocol) not in ports:
                continue
            peers = rule.get("to")
            if peers is None:
                return True
            for peer in peers:
                if target is None and "ipBlock" in peer:
                    return True
                if (
                    target is not None
                    and "podSelector" in peer
                    and _matches(peer["podSelector"], target)
                ):
                    return True
    return False


def _ingress_to(
    policies: list[Manifest], pod: dict[str, str], port: str, client: dict[str, str]
) -> bool:
    selecting = [p for p in policies if _matches(p["spec"]["podSelector"], pod)]
    if not selecting:
        return False  # default deny
    own = {"kubernetes.io/metadata.name": NAMESPACE}
    return any(
        any(p["port"] == port for p in rule.get("ports", []))
        and _admits(rule.get("from"), own, client)
        for policy in selecting
        for rule in policy["spec"].get("ingress", [])
    )


@pytest.mark.parametrize("upgrade", [False, True], ids=["install", "upgrade"])
@pytest.mark.parametrize("name", list(VALUE_SETS))
def test_the_migration_job_reaches_dns_and_the_database_under_default_deny(
    name: str, upgrade: bool, render: Render
) -> None:
    release = render(merge(VALUE_SETS[name], {"networkPolicy": {"enabled": True}}), upgrade=upgrade)
    job = release.migration
    pod = job["spec"]["template"]["metadata"]["labels"]
    policies = _present_for(release, job, upgrade)
    assert _egress_to(policies, pod, 53, "UDP", None), [p["metadata"]["name"] for p in policies]
    assert _egress_to(policies, pod, 53, "TCP", None)
    statefulsets = release.all("StatefulSet")
    if statefulsets:
        database = statefulsets[0]["spec"]["template"]["metadata"]["labels"]
        port = statefulsets[0]["spec"]["template"]["spec"]["containers"][0]["ports"][0]
        assert _egress_to(policies, pod, port["containerPort"], "TCP", database)
        assert _ingress_to(policies, database, port["name"], pod)
    else:
        assert _egress_to(policies, pod, 5432, "TCP", None)
