"""Value sets the chart is rendered and validated with."""

from __future__ import annotations

from typing import Any

import yaml

from tests.chart.kube import CHART, PROJECT_ROOT

# Distinctive so a leak into a ConfigMap or an annotation is found by plain search.
EXTERNAL_PASSWORD = "pw-7f3a9c-never-in-a-configmap"
EXTERNAL_URL = f"postgresql://app:{EXTERNAL_PASSWORD}@db.example.com:5432/app?sslmode=require"
DIRECT_URL = f"postgresql://app:{EXTERNAL_PASSWORD}@direct.example.com:5432/app?sslmode=require"
OWNER_PASSWORD = "owner-pw-41d2e8-only-for-the-migration-job"
ISSUER = "https://login.example.com/realms/groundwork"
# Required: the chart renders nothing without an issuer and an audience.
IDENTITY: dict[str, Any] = {"oidc": {"issuer": ISSUER, "audience": "groundwork"}}


def _load(path: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((PROJECT_ROOT / path).read_text())
    return loaded


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Merge values like helm does with several -f files (maps merge, the rest replaces)."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


# What operators create before installing with existingSecret (see values-neon.yaml).
OUTSIDE_SECRETS: dict[str, dict[str, str]] = {
    "groundwork-db": {
        "pooled-url": EXTERNAL_URL,
        "direct-url": DIRECT_URL,
        "password": EXTERNAL_PASSWORD,
        "owner-password": OWNER_PASSWORD,
    },
    "groundwork-neon": {"DATABASE_URL": EXTERNAL_URL, "MIGRATION_DATABASE_URL": DIRECT_URL},
    # The bundled PostgreSQL's passwords, e.g. from External Secrets (README.md, "GitOps").
    "groundwork-postgresql-credentials": {
        "postgres-password": "superuser-pw-0c51aa-outside",
        "password": OWNER_PASSWORD,
        "runtime-password": "runtime-pw-9e2b77-outside",
    },
}

BUNDLED_POSTGRESQL: dict[str, Any] = {
    "postgresql": {
        "enabled": True,
        "auth": {"username": "service", "runtimeUsername": "service_app", "database": "service"},
        "persistence": {"size": "20Gi", "storageClass": "fast-ssd"},
    },
    "networkPolicy": {"enabled": True},
}

EXTERNAL_EXISTING_SECRET: dict[str, Any] = {
    "postgresql": {"enabled": False},
    "externalDatabase": {
        "existingSecret": "groundwork-db",
        "existingSecretKeys": {
            "url": "pooled-url",
            "migrationUrl": "direct-url",
            "password": "password",
            "migrationPassword": "owner-password",
        },
        "pgbouncer": True,
    },
}

EXTERNAL_CHART_SECRET: dict[str, Any] = {
    "postgresql": {"enabled": False},
    "externalDatabase": {
        "url": EXTERNAL_URL,
        "migrationUrl": DIRECT_URL,
        "password": EXTERNAL_PASSWORD,
        "migrationPassword": OWNER_PASSWORD,
    },
}

EVERYTHING_ON: dict[str, Any] = {
    "image": {"digest": "sha256:" + "a" * 64},
    "imagePullSecrets": [{"name": "registry"}],
    "extraEnv": [{"name": "APP_NAME", "value": "groundwork-staging"}],
    "serviceAccount": {"annotations": {"example.com/role": "groundwork"}},
    "podAnnotations": {"example.com/team": "platform"},
    "podLabels": {"team": "platform"},
    "ingress": {
        "enabled": True,
        "className": "traefik",
        "annotations": {"example.com/ingress": "yes"},
        "hosts": [{"host": "api.example.com", "paths": [{"path": "/", "pathType": "Prefix"}]}],
        "tls": [{"hosts": ["api.example.com"], "secretName": "api-tls"}],
    },
    "httpRoute": {
        "enabled": True,
        "parentRefs": [{"name": "public", "namespace": "gateways", "sectionName": "https"}],
        "hostnames": ["api.example.com"],
    },
    "oidc": {
        "jwksUrl": "https://keys.example.com:8443/realms/groundwork/certs",
        "algorithms": ["RS256", "ES256"],
        "requireAtJwt": True,
        "rolesClaim": "realm_access.roles",
        "docsClientId": "groundwork-docs",
    },
    "cors": {"allowedOrigins": ["https://app.example.com", "http://localhost:5173"]},
    "autoscaling": {"enabled": True, "targetMemoryUtilizationPercentage": 80},
    # (10 pods + 3 surge) x 2 workers x (10 + 0 + 1) + 2 = 288 connections.
    "externalDatabase": {"maxConnections": 300},
    "networkPolicy": {
        "enabled": True,
        "ingressFrom": [
            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress"}}}
        ],
    },
    "metrics": {
        "serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
        "prometheusRule": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
    },
    "nodeSelector": {"kubernetes.io/os": "linux"},
    "tolerations": [
        {"key": "dedicated", "operator": "Equal", "value": "api", "effect": "NoSchedule"}
    ],
    "affinity": {
        "nodeAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 1,
                    "preference": {
                        "matchExpressions": [{"key": "pool", "operator": "In", "values": ["api"]}]
                    },
                }
            ]
        }
    },
    "priorityClassName": "high",
}

# Argo CD or `helm template | kubectl apply`: no hooks, no lookup, no generated password.
GITOPS: dict[str, Any] = {"gitOps": {"enabled": True}}
GITOPS_BUNDLED: dict[str, Any] = merge(
    merge(BUNDLED_POSTGRESQL, GITOPS),
    {"postgresql": {"auth": {"existingSecret": "groundwork-postgresql-credentials"}}},
)

VALUE_SETS: dict[str, dict[str, Any]] = {
    "defaults": IDENTITY,
    "bundled-postgresql": merge(IDENTITY, BUNDLED_POSTGRESQL),
    "external-existing-secret": merge(IDENTITY, EXTERNAL_EXISTING_SECRET),
    "external-chart-secret": merge(IDENTITY, EXTERNAL_CHART_SECRET),
    "neon-example": merge(
        _load(str((CHART / "values-neon.yaml").relative_to(PROJECT_ROOT))), IDENTITY
    ),
    "kind-dev": merge(_load("k8s/values-dev.yaml"), _load("k8s/values-dev-sync.yaml")),
    "everything-on": merge(merge(IDENTITY, EXTERNAL_CHART_SECRET), EVERYTHING_ON),
    "gitops-bundled": merge(IDENTITY, GITOPS_BUNDLED),
    "gitops-external": merge(
        merge(merge(IDENTITY, EXTERNAL_EXISTING_SECRET), GITOPS),
        {"networkPolicy": {"enabled": True}},
    ),
}
