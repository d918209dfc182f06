"""A clean stop reads as one: no socket error and no signal warning per worker.

uvloop closes each worker's listening socket before gunicorn does, and a uvicorn worker
ends by raising the SIGTERM it caught: gunicorn reports both, at INFO, as if something
failed. app.server.logging logs them at DEBUG (and only them).
"""

from __future__ import annotations

import json
import logging
import signal

import pytest

from app.server.logging import RoutineShutdownFilter

pytestmark = pytest.mark.slow
ROUTINE = ("Error while closing socket [Errno 9] Bad file descriptor", "was sent SIGTERM!")


def stopped_output(server) -> list[dict]:
    """The server's JSON log lines after a SIGTERM and a clean exit."""
    server.send_signal(signal.SIGTERM)
    assert server.process.wait(30) == 0, server.output()
    lines = [json.loads(line) for line in server.output().splitlines() if line.startswith("{")]
    assert lines[-1]["event"] == "Shutting down: Master"
    return lines


def test_a_sigterm_stop_prints_neither_line(server):
    lines = stopped_output(server)

    routine = [line for line in lines if any(text in line["event"] for text in ROUTINE)]
    assert routine == []
    assert [line["event"] for line in lines].count("Application shutdown complete.") == 2


def test_at_debug_both_lines_are_there_at_debug_level(start_process, database, identity_env):
    server = start_process({"DATABASE_URL": database.url, "LOG_LEVEL": "DEBUG", **identity_env})
    server.wait_ready()
    server.wait_workers_started()

    lines = stopped_output(server)

    for text in ROUTINE:
        levels = [line["level"] for line in lines if text in line["event"]]
        assert levels == ["debug", "debug"], text  # one per worker


@pytest.mark.parametrize(
    ("msg", "args"),
    [
        ("Error while closing socket %s", ("[Errno 104] Connection reset by peer",)),
        ("Worker (pid:%s) was sent %s!", (42, "SIGABRT")),
        ("Worker (pid:%s) was sent %s! Perhaps out of memory?", (42, "SIGKILL")),
    ],
    ids=["another socket error", "another signal", "SIGKILL"],
)
def test_any_other_such_line_keeps_its_level(msg, args):
    record = logging.LogRecord("gunicorn.error", logging.INFO, __file__, 1, msg, args, None)

    assert RoutineShutdownFilter().filter(record)
    assert (record.levelno, record.levelname) == (logging.INFO, "INFO")
