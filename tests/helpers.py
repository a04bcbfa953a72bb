"""Helpers shared by the test modules: running the CLI in a subprocess, and small float64 meta-learning states."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from training.model import ModelSpec, init_params
from training.reptile import MetaState
from training.tasks import minibatch_order

ROOT = Path(__file__).resolve().parent.parent
# Flags that make a training run small and quiet: 16 filters, 4 tasks per live estimate.
SMALL = ["--filters", "16", "--eval-tasks", "4", "--no-progress", "--seed", "3"]
# One thread per subprocess: the test machine's cores are shared.
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}

SPEC = ModelSpec(ways=3, filters=8)
# The CUDA variants run where a GPU is (tools/gpu_check.sh on a lent machine); CI has none.
DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")),
]


def run_python(*args, timeout=600, **kwargs) -> subprocess.CompletedProcess:
    """`python ARGS` in the repository root, output captured as text."""
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=timeout, **kwargs
    )


def run_cli(args, **kwargs) -> subprocess.CompletedProcess:
    """`python -m training ARGS` in the repository root, output captured as text."""
    return run_python("-m", "training", *args, **kwargs)


def metrics_without_times(run_dir: Path) -> list:
    """The rows of a run's metrics.jsonl without their wall-clock times (what a resumed run must reproduce)."""
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k not in ("elapsed_s", "eval_s")} for row in rows]


def make_state(seed: int, device="cpu") -> MetaState:
    """A float64 MetaState of SPEC with random Adam state and t = 7."""
    generator = torch.Generator().manual_seed(seed)
    params = init_params(SPEC, generator, torch.float64)
    v = [torch.rand(p.shape, dtype=torch.float64, generator=generator) * 1e-3 for p in params]
    return MetaState([p.to(device) for p in params], [x.to(device) for x in v], 7)


def make_tasks(seed: int, tasks=4, shots=2, device="cpu"):
    """Random float64 tasks of SPEC: images [tasks, ways * shots, 1, 28, 28], labels, mini-batch order."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(tasks, SPEC.ways * shots, 1, 28, 28, dtype=torch.float64, generator=generator)
    labels = torch.arange(SPEC.ways).repeat_interleave(shots).repeat(tasks, 1)
    order = minibatch_order(np.random.default_rng(seed), tasks, SPEC.ways * shots, batch=4, iters=3)
    return images.to(device), labels.to(device), order
