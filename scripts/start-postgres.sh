#!/usr/bin/env bash
# Starts Debian's PostgreSQL (installing it if needed) and makes sure the
# role and database the health-check tests connect to exist: user `umbra`,
# password `umbra`, database `umbra`, on 127.0.0.1:5432 (idempotent).
set -euo pipefail

if ! command -v pg_lsclusters >/dev/null 2>&1; then
    if [[ $(id -u) -ne 0 ]]; then
        echo "PostgreSQL is not installed (run as root, or: sudo apt-get install postgresql)" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq postgresql >/dev/null
fi

# The first cluster Debian created (15/main on Debian 12).
read -r version cluster _ < <(pg_lsclusters --no-header | head -1)
if [[ -z "${version:-}" ]]; then
    echo "no PostgreSQL cluster found (pg_lsclusters)" >&2
    exit 1
fi
if ! pg_lsclusters --no-header | head -1 | grep -q online; then
    pg_ctlcluster "$version" "$cluster" start
fi

as_postgres() { runuser -u postgres -- "$@"; }
for _ in $(seq 1 50); do
    as_postgres psql -qAtc 'SELECT 1' >/dev/null 2>&1 && break
    sleep 0.2
done
if [[ "$(as_postgres psql -qAtc "SELECT 1 FROM pg_roles WHERE rolname = 'umbra'")" != 1 ]]; then
    as_postgres psql -qc "CREATE ROLE umbra LOGIN PASSWORD 'umbra'"
fi
if [[ "$(as_postgres psql -qAtc "SELECT 1 FROM pg_database WHERE datname = 'umbra'")" != 1 ]]; then
    as_postgres psql -qc "CREATE DATABASE umbra OWNER umbra"
fi
echo "postgresql $version/$cluster up: host=127.0.0.1 user=umbra dbname=umbra"
