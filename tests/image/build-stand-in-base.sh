#!/usr/bin/env bash
# Build a stand-in for the official python:3.11-slim-bookworm image, for machines that cannot
# pull one: a minimal Debian bookworm root filesystem with python3 and python3-venv, saved as a
# tarball that `podman import` turns into an image. Needs root and debootstrap.
#
# The host's extra CA certificates (an intercepting proxy's, under
# /usr/local/share/ca-certificates) are added to the image's trust store so that build steps
# can reach package registries through the proxy; on a normal network there are none.
#
# Usage: tests/image/build-stand-in-base.sh OUTPUT.tar
set -euo pipefail

output=${1:?usage: $0 OUTPUT.tar}
suite=bookworm
# The same mirror apt uses here (a proxy or snapshot may stand in for deb.debian.org).
mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
mirror=${mirror:-http://deb.debian.org/debian}

rootfs=$(mktemp -d "${TMPDIR:-/tmp}/stand-in-rootfs.XXXXXX")
trap 'rm -rf "$rootfs"' EXIT

started=$SECONDS
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
	"$suite" "$rootfs" "$mirror" >"$rootfs.log" 2>&1 || {
	tail -n 30 "$rootfs.log" >&2
	rm -f "$rootfs.log"
	exit 1
}
rm -f "$rootfs.log"

shopt -s nullglob
extra_cas=(/usr/local/share/ca-certificates/*.crt)
if ((${#extra_cas[@]})); then
	cp "${extra_cas[@]}" "$rootfs/usr/local/share/ca-certificates/"
	# Quiet: its rehash step warns about the bundle file itself, which is harmless.
	chroot "$rootfs" update-ca-certificates >/dev/null 2>&1
fi

# What an image needs neither at build nor at run time (the official slim image drops these too).
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
	"$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
	"$rootfs"/usr/share/locale/* "$rootfs"/var/log/*.log "$rootfs"/var/cache/debconf/*-old

mkdir -p "$(dirname "$output")"
tar --numeric-owner -C "$rootfs" -cf "$output.partial" .
mv "$output.partial" "$output"
echo "stand-in base: $output ($(du -h "$output" | cut -f1), ${suite}, $((SECONDS - started)) s)"
