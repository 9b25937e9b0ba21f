#!/usr/bin/env bash
# Creates the virtual environment for the PyPI package theta-irt (JAX MMLE-EM for 1PL-4PL), a calibration and
# EAP peer. It pins its own numpy/JAX, so it lives apart from the other peers (benchmarks/make_peers_env.sh).
# The project is installed too (editable), so one interpreter runs us and theta-irt side by side on the same data.
# Usage: bash benchmarks/make_theta_env.sh [DIR]   (default: benchmarks/.theta-venv)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${1:-$here/.theta-venv}"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --upgrade pip
"$venv/bin/pip" install --quiet "theta-irt==0.1.1"
"$venv/bin/pip" install --quiet -e "$here/.."
echo "theta-irt environment ready: $venv"
