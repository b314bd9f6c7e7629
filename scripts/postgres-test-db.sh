#!/usr/bin/env bash
# `make test` runs every exchange-database test on SQLite and on PostgreSQL at
# 127.0.0.1:5432 (trust authentication). This checks the server first, creates the `test`
# database the tests connect to when it is missing, and says what to do when it cannot.
set -euo pipefail
[ -n "${HUB_TEST_POSTGRES_URL:-}" ] && exit 0
command -v psql >/dev/null 2>&1 || {
  echo "[test] psql not found: the tests need a PostgreSQL server on 127.0.0.1:5432 with trust" >&2
  echo "[test] authentication (apt-get install -y postgresql), or set HUB_TEST_POSTGRES_URL." >&2
  exit 1
}
for role in postgres root; do
  if psql -h 127.0.0.1 -p 5432 -U "$role" -d postgres -Atqc 'select 1' >/dev/null 2>&1; then
    if ! psql -h 127.0.0.1 -p 5432 -U "$role" -d postgres -Atqc "select 1 from pg_database where datname='test'" | grep -q 1; then
      echo "[test] creating the PostgreSQL database 'test' (role $role)"
      psql -h 127.0.0.1 -p 5432 -U "$role" -d postgres -qc 'CREATE DATABASE test'
    fi
    exit 0
  fi
done
echo "[test] cannot log in to PostgreSQL at 127.0.0.1:5432 as 'postgres' or 'root' without a password." >&2
echo "[test] The exchange-database tests need such a server (trust authentication on loopback), or" >&2
echo "[test] HUB_TEST_POSTGRES_URL=postgresql+psycopg2://USER@HOST:PORT/DB naming one you can use." >&2
exit 1
