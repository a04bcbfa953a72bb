#!/bin/bash
# The CUDA checks CI cannot run, as one prepared script for a session that is lent a GPU machine
# (the workplace's `device` tool: ~15 minutes of device time in all, nothing installable there).
# On this machine first:
#   mkdir -p .gpudata && cp ../shared/data/omniglot/images_*.zip .gpudata/     # .gpudata is git-ignored
#   make test (or any test run) so that .cache holds the decoded dataset
# then: device run, command "bash benchmarks/gpu_check.sh", carry [".gpudata", ".cache"], timeout_s 540.
# It uses that machine's own python3, whose PyTorch has CUDA. What it checks:
#   1. the batched meta-iteration equals the per-task loop on the GPU (float64, <= 1e-9), tensors stay there;
#   2. a short real run with --device cuda learns (train + evaluate, as CI does on the CPU);
#   3. the batched vs per-task throughput on the GPU, side by side.
set -uo pipefail
export OMNIGLOT_DATA_DIR="$PWD/.gpudata" REPTILE_CACHE_DIR="$PWD/.cache" PYTHONUNBUFFERED=1
out="${OUT:-/tmp/gpu-check}"
mkdir -p "$out"
status=0
nvidia-smi -L
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())" || exit 1
python3 -m pytest -q -p no:cacheprovider tests/test_reptile.py -k cuda 2>&1 | tee "$out/test_reptile.txt" || status=1
python3 -m pytest -q -p no:cacheprovider tests/test_training_run.py -k cuda -s 2>&1 | tee "$out/test_training_run.txt" || status=1
python3 benchmarks/meta_train_throughput.py --device cuda --data-dir .gpudata --rounds 3 2>&1 | tee "$out/throughput_cuda.txt" || status=1
exit $status
