"""The docs site builds strictly, shows what the code has, and the GitHub workflow is valid.

Each build runs in a copy of the site (mkdocs.yml, docs/, CHANGELOG.md) under a temporary
folder, with the generated pages written there, so it never touches the working tree.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from app.core.config import ServerSettings, Settings
from app.identity.settings import IdentitySettings
from docs import generate

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"
# Files outside docs/ that pages include with `--8<--` (pymdownx.snippets, base path `.`).
SNIPPET_SOURCES = ("CHANGELOG.md", "README.md")


def copy_site(destination: Path) -> Path:
    """Copy the site's sources into `destination`, the code path pointing back at the repo."""
    shutil.copytree(ROOT / "docs", destination / "docs", ignore=shutil.ignore_patterns("generated"))
    for included in SNIPPET_SOURCES:
        shutil.copy(ROOT / included, destination / included)
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    config["plugins"][1]["mkdocstrings"]["handlers"]["python"]["paths"] = [str(ROOT)]
    (destination / "mkdocs.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    generate.main(destination / "docs" / "generated")
    return destination


def build(site: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BIN / "zensical", "build", "--strict", "--clean"],
        cwd=site,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built site: the folder that holds every page's index.html."""
    source = copy_site(tmp_path_factory.mktemp("docs"))
    result = build(source)
    assert result.returncode == 0, result.stdout + result.stderr
    return source / ".cache" / "site"


def page(site: Path, name: str) -> str:
    return (site / name / "index.html").read_text(encoding="utf-8")


def test_every_nav_page_is_built(site: Path) -> None:
    for name in ["configuration", "development", "authentication", "operations", "deploy"]:
        assert "<h1" in page(site, name)
    assert "Keep a Changelog" in page(site, "changelog")
    assert (site / "generated" / "openapi.json").is_file()


@pytest.mark.parametrize(
    "broken",
    ["[a page](no-such-page.md)", "[an anchor](#no-such-anchor)", "::: app.core.config.Missing"],
)
def test_a_broken_reference_fails_the_build(tmp_path: Path, broken: str) -> None:
    source = copy_site(tmp_path)
    with (source / "docs" / "operations.md").open("a", encoding="utf-8") as page_file:
        page_file.write(f"\n{broken}\n")
    result = build(source)
    assert result.returncode != 0, result.stdout + result.stderr


@pytest.mark.parametrize("settings_class", [Settings, ServerSettings, IdentitySettings])
def test_the_configuration_page_lists_every_setting(
    site: Path, settings_class: type[Settings]
) -> None:
    html = page(site, "configuration")
    for name in settings_class.model_fields:
        assert f"<td>{name.upper()}</td>" in html


def test_the_configuration_page_shows_defaults_limits_and_comments(site: Path) -> None:
    html = page(site, "configuration")
    row = re.search(r"<tr>\s*<td>DB_POOL_SIZE</td>(.*?)</tr>", html, re.S)
    assert row is not None
    assert "<code>10</code>" in row.group(1)
    assert "&gt; 0" in row.group(1)
    assert "A fixed pool sized to a worker&rsquo;s concurrency" in row.group(1) or (
        "A fixed pool sized to a worker's concurrency" in row.group(1)
    )
    issuer = re.search(r"<tr>\s*<td>OIDC_ISSUER</td>(.*?)</tr>", html, re.S)
    assert issuer is not None
    assert "required" in issuer.group(1)


def test_the_http_api_page_has_every_operation(site: Path) -> None:
    html = page(site, "http-api")
    document = generate.openapi_document()
    for path, operations in document["paths"].items():
        for method in operations:
            assert f"{method.upper()} <code>{path}</code>" in html


def test_the_api_reference_renders_the_docstrings(site: Path) -> None:
    assert "Read and validate the identity settings once per process." in page(
        site, "reference/settings"
    )
    assert "list_tasks" in page(site, "reference/routes")
    assert "TaskService" in page(site, "reference/services")


def test_the_site_loads_nothing_from_another_host(site: Path) -> None:
    for html_file in site.rglob("*.html"):
        html = html_file.read_text(encoding="utf-8")
        assert not re.search(r"<script[^>]+src=\"(https?:)?//", html), html_file
        assert not re.search(r"<link[^>]+rel=\"stylesheet\"[^>]+href=\"(https?:)?//", html)


def actionlint(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BIN / "actionlint", "-no-color", *paths], capture_output=True, text=True, timeout=60
    )


def test_the_github_workflow_passes_actionlint() -> None:
    result = actionlint(WORKFLOW)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    text = WORKFLOW.read_text(encoding="utf-8").replace("runs-on: ubuntu-latest", "runs_on: x")
    broken.write_text(text, encoding="utf-8")
    result = actionlint(broken)
    assert result.returncode == 1
    assert "runs-on" in result.stdout


def test_the_github_workflow_runs_make_check_and_builds_the_image() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    assert set(workflow[True]) == {"push", "pull_request"}  # YAML 1.1 reads `on` as True
    runs = [step.get("run", "") for job in workflow["jobs"].values() for step in job["steps"]]
    assert "make check" in runs
    assert any(run.startswith("docker build") for run in runs)
    uses = [step.get("uses", "") for job in workflow["jobs"].values() for step in job["steps"]]
    setup_uv = next(step for step in workflow["jobs"]["check"]["steps"] if "setup-uv" in str(step))
    assert setup_uv["with"]["enable-cache"] is True
    assert any(use.startswith("actions/checkout@") for use in uses)


def test_make_check_builds_the_docs() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    check = re.search(r"^check: (.*?) ##", makefile, re.M)
    assert check is not None
    assert check.group(1).split() == ["lint", "typecheck", "docs", "test"]
