"""Schemathesis against the running production server: no 5xx, no schema violations."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
EXAMPLES_PER_OPERATION = 60
SEED = 20261122
CONFIG = Path(__file__).with_name("schemathesis.toml")


def test_schemathesis_default_checks_pass(tmp_path, start_process, database):
    server = start_process({"DATABASE_URL": database.url, "LOG_LEVEL": "WARNING"})
    try:
        server.wait_ready()
        result = subprocess.run(
            [
                str(Path(sys.executable).parent / "schemathesis"),
                f"--config-file={CONFIG}",
                "run",
                f"{server.base_url}/openapi.json",
                f"--max-examples={EXAMPLES_PER_OPERATION}",
                f"--seed={SEED}",
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
