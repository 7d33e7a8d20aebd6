#!/usr/bin/env bash
# The one command that sets up a fresh machine and runs the whole test suite (what CI runs).
# Idempotent: a second run reuses .venv and the backend environments.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -c constraints.txt -e '.[test]'
if [ -f scripts/install_backends.sh ]; then bash scripts/install_backends.sh; fi
exec .venv/bin/python -m pytest -q tests "$@"
