#!/bin/bash
# Continue a carried training run (checkpoints/<run>/) on a lent GPU machine, the workplace's
# `device` tool, for as long as one call may run, and bring its checkpoint back.
# Here first (once per checkout):
#   mkdir -p .gpudata && cp ../shared/data/omniglot/images_*.zip .gpudata/    # .gpudata is git-ignored
#   and any test run, so that .cache holds the decoded dataset
# then: device run, command "bash tools/resume_on_gpu.sh <run> 480", carry [".gpudata", ".cache"],
#   timeout_s 540. Back here: copy the returned files over checkpoints/<run>/ and commit (or, once the
#   run is finished, export it and delete the folder).
# EVALUATE=1 bash tools/resume_on_gpu.sh <run> 550: if the run finishes, evaluate it in the time left.
# (DEVICE=cpu PYTHON=.venv/bin/python run it here, for trying it out.)
# A kill at the time limit loses at most --checkpoint-interval iterations: checkpoints are written atomically.
set -uo pipefail
run="${1:?usage: resume_on_gpu.sh <run> [seconds] [train flags, e.g. --eval-interval 10000]}"
seconds="${2:-480}"
shift $(($# < 2 ? $# : 2))  # what is left goes to train
carried="checkpoints/$run"
[ -f "$carried/checkpoint.pt" ] || { echo "no $carried/checkpoint.pt" >&2; exit 2; }
work="/tmp/$run"
rm -rf "$work" && cp -r "$carried" "$work"
export REPTILE_CACHE_DIR="$PWD/.cache" PYTHONUNBUFFERED=1
[ "${DEVICE:-cuda}" = cuda ] && nvidia-smi -L
deadline=$((SECONDS + seconds))
timeout -s KILL "$seconds" "${PYTHON:-python3}" -m training train --out "$work" --resume --device "${DEVICE:-cuda}" --data-dir .gpudata --no-progress "$@"
status=$?
echo "exit status $status (137: stopped at the time limit)"
tail -2 "$work/metrics.jsonl"
out="${OUT:-/tmp/resume-out}"
mkdir -p "$out"
cp "$work"/checkpoint.pt "$work"/config.json "$work"/metrics.jsonl "$work"/test_classes.txt "$out"/
cp "$work"/learning_curve.png "$out"/ 2>/dev/null || true
# With EVALUATE=1 and the run finished, the time left goes to the paper's evaluation (10,000 held-out
# tasks, 1,000 of training characters). Its progress files come back too: an evaluation the time
# limit stops is continued here by rerunning the same command with --partial pointing at them.
[ "${EVALUATE:-0}" = 1 ] && [ "$status" = 0 ] || exit 0
for split_tasks in test:10000 train:1000; do
  split="${split_tasks%:*}" tasks="${split_tasks#*:}"
  left=$((deadline - SECONDS))
  [ "$left" -gt 30 ] || { echo "no time left to evaluate on $split characters"; break; }
  timeout -s KILL "$left" "${PYTHON:-python3}" -m training evaluate --checkpoint "$out/checkpoint.pt" \
    --data-dir .gpudata --device "${DEVICE:-cuda}" --tasks "$tasks" --split "$split" --no-progress \
    --json "$out/evaluate_$split.json" --partial "$out/evaluate_$split.partial.json"
  echo "evaluation on $split characters: exit status $?"
done
