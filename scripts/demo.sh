#!/usr/bin/env bash
# Umbra's main job: installs the lab's system tools, then runs `umbra demo`.
# Needs root (the lab builds network namespaces). Extra arguments go to
# `umbra demo` (see `umbra demo --help`).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
# The predictor loads ONNX Runtime from the onnxruntime wheel in .venv.
bash scripts/install-deps.sh
exec cargo run --release -p umbra-cli -- demo "$@"
