#!/usr/bin/env bash
# The one command that sets up a fresh machine and runs the whole test suite (what CI runs).
# Idempotent: a second run reuses .venv and the backend environments.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -c constraints.txt -e '.[test]'
bash scripts/install_backends.sh
# the web chat page is tested in a real headless Chromium (Debian's, driven by selenium)
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver fonts-wqy-zenhei >/dev/null
fi
exec .venv/bin/python -m pytest -q tests "$@"
