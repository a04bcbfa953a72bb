"""The batched meta-iteration is the same algorithm as the plain per-task loop."""

import pytest
import torch
from helpers import DEVICES, SPEC, make_state, make_tasks

from training.model import forward, init_params
from training.reptile import InnerAdam, meta_step, per_task_meta_step


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("algorithm", ["reptile", "fomaml"])
@pytest.mark.parametrize("carry", [True, False])
def test_batched_equals_per_task_loop_in_float64(algorithm, carry, device):
    batched, looped = make_state(0, device), make_state(0, device)
    for iteration in range(3):
        images, labels, order = make_tasks(iteration, device=device)
        meta_step(SPEC, InnerAdam(0.01), batched, images, labels, order, 0.5, algorithm, carry)
        per_task_meta_step(SPEC, InnerAdam(0.01), looped, images, labels, order, 0.5, algorithm, carry)
    for tensor in batched.params + batched.adam_v + looped.params + looped.adam_v:
        assert tensor.device.type == device  # nothing fell back to the CPU
    moved = max(float((a - b).abs().max()) for a, b in zip(batched.params, make_state(0, device).params, strict=False))
    assert moved > 1e-3  # the parameters really changed
    for a, b in zip(batched.params + batched.adam_v, looped.params + looped.adam_v, strict=False):
        assert float((a - b).abs().max()) <= 1e-9
    assert batched.adam_t == looped.adam_t == (7 + 3 * 3 if carry else 7)


def test_grouped_forward_equals_separate_models():
    params = [
        torch.stack(ps)
        for ps in zip(
            *(init_params(SPEC, torch.Generator().manual_seed(s), torch.float64) for s in range(3)), strict=False
        )
    ]
    images = torch.rand(3, 5, 1, 28, 28, dtype=torch.float64)
    together = forward(SPEC, params, images)
    for g in range(3):
        alone = forward(SPEC, [p[g : g + 1] for p in params], images[g : g + 1])
        assert torch.allclose(together[g], alone[0], atol=1e-12)


def test_inner_adam_matches_the_tensorflow_rule():
    adam = InnerAdam(lr=0.1, beta2=0.9, eps=1e-8)
    theta, v = [torch.tensor([1.0], dtype=torch.float64)], [torch.tensor([0.0], dtype=torch.float64)]
    for t, g in enumerate([0.5, -2.0, 1.0], start=1):
        expected_v = 0.9 * float(v[0]) + 0.1 * g * g
        expected = float(theta[0]) - 0.1 * (1 - 0.9**t) ** 0.5 * g / (expected_v**0.5 + 1e-8)
        adam.step(theta, [torch.tensor([g], dtype=torch.float64)], v, t)
        assert float(v[0]) == pytest.approx(expected_v, rel=1e-12)
        assert float(theta[0]) == pytest.approx(expected, rel=1e-12)


def test_sequential_state_passes_adam_state_from_task_to_task():
    mean_state, sequential = make_state(1), make_state(1)
    images, labels, order = make_tasks(5)
    per_task_meta_step(SPEC, InnerAdam(0.01), mean_state, images, labels, order, 1.0)
    per_task_meta_step(SPEC, InnerAdam(0.01), sequential, images, labels, order, 1.0, sequential_state=True)
    assert sequential.adam_t == 7 + 4 * 3  # the reference counts every inner step of every task
    assert mean_state.adam_t == 7 + 3
    assert not torch.allclose(mean_state.params[0], sequential.params[0])


@pytest.mark.parametrize("device", DEVICES)
def test_all_reduce_path_runs_on_the_device_backend(device, tmp_path):
    """The sums go through torch.distributed (gloo on CPU, nccl on CUDA) when a process group exists;
    with one rank that must change nothing. Two real ranks are tested in test_training_run.py (gloo);
    nccl cannot put two ranks on one GPU, so this is its check on a one-GPU machine."""
    import torch.distributed as dist

    alone, grouped = make_state(2, device), make_state(2, device)
    images, labels, order = make_tasks(6, device=device)
    meta_step(SPEC, InnerAdam(0.01), alone, images, labels, order, 0.5)
    dist.init_process_group(
        "nccl" if device == "cuda" else "gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1
    )
    try:
        meta_step(SPEC, InnerAdam(0.01), grouped, images, labels, order, 0.5, total_tasks=len(images))
    finally:
        dist.destroy_process_group()
    for a, b in zip(alone.params + alone.adam_v, grouped.params + grouped.adam_v, strict=False):
        assert b.device.type == device
        assert float((a - b).abs().max()) <= 1e-12


def test_forward_with_interleaved_batches_equals_separate_batches():
    """forward(..., batches=b): each of the b batches gets its own BatchNorm statistics, exactly as if
    it went through alone (what lets non-transductive prediction share one convolution per task)."""
    params = [p[None] for p in init_params(SPEC, torch.Generator().manual_seed(1), torch.float64)]
    batches = torch.rand(5, 3, 1, 28, 28, dtype=torch.float64)  # 3 batches of 5 images, [image, batch]
    together = forward(SPEC, params, batches.reshape(1, 15, 1, 28, 28), batches=3)[0].reshape(5, 3, -1)
    for j in range(3):
        alone = forward(SPEC, params, batches[None, :, j])[0]
        assert float((together[:, j] - alone).abs().max()) <= 1e-12
    assert float((together[:, 0] - together[:, 1]).abs().max()) > 1e-3  # the batches really differ


def test_non_transductive_prediction_is_one_batch_per_query():
    """Each query is predicted in a batch with its task's support set and no other query."""
    from training.evaluate import predict_queries
    from training.reptile import grouped

    generator = torch.Generator().manual_seed(3)
    params = [
        p + 0.1 * torch.randn(p.shape, dtype=p.dtype, generator=generator) for p in grouped(make_state(1).params, 4)
    ]  # four tasks with different weights
    support = torch.rand(4, 6, 1, 28, 28, dtype=torch.float64, generator=generator)
    queries = torch.rand(4, 3, 1, 28, 28, dtype=torch.float64, generator=generator)
    predicted = predict_queries(SPEC, params, support, queries, False)
    for task in range(4):
        for query in range(3):
            batch = torch.cat([support[task], queries[task, query, None]])[None]
            logits = forward(SPEC, [p[task : task + 1] for p in params], batch)[0, -1]
            assert int(predicted[task, query]) == int(logits.argmax())
    assert predicted.shape == (4, 3)
    assert len(set(predicted.flatten().tolist())) > 1  # not one class for everything
