"""Second-order MAML (training/maml.py) and the separate final batch: the meta-gradient against
finite differences, MAML's first-order limit against FOMAML, the batched against the per-task
loop, the final batch's indices, and `python -m training train --algorithm maml` end to end."""

import json

import numpy as np
import pytest
import torch
from helpers import DEVICES, SMALL, SPEC, make_state, make_tasks, run_cli, run_python

from training.maml import adapted_and_meta_gradients, maml_inner_loop
from training.model import ModelSpec, init_params, task_losses
from training.presets import Config
from training.reptile import (
    InnerAdam,
    InnerSGD,
    apply_meta_update,
    grouped,
    inner_loop,
    make_inner_optimizer,
    meta_step,
    per_task_meta_step,
)
from training.tasks import minibatch_order

TINY = ModelSpec(ways=3, filters=4, layers=2, image_size=8)


def _tiny_problem(carry: bool):
    """Two tasks of TINY in float64: grouped weights, Adam state, images, labels and 3 batches of 4."""
    generator = torch.Generator().manual_seed(5)
    theta = init_params(TINY, generator, torch.float64)
    params = [p + 0.1 * torch.randn(p.shape, dtype=p.dtype, generator=generator) for p in grouped(theta, 2)]
    if carry:
        v = [1e-3 * torch.rand(p.shape, dtype=p.dtype, generator=generator) for p in params]
    else:
        v = [torch.zeros_like(p) for p in params]
    images = torch.rand(2, 9, 1, 8, 8, dtype=torch.float64, generator=generator)
    labels = torch.arange(3).repeat_interleave(3).repeat(2, 1)
    order = minibatch_order(np.random.default_rng(5), 2, 9, batch=4, iters=3)
    return params, v, (7 if carry else 0), images, labels, order


def _final_batch_loss(adam, params, v, t, images, labels, order) -> float:
    """The final batch's loss summed over tasks at the weights the adaptation steps reach."""
    adapted, _, _ = inner_loop(
        TINY, adam, [p.clone() for p in params], [x.clone() for x in v], t, images, labels, order[:-1]
    )
    task_index = torch.arange(images.shape[0])[:, None]
    with torch.no_grad():
        return float(task_losses(TINY, adapted, images[task_index, order[-1]], labels[task_index, order[-1]]).sum())


@pytest.mark.parametrize("optimizer, carry", [("adam", True), ("adam", False), ("sgd", False)])
def test_meta_gradient_equals_central_finite_differences(optimizer, carry):
    params, v, t, images, labels, order = _tiny_problem(carry)
    adam = make_inner_optimizer(optimizer, 0.02)
    _, _, meta_grads, _ = adapted_and_meta_gradients(TINY, adam, params, v, t, images, labels, order)
    _, _, first_order, _ = adapted_and_meta_gradients(TINY, adam, params, v, t, images, labels, order, False)
    generator = torch.Generator().manual_seed(6)
    h = 1e-6  # the Adam steps are strongly curved: at 1e-4 the truncation error is 2 %
    for _ in range(3):  # random directions through every tensor at once
        direction = [torch.randn(p.shape, dtype=p.dtype, generator=generator) for p in params]
        plus = _final_batch_loss(
            adam, [p + h * d for p, d in zip(params, direction, strict=True)], v, t, images, labels, order
        )
        minus = _final_batch_loss(
            adam, [p - h * d for p, d in zip(params, direction, strict=True)], v, t, images, labels, order
        )
        numeric = (plus - minus) / (2 * h)
        analytic = sum(float((g * d).sum()) for g, d in zip(meta_grads, direction, strict=True))
        dropped = sum(float((g * d).sum()) for g, d in zip(first_order, direction, strict=True))
        assert analytic == pytest.approx(numeric, rel=1e-6, abs=1e-9)
        if carry or optimizer == "sgd":  # the second-order terms are not negligible: MAML is told from FOMAML
            assert abs(analytic - dropped) > 1e-3 * abs(analytic)
    for layer in (0, 3, 5):  # and single coordinates of a conv, a BatchNorm and the head
        index = (1,) + (0,) * (params[layer].dim() - 1)
        bumped = [[p.clone() for p in params] for _ in range(2)]
        bumped[0][layer][index] += h
        bumped[1][layer][index] -= h
        numeric = (
            _final_batch_loss(adam, bumped[0], v, t, images, labels, order)
            - _final_batch_loss(adam, bumped[1], v, t, images, labels, order)
        ) / (2 * h)
        assert float(meta_grads[layer][index]) == pytest.approx(numeric, rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("carry", [True, False])
def test_maml_without_second_order_terms_is_fomaml(device, carry):
    state = make_state(0, device)
    images, labels, order = make_tasks(0, device=device)
    adam = InnerAdam(0.01)
    theta = state.params
    start_v = grouped(state.adam_v, 4) if carry else [torch.zeros_like(p) for p in grouped(theta, 4)]
    t = state.adam_t if carry else 0
    fomaml_v, maml_v = [x.clone() for x in start_v], [x.clone() for x in start_v]
    expected = inner_loop(SPEC, adam, grouped(theta, 4), fomaml_v, t, images, labels, order)
    got = maml_inner_loop(SPEC, adam, grouped(theta, 4), maml_v, t, images, labels, order, second_order=False)
    for a, b in zip(
        expected[0] + expected[1] + fomaml_v + [expected[2]], got[0] + got[1] + maml_v + [got[2]], strict=True
    ):
        assert b.device.type == device
        assert float((a - b).abs().max()) <= 1e-12
    # and the meta-update is the same function of them
    fomaml, maml = make_state(0, device), make_state(0, device)
    apply_meta_update(fomaml, theta, *expected[:2], fomaml_v, 0.5, "fomaml", carry, 4, inner_steps=3)
    apply_meta_update(maml, theta, *got[:2], maml_v, 0.5, "maml", carry, 4, inner_steps=3)
    for a, b in zip(fomaml.params + fomaml.adam_v, maml.params + maml.adam_v, strict=True):
        assert float((a - b).abs().max()) <= 1e-12
    second = maml_inner_loop(SPEC, adam, grouped(theta, 4), [x.clone() for x in start_v], t, images, labels, order)
    assert max(float((a - b).abs().max()) for a, b in zip(second[0], got[0], strict=True)) > 1e-6  # MAML itself differs


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("carry", [True, False])
def test_batched_maml_equals_per_task_loop_in_float64(device, carry):
    batched, looped = make_state(0, device), make_state(0, device)
    for iteration in range(2):
        images, labels, order = make_tasks(iteration, device=device)
        meta_step(SPEC, InnerAdam(0.01), batched, images, labels, order, 0.5, "maml", carry)
        per_task_meta_step(SPEC, InnerAdam(0.01), looped, images, labels, order, 0.5, "maml", carry)
    moved = max(float((a - b).abs().max()) for a, b in zip(batched.params, make_state(0, device).params, strict=True))
    assert moved > 1e-3
    for a, b in zip(batched.params + batched.adam_v, looped.params + looped.adam_v, strict=True):
        assert b.device.type == device
        assert float((a - b).abs().max()) <= 1e-9
    assert batched.adam_t == looped.adam_t == (7 + 2 * 3 if carry else 7)


@pytest.mark.parametrize("device", DEVICES)
def test_maml_with_sgd_is_finns_update_and_leaves_the_adam_state(device):
    """SGD inner steps: MAML's meta-update is theta - eps * lr * mean_i G_i (the meta-gradients), the
    batched path equals the per-task loop, and the carried Adam state is not touched."""
    images, labels, order = make_tasks(1, device=device)
    theta = make_state(0, device).params
    _, _, meta_grads, _ = adapted_and_meta_gradients(
        SPEC,
        InnerSGD(0.01),
        grouped(theta, 4),
        [torch.zeros_like(p) for p in grouped(theta, 4)],
        0,
        images,
        labels,
        order,
    )
    expected = [th - 0.5 * 0.01 * g.mean(0) for th, g in zip(theta, meta_grads, strict=True)]
    batched, looped = make_state(0, device), make_state(0, device)
    meta_step(SPEC, InnerSGD(0.01), batched, images, labels, order, 0.5, "maml")
    per_task_meta_step(SPEC, InnerSGD(0.01), looped, images, labels, order, 0.5, "maml")
    for state in (batched, looped):
        for got, want in zip(state.params, expected, strict=True):
            assert float((got - want).abs().max()) <= 1e-12
        for got, want in zip(state.adam_v, make_state(0, device).adam_v, strict=True):
            assert torch.equal(got, want)
        assert state.adam_t == 7


def test_meta_step_refuses_an_unknown_algorithm():
    images, labels, order = make_tasks(0)
    with pytest.raises(ValueError, match="unknown algorithm 'mmal'"):
        meta_step(SPEC, InnerAdam(0.01), make_state(0), images, labels, order, 0.5, "mmal")


def test_separate_final_batch_uses_examples_no_inner_step_uses():
    # 30 examples, 5 batches of 10: the inner loop cycles, so the shared final batch repeats examples
    order = minibatch_order(np.random.default_rng(1), tasks=6, samples=30, batch=10, iters=5, separate_final=True)
    shared = minibatch_order(np.random.default_rng(1), tasks=6, samples=30, batch=10, iters=5)
    assert order.shape == shared.shape == (5, 6, 10)
    for task in range(6):
        final, inner = set(order[-1, task]), order[:-1, task].ravel()
        assert len(final) == 10 and not final & set(inner)
        assert sorted(np.bincount(inner, minlength=30).tolist()) == [0] * 10 + [2] * 20  # the other 20, each twice
        assert set(shared[-1, task]) & set(shared[:-1, task].ravel())
    alone = minibatch_order(np.random.default_rng(1), tasks=1, samples=11, batch=10, iters=1, separate_final=True)
    assert alone.shape == (1, 1, 10)  # one step: the final batch only
    with pytest.raises(ValueError, match="leaves none"):
        minibatch_order(np.random.default_rng(1), tasks=1, samples=10, batch=10, iters=2, separate_final=True)


def test_shared_final_batch_keeps_the_order_of_earlier_runs():
    """The default draws exactly what it drew before the option existed (runs resume unchanged)."""
    rng = np.random.default_rng(2)
    epochs = np.argsort(rng.random((3, 2, 20)), axis=2).reshape(3, 40)[:, :36]
    expected = epochs.reshape(3, 4, 9).transpose(1, 0, 2)
    assert np.array_equal(minibatch_order(np.random.default_rng(2), tasks=3, samples=20, batch=9, iters=4), expected)


def test_an_old_config_without_final_batch_resumes_with_the_shared_default():
    old = {k: v for k, v in Config(algorithm="fomaml").to_dict().items() if k != "final_batch"}
    assert Config.from_dict(old).final_batch == "shared"
    assert Config.from_dict(old).algorithm_fields() == Config(algorithm="fomaml").algorithm_fields()


# a small MAML run: 2 tasks a meta-batch, 3 inner steps on batches of 5 from 5 x 4 examples
RUN = ["--algorithm", "maml", "--final-batch", "separate", "--meta-iters", "3", "--meta-batch", "2"]
RUN += ["--inner-iters", "3", "--inner-batch", "5", "--train-shots", "4", "--eval-interval", "1000", *SMALL]


def test_maml_training_run_checkpoints_and_resumes_bit_for_bit(tmp_path, omniglot_dir):
    whole = run_cli(["train", "--data-dir", str(omniglot_dir), "--out", str(tmp_path / "whole"), *RUN])
    assert whole.returncode == 0, whole.stderr
    stopped = run_python(
        "-c",
        "import sys; from pathlib import Path; from training.arguments import build_parser, resolve_config; "
        "from training.train import train; args = build_parser('').parse_args(sys.argv[1:]); "
        "train(resolve_config(args), args.out, args.data_dir, progress=False, stop_after=2)",
        "train",
        "--data-dir",
        str(omniglot_dir),
        "--out",
        str(tmp_path / "resumed"),
        *RUN,
    )
    assert stopped.returncode == 0, stopped.stderr
    assert torch.load(tmp_path / "resumed" / "checkpoint.pt", weights_only=False)["iteration"] == 2
    resumed = run_cli(["train", "--data-dir", str(omniglot_dir), "--out", str(tmp_path / "resumed"), *RUN, "--resume"])
    assert resumed.returncode == 0, resumed.stderr
    a, b = (torch.load(tmp_path / name / "checkpoint.pt", weights_only=False) for name in ("whole", "resumed"))
    assert a["iteration"] == b["iteration"] == 3 and a["adam_t"] == b["adam_t"] == 3 * 3
    for x, y in zip(a["params"] + a["adam_v"], b["params"] + b["adam_v"], strict=True):
        assert torch.equal(x, y)
    run = json.loads((tmp_path / "resumed" / "config.json").read_text())
    assert run["config"]["algorithm"] == "maml" and run["config"]["final_batch"] == "separate"
    assert run["sessions"][-1]["cuda_graph"] is False


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--algorithm", "mamal"], "argument --algorithm: invalid choice"),
        (["--final-batch", "tail"], "argument --final-batch: invalid choice"),
        (["--final-batch", "separate"], "--final-batch separate applies to --algorithm fomaml and maml"),
        (
            ["--algorithm", "maml", "--final-batch", "separate", "--train-shots", "2", "--inner-batch", "10"],
            "--final-batch separate sets aside --inner-batch 10 of a task's 10 examples",
        ),
    ],
)
def test_bad_algorithm_flags_get_a_one_line_error_naming_the_flag(tmp_path, flags, message):
    result = run_cli(["train", "--out", str(tmp_path / "run"), "--algorithm", "reptile", *flags])
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
