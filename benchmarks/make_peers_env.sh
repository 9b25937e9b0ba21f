#!/usr/bin/env bash
# Creates the virtual environment holding the peer engines the benchmarks compare against.
# Usage: bash benchmarks/make_peers_env.sh [DIR]   (default: benchmarks/.peers-venv)
# girth 0.8 needs numpy < 2.4, so the peers live apart from the project's own environment.
# The project itself is installed too (editable), so one interpreter can run us and the peers side by side.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${1:-$here/.peers-venv}"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --upgrade pip
"$venv/bin/pip" install --quiet "numpy<2.4" "girth==0.8.0" "mirt==1.2.0" "catsim==0.21.0" \
    "catpie==0.2.0" "adaptivetesting==1.1.4"
"$venv/bin/pip" install --quiet -e "$here/.."
echo "peers environment ready: $venv"
