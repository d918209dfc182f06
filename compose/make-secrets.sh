#!/usr/bin/env bash
# Write the password files compose.yaml's secrets name, each only if missing (PostgreSQL keeps
# the passwords of its first start, so they must not change under an existing volume).
# The folder is the owner's alone; the files are world-readable so that the containers' users
# (postgres 999, the app 10001) can read them where Compose bind-mounts them.
#
# Usage: compose/make-secrets.sh [FOLDER]   (default: compose/secrets, ignored by git)
set -euo pipefail

folder=${1:-$(dirname "$0")/secrets}
mkdir -p "$folder"
chmod 700 "$folder"
for name in postgres_password owner_password runtime_password oidc_client_secret; do
	file=$folder/$name
	if [ ! -s "$file" ]; then
		# 32 random bytes, URL-safe: a password that needs no quoting in a URL or in SQL.
		head -c 32 /dev/urandom | base64 | tr -d '=\n' | tr '+/' '-_' >"$file.partial"
		chmod 644 "$file.partial"
		mv "$file.partial" "$file"
		echo "wrote $file"
	fi
done
