#!/usr/bin/env bash
# Umbra's test command: installs the test peers, then runs every test.
# The lab and dataplane tests create network namespaces, so run it as root.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
bash scripts/install-deps.sh
cargo test --workspace "$@"
