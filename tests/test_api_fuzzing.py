"""Schemathesis against the running production server: no 5xx, no schema violations.

It calls as a user with both task scopes over every operation (the admin-only ones answer
the documented 403) with three fixed seeds, every default check and the stateful phase, and
as an admin over /api/v1/users, so that those are exercised for real too. Each run gets a
fresh token, so a long session cannot let it expire mid-run; schemathesis's own auth checks
also send requests without it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.identity import CLIENT_SECRET, TASK_SCOPES, client_credentials_token

pytestmark = pytest.mark.slow
EXAMPLES_PER_OPERATION = 30
CONFIG = Path(__file__).with_name("schemathesis.toml")
# The coverage phase is deterministic (boundaries of every field): once is enough. The other
# phases draw their cases from the seed, so each further seed tries other inputs and other
# stateful sequences (POST, then GET/PATCH/DELETE through the OpenAPI links).
RANDOM_PHASES = "--phases=examples,fuzzing,stateful"


@pytest.mark.parametrize(
    ("fuzzer", "seed", "operations"),
    [
        ("user-39", 20261122, []),
        ("user-38", 7, [RANDOM_PHASES]),
        ("user-37", 424242, [RANDOM_PHASES]),
        # tests/test_bad_input.py covers the boundaries of these operations' fields.
        ("admin", 20261122, ["--include-path-regex=^/api/v1/users", RANDOM_PHASES]),
    ],
    ids=["as a user", "as a user, seed 7", "as a user, seed 424242", "as an admin"],
)
def test_schemathesis_default_checks_pass(
    tmp_path, start_process, database, identity_env, identity_provider, fuzzer, seed, operations
):
    server = start_process({"DATABASE_URL": database.url, "LOG_LEVEL": "WARNING", **identity_env})
    token = client_credentials_token(identity_provider, fuzzer, CLIENT_SECRET, TASK_SCOPES)
    try:
        server.wait_ready()
        result = subprocess.run(
            [
                str(Path(sys.executable).parent / "schemathesis"),
                f"--config-file={CONFIG}",
                "run",
                f"{server.base_url}/openapi.json",
                f"--max-examples={EXAMPLES_PER_OPERATION}",
                f"--seed={seed}",
                f"--header=Authorization: Bearer {token}",
                *operations,
                "--no-color",
            ],
            cwd=tmp_path,  # schemathesis keeps a .schemathesis/ folder in its working directory
            # Not child_environment(): coverage would trace the fuzzer too (4x slower), and it
            # measures only the server.
            env={
                name: value
                for name, value in os.environ.items()
                if not name.startswith("COVERAGE_")
            },
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    finally:
        assert server.stop() == 0

    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "Traceback" not in server.output()
    assert token not in server.output()
