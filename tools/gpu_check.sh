#!/bin/bash
# The CUDA checks CI cannot run, as one prepared script for a lent GPU machine
# (the workplace's `device` tool: ~15 minutes of device time in all, nothing installable there).
# On this machine first:
#   mkdir -p .gpudata && cp ../shared/data/omniglot/images_*.zip .gpudata/     # .gpudata is git-ignored
#   make test (or any test run) so that .cache holds the decoded dataset
# then: device run, command "bash tools/gpu_check.sh", carry [".gpudata", ".cache"], timeout_s 540.
# It uses that machine's own python3, whose PyTorch has CUDA. What it checks:
#   1. the batched meta-iteration equals the per-task loop on the GPU (float64, <= 1e-9), tensors stay there,
#      and its CUDA-graph replay (training/cuda_graph.py) equals it;
#   2. a short real run with --device cuda learns (train + evaluate, as CI does on the CPU);
#   3. the batched vs per-task throughput on the GPU, and eager vs the CUDA graph, for three presets;
#   4. a real 3,000-iteration training run's wall time.
set -uo pipefail
export OMNIGLOT_DATA_DIR="$PWD/.gpudata" REPTILE_CACHE_DIR="$PWD/.cache" PYTHONUNBUFFERED=1
out="${OUT:-/tmp/gpu-check}"
mkdir -p "$out"
status=0
nvidia-smi -L
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())" || exit 1
python3 -m pytest -q -p no:cacheprovider tests/test_reptile.py tests/test_cuda_graph.py -k cuda 2>&1 | tee "$out/test_reptile.txt" || status=1
python3 -m pytest -q -p no:cacheprovider tests/test_training_run.py -k cuda -s 2>&1 | tee "$out/test_training_run.txt" || status=1
for preset in omniglot-5w5s-v1 omniglot-5w1s-v1 omniglot-20w1s-v1; do
  timeout 120 python3 -m benchmarks.meta_train_throughput --device cuda --data-dir .gpudata --preset $preset \
    --iters 20 --rounds 3 2>&1 | tee -a "$out/throughput_cuda.txt" || status=1
done
for preset in omniglot-5w5s-v1 omniglot-5w1s-v1 omniglot-20w1s-v1; do
  timeout 90 python3 -m benchmarks.cuda_graph_meta_step --device cuda --data-dir .gpudata --preset $preset \
    --iters 30 --rounds 3 2>&1 | tee -a "$out/cuda_graph.txt" || status=1
done
# 4. a real training run's wall time on the GPU (sampling on the CPU included), with its live evaluation
start=$(date +%s)
timeout 150 python3 -m training train --preset omniglot-5w1s-v1 --device cuda --data-dir .gpudata --out /tmp/run5w1s \
  --meta-iters 3000 --eval-interval 1000 --eval-tasks 200 --no-progress 2>&1 | tail -5 || status=1
echo "3000 meta-iterations of omniglot-5w1s-v1 (evaluations included): $(( $(date +%s) - start )) s" | tee "$out/run_wall.txt"
cp /tmp/run5w1s/metrics.jsonl "$out/" 2>/dev/null
exit $status
