"""`make bench`: the application side by side with bare baselines, on a seeded PostgreSQL 18.

One command: start the development OpenID Provider and a throwaway PostgreSQL 18 with the
owner and runtime roles, migrate it with `python -m app migrate` (as the owner), seed it
server-side with users keyed on the provider's identities, get each caller a token (client
credentials), start the application (`python -m app serve`, the production gunicorn
configuration, trusting the provider) and two baselines under the same gunicorn configuration,
then drive each endpoint with wrk on loopback, every request with `Authorization: Bearer`.
Baseline and application runs alternate within every round (and swap order between rounds)
so that machine drift hits both alike; the table shows the median over rounds.

Besides the table: the median in-process cost of `TokenVerifier.verify` with cached keys (and
of joserfc alone), and the database statements per request of the application and the
baseline (pg_stat_statements). Results also go to a JSON file under `bench-results/`.

This is a benchmark, not a test: a missed target prints MISS and the command still succeeds.

Settings (environment): BENCH_DURATION (seconds per run, 8), BENCH_WARMUP (seconds before each
run, 1), BENCH_ROUNDS (3), BENCH_SEED_USERS (10000), BENCH_SEED_TASKS (1000000),
BENCH_CONNECTIONS (64), BENCH_THREADS (2), BENCH_CALLERS (identities whose tokens the load
sends, 8), BENCH_VERIFY_RUNS (timed token verifications, 5000), BENCH_COUNT_REQUESTS
(requests per server whose statements are counted, 200), BENCH_RESULTS_DIR (bench-results).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Generator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg

from app.core.config import Settings
from app.dev.embedded_postgres import free_port
from app.dev.identity_provider import (
    API_SCOPES,
    ClientSpec,
    DevIdentityProvider,
    find_node_modules,
    node_executable,
)
from app.identity.settings import IdentitySettings
from tests.bench.load import LoadResult, LoadSettings, Request, Workload, run_wrk
from tests.bench.seed import (
    DEEP_PAGE_FRACTION,
    RUNTIME_ROLE,
    BenchDatabase,
    Caller,
    SeededData,
    migrate,
    seed,
    start_database,
    subject_of,
)
from tests.bench.servers import (
    Server,
    application_command,
    baseline_command,
    compile_bytecode,
    machine_busy_cpu_seconds,
    process_tree_cpu_seconds,
    start_server,
)
from tests.bench.statements import EXTENSION, count_statements, tracking
from tests.bench.tokens import measure_verification
from tests.identity import client_credentials_token
from tests.support import PROJECT_ROOT

WORKERS = 2
APPLICATION = "app"
BASELINE_MODULES = {
    "bare": "tests.bench.baseline_bare:app",
    "psycopg": "tests.bench.baseline_psycopg:app",
}
PAGE_SIZE = 50
READY_TIMEOUT_SECONDS = 60.0
METRICS_SCRAPES = 20
MEGABYTE = 1024 * 1024
PACKAGES = (
    "gunicorn",
    "uvicorn",
    "uvicorn-worker",
    "fastapi",
    "starlette",
    "pydantic",
    "sqlalchemy",
    "sqlmodel",
    "psycopg",
    "psycopg-pool",
    "prometheus-client",
)
NEW_TASK = {"title": "Benchmark task", "description": "Created by make bench", "status": "todo"}
TASK_CHANGE = {"title": "Benchmark task, renamed"}
AUDIENCE = "http://groundwork.bench"
CLIENT_SECRET = "bench-client-secret"  # of the throwaway provider's clients
SCOPE = " ".join(API_SCOPES)
TOKEN_LIFETIME_SECONDS = 4 * 3600  # longer than any run: no token expires under load
VERIFY_WARMUP = 500
VERIFY_TARGET_US = 100


@dataclass(frozen=True)
class BenchConfig:
    """How long, how hard and on how much data the benchmark runs."""

    duration: float = 8.0
    warmup: float = 1.0
    rounds: int = 3
    seed_users: int = 10_000
    seed_tasks: int = 1_000_000
    connections: int = 64
    threads: int = 2
    callers: int = 8
    verify_runs: int = 5_000
    count_requests: int = 200
    results_dir: Path = Path("bench-results")

    @classmethod
    def from_environment(cls) -> BenchConfig:
        """Read `BENCH_<FIELD>` variables (BENCH_DURATION, BENCH_SEED_TASKS, ...)."""
        values: dict[str, Any] = {}
        for field in fields(cls):
            raw = os.environ.get(f"BENCH_{field.name.upper()}")
            if raw is not None:
                converter: Callable[[str], Any] = type(getattr(cls, field.name))
                values[field.name] = converter(raw)
        return cls(**values)


@dataclass(frozen=True)
class Run:
    """One timed run: what wrk saw, and the CPU the server and PostgreSQL spent per request.

    CPU per request hardly depends on what else the machine is doing, unlike requests/s.
    """

    load: LoadResult
    server_cpu_ms: float
    postgres_cpu_ms: float


@dataclass(frozen=True)
class Summary:
    """One server on one workload: medians over the rounds, errors summed."""

    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int
    server_cpu_ms: float
    postgres_cpu_ms: float

    @classmethod
    def of(cls, runs: list[Run]) -> Summary:
        """Summarise the rounds of one server on one workload."""
        return cls(
            requests_per_second=statistics.median(run.load.requests_per_second for run in runs),
            p50_ms=statistics.median(run.load.p50_ms for run in runs),
            p99_ms=statistics.median(run.load.p99_ms for run in runs),
            errors=sum(run.load.errors for run in runs),
            requests=sum(run.load.requests for run in runs),
            server_cpu_ms=statistics.median(run.server_cpu_ms for run in runs),
            postgres_cpu_ms=statistics.median(run.postgres_cpu_ms for run in runs),
        )


@dataclass(frozen=True)
class Target:
    """One goal of the issue, as measured."""

    goal: str
    measured: str
    met: bool


def workloads(data: SeededData, tokens: dict[str, str]) -> list[Workload]:
    """The endpoints to measure, each with the baseline it is compared to.

    Every request carries its caller's token. The application finds the caller from the
    token; the baseline, which never reads it, from the user id in its path.
    """

    def both(
        method: str, path: str, caller: Caller, body: Mapping[str, object] | None = None
    ) -> tuple[Request, Request]:
        token = tokens[caller.subject]
        baseline_path = path.replace("/api/v1/me", f"/api/v1/users/{caller.user_id}", 1)
        return Request(method, path, body, token), Request(method, baseline_path, body, token)

    def workload(name: str, title: str, pairs: list[tuple[Request, Request]]) -> Workload:
        return Workload(
            name,
            title,
            "psycopg",
            tuple(app for app, _ in pairs),
            tuple(baseline for _, baseline in pairs),
        )

    first_page = f"/api/v1/me/tasks?limit={PAGE_SIZE}"
    health = (Request("GET", "/health"),)
    readiness = (Request("GET", "/health/db"),)
    return [
        Workload("health", "GET /health", "bare", health, health),
        Workload("health_db", "GET /health/db", "psycopg", readiness, readiness),
        workload("get_me", "GET /me", [both("GET", "/api/v1/me", user) for user in data.callers]),
        workload(
            "get_task",
            "GET one task",
            [both("GET", f"/api/v1/me/tasks/{task}", user) for user, task in data.tasks],
        ),
        workload(
            "tasks_first_page",
            f"GET {PAGE_SIZE} tasks, first page",
            [both("GET", first_page, data.big_user)],
        ),
        workload(
            "tasks_deep_page",
            f"GET {PAGE_SIZE} tasks, {DEEP_PAGE_FRACTION:.0%} deep",
            [both("GET", f"{first_page}&cursor={data.deep_cursor}", data.big_user)],
        ),
        workload(
            "create_task",
            "POST a task",
            [both("POST", "/api/v1/me/tasks", user, NEW_TASK) for user in data.callers],
        ),
        workload(
            "update_task",
            "PATCH a task",
            [
                both("PATCH", f"/api/v1/me/tasks/{task}", user, TASK_CHANGE)
                for user, task in data.tasks
            ],
        ),
    ]


@dataclass(frozen=True)
class Measurement:
    """Every timed run, and how far the machine's other work may have disturbed them."""

    runs: dict[str, dict[str, list[Run]]]
    other_cpu_share: float
    worker_restarts_seen: dict[str, int]


def main() -> int:
    """Run the whole benchmark; exit 0 whether or not the targets are met."""
    config = BenchConfig.from_environment()
    if shutil.which("wrk") is None:
        print("make bench needs wrk: apt-get install wrk (as root)", file=sys.stderr)
        return 1
    try:
        node_executable()
        find_node_modules()
    except RuntimeError as missing:
        print(f"make bench needs the development OpenID Provider: {missing}", file=sys.stderr)
        return 1
    started = datetime.now(UTC)
    load_average_before = os.getloadavg()[0]
    with ExitStack() as cleanup:
        scratch = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="gw-bench-")))
        compile_started = time.monotonic()
        compile_bytecode(PROJECT_ROOT)
        compile_seconds = time.monotonic() - compile_started
        say(f"byte-compiled the virtualenv and the project in {compile_seconds:.1f} s")
        provider = cleanup.enter_context(identity_provider(scratch / "oidc", config.callers))
        identity = IdentitySettings(
            _env_file=None,
            oidc_issuer=provider.issuer,
            oidc_audience=AUDIENCE,
        )
        tokens = caller_tokens(provider)
        say(f"OpenID Provider on {provider.issuer}; {len(tokens)} callers have a token")
        verification = measure_verification(
            identity, tokens[subject_of(0)], config.verify_runs, VERIFY_WARMUP
        )
        say(
            f"TokenVerifier.verify: median {verification.verify_us:.1f} us"
            f" (joserfc alone {verification.joserfc_us:.1f} us)"
        )
        say(f"PostgreSQL 18 in {scratch}; migrating and seeding")
        database, data, seed_seconds = seeded_database(
            cleanup, scratch / "postgres", config, provider.issuer, preload=(EXTENSION,)
        )
        say(
            f"seeded {data.users:,} users and {data.total_tasks:,} tasks in {seed_seconds:.1f} s"
            f" (big user: {data.big_user_tasks:,} tasks)"
        )
        servers = cleanup.enter_context(running_servers(database, identity, scratch))
        plan = workloads(data, tokens)
        check_workloads(servers, plan, data)
        measurement = measure(config, servers, plan, database.postmaster_pid, scratch)
        rss = {name: list(server.worker_rss_bytes().values()) for name, server in servers.items()}
        scrape = scrape_metrics(servers[APPLICATION])
        readiness = servers[APPLICATION].ready_after
        replacement = servers[APPLICATION].time_worker_replacement(READY_TIMEOUT_SECONDS)
        statements = statements_per_request(config, servers, plan, database.admin_url)
        postgres_version = server_version(database.admin_url)
        provisioned = users_in(database.admin_url) - data.users
        jwks_fetches = provider.request_count(urlsplit(provider.jwks_uri).path)
    report: dict[str, Any] = {
        "date": started.isoformat(timespec="seconds"),
        "git": git_state(),
        "machine": {**machine_info(), "postgresql": postgres_version},
        "config": {
            **asdict(config),
            "results_dir": str(config.results_dir),
            "workers": WORKERS,
            "max_requests": max_requests(),
        },
        "data": {
            "users": data.users,
            "tasks": data.total_tasks,
            "big_user_tasks": data.big_user_tasks,
            "seed_seconds": round(seed_seconds, 2),
        },
        "identity": {
            "issuer": provider.issuer,
            "callers": [caller.subject for caller in data.callers],
            "users_provisioned_during_run": provisioned,
            "jwks_fetches": jwks_fetches,
        },
        "token_verification": asdict(verification),
        "endpoints": endpoint_results(plan, measurement.runs),
        "statements_per_request": statements,
        "readiness_seconds": readiness,
        "worker_replacement_seconds": replacement,
        "worker_rss_bytes": rss,
        "metrics_scrape": scrape,
        "disturbance": {
            "other_cpu_share": round(measurement.other_cpu_share, 3),
            "load_average_before": load_average_before,
            "worker_restarts_seen": measurement.worker_restarts_seen,
        },
    }
    report["targets"] = [asdict(target) for target in evaluate_targets(report)]
    print_report(report)
    path = write_report(report, config.results_dir, started)
    print(f"\nResults: {path}")
    return 0


def caller_tokens(provider: DevIdentityProvider) -> dict[str, str]:
    """A client-credentials token for each of the provider's clients, by client id (subject)."""
    return {
        client.client_id: client_credentials_token(provider, client.client_id, CLIENT_SECRET, SCOPE)
        for client in provider.clients
    }


def seeded_database(
    cleanup: ExitStack,
    data_dir: Path,
    config: BenchConfig,
    issuer: str,
    preload: tuple[str, ...] = (),
) -> tuple[BenchDatabase, SeededData, float]:
    """Start PostgreSQL 18 (stopped by `cleanup`), migrate, seed; return seconds spent seeding."""
    database = start_database(data_dir, preload=preload)
    cleanup.callback(database.server.stop)
    migrate(database)
    started = time.monotonic()
    data = seed(database.admin_url, config.seed_users, config.seed_tasks, issuer, config.callers)
    return database, data, time.monotonic() - started


def say(message: str) -> None:
    """Print a progress line at once (make shows it while the run goes on)."""
    print(message, flush=True)


def max_requests() -> str:
    """Worker recycling for every server: off unless MAX_REQUESTS is set.

    With the production default (10,000 requests) the bare baseline's workers would restart
    every second or two at its throughput, and the comparison would measure restarts.
    """
    return os.environ.get("MAX_REQUESTS", "0")


@contextmanager
def identity_provider(state_dir: Path, callers: int) -> Generator[DevIdentityProvider, None, None]:
    """Run the development OpenID Provider with one client per caller (`bench-user-<rank>`)."""
    provider = DevIdentityProvider(
        state_dir,
        free_port(),
        AUDIENCE,
        [ClientSpec(subject_of(rank), CLIENT_SECRET, SCOPE) for rank in range(callers)],
        access_token_ttl=TOKEN_LIFETIME_SECONDS,
    )
    provider.start()
    try:
        yield provider
    finally:
        provider.stop()


@contextmanager
def running_servers(
    database: BenchDatabase, identity: IdentitySettings, scratch: Path
) -> Generator[dict[str, Server], None, None]:
    """Start the application alone (to time its readiness), then the baselines."""
    settings = Settings(_env_file=None, database_url=database.runtime_url)
    environment = {
        "DATABASE_URL": database.runtime_url,
        "OIDC_ISSUER": identity.oidc_issuer,
        "OIDC_AUDIENCE": identity.oidc_audience,
        "WEB_CONCURRENCY": str(WORKERS),
        "LOG_LEVEL": "WARNING",
        "ENV": "prod",
        "MAX_REQUESTS": max_requests(),
        "BASELINE_DATABASE_URL": database.runtime_url,
        "BASELINE_POOL_MIN": str(settings.db_pool_size),
        "BASELINE_POOL_MAX": str(settings.db_pool_size + settings.db_max_overflow),
        "BASELINE_POOL_TIMEOUT": str(settings.db_pool_timeout),
    }
    servers: dict[str, Server] = {}
    try:
        servers[APPLICATION] = start_server(
            APPLICATION, application_command(), environment, "/health/db", scratch
        )
        readiness = servers[APPLICATION].wait_until_ready(READY_TIMEOUT_SECONDS)
        say(f"application ready {readiness:.2f} s after its process started")
        for name, module in BASELINE_MODULES.items():
            ready_path = "/health/db" if name == "psycopg" else "/health"
            servers[name] = start_server(
                name, baseline_command(module), environment, ready_path, scratch
            )
        for server in servers.values():
            if server.ready_after is None:
                server.wait_until_ready(READY_TIMEOUT_SECONDS)
        yield servers
    finally:
        for server in servers.values():
            server.stop()


def check_workloads(servers: dict[str, Server], plan: list[Workload], data: SeededData) -> None:
    """Refuse to measure a load that does not do what it claims.

    Each caller's token must name its seeded user (no user provisioned on the fly), a task
    request without a token must be refused by the application and the psycopg baseline alike,
    every first request must succeed on both servers, and the application and the baseline must
    return the same pages of the big user's tasks (a full first page).

    Raises:
        RuntimeError: One of those does not hold.
    """
    by_name = {workload.name: workload for workload in plan}
    with ExitStack() as stack:
        clients = {
            name: stack.enter_context(httpx.Client(base_url=server.base_url, timeout=10.0))
            for name, server in servers.items()
        }
        for caller, request in zip(data.callers, by_name["get_me"].requests, strict=True):
            me = clients[APPLICATION].get(request.path, headers=request.headers)
            if me.status_code != httpx.codes.OK or me.json()["id"] != str(caller.user_id):
                raise RuntimeError(f"{caller.subject}'s token is not its seeded user: {me.text}")
        for name in (APPLICATION, "psycopg"):  # both verify the token of every API request
            request = by_name["get_task"].requests_of(name)[0]
            anonymous = clients[name].request(request.method, request.path)
            if anonymous.status_code != httpx.codes.UNAUTHORIZED:
                raise RuntimeError(f"{name} answered {anonymous.status_code} without a token")
        for workload in plan:
            for name in (APPLICATION, workload.baseline):
                request = workload.requests_of(name)[0]
                response = clients[name].request(
                    request.method, request.path, json=request.body, headers=request.headers
                )
                if response.status_code >= httpx.codes.BAD_REQUEST:
                    raise RuntimeError(
                        f"{workload.name} on {name}: {request.method} {request.path} answered"
                        f" {response.status_code}: {response.text[:500]}"
                    )
        for page in ("tasks_first_page", "tasks_deep_page"):
            workload = by_name[page]
            ids = []
            for name in (APPLICATION, workload.baseline):
                request = workload.requests_of(name)[0]
                items = clients[name].get(request.path, headers=request.headers).json()["items"]
                ids.append([task["id"] for task in items])
            full = page == "tasks_first_page"  # a tiny seed has less than a page left deep down
            if not ids[0] or (full and len(ids[0]) != PAGE_SIZE) or ids[0] != ids[1]:
                raise RuntimeError(f"{page}: the application and the baseline differ: {ids}")


def measure(
    config: BenchConfig,
    servers: dict[str, Server],
    plan: list[Workload],
    postmaster_pid: int,
    scratch: Path,
) -> Measurement:
    """Run every workload on the application and its baseline, interleaved, round by round."""
    load = LoadSettings(config.connections, config.threads, config.duration)
    warmup = LoadSettings(config.connections, config.threads, config.warmup)
    runs: dict[str, dict[str, list[Run]]] = {
        workload.name: {workload.baseline: [], APPLICATION: []} for workload in plan
    }
    workers_seen = {name: set(server.worker_pids()) for name, server in servers.items()}

    def benchmark_cpu() -> float:  # this process, its servers, wrk, and PostgreSQL
        return process_tree_cpu_seconds(os.getpid()) + process_tree_cpu_seconds(postmaster_pid)

    started, busy_before, ours_before = (
        time.monotonic(),
        machine_busy_cpu_seconds(),
        benchmark_cpu(),
    )
    for round_number in range(config.rounds):
        for workload in plan:
            order = [workload.baseline, APPLICATION]
            if round_number % 2:
                order.reverse()
            for name in order:
                server = servers[name]
                requests = workload.requests_of(name)
                if config.warmup > 0:
                    run_wrk(server.base_url, workload.name, requests, warmup, scratch)
                server_cpu = server.cpu_seconds()
                postgres_cpu = process_tree_cpu_seconds(postmaster_pid)
                result = run_wrk(server.base_url, workload.name, requests, load, scratch)
                served = max(result.requests, 1)
                run = Run(
                    load=result,
                    server_cpu_ms=(server.cpu_seconds() - server_cpu) * 1000 / served,
                    postgres_cpu_ms=(process_tree_cpu_seconds(postmaster_pid) - postgres_cpu)
                    * 1000
                    / served,
                )
                runs[workload.name][name].append(run)
                workers_seen[name].update(server.worker_pids())
                say(
                    f"round {round_number + 1}/{config.rounds}  {workload.name:<17} {name:<8}"
                    f" {result.requests_per_second:8.0f} req/s  p50 {result.p50_ms:7.2f} ms"
                    f"  p99 {result.p99_ms:7.2f} ms  errors {result.errors:<4}"
                    f" cpu/req {run.server_cpu_ms:.2f} ms + postgres {run.postgres_cpu_ms:.2f} ms"
                )
    machine_cpu = (time.monotonic() - started) * (os.cpu_count() or 1)
    other_cpu = (machine_busy_cpu_seconds() - busy_before) - (benchmark_cpu() - ours_before)
    return Measurement(
        runs=runs,
        other_cpu_share=max(other_cpu, 0.0) / machine_cpu,
        worker_restarts_seen={name: len(pids) - WORKERS for name, pids in workers_seen.items()},
    )


def statements_per_request(
    config: BenchConfig, servers: dict[str, Server], plan: list[Workload], admin_url: str
) -> list[dict[str, Any]]:
    """Count the database statements a request runs, on the application and its baseline."""
    counted = []
    with tracking(admin_url):
        for workload in plan:
            if workload.name == "health":
                continue
            application, baseline = (
                asdict(
                    count_statements(
                        admin_url,
                        RUNTIME_ROLE,
                        servers[name].base_url,
                        workload.requests_of(name),
                        config.count_requests,
                    )
                )
                for name in (APPLICATION, workload.baseline)
            )
            counted.append(
                {
                    "name": workload.name,
                    "title": workload.title,
                    "baseline": workload.baseline,
                    "application": application,
                    "baseline_result": baseline,
                }
            )
    return counted


def users_in(admin_url: str) -> int:
    """Count the rows of `users` (as the superuser, which row-level security does not bind)."""
    with psycopg.connect(admin_url) as connection:
        row = connection.execute("SELECT count(*) FROM users").fetchone()
    return int(row[0]) if row else 0


def scrape_metrics(server: Server) -> dict[str, float]:
    """Time `/metrics` scrapes after the load (every series the run created is in them)."""
    timings, size = [], 0
    with httpx.Client(base_url=server.base_url, timeout=10.0) as client:
        for _ in range(METRICS_SCRAPES):
            started = time.perf_counter()
            response = client.get("/metrics")
            timings.append((time.perf_counter() - started) * 1000)
            response.raise_for_status()
            size = len(response.content)
    return {"median_ms": statistics.median(timings), "max_ms": max(timings), "bytes": size}


def server_version(admin_url: str) -> str:
    """Return PostgreSQL's version string."""
    with psycopg.connect(admin_url) as connection:
        row = connection.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "unknown"


def endpoint_results(
    plan: list[Workload], runs: dict[str, dict[str, list[Run]]]
) -> list[dict[str, Any]]:
    """Per endpoint: the application's and its baseline's medians, the ratio, every run."""
    endpoints = []
    for workload in plan:
        application = Summary.of(runs[workload.name][APPLICATION])
        baseline = Summary.of(runs[workload.name][workload.baseline])
        endpoints.append(
            {
                "name": workload.name,
                "title": workload.title,
                "baseline": workload.baseline,
                "application": asdict(application),
                "baseline_result": asdict(baseline),
                "ratio": application.requests_per_second / baseline.requests_per_second
                if baseline.requests_per_second
                else 0.0,
                "runs": {
                    name: [asdict(run) for run in server_runs]
                    for name, server_runs in runs[workload.name].items()
                },
            }
        )
    return endpoints


# The endpoints issue 17 holds to >= 0.6x the psycopg baseline's throughput and <= 1.5x its p99.
COMPARED_ENDPOINTS = (
    "get_me",
    "get_task",
    "tasks_first_page",
    "tasks_deep_page",
    "create_task",
    "update_task",
)
MIN_THROUGHPUT_RATIO = 0.6
MAX_P99_RATIO = 1.5
REPLACEMENT_TARGET_SECONDS = 1.0


def evaluate_targets(report: dict[str, Any]) -> list[Target]:
    """Compare the run with the targets of the issues."""
    by_name = {endpoint["name"]: endpoint for endpoint in report["endpoints"]}
    health_ratio = by_name["health"]["ratio"]
    verify_us = report["token_verification"]["verify_us"]
    first_p50 = by_name["tasks_first_page"]["application"]["p50_ms"]
    deep_p50 = by_name["tasks_deep_page"]["application"]["p50_ms"]
    largest_worker = max(report["worker_rss_bytes"][APPLICATION], default=0) / MEGABYTE
    readiness = report["readiness_seconds"]
    replacement = report["worker_replacement_seconds"]
    targets = [Target("/health >= 0.85x bare", f"{health_ratio:.2f}x", health_ratio >= 0.85)]
    for name in COMPARED_ENDPOINTS:
        endpoint = by_name[name]
        ratio = endpoint["ratio"]
        p99 = endpoint["application"]["p99_ms"]
        baseline_p99 = endpoint["baseline_result"]["p99_ms"]
        targets += [
            Target(
                f"{endpoint['title']} >= {MIN_THROUGHPUT_RATIO}x psycopg",
                f"{ratio:.2f}x",
                ratio >= MIN_THROUGHPUT_RATIO,
            ),
            Target(
                f"{endpoint['title']} p99 <= {MAX_P99_RATIO}x psycopg",
                f"{p99:.1f} / {baseline_p99:.1f} ms = {p99 / baseline_p99:.2f}x",
                p99 <= MAX_P99_RATIO * baseline_p99,
            ),
        ]
    return [
        *targets,
        Target(
            "deep page p50 <= 1.5x first page",
            f"{deep_p50:.2f} / {first_p50:.2f} ms = {deep_p50 / first_p50:.2f}x",
            deep_p50 <= 1.5 * first_p50,
        ),
        Target("readiness < 2 s", f"{readiness:.2f} s", readiness < 2),
        Target(
            f"a replaced worker ready < {REPLACEMENT_TARGET_SECONDS:g} s",
            f"{replacement:.2f} s",
            replacement < REPLACEMENT_TARGET_SECONDS,
        ),
        Target("RSS < 150 MB per worker", f"{largest_worker:.0f} MB", largest_worker < 150),
        Target(
            f"verify a token <= {VERIFY_TARGET_US} us",
            f"{verify_us:.1f} us",
            verify_us <= VERIFY_TARGET_US,
        ),
    ]


def print_report(report: dict[str, Any]) -> None:
    """Print the table, the process figures and the targets."""
    config, data, machine = report["config"], report["data"], report["machine"]
    git = report["git"]
    print(
        f"\nGroundwork benchmark {report['date']}, commit {git['commit'] or 'unknown'}"
        f"{' + uncommitted changes' if git['dirty'] else ''}"
        f"\n{machine['cpu']}, {machine['cores']} cores, {machine['memory_gib']} GiB;"
        f" PostgreSQL {machine['postgresql']}; Python {machine['python']}; {machine['wrk']}"
        f"\nevery server: production gunicorn config, {config['workers']} uvicorn workers,"
        f" MAX_REQUESTS={config['max_requests']}; wrk {config['connections']} connections,"
        f" {config['threads']} threads, loopback; median of {config['rounds']} rounds"
        f" x {config['duration']:g} s (after {config['warmup']:g} s warm-up each)"
        f"\ndata: {data['users']:,} users, {data['tasks']:,} tasks"
        f" (one user with {data['big_user_tasks']:,}), seeded in {data['seed_seconds']} s\n"
    )
    header = (
        f"{'endpoint':<26} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6} {'cpu ms':>6}"
        f"  {'baseline':<8} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'cpu ms':>6} {'ratio':>6}"
    )
    print(header)
    print("-" * len(header))
    for endpoint in report["endpoints"]:
        app, base = endpoint["application"], endpoint["baseline_result"]
        print(
            f"{endpoint['title']:<26} {app['requests_per_second']:>7.0f} {app['p50_ms']:>7.2f}"
            f" {app['p99_ms']:>7.2f} {app['errors']:>6} {app['server_cpu_ms']:>6.2f}"
            f"  {endpoint['baseline']:<8} {base['requests_per_second']:>7.0f}"
            f" {base['p50_ms']:>7.2f} {base['p99_ms']:>7.2f} {base['server_cpu_ms']:>6.2f}"
            f" {endpoint['ratio']:>5.2f}x"
        )
    print(
        "ratio: application req/s / baseline req/s. errors: HTTP >= 400 plus socket errors and"
        " timeouts, all rounds.\ncpu ms: server CPU per request (master + workers), the figure"
        " least moved by other load on the machine.\nauth: every request carries"
        " `Authorization: Bearer` (client-credentials tokens of the development OpenID Provider,"
        f" {len(report['identity']['callers'])} callers).\nThe application verifies the token"
        " and acts as its caller (act_as_caller); the psycopg baseline verifies it with the same"
        " joserfc calls\nand takes the user id from its path (/api/v1/users/{id}/...); the bare"
        " baseline (GET /health only) ignores it.\n"
    )
    print_verification(report["token_verification"])
    print_statements(report["statements_per_request"])
    identity = report["identity"]
    print(
        f"users provisioned during the run: {identity['users_provisioned_during_run']}"
        f" (every caller is a seeded user); JWKS fetches from the provider:"
        f" {identity['jwks_fetches']} (one per worker and one for the microbenchmark)"
    )
    print(f"readiness: {report['readiness_seconds']:.2f} s from process start to /health/db 200")
    print(
        f"worker replacement: {report['worker_replacement_seconds']:.2f} s from killing a worker"
        " to its replacement accepting"
    )
    for name, sizes in report["worker_rss_bytes"].items():
        megabytes = ", ".join(f"{size / MEGABYTE:.0f}" for size in sizes)
        print(f"resident memory per worker after the run, {name}: {megabytes} MB")
    scrape = report["metrics_scrape"]
    print(
        f"/metrics scrape: median {scrape['median_ms']:.1f} ms, max {scrape['max_ms']:.1f} ms,"
        f" {scrape['bytes'] / 1024:.0f} KiB"
    )
    disturbance = report["disturbance"]
    print(
        f"other processes used {disturbance['other_cpu_share']:.0%} of the machine's CPU during"
        f" the runs (load average before: {disturbance['load_average_before']:.2f});"
        f" worker restarts seen: {disturbance['worker_restarts_seen']}\n"
    )
    print("targets:")
    for target in report["targets"]:
        print(f"  {'PASS' if target['met'] else 'MISS'}  {target['goal']:<48} {target['measured']}")


def print_verification(timings: dict[str, Any]) -> None:
    """Print the in-process cost of verifying one token."""
    print(
        f"token verification in-process, {timings['algorithm']}, keys cached from the provider:"
        f" median of {timings['runs']:,} runs after {timings['warmup']} warm-up\n"
        f"  TokenVerifier.verify(token)           {timings['verify_us']:7.1f} us"
        f"  (target <= {VERIFY_TARGET_US} us)\n"
        f"  joserfc jwt.decode + claims.validate  {timings['joserfc_us']:7.1f} us\n"
    )


def print_statements(counted: list[dict[str, Any]]) -> None:
    """Print the database statements per request of the application and its baseline."""
    print(
        f"database statements per request ({EXTENSION}, steady state, requests one at a time)."
        "\nEach is one round trip, except in the psycopg baseline's GET user: its two statements"
        " go in one simple query.\nThe application's statements:"
    )
    for endpoint in counted:
        application = endpoint["application"]
        print(
            f"  {endpoint['title']:<26} app {application['per_request']:5.2f}"
            f"   {endpoint['baseline']} {endpoint['baseline_result']['per_request']:5.2f}"
        )
        for query, per_request in application["statements"]:
            print(f"      {per_request:5.2f}  {query}")
    print()


def write_report(report: dict[str, Any], results_dir: Path, started: datetime) -> Path:
    """Write the report as JSON, named by its start time, and return its path."""
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"bench-{started:%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    return path


def git_state() -> dict[str, Any]:
    """The commit measured, and whether the tree had uncommitted changes."""
    try:
        commit = _git("rev-parse", "HEAD")
        dirty = bool(_git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": dirty}


def _git(*arguments: str) -> str:
    return subprocess.run(
        ["git", *arguments],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on."""
    cpuinfo = Path("/proc/cpuinfo").read_text()
    meminfo = Path("/proc/meminfo").read_text()
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in cpuinfo.splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory_kb = next(
        int(line.split()[1]) for line in meminfo.splitlines() if line.startswith("MemTotal:")
    )
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    return {
        "platform": platform.platform(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(memory_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        # "wrk debian/4.1.0-3+b2 [epoll] Copyright ...": keep the name and version.
        "wrk": " ".join((wrk.stdout or wrk.stderr).split()[:2]),
        "packages": {name: metadata.version(name) for name in PACKAGES},
    }


if __name__ == "__main__":
    sys.exit(main())
