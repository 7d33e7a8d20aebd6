#!/usr/bin/env bash
# Installs the llamafactory and swift environments with stylewrap's own installer, both at once.
# Idempotent: an env that already matches the shipped pins is left alone (seconds, no network).
# Called by scripts/test.sh; STYLEWRAP_ENVS_DIR moves the envs (default ~/.cache/stylewrap/envs).
set -euo pipefail
cd "$(dirname "$0")/.."
STYLEWRAP="${STYLEWRAP:-.venv/bin/stylewrap}"
logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT
start=$SECONDS
pids=()
names=(llamafactory swift)
for name in "${names[@]}"; do
  "$STYLEWRAP" backend install "$name" "$@" >"$logs/$name.log" 2>&1 &
  pids+=("$!")
done
failed=0
for i in "${!names[@]}"; do
  if wait "${pids[$i]}"; then
    tail -n 1 "$logs/${names[$i]}.log"
  else
    failed=1
    echo "backend install ${names[$i]} failed:" >&2
    tail -n 40 "$logs/${names[$i]}.log" >&2
  fi
done
echo "backend environments ready in $((SECONDS - start)) s"
exit "$failed"
