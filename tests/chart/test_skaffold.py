"""skaffold.yaml: valid against Skaffold's own schema, and consistent with the chart."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.chart.conftest import Render
from tests.chart.kube import CHART, PROJECT_ROOT
from tests.chart.value_sets import merge

SKAFFOLD = PROJECT_ROOT / "skaffold.yaml"
SCHEMA = PROJECT_ROOT.parent / "shared" / "schemas" / "skaffold-v4beta14.json"
IMAGE_TEMPLATE = re.compile(r"^\{\{\.IMAGE_(REPO|TAG)_(\w+)\}\}$")


@pytest.fixture(scope="module")
def skaffold() -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(SKAFFOLD.read_text())
    return config


def _with_profile(config: dict[str, Any], name: str) -> dict[str, Any]:
    """Apply a profile's JSON patches (the `add` operations skaffold.yaml uses)."""
    patched = copy.deepcopy(config)
    profile = next(p for p in config["profiles"] if p["name"] == name)
    for patch in profile.get("patches", []):
        assert patch["op"] == "add", patch
        *parents, last = patch["path"].strip("/").split("/")
        target: Any = patched
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        if isinstance(target, list):
            target.append(patch["value"]) if last == "-" else target.insert(
                int(last), patch["value"]
            )
        else:
            target[last] = patch["value"]
    return patched


def _release(config: dict[str, Any]) -> dict[str, Any]:
    releases = config["deploy"]["helm"]["releases"]
    assert len(releases) == 1
    release: dict[str, Any] = releases[0]
    return release


def test_skaffold_config_matches_the_v4beta14_schema(skaffold: dict[str, Any]) -> None:
    if not SCHEMA.exists():
        pytest.skip(
            f"SKIPPED LOUDLY: no Skaffold schema at {SCHEMA} (shared/ is not beside the clone)"
        )
    schema = json.loads(SCHEMA.read_text())
    assert skaffold["apiVersion"] == "skaffold/v4beta14"
    for config in (skaffold, _with_profile(skaffold, "dev")):
        jsonschema.validate(config, schema)
    misspelled = merge(skaffold, {"deploy": {"helm": {"relases": []}}})
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(misspelled, schema)


def _has_value(values: dict[str, Any], dotted: str) -> bool:
    node: Any = values
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def test_value_templates_set_values_the_chart_has(skaffold: dict[str, Any]) -> None:
    chart_values = yaml.safe_load((CHART / "values.yaml").read_text())
    artifacts = {artifact["image"] for artifact in skaffold["build"]["artifacts"]}
    templates = _release(skaffold)["setValueTemplates"]
    assert set(templates) == {"image.repository", "image.tag"}
    for key, template in templates.items():
        assert _has_value(chart_values, key), key
        match = IMAGE_TEMPLATE.match(template)
        assert match, template
        assert match.group(2) in artifacts, f"{template} names no built artifact"
    repository = IMAGE_TEMPLATE.match(templates["image.repository"])
    tag = IMAGE_TEMPLATE.match(templates["image.tag"])
    assert repository, templates
    assert tag, templates
    assert repository.group(1) == "REPO"
    assert tag.group(1) == "TAG"


def test_skaffold_deploys_and_forwards_what_the_chart_renders(
    skaffold: dict[str, Any], render: Render
) -> None:
    dev = _with_profile(skaffold, "dev")
    release = _release(dev)
    assert Path(PROJECT_ROOT / release["chartPath"]).resolve() == CHART
    values: dict[str, Any] = {}
    for values_file in release["valuesFiles"]:
        values = merge(values, yaml.safe_load((PROJECT_ROOT / values_file).read_text()))
    values = merge(values, {"image": {"repository": "groundwork", "tag": "dev-abc123"}})
    rendered = render(values, release=release["name"])
    forward = dev["portForward"][0]
    assert forward["resourceType"] == "service"
    assert forward["namespace"] == release["namespace"]
    service = rendered.one("Service", forward["resourceName"])
    assert forward["port"] in {port["port"] for port in service["spec"]["ports"]}
    container = rendered.server["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "groundwork:dev-abc123"
    assert "--reload" in container["command"]
    artifact = dev["build"]["artifacts"][0]
    assert all(rule["dest"] == "/app" for rule in artifact["sync"]["manual"])
    # Sync writes files as the container's user, which must own the code and may write.
    context = container["securityContext"]
    assert context["readOnlyRootFilesystem"] is False
    owner = f"{context['runAsUser']}:{context['runAsGroup']}"
    assert artifact["docker"]["buildArgs"]["APP_CODE_OWNER"] == owner
    assert "ARG APP_CODE_OWNER" in (PROJECT_ROOT / "Dockerfile").read_text()
