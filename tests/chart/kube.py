"""Render the chart with the real helm and read what it rendered, as the cluster would."""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.support import PROJECT_ROOT

CHART = PROJECT_ROOT / "charts" / "groundwork"
RELEASE = "gw"
NAMESPACE = "groundwork"
# The Kubernetes versions the chart supports (Chart.yaml kubeVersion) and is validated against.
OLDEST_KUBERNETES = "1.30.0"
NEWEST_KUBERNETES = "1.37.0"
POD_OWNERS = {"Deployment", "StatefulSet", "Job"}

Manifest = dict[str, Any]


class RenderError(Exception):
    """helm refused to render; the message is helm's stderr."""


def helm_template(
    helm: str,
    values: dict[str, Any],
    tmp_path: Path,
    *,
    upgrade: bool = False,
    release: str = RELEASE,
    kube_version: str = NEWEST_KUBERNETES,
    chart: Path = CHART,
) -> str:
    """Run `helm template` on the chart with `values` and return the YAML it printed."""
    values_file = tmp_path / f"values-{len(list(tmp_path.glob('values-*')))}.yaml"
    values_file.write_text(yaml.safe_dump(values))
    command = [
        helm,
        "template",
        release,
        str(chart),
        "--namespace",
        NAMESPACE,
        "--kube-version",
        kube_version,
        "--values",
        str(values_file),
        *(["--is-upgrade"] if upgrade else []),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RenderError(result.stderr.strip())
    return result.stdout


@dataclass
class Release:
    """The objects one `helm template` rendered."""

    manifests: list[Manifest]
    text: str = field(repr=False)
    # Secrets an operator creates before install (existingSecret), by name.
    outside_secrets: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    @classmethod
    def parse(
        cls, text: str, outside_secrets: Mapping[str, Mapping[str, str]] | None = None
    ) -> Release:
        """Parse helm's multi-document output."""
        documents = [doc for doc in yaml.safe_load_all(text) if doc]
        return cls(documents, text, outside_secrets or {})

    def all(self, kind: str) -> list[Manifest]:
        """Every object of `kind`."""
        return [m for m in self.manifests if m["kind"] == kind]

    def one(self, kind: str, name: str | None = None) -> Manifest:
        """The single object of `kind` (named `name` when given)."""
        found = [m for m in self.all(kind) if name is None or m["metadata"]["name"] == name]
        assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
        return found[0]

    def find(self, kind: str, name: str) -> Manifest | None:
        """The object of `kind` named `name`, if rendered."""
        found = [m for m in self.all(kind) if m["metadata"]["name"] == name]
        return found[0] if found else None

    @property
    def server(self) -> Manifest:
        """The application Deployment."""
        return self.one("Deployment")

    @property
    def migration(self) -> Manifest:
        """The migration Job."""
        return self.one("Job")

    def pod_specs(self) -> Iterator[tuple[Manifest, dict[str, Any]]]:
        """Every pod spec with its owner: workloads' templates and bare pods."""
        for manifest in self.manifests:
            if manifest["kind"] in POD_OWNERS:
                yield manifest, manifest["spec"]["template"]["spec"]
            elif manifest["kind"] == "Pod":
                yield manifest, manifest["spec"]

    def secret_data(self, name: str) -> dict[str, str] | None:
        """Decoded data of a rendered or outside Secret; None when neither has it."""
        secret = self.find("Secret", name)
        if secret is None:
            outside = self.outside_secrets.get(name)
            return dict(outside) if outside is not None else None
        data = {k: base64.b64decode(v).decode() for k, v in secret.get("data", {}).items()}
        return {**data, **secret.get("stringData", {})}

    def resolve_env(self, container: dict[str, Any]) -> dict[str, str]:
        """The environment the kubelet would give `container`, from the rendered objects.

        `envFrom` first, then `env` (later entries win, as in Kubernetes).
        """
        environment: dict[str, str] = {}
        for source in container.get("envFrom", []):
            config_map = self.one("ConfigMap", source["configMapRef"]["name"])
            environment.update(config_map["data"])
        for variable in container.get("env", []):
            if "value" in variable:
                environment[variable["name"]] = str(variable["value"])
                continue
            reference = variable["valueFrom"]
            if "secretKeyRef" in reference:
                key_ref = reference["secretKeyRef"]
                data = self.secret_data(key_ref["name"])
                assert data is not None, f"Secret {key_ref['name']} is not rendered"
            else:
                key_ref = reference["configMapKeyRef"]
                data = self.one("ConfigMap", key_ref["name"])["data"]
            assert key_ref["key"] in data, f"{variable['name']}: no key {key_ref['key']}"
            environment[variable["name"]] = data[key_ref["key"]]
        return environment

    def mounted_files(self, pod: dict[str, Any], container: dict[str, Any]) -> dict[str, str]:
        """The files the kubelet would mount into `container` from Secret volumes, by path.

        A volume's `items` pick keys and name their files; without items every key is a file.
        """
        volumes = {volume["name"]: volume for volume in pod.get("volumes", [])}
        files: dict[str, str] = {}
        for mount in container.get("volumeMounts", []):
            source = volumes.get(mount["name"], {}).get("secret")  # claims are not volumes
            if source is None:
                continue
            data = self.secret_data(source["secretName"])
            assert data is not None, f"Secret {source['secretName']} is not rendered"
            items = source.get("items") or [{"key": key, "path": key} for key in data]
            for item in items:
                assert item["key"] in data, f"{source['secretName']}: no key {item['key']}"
                files[f"{mount['mountPath'].rstrip('/')}/{item['path']}"] = data[item["key"]]
        return files

    def app_settings(self, owner: Manifest, container: dict[str, Any]) -> dict[str, str]:
        """The settings the app in `container` reads: its environment, then SECRETS_DIR's files.

        As in app/core/config.py, a variable wins over a file of the same name.
        """
        environment = self.resolve_env(container)
        folder = environment.get("SECRETS_DIR")
        if folder is None:
            return environment
        files = self.mounted_files(owner["spec"]["template"]["spec"], container)
        prefix = folder.rstrip("/") + "/"
        from_files = {p.removeprefix(prefix): v for p, v in files.items() if p.startswith(prefix)}
        return {**from_files, **environment}


def hook_phases(manifest: Manifest) -> set[str]:
    """The helm hook phases of `manifest` (empty for a plain release resource)."""
    annotations = manifest["metadata"].get("annotations") or {}
    hooks = annotations.get("helm.sh/hook", "")
    return {phase.strip() for phase in hooks.split(",") if phase.strip()}


def sync_wave(manifest: Manifest) -> int:
    """The Argo CD sync wave of `manifest` (0 when unset, as in Argo CD)."""
    annotations = manifest["metadata"].get("annotations") or {}
    return int(annotations.get("argocd.argoproj.io/sync-wave", "0"))


def hook_weight(manifest: Manifest) -> int:
    """The helm hook weight of `manifest` (0 when unset, as in helm)."""
    annotations = manifest["metadata"].get("annotations") or {}
    return int(annotations.get("helm.sh/hook-weight", "0"))


def delete_policies(manifest: Manifest) -> set[str]:
    """The helm hook delete policies of `manifest`."""
    annotations = manifest["metadata"].get("annotations") or {}
    policy = annotations.get("helm.sh/hook-delete-policy", "")
    return {item.strip() for item in policy.split(",") if item.strip()}


def app_containers(release: Release) -> Iterator[tuple[Manifest, dict[str, Any]]]:
    """Containers running the application image (not PostgreSQL)."""
    image = release.server["spec"]["template"]["spec"]["containers"][0]["image"]
    for owner, spec in release.pod_specs():
        for container in spec["containers"]:
            if container["image"] == image:
                yield owner, container
