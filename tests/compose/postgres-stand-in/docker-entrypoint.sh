#!/usr/bin/env bash
# The official postgres image's entrypoint, reduced to what compose.yaml relies on: as root it
# owns the data directory to postgres and drops to it; on an empty PGDATA it runs initdb with
# POSTGRES_USER and the password of POSTGRES_PASSWORD_FILE (or POSTGRES_PASSWORD), creates
# POSTGRES_DB, runs /docker-entrypoint-initdb.d/ (*.sh, *.sql) against a socket-only server,
# then execs postgres listening on every address with scram-sha-256 authentication.
set -Eeuo pipefail

if [ "${1:0:1}" = '-' ]; then
	set -- postgres "$@"
fi

if [ "$(id -u)" = 0 ]; then
	mkdir -p "$PGDATA" /var/run/postgresql
	chown postgres:postgres "$PGDATA" /var/run/postgresql
	chmod 700 "$PGDATA"
	exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then
	POSTGRES_PASSWORD=$(<"$POSTGRES_PASSWORD_FILE")
fi
: "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE must be set}"
export POSTGRES_USER=${POSTGRES_USER:-postgres}
export POSTGRES_DB=${POSTGRES_DB:-$POSTGRES_USER}

if [ ! -s "$PGDATA/PG_VERSION" ]; then
	initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
		--encoding=UTF8 --locale=C.UTF-8 --auth-local=trust --auth-host=scram-sha-256 \
		-D "$PGDATA" >/dev/null
	printf "listen_addresses = '*'\n" >>"$PGDATA/postgresql.conf"
	printf 'host all all all scram-sha-256\n' >>"$PGDATA/pg_hba.conf"
	# Socket only while the init scripts run, so nobody connects to a half-made database.
	pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -k /var/run/postgresql" -w start >/dev/null
	export PGHOST=/var/run/postgresql
	if [ "$POSTGRES_DB" != postgres ]; then
		psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname postgres \
			--set db="$POSTGRES_DB" -c 'CREATE DATABASE :"db"' >/dev/null
	fi
	for script in /docker-entrypoint-initdb.d/*; do
		case "$script" in
		*.sh)
			echo "running $script"
			if [ -x "$script" ]; then "$script"; else . "$script"; fi
			;;
		*.sql)
			echo "running $script"
			psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" -f "$script"
			;;
		esac
	done
	unset PGHOST
	pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
	echo "PostgreSQL init process complete; ready for start up."
fi

exec "$@"
