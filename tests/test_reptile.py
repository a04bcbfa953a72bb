"""The batched meta-iteration is the same algorithm as the plain per-task loop; plain SGD inner steps
and mini-batches drawn with replacement (the reference's --sgd and --replacement)."""

import json

import numpy as np
import pytest
import torch
from helpers import DEVICES, SMALL, SPEC, make_state, make_tasks, run_cli, run_python

from training.model import forward, init_params, task_losses
from training.reptile import InnerAdam, InnerSGD, make_inner_optimizer, meta_step, per_task_meta_step
from training.tasks import minibatch_order


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


def test_inner_sgd_is_plain_gradient_descent_and_keeps_no_state():
    sgd = InnerSGD(lr=0.1)
    theta, v = [torch.tensor([1.0, -2.0], dtype=torch.float64)], [torch.tensor([0.5, 0.5], dtype=torch.float64)]
    grad = [torch.tensor([0.5, -3.0], dtype=torch.float64)]
    stepped, v_out = sgd.stepped(theta, grad, v, 4)
    sgd.step(theta, grad, v, 4)
    assert theta[0].tolist() == stepped[0].tolist() == pytest.approx([0.95, -1.7], rel=1e-15)
    assert v[0].tolist() == v_out[0].tolist() == [0.5, 0.5]
    assert make_inner_optimizer("sgd", 0.1) == sgd and make_inner_optimizer("adam", 0.1) == InnerAdam(0.1)
    with pytest.raises(ValueError, match="unknown inner optimizer 'rmsprop'"):
        make_inner_optimizer("rmsprop", 0.1)


def _sgd_meta_update(state, images, labels, order, lr, meta_step_size, last_only: bool) -> list:
    """The reference's update written out, one task and one model at a time: k plain SGD steps, then
    theta + eps * mean over tasks of -lr (g_1 + ... + g_k) (Reptile) or -lr g_k (--foml)."""
    theta = [p.detach() for p in state.params]
    deltas = []
    for task in range(images.shape[0]):
        weights, steps = [p.clone() for p in theta], []
        for batch in order[:, task]:
            leaves = [w.requires_grad_() for w in weights]
            loss = task_losses(SPEC, [w[None] for w in leaves], images[task, batch][None], labels[task, batch][None])
            grads = torch.autograd.grad(loss.sum(), leaves)
            steps.append([-lr * g for g in grads])
            weights = [w.detach() - lr * g for w, g in zip(leaves, grads, strict=True)]
        chosen = steps[-1:] if last_only else steps
        deltas.append([sum(step[i] for step in chosen) for i in range(len(theta))])
    return [th + meta_step_size * torch.stack([d[i] for d in deltas]).mean(0) for i, th in enumerate(theta)]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("algorithm", ["reptile", "fomaml"])
@pytest.mark.parametrize("carry", [True, False])
def test_sgd_meta_step_sums_the_inner_gradients_or_takes_the_last(algorithm, carry, device):
    """With SGD, Reptile's update is eps * lr * (g_1 + ... + g_k) and FOMAML's (the shared final
    batch) eps * lr * g_k, the reference's --foml; the Adam state is left exactly as it was."""
    images, labels, order = make_tasks(4)
    expected = _sgd_meta_update(make_state(0), images, labels, order, 0.05, 0.5, algorithm == "fomaml")
    batched, looped = make_state(0, device), make_state(0, device)
    images, labels = images.to(device), labels.to(device)
    meta_step(SPEC, InnerSGD(0.05), batched, images, labels, order, 0.5, algorithm, carry)
    per_task_meta_step(
        SPEC, InnerSGD(0.05), looped, images, labels, order, 0.5, algorithm, carry, sequential_state=carry
    )
    for state in (batched, looped):
        for got, want in zip(state.params, expected, strict=True):
            assert float((got.cpu() - want).abs().max()) <= 1e-12
        for got, want in zip(state.adam_v, make_state(0).adam_v, strict=True):
            assert torch.equal(got.cpu(), want)
        assert state.adam_t == 7
    moved = max(float((a - b).abs().max()) for a, b in zip(expected, make_state(0).params, strict=True))
    assert moved > 1e-4


@pytest.mark.parametrize("device", DEVICES)
def test_graphed_meta_step_runs_sgd(device):
    """The CUDA-graph path (replayed on a GPU, eager here) takes the same SGD meta-iteration."""
    from training.cuda_graph import GraphedMetaStep

    step = GraphedMetaStep(SPEC, InnerSGD(0.05), "fomaml", carry_state=False, capture=device == "cuda")
    graphed, eager = make_state(0, device), make_state(0, device)
    for iteration in range(3):
        images, labels, order = make_tasks(iteration, device=device)
        step(graphed, images, labels, order, 0.5)
        meta_step(SPEC, InnerSGD(0.05), eager, images, labels, order, 0.5, "fomaml")
    for a, b in zip(graphed.params + graphed.adam_v, eager.params + eager.adam_v, strict=True):
        assert float((a - b).abs().max()) <= 1e-12
    assert graphed.adam_t == eager.adam_t == 7


def test_replacement_draws_each_batch_afresh_from_distinct_samples():
    order = minibatch_order(np.random.default_rng(4), tasks=50, samples=12, batch=5, iters=6, replacement=True)
    assert order.shape == (6, 50, 5)
    assert all(len(set(order[k, g])) == 5 for k in range(6) for g in range(50))  # distinct within a batch
    counts = np.stack([np.bincount(order[:, g].ravel(), minlength=12) for g in range(50)])
    assert counts.max() > 2  # without replacement 30 draws of 12 samples give each 2 or 3
    assert abs(counts.mean(0) - 30 / 12).max() < 0.5  # every sample equally likely
    walk = minibatch_order(np.random.default_rng(4), tasks=50, samples=12, batch=5, iters=6)
    assert set(np.bincount(walk[:, 0].ravel(), minlength=12)) <= {2, 3}
    separate = minibatch_order(
        np.random.default_rng(4), tasks=50, samples=12, batch=5, iters=6, separate_final=True, replacement=True
    )
    for g in range(50):
        assert not set(separate[-1, g]) & set(separate[:-1, g].ravel())
    with pytest.raises(ValueError, match="a mini-batch of 5 drawn with replacement needs 5 samples, not 4"):
        minibatch_order(
            np.random.default_rng(4), tasks=1, samples=9, batch=5, iters=2, separate_final=True, replacement=True
        )


# a short SGD run drawing with replacement: 2 tasks a meta-batch, 3 steps on batches of 5 from 5 x 2 examples
SGD_RUN = ["--inner-optimizer", "sgd", "--replacement", "--lr", "0.003", "--meta-iters", "3", "--meta-batch", "2"]
SGD_RUN += ["--inner-iters", "3", "--inner-batch", "5", "--train-shots", "2", "--eval-interval", "2", *SMALL]


def test_sgd_run_with_replacement_leaves_the_adam_state_and_resumes_bit_for_bit(tmp_path, omniglot_dir):
    data = ["--data-dir", str(omniglot_dir)]
    whole = run_cli(["train", *data, "--out", str(tmp_path / "whole"), *SGD_RUN])
    assert whole.returncode == 0, whole.stderr
    stopped = run_python(
        "-c",
        "import sys; from training.arguments import build_parser, resolve_config; from training.train import train; "
        "args = build_parser('').parse_args(sys.argv[1:]); "
        "train(resolve_config(args), args.out, args.data_dir, progress=False, stop_after=2)",
        *["train", *data, "--out", str(tmp_path / "resumed"), *SGD_RUN],
    )
    assert stopped.returncode == 0, stopped.stderr
    resumed = run_cli(["train", *data, "--out", str(tmp_path / "resumed"), *SGD_RUN, "--resume"])
    assert resumed.returncode == 0, resumed.stderr
    a, b = (torch.load(tmp_path / name / "checkpoint.pt", weights_only=False) for name in ("whole", "resumed"))
    assert a["iteration"] == b["iteration"] == 3 and a["adam_t"] == b["adam_t"] == 0
    for x, y in zip(a["params"] + a["adam_v"], b["params"] + b["adam_v"], strict=True):
        assert torch.equal(x, y)
    assert all(not v.any() for v in a["adam_v"])  # SGD: the fresh (zero) state, untouched
    run = json.loads((tmp_path / "resumed" / "config.json").read_text())
    assert run["config"]["inner_optimizer"] == "sgd" and run["config"]["replacement"] is True
    evaluations = []
    for name in ("whole", "resumed"):
        rows = [json.loads(line) for line in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
        evaluations.append([row for row in rows if "test_accuracy" in row])
    assert [row["iteration"] for row in evaluations[0]] == [2, 3]
    assert all(row["eval_s"] > 0 and row["elapsed_s"] > 0 for row in evaluations[0])
    strip = [[{k: v for k, v in row.items() if k.endswith("accuracy")} for row in rows] for rows in evaluations]
    assert strip[0] == strip[1]  # the same live estimates (SGD fine-tuning, batches with replacement)


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--inner-optimizer", "rmsprop"], "argument --inner-optimizer: invalid choice"),
        (
            ["--replacement", "--inner-batch", "12", "--train-shots", "2"],
            "--replacement draws each mini-batch of --inner-batch 12 distinct examples from the task's 10",
        ),
        (
            ["--replacement", "--eval-batch", "6", "--shots", "1"],
            "--replacement draws each evaluation mini-batch of --eval-batch 6 distinct examples from the 5",
        ),
    ],
)
def test_bad_sampling_flags_get_a_one_line_error_naming_the_flag(tmp_path, flags, message):
    result = run_cli(["train", "--out", str(tmp_path / "run"), "--preset", "omniglot-5w1s", *flags])
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
