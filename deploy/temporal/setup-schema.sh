#!/bin/sh
# Temporal's databases on the compose stack's PostgreSQL, run once by the `temporal-schema` job
# (temporalio/admin-tools, whose image carries temporal-sql-tool and the schema files of its server version).
# Safe to run again: `create` and `setup-schema -v 0.0` leave an existing database alone, and
# `update-schema` applies only the versions it lacks (an upgraded image brings newer ones).
set -eu
: "${POSTGRES_SEEDS:?}" "${POSTGRES_USER:?}" "${SQL_PASSWORD:?}"
port="${DB_PORT:-5432}"
schema=/etc/temporal/schema/postgresql/v12

sql() { temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "$port" -u "$POSTGRES_USER" "$@"; }

for database in temporal temporal_visibility; do
  case "$database" in
    temporal) versioned="$schema/temporal/versioned" ;;
    *) versioned="$schema/visibility/versioned" ;;
  esac
  sql --db "$database" create || true   # already there on a second run
  sql --db "$database" setup-schema -v 0.0
  sql --db "$database" update-schema -d "$versioned"
  echo "schema of $database is current"
done
