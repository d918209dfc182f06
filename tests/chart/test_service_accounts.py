"""Which ServiceAccount the migration Job's pod runs under, and that it exists by then.

A pod naming an account that does not exist is refused, and a pre-install hook runs before
any plain resource of the release: a hook Job gets an account of its own, a hook of its phase
with a lower weight; a plain Job (bundled PostgreSQL's first install, gitOps.enabled) the
chart's, created with it or a sync wave earlier.
"""

from __future__ import annotations

import pytest

from tests.chart.conftest import Render
from tests.chart.kube import (
    Manifest,
    Release,
    RenderError,
    delete_policies,
    hook_phases,
    hook_weight,
    sync_wave,
)
from tests.chart.value_sets import VALUE_SETS, merge

CHART_ACCOUNT, MIGRATION_ACCOUNT = "gw-groundwork", "gw-groundwork-migrate"
# mode: (value set, upgrade, the account the Job runs under)
MODES = {
    "external-install-hook": ("external-chart-secret", False, MIGRATION_ACCOUNT),
    "external-upgrade-hook": ("external-chart-secret", True, MIGRATION_ACCOUNT),
    "bundled-install-plain": ("bundled-postgresql", False, CHART_ACCOUNT),
    "bundled-upgrade-hook": ("bundled-postgresql", True, MIGRATION_ACCOUNT),
    "gitops-bundled": ("gitops-bundled", False, CHART_ACCOUNT),
    "gitops-external-upgrade": ("gitops-external", True, CHART_ACCOUNT),
}


def _account_name(job: Manifest) -> str:
    name: str = job["spec"]["template"]["spec"]["serviceAccountName"]
    return name


def _created_before(release: Release, account: Manifest, job: Manifest, upgrade: bool) -> bool:
    """Whether helm or Argo CD has created `account` when the Job's pod is created.

    An account the release already has from an earlier install does not count: it may be
    new in this very upgrade (serviceAccount.create just turned on, a new name).
    """
    if hook_phases(job):
        phase = "pre-upgrade" if upgrade else "pre-install"
        assert phase in hook_phases(job)
        return phase in hook_phases(account) and hook_weight(account) < hook_weight(job)
    if hook_phases(account):
        return False
    if sync_wave(account) != sync_wave(job):
        return sync_wave(account) < sync_wave(job)
    # One install's plain resources are created in helm's install order, which is the order
    # `helm template` prints them in (ServiceAccounts before Jobs).
    return release.manifests.index(account) < release.manifests.index(job)


@pytest.mark.parametrize("mode", list(MODES))
def test_the_job_runs_under_an_account_created_before_it(mode: str, render: Render) -> None:
    name, upgrade, expected = MODES[mode]
    release = render(VALUE_SETS[name], upgrade=upgrade)
    job = release.migration
    assert _account_name(job) == expected
    account = release.one("ServiceAccount", expected)
    assert _created_before(release, account, job, upgrade)
    own_accounts = {a["metadata"]["name"] for a in release.all("ServiceAccount")}
    assert (MIGRATION_ACCOUNT in own_accounts) == bool(hook_phases(job))


@pytest.mark.parametrize("upgrade", [False, True], ids=["install", "upgrade"])
@pytest.mark.parametrize("name", list(VALUE_SETS))
def test_no_value_set_runs_the_job_under_a_missing_or_default_account(
    name: str, upgrade: bool, render: Render
) -> None:
    release = render(VALUE_SETS[name], upgrade=upgrade)
    job = release.migration
    account = release.find("ServiceAccount", _account_name(job))
    assert account is not None, "the chart creates accounts: the Job must use one of them"
    assert _created_before(release, account, job, upgrade)
    assert _account_name(job) != "default"


def test_the_migration_account_is_a_labelled_tokenless_hook_with_the_annotations(
    releases: dict[str, Release],
) -> None:
    release = releases["everything-on"]
    chart_account = release.one("ServiceAccount", CHART_ACCOUNT)
    account = release.one("ServiceAccount", MIGRATION_ACCOUNT)
    labels = {**chart_account["metadata"]["labels"], "app.kubernetes.io/component": "migration"}
    assert account["metadata"]["labels"] == labels
    assert account["automountServiceAccountToken"] is False
    assert delete_policies(account) == {"before-hook-creation", "hook-succeeded"}
    assert hook_phases(account) == hook_phases(release.migration)
    # A cloud identity (IRSA, workload identity) follows the Job into its own account.
    annotations = VALUE_SETS["everything-on"]["serviceAccount"]["annotations"]
    assert annotations.items() <= account["metadata"]["annotations"].items()


@pytest.mark.parametrize("upgrade", [False, True], ids=["install", "upgrade"])
@pytest.mark.parametrize(("account", "expected"), [("ops-made", "ops-made"), ("", "default")])
def test_without_created_accounts_the_job_uses_the_named_one_or_default(
    render: Render, upgrade: bool, account: str, expected: str
) -> None:
    outside = {"serviceAccount": {"create": False, "name": account}}
    for name in ("external-chart-secret", "bundled-postgresql"):
        release = render(merge(VALUE_SETS[name], outside), upgrade=upgrade)
        assert release.all("ServiceAccount") == []
        assert _account_name(release.migration) == expected
        assert release.server["spec"]["template"]["spec"]["serviceAccountName"] == expected


def test_the_chart_account_may_not_take_the_migration_accounts_name(render: Render) -> None:
    values = merge(
        VALUE_SETS["external-chart-secret"], {"serviceAccount": {"name": MIGRATION_ACCOUNT}}
    )
    with pytest.raises(RenderError, match="is the migration Job's own account"):
        render(values)
    renamed = merge(values, {"serviceAccount": {"name": "gw-api"}})
    assert _account_name(render(renamed).migration) == MIGRATION_ACCOUNT
