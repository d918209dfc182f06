"""checkov over every value set the chart is tested with, install and upgrade renders alike.

One checkov run scans all renders (about 10 s). Every failure must be in the committed skip
list (checkov-skips.yaml) with why it is accepted, within the value sets and resources it
names; an entry nothing fails any more is stale and fails the test too.
"""

from __future__ import annotations

import json
import subprocess
import sys
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import yaml

from tests.chart.conftest import Render
from tests.chart.kube import Release
from tests.chart.value_sets import VALUE_SETS

SKIPS: dict[str, dict[str, Any]] = yaml.safe_load(
    (Path(__file__).parent / "checkov-skips.yaml").read_text()
)
CHECKOV = Path(sys.executable).with_name("checkov")


def _failures(folder: Path) -> list[tuple[str, str, str]]:
    """(check id, value set, resource) of every failed check; --skip-download: offline."""
    result = subprocess.run(
        [
            *(str(CHECKOV), "--framework", "kubernetes", "--directory", str(folder)),
            *("--output", "json", "--quiet", "--compact", "--skip-download"),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode in (0, 1), result.stderr[-3000:]
    reports = json.loads(result.stdout)
    failures = []
    for report in reports if isinstance(reports, list) else [reports]:
        assert report["summary"]["parsing_errors"] == 0, report["summary"]
        for failed in report["results"]["failed_checks"]:
            value_set = Path(failed["file_path"]).stem
            failures.append((failed["check_id"], value_set, failed["resource"]))
    return failures


def _skipped(check: str, value_set: str, resource: str) -> bool:
    skip = SKIPS.get(check)
    if skip is None:
        return False
    return any(fnmatch(f"{value_set}:{resource}", p) for p in skip.get("where", ["*"]))


def test_every_skip_says_why() -> None:
    for check, skip in SKIPS.items():
        assert set(skip) <= {"check", "why", "where"}, check
        assert len(skip["why"].split()) >= 10, check


def test_checkov_fails_nothing_but_the_skips(
    releases: dict[str, Release], render: Render, tmp_path: Path
) -> None:
    for name, values in VALUE_SETS.items():
        (tmp_path / f"{name}.yaml").write_text(releases[name].text)
        (tmp_path / f"{name}-upgrade.yaml").write_text(render(values, upgrade=True).text)
    failures = _failures(tmp_path)
    assert failures, "checkov found nothing to check"
    unexplained = sorted(f for f in failures if not _skipped(*f))
    assert not unexplained, unexplained
    stale = set(SKIPS) - {check for check, _value_set, _resource in failures}
    assert not stale, f"skips nothing fails any more: {sorted(stale)}"
