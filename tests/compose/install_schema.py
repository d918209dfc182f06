"""Install the Compose Specification's JSON schema from a pinned PyPI wheel, sha256 checked.

No registry our machines reach publishes the schema on its own; check-jsonschema's wheel
ships it (vendored from compose-spec/compose-spec, Apache-2.0) as
`check_jsonschema/builtin_schemas/vendor/compose-spec.json`. `make compose-schema` calls this
with the pins kept in the Makefile; the download helpers are the helm installer's.
"""

from __future__ import annotations

import argparse
import sys
import zipfile
from pathlib import Path

from k8s.install_helm import download_wheel, verify_sha256

SCHEMA_IN_WHEEL = "check_jsonschema/builtin_schemas/vendor/compose-spec.json"


def main() -> int:
    """Download and verify the wheel, then write the schema to --dest."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requirement", required=True, help="pinned wheel, NAME==VERSION")
    parser.add_argument("--sha256", required=True, help="sha256 of that wheel file")
    parser.add_argument("--dest", required=True, type=Path, help="where the schema goes")
    arguments = parser.parse_args()

    wheel = download_wheel(arguments.requirement, arguments.dest.parent)
    verify_sha256(wheel, arguments.sha256)
    with zipfile.ZipFile(wheel) as wheel_zip:
        schema = wheel_zip.read(SCHEMA_IN_WHEEL)
    partial = arguments.dest.with_suffix(".partial")
    partial.write_bytes(schema)
    partial.replace(arguments.dest)
    print(f"Compose Specification schema from {arguments.requirement} at {arguments.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
