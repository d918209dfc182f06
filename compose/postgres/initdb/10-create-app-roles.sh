#!/bin/sh
# Run once by the postgres image on an empty data directory (as the chart's init ConfigMap,
# charts/groundwork/templates/postgresql-init.yaml, does). Two roles, neither superuser nor
# BYPASSRLS, so row-level security applies to both:
# - the owner (APP_OWNER_ROLE) owns the database; `migrate` connects as it and creates the tables;
# - the runtime role (APP_RUNTIME_ROLE), for `api`, owns nothing and may only CONNECT; each
#   `python -m app migrate` grants it the schema and the rows.
# Passwords come from the Compose secrets' files (*_FILE), never from the environment.
set -eu
psql -v ON_ERROR_STOP=1 --no-psqlrc --username "${POSTGRES_USER:-postgres}" --dbname postgres <<'SQL'
\getenv owner_role APP_OWNER_ROLE
\set owner_password `cat "$APP_OWNER_PASSWORD_FILE"`
\getenv runtime_role APP_RUNTIME_ROLE
\set runtime_password `cat "$APP_RUNTIME_PASSWORD_FILE"`
\getenv app_database APP_DATABASE_NAME
CREATE ROLE :"owner_role" LOGIN PASSWORD :'owner_password'
  NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
CREATE DATABASE :"app_database" OWNER :"owner_role";
CREATE ROLE :"runtime_role" LOGIN PASSWORD :'runtime_password'
  NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION;
REVOKE ALL ON DATABASE :"app_database" FROM PUBLIC;
GRANT CONNECT ON DATABASE :"app_database" TO :"runtime_role";
SQL
echo "roles $APP_OWNER_ROLE (owner) and $APP_RUNTIME_ROLE (runtime) and database $APP_DATABASE_NAME are ready"
