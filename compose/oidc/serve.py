"""Entry point of compose.yaml's `oidc` service: write the provider's configuration, run it.

The configuration is the one app/dev/identity_provider.py writes for `make run` (the same
clients, scopes and audience), with the issuer and the listening address a container needs:
OIDC_ISSUER is what every token carries in `iss`, whichever address it was asked for on.
Only the standard library: the image has python3 and Node, nothing else.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

PROVIDER = "/oidc/provider.mjs"
STATE_DIR = Path("/var/lib/oidc")
CONFIG_PATH = Path("/tmp/provider.json")  # noqa: S108 - a private tmpfs of this container
SCOPES = ("tasks:read", "tasks:write")
ACCESS_TOKEN_TTL_SECONDS = 3600


def client(
    client_id: str,
    secret: str | None,
    scope: str,
    roles: tuple[str, ...] = (),
    redirects: tuple[str, ...] = (),
) -> dict[str, object]:
    """One client as provider.mjs reads it (app.dev.identity_provider.ClientSpec.metadata)."""
    if secret is None:
        grant_types = ["authorization_code"]
    else:
        grant_types = ["client_credentials"] + (["authorization_code"] if redirects else [])
    return {
        "client_id": client_id,
        "client_secret": secret,
        "scope": scope,
        "roles": list(roles),
        "redirect_uris": list(redirects),
        "grant_types": grant_types,
    }


def configuration(environment: dict[str, str]) -> dict[str, object]:
    """The provider's configuration from this container's environment and secret file."""
    secret = Path(environment["OIDC_CLIENT_SECRET_FILE"]).read_text().strip()
    scopes = " ".join(SCOPES)
    redirects = tuple(environment.get("OIDC_DOCS_REDIRECT_URIS", "").split())
    return {
        "issuer": environment["OIDC_ISSUER"],
        "host": "0.0.0.0",
        "port": int(environment.get("OIDC_PORT", "8900")),
        "jwksPath": str(STATE_DIR / "jwks.json"),
        "audience": environment["OIDC_AUDIENCE"],
        "scopes": list(SCOPES),
        "accessTokenTtl": ACCESS_TOKEN_TTL_SECONDS,
        "clients": [
            client("groundwork-cli", secret, scopes),
            client("groundwork-admin", secret, scopes, roles=("admin",)),
            client("groundwork-docs", None, f"openid profile email {scopes}", (), redirects),
        ],
        "accountRoles": {"admin": ["admin"]},
        "cookieKeys": [secrets.token_urlsafe(32)],
    }


def main() -> None:
    """Write the configuration (owner-only) and replace this process with the provider."""
    descriptor = os.open(CONFIG_PATH, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump(configuration(dict(os.environ)), file)
    os.execv("/usr/local/bin/node", ["node", PROVIDER, "serve", str(CONFIG_PATH)])  # noqa: S606


if __name__ == "__main__":
    main()
