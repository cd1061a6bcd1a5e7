#!/usr/bin/env bash
# The GPU checks of issue 12 in one prepared run, for a machine with a CUDA GPU (the device tool's
# machine): embedding throughput per precision with its drift, end to end against the original
# on 20,000 photos, clustering at 1,000,000 x 1280. PYTHON: an interpreter with repsample
# installed (default: .venv/bin/python). Prints markdown tables for docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$PYTHON" bench/gpu.py --device cuda "$@"
