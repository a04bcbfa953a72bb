"""The CUDA-graph meta step (training/cuda_graph.py) is meta_step. On a CPU its loop body runs
uncaptured (all but the capture itself); tools/gpu_check.sh runs the CUDA variants."""

import pytest
from helpers import DEVICES, SPEC, make_state, make_tasks

from training.cuda_graph import GraphedMetaStep
from training.reptile import InnerAdam, meta_step


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("algorithm", ["reptile", "fomaml"])
@pytest.mark.parametrize("carry", [True, False])
def test_graphed_step_equals_meta_step_in_float64(device, algorithm, carry):
    eager, graphed = make_state(0, device), make_state(0, device)
    step = GraphedMetaStep(SPEC, InnerAdam(0.01), algorithm, carry, capture=device == "cuda")
    for iteration in range(3):
        images, labels, order = make_tasks(iteration, device=device)
        expected = meta_step(SPEC, InnerAdam(0.01), eager, images, labels, order, 0.5, algorithm, carry)
        losses = step(graphed, images, labels, order, 0.5)
        assert float((losses - expected).abs().max()) <= 1e-9
    assert graphed.adam_t == eager.adam_t
    for a, b in zip(eager.params + eager.adam_v, graphed.params + graphed.adam_v, strict=False):
        assert b.device.type == device
        assert float((a - b).abs().max()) <= 1e-9
    moved = max(float((a - b).abs().max()) for a, b in zip(graphed.params, make_state(0, device).params, strict=False))
    assert moved > 1e-3


@pytest.mark.parametrize("device", DEVICES)
def test_new_task_shapes_are_recorded_again(device):
    eager, graphed = make_state(1, device), make_state(1, device)
    step = GraphedMetaStep(SPEC, InnerAdam(0.01), capture=device == "cuda")
    for tasks in (4, 2, 4):  # a meta-batch of a different size needs its own graph
        images, labels, order = make_tasks(tasks, tasks=tasks, device=device)
        meta_step(SPEC, InnerAdam(0.01), eager, images, labels, order, 0.5)
        step(graphed, images, labels, order, 0.5)
    for a, b in zip(eager.params + eager.adam_v, graphed.params + graphed.adam_v, strict=False):
        assert float((a - b).abs().max()) <= 1e-9


def test_an_unknown_algorithm_is_refused():
    with pytest.raises(ValueError, match="unknown algorithm 'maml'"):
        GraphedMetaStep(SPEC, InnerAdam(0.01), "maml")
