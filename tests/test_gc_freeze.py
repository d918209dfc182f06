"""Long-lived objects are exempt from garbage collection in the server's processes.

gunicorn's hooks freeze what exists once the master imported the app's modules and once a
worker built its app, so a full collection no longer scans them (a pause of about 90 ms), and
a worker collects its young objects less often than Python's default.
The hooks run in a child process: the configuration file reads the settings as it loads.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support import PROJECT_ROOT, child_environment

HOOKS = """
import gc, sys
from types import SimpleNamespace
from app.server import gunicorn_conf
reload = sys.argv[1] == "reload"
server = SimpleNamespace(
    cfg=SimpleNamespace(reload=reload), app=SimpleNamespace(app_uri="app.main:create_app()")
)
gunicorn_conf.on_starting(server)
master = gc.get_freeze_count()
gunicorn_conf.post_worker_init(SimpleNamespace())
print(master, gc.get_freeze_count(), "app.main" in sys.modules, gc.get_threshold()[0],
      gunicorn_conf.YOUNG_COLLECTION_THRESHOLD)
"""


def run_hooks(mode: str, database, identity_env, tmp_path) -> list[str]:
    completed = subprocess.run(
        [sys.executable, "-c", HOOKS, mode],
        cwd=PROJECT_ROOT,
        env=child_environment(
            DATABASE_URL=database.url,
            PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
            WORKER_TMP_DIR=str(tmp_path),
            **identity_env,
        ),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return completed.stdout.split()


@pytest.mark.parametrize("mode", ["serve", "reload"])
def test_processes_freeze_what_they_built_and_workers_collect_young_objects_less(
    mode, database, identity_env, tmp_path
):
    master, worker, imported, threshold, configured = run_hooks(
        mode, database, identity_env, tmp_path
    )

    if mode == "serve":
        assert int(master) > 10_000
        assert imported == "True"
    else:  # --reload: nothing imported in the master, so nothing to freeze there
        assert (int(master), imported) == (0, "False")
    assert int(worker) >= max(int(master), 10_000)
    assert int(threshold) == int(configured) > 700  # Python's default
