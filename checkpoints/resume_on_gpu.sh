#!/bin/bash
# Continue a carried training run (checkpoints/<run>/) on a lent GPU machine, the workplace's
# `device` tool, for as long as one call may run, and bring its checkpoint back.
# Here first (once per session):
#   mkdir -p .gpudata && cp ../shared/data/omniglot/images_*.zip .gpudata/    # .gpudata is git-ignored
#   and any test run, so that .cache holds the decoded dataset
# then: device run, command "bash checkpoints/resume_on_gpu.sh <run> 480", carry [".gpudata", ".cache"],
#   timeout_s 540. Back here: copy the returned files over checkpoints/<run>/ and commit (or, once the
#   run is finished, export it and delete the folder).
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
timeout -s KILL "$seconds" "${PYTHON:-python3}" -m training train --out "$work" --resume --device "${DEVICE:-cuda}" --data-dir .gpudata --no-progress "$@"
echo "exit status $? (137: stopped at the time limit)"
tail -2 "$work/metrics.jsonl"
out="${OUT:-/tmp/resume-out}"
mkdir -p "$out"
cp "$work"/checkpoint.pt "$work"/config.json "$work"/metrics.jsonl "$work"/test_classes.txt "$out"/
cp "$work"/learning_curve.png "$out"/ 2>/dev/null || true
