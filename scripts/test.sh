#!/usr/bin/env bash
# Umbra's test command: installs the test peers, then runs every test.
# The lab and dataplane tests create network namespaces, so run it as root.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
bash scripts/install-deps.sh
# PostgreSQL for the database health checks (role and database `umbra`).
bash scripts/start-postgres.sh
# The default WASM policies (wasm32-wasip2 components) the policy tests load.
bash scripts/build-policies.sh >/dev/null
cargo test --workspace "$@"
