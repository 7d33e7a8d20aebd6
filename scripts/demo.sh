#!/usr/bin/env bash
# The main job on embedded defaults, offline, on a CPU: install stylewrap and the backend env, then
# `stylewrap demo`: a tiny local model that speaks plain everyday Chinese, 300 embedded 西式翻译腔
# rows and a CPU-sized stylewrap.yaml, and `stylewrap run` on it (data -> train -> export -> eval on
# held-out everyday questions -> deploy; with OPENAI_API_KEY and OPENAI_BASE_URL set, datagen
# first). Then a held-out question to the server (the tuned model answers in the style), stopping
# it, and what a ModelScope publish would upload. Run it again: every stage is up to date and skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
BACKEND="${BACKEND:-llamafactory}"
DEMO_DIR="$(pwd)/${DEMO_DIR:-out/demo}"
PORT="${PORT:-8000}"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q -c constraints.txt -e '.[eval]'   # the eval stage's metrics and chart
sw="$(pwd)/.venv/bin/stylewrap"
step() { printf '\n==> %s\n' "$*"; }

step "backend environment ($BACKEND)";    "$sw" backend install "$BACKEND"
trap '"$sw" deploy stop --port "$PORT" >/dev/null 2>&1 || true' EXIT
step "stylewrap demo = the demo project + stylewrap run"
"$sw" demo "$DEMO_DIR" --backend "$BACKEND" --port "$PORT" --force
step "chat (a held-out question)";        printf '请问，明天会下雪吗？\n' | "$sw" chat --base-url "http://127.0.0.1:$PORT/v1" --max-tokens 64 --temperature 0
step "stop";                               "$sw" deploy stop --port "$PORT"; trap - EXIT
RUN="$(dirname "$(ls -t "$DEMO_DIR"/runs/*/summary.json | head -n 1)")"
step "publish (dry run)";                  "$sw" publish model "$RUN" --repo demo/translational-tiny --base-model-id local/tiny-qwen2 --dry-run
printf '\ndone: %s (summary: %s/summary.md, loss curve: %s/loss.png, eval report: %s/eval/)\n' "$DEMO_DIR" "$RUN" "$RUN" "$RUN"
printf 'run it again (every stage up to date but the stopped server): %s run %s --set deploy.port=%s\n' "$sw" "$DEMO_DIR" "$PORT"
