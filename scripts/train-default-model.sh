#!/usr/bin/env bash
# Reproduces the shipped default failure-prediction model, byte for byte:
# generates the training traces with umbra-scenario (fixed seeds 1 and 2),
# trains the GRU with umbra-trainer (fixed seed 7) and writes
#   host/model/default/umbra-gru.onnx
#   host/model/default/umbra-gru.manifest.json
# The recipe lives in host/trainer/examples/train-default.rs. Evaluate it on
# held-out traces (other seeds) with
#   cargo run --release --bin umbra -- model eval --seed 1000
# Takes a few minutes on two cores; the training report goes to stdout.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
# Candle's CPU kernels split work by thread count; pin it so the float
# summation order, and so the bytes, do not depend on the machine.
export RAYON_NUM_THREADS="${RAYON_NUM_THREADS:-2}"
cargo run --release --quiet -p umbra-trainer --example train-default -- \
    host/model/default/umbra-gru.onnx
sha256sum host/model/default/umbra-gru.onnx host/model/default/umbra-gru.manifest.json >&2
