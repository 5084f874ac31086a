#!/usr/bin/env bash
# Builds the hostile test policies of umbra-policy-runtime as wasm32-wasip2
# components into $CARGO_TARGET_DIR/wasm32-wasip2/release (target/ by
# default). The runtime's tests call this script; run it by hand to inspect
# the components.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
cd "$root"
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
    rustup target add wasm32-wasip2
fi
# The same release settings as scripts/build-policies.sh: shared
# dependencies are then built once for both, not rebuilt in turn.
export CARGO_PROFILE_RELEASE_DEBUG=0
export CARGO_PROFILE_RELEASE_STRIP=debuginfo
export CARGO_PROFILE_RELEASE_LTO=true
export CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1
packages=()
for dir in "$here"/*/; do
    packages+=(-p "umbra-hostile-$(basename "$dir")")
done
cargo build --quiet --release --target wasm32-wasip2 "${packages[@]}"
echo "${CARGO_TARGET_DIR:-$root/target}/wasm32-wasip2/release"
