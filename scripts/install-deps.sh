#!/usr/bin/env bash
# Installs what Umbra's build and tests need on a fresh Debian 12 machine
# (idempotent): Linux networking tools for the namespace labs, and the Python
# venvs of the third-party test peers.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

need=()
for tool in ip:iproute2 ping:iputils-ping ethtool:ethtool tcpdump:tcpdump nft:nftables conntrack:conntrack; do
    command -v "${tool%%:*}" >/dev/null 2>&1 || need+=("${tool##*:}")
done
python3 -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv)
# Installed without their recommended packages: Mininet (scripts/mininet)
# recommends Open vSwitch, which the lab's P4 switch node does not use.
need_bare=()
command -v mn >/dev/null 2>&1 || need_bare+=(mininet)
if ((${#need[@]} + ${#need_bare[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        how=()
        if ((${#need[@]})); then how+=("sudo apt-get install ${need[*]}"); fi
        if ((${#need_bare[@]})); then how+=("sudo apt-get install --no-install-recommends ${need_bare[*]}"); fi
        echo "missing packages: ${need[*]} ${need_bare[*]} (run as root, or: $(IFS=';'; echo "${how[*]}"))" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    if ((${#need[@]})); then
        apt-get install -y -qq "${need[@]}" >/dev/null
    fi
    if ((${#need_bare[@]})); then
        apt-get install -y -qq --no-install-recommends "${need_bare[@]}" >/dev/null
    fi
fi

# WebAssembly policies are components for wasm32-wasip2.
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
    rustup target add wasm32-wasip2
fi

if [[ -z "${UMBRA_SKIP_PYTHON:-}" ]]; then
    bash "$root/scripts/setup-python.sh"
fi
