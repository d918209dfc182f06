"""Write the app's OpenAPI document to clients/openapi.json: `make client` runs this.

The document is committed so that every API change shows up in review, and
tests/test_contract.py fails when the app's document and the committed one differ. It is built
from the code alone: no database, no provider. The one deployment-specific value, the OpenID
Connect discovery URL, names a placeholder issuer; a running server serves its own.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

DOCUMENT_PATH = Path(__file__).resolve().with_name("openapi.json")
PLACEHOLDER_ISSUER = "https://issuer.example.com/"


def app_document() -> dict[str, Any]:
    """Return the OpenAPI document of an app built with placeholder settings."""
    from app.core.config import Settings
    from app.identity.settings import IdentitySettings
    from app.main import create_app

    app = create_app(
        Settings(_env_file=None, database_url="postgresql://groundwork@localhost/groundwork"),  # type: ignore[call-arg]
        IdentitySettings(
            _env_file=None,  # type: ignore[call-arg]
            oidc_issuer=PLACEHOLDER_ISSUER,
            oidc_audience="groundwork",
        ),
    )
    return app.openapi()


def render(document: dict[str, Any]) -> str:
    """The document as it is committed: indented JSON, keys in the app's order, a final newline."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    """Write the document; print where."""
    DOCUMENT_PATH.write_text(render(app_document()), encoding="utf-8")
    print(f"wrote {DOCUMENT_PATH.relative_to(Path.cwd())}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
