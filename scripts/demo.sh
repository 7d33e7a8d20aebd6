#!/usr/bin/env bash
# The main job on embedded defaults, offline. Grows with the pipeline.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q -c constraints.txt -e .
DEMO_DIR="${DEMO_DIR:-out/demo}"
mkdir -p "$DEMO_DIR"
.venv/bin/stylewrap init "$DEMO_DIR" --force
.venv/bin/stylewrap config validate --config "$DEMO_DIR/stylewrap.yaml"
