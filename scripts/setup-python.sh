#!/usr/bin/env bash
# Creates the Python venvs of Umbra's third-party test peers (idempotent).
#
#   .venv        official p4runtime 1.6.0 bindings, grpcio, scapy, ptf, onnx,
#                onnxruntime (its wheel also ships the libonnxruntime.so that
#                the `ort` crate loads: see scripts/ort-env.sh)
#   .venv-shell  p4runtime-shell (it pins protobuf < 3.21, so it lives alone)
#
# Tests find them through UMBRA_VENV / UMBRA_SHELL_VENV, defaulting to these.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${UMBRA_VENV:-$root/.venv}"
shell_venv="${UMBRA_SHELL_VENV:-$root/.venv-shell}"

make_venv() { # dir requirement...
    local dir="$1"; shift
    local stamp="$dir/.umbra-requirements"
    if [[ -x "$dir/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$*" ]]; then
        return 0
    fi
    python3 -m venv "$dir"
    "$dir/bin/pip" install --quiet --upgrade pip
    "$dir/bin/pip" install --quiet "$@"
    echo "$*" > "$stamp"
}

make_venv "$venv" \
    'p4runtime==1.6.0' 'protobuf>=5,<7' 'grpcio>=1.60' 'googleapis-common-protos>=1.60' \
    'scapy==2.8.0' 'ptf==0.12.0' 'numpy>=1.26' 'onnx>=1.17' 'onnxruntime>=1.20'
make_venv "$shell_venv" 'p4runtime-shell==0.0.6'
echo "python peers ready: $venv $shell_venv"
