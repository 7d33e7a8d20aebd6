#!/usr/bin/env bash
# The main job on embedded defaults, offline, on a CPU: install stylewrap and the llamafactory env,
# build a tiny local model that speaks plain everyday Chinese, train a LoRA on the embedded
# 西式翻译腔 rows, merge it, compare base vs tuned on held-out questions, serve it behind an
# OpenAI-compatible API, chat with it, stop it, and show what a ModelScope publish would upload.
# Every step is a plain stylewrap command you can run yourself.
set -euo pipefail
cd "$(dirname "$0")/.."
BACKEND="${BACKEND:-llamafactory}"
DEMO_DIR="$(pwd)/${DEMO_DIR:-out/demo}"
PORT="${PORT:-8000}"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q -c constraints.txt -e .
sw="$(pwd)/.venv/bin/stylewrap"
step() { printf '\n==> %s\n' "$*"; }

step "backend environment ($BACKEND)";  $sw backend install "$BACKEND"
step "demo project";                     $sw demo "$DEMO_DIR" --backend "$BACKEND" --force
cd "$DEMO_DIR"
step "validate the data";                "$sw" data validate data/translational_sample.jsonl
step "train";                            "$sw" train --quiet
RUN="$(ls -d runs/*/ | sort | tail -n 1)"
step "merge";                            "$sw" export "$RUN"
step "compare";                          "$sw" compare "$RUN" --probes data/probes_everyday.jsonl --max-new-tokens 64
step "deploy";                           "$sw" deploy --run "$RUN" --port "$PORT" --detach
trap '"$sw" deploy stop --port "$PORT" >/dev/null 2>&1 || true' EXIT
step "chat";                             printf '请问，明天会下雪吗？\n' | "$sw" chat --base-url "http://127.0.0.1:$PORT/v1" --max-tokens 64
step "stop";                             "$sw" deploy stop --port "$PORT"; trap - EXIT
step "publish (dry run)";                "$sw" publish model "$RUN" --repo demo/translational-tiny --base-model-id local/tiny-qwen2 --dry-run
printf '\ndone: %s (loss curve: %sloss.png, report: %scompare/)\n' "$DEMO_DIR" "$RUN" "$RUN"
