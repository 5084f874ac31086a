#!/usr/bin/env bash
# Builds Umbra's default policies (policies/drift, policies/correlation,
# policies/failover) as WebAssembly components for wasm32-wasip2, in release,
# and prints the path of each .wasm, one per line, on stdout.
#
# The release profile of the workspace keeps debug info for the host's
# binaries; policies are shipped without it (a tenth of the size, faster to
# compile and cache in the host), hence the profile overrides below, which
# only affect this wasm32-wasip2 build.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

target=wasm32-wasip2
if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
    echo "adding the $target target" >&2
    rustup target add "$target" >&2
fi

export CARGO_PROFILE_RELEASE_DEBUG=0
export CARGO_PROFILE_RELEASE_STRIP=debuginfo
export CARGO_PROFILE_RELEASE_LTO=true
export CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1

cargo build --release --target "$target" "$@" \
    -p umbra-policy-drift -p umbra-policy-correlation -p umbra-policy-failover >&2

dir="${CARGO_TARGET_DIR:-$root/target}/$target/release"
for kind in drift correlation failover; do
    wasm="$dir/umbra_policy_$kind.wasm"
    [[ -f "$wasm" ]] || { echo "missing $wasm" >&2; exit 1; }
    echo "$wasm"
done
