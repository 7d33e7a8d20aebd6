#!/usr/bin/env bash
# The serving benchmark in one command, on a GPU box with no internet:
#   bench/gpu/serve.sh WHEELS_DIR TOKENIZER_DIR TslDial.json OUT_DIR STEPS [ARMS]
# STEPS: any of ceiling,static,diag,varlen,serve (comma-separated). The envs and the random 7B are
# prepared by box.sh (kept on the box for a later call). `ceiling`: generate_ceiling.py (transformers'
# generate and ms-swift's engine, batch 1 and 16; `static` adds a compiled static cache), `varlen`:
# varlen_check.py (incl. LLaMA-Factory's packed shape), `diag`: stream_diag.py, `serve`: serve_bench.py over ARMS.
# Every step has its own time limit, so one slow step leaves the others' results in OUT_DIR.
set -uo pipefail
wheels=$1 tokenizer=$2 data=$3 out=$4 steps=$5 arms=${6:-}
source "$(dirname "$(realpath "$0")")/box.sh"
mkdir -p "$out"
stamp() { echo "[$(date +%T)] $*" | tee -a "$out/steps.log"; }
stamp "start"
prepare_box "$wheels" "$tokenizer" || exit 1
stamp "envs and model ready"
status=0
step() {   # step NAME LIMIT_S COMMAND...
    local name=$1 limit=$2; shift 2
    [[ ",$steps," == *",$name,"* ]] || return 0
    stamp "$name: begin"
    timeout "$limit" "$@" >"$out/$name.log" 2>&1
    local rc=$?
    stamp "$name: exit $rc"
    tail -n 15 "$out/$name.log"
    [ $rc -eq 0 ] || status=1
}
step ceiling 240 /tmp/envs/swift/bin/python "$here/generate_ceiling.py" --model $model --data "$data" --out "$out/ceiling.json"
step static 240 /tmp/envs/swift/bin/python "$here/generate_ceiling.py" --model $model --data "$data" --out "$out/ceiling-static.json" --only hf --static
step diag 240 /tmp/envs/swift/bin/python "$here/stream_diag.py" --model $model --data "$data" --out "$out/stream-diag.json"
step varlen 120 /tmp/envs/swift/bin/python "$here/varlen_check.py" "$repo/backends/swift/varlen_attention.py" --out "$out/varlen-check.json"
mkdir -p /tmp/servework
step serve "${SERVE_LIMIT_S:-420}" bash -c "cd /tmp/servework && /tmp/envs/core/bin/python '$here/serve_bench.py' --model $model --data '$data' --out '$out' ${arms:+--arms $arms} --repeat ${SERVE_REPEAT:-3}"
stamp "done"
exit $status
