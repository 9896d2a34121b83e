#!/bin/sh
# Redress's own database on the compose stack's PostgreSQL, with a role of its own that can read nothing of
# Temporal's: run once by the `redress-database` job (the postgres image, for psql). Safe to run again.
# The tables inside are the workers' business: the first worker to start creates and migrates them
# (redress/state_postgres.py). pg_checkpoint lets an erasure flush the pages it vacuumed (PostgreSQL 15+; granted
# where it exists).
set -eu
: "${PGHOST:?}" "${PGUSER:?}" "${REDRESS_DB_PASSWORD:?}"
psql -v ON_ERROR_STOP=1 -d postgres -v password="$REDRESS_DB_PASSWORD" <<'SQL'
SELECT 'CREATE ROLE redress LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'redress')\gexec
ALTER ROLE redress PASSWORD :'password';
SELECT 'CREATE DATABASE redress OWNER redress' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'redress')\gexec
REVOKE ALL ON DATABASE redress FROM PUBLIC;
SELECT 'GRANT pg_checkpoint TO redress' WHERE EXISTS (SELECT FROM pg_roles WHERE rolname = 'pg_checkpoint')\gexec
SQL
echo "database redress and its role are ready"
