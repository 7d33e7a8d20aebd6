#!/usr/bin/env bash
# The GPU benchmark in one command, on a box with no internet:
#   bench/gpu/run.sh 1gpu|2gpu WHEELS_DIR TOKENIZER_DIR TslDial.json OUT_DIR [RUN_NAME...]
# WHEELS_DIR comes from bench/gpu/fetch_wheels.sh, TOKENIZER_DIR from `model7b.py tokenizer`; the
# envs and the random 7B-shaped model are prepared by box.sh. Results: OUT_DIR/results-<mode>.json
# and logs-<mode>.tgz.
# Each run is repeated GPUBENCH_REPEAT times (default 3: median and spread); the exit status is
# non-zero when any run failed.
set -uo pipefail
mode=$1 wheels=$2 tokenizer=$3 data=$4 out=$5; shift 5
source "$(dirname "$(realpath "$0")")/box.sh"
prepare_box "$wheels" "$tokenizer" || exit 1
mkdir -p "$out"
/tmp/envs/core/bin/python "$here/bench.py" "$mode" --model $model --data "$(realpath "$data")" --out "$out" \
    --repeat "${GPUBENCH_REPEAT:-3}" ${1:+--only "$@"}
status=$?
tar czf "$out/logs-$mode.tgz" -C "/tmp/gpubench-logs-$mode" . 2>/dev/null
exit $status
