"""The start measurements (training/gradient_alignment.py, training/solution_distance.py, training/start_points.py):
the inner products against a hand-computed float64 reference, disjoint mini-batches, fine-tuning that stops at
the threshold, both commands end to end on tiny checkpoints, their help and their flag errors."""

import json

import numpy as np
import pytest
import torch
from helpers import SPEC, run_cli

from training.arguments import FLOW_STEP
from training.gradient_alignment import alignment, sample_pairs, task_gradients
from training.model import ModelSpec, init_params, task_losses
from training.reptile import grouped
from training.solution_distance import fine_tune
from training.tasks import TaskSampler


def _grouped_float64(groups: int, seed: int) -> list:
    """SPEC's float64 parameters, a different perturbation in each group."""
    generator = torch.Generator().manual_seed(seed)
    params = grouped(init_params(SPEC, generator, torch.float64), groups)
    return [p + 0.05 * torch.randn(p.shape, dtype=torch.float64, generator=generator) for p in params]


def _reference(params: list, images, labels) -> np.ndarray:
    """One model (G = 1) per task, its summed loss's gradient flattened tensor by tensor into one float64 vector."""
    leaves = [p.detach().clone().requires_grad_() for p in params]
    loss = task_losses(SPEC, [p[None] for p in leaves], images[None], labels[None]).sum()
    return np.concatenate([g.numpy().ravel() for g in torch.autograd.grad(loss, leaves)])


def test_inner_products_equal_a_float64_reference_computed_task_by_task():
    groups, batch = 3, 4
    params = _grouped_float64(groups, seed=0)
    generator = torch.Generator().manual_seed(1)
    images = torch.rand(2, groups, batch, 1, 28, 28, dtype=torch.float64, generator=generator)
    labels = torch.randint(0, SPEC.ways, (2, groups, batch), generator=generator)
    gradients = [task_gradients(SPEC, params, images[k], labels[k]) for k in range(2)]
    measured = alignment(*gradients)
    by_tensor = alignment(*gradients, {name: slice(i, i + 1) for i, name in enumerate(SPEC.param_names())})
    total = sum(values["inner_product"] for values in by_tensor.values())
    torch.testing.assert_close(total, measured["all"]["inner_product"], rtol=1e-12, atol=0)
    body_size = sum(p[0].numel() for p in params[:-2])
    for task in range(groups):
        g_i, g_j = (_reference([p[task] for p in params], images[k, task], labels[k, task]) for k in range(2))
        for part, (a, b) in {"all": (g_i, g_j), "body": (g_i[:body_size], g_j[:body_size])}.items():
            expected_inner = float(a @ b)
            assert expected_inner != 0
            np.testing.assert_allclose(float(measured[part]["inner_product"][task]), expected_inner, rtol=1e-10)
            cosine = expected_inner / np.linalg.norm(a) / np.linalg.norm(b)
            np.testing.assert_allclose(float(measured[part]["cosine"][task]), cosine, rtol=1e-10)
            np.testing.assert_allclose(float(measured[part]["squared_norm"][task]), (a @ a + b @ b) / 2, rtol=1e-10)


def test_the_two_mini_batches_of_a_task_are_disjoint_and_labelled_by_class():
    classes, drawings = 10, 20
    ids = np.arange(classes * drawings, dtype=np.uint8).reshape(classes, drawings)
    sampler = TaskSampler(np.broadcast_to(ids[:, :, None, None, None], (classes, drawings, 1, 2, 2)).copy())
    images, labels = sample_pairs(sampler, np.random.default_rng(0), tasks=6, ways=3, shots=4, batch=6)
    assert images.shape == (2, 6, 6, 1, 2, 2) and labels.shape == (2, 6, 6)
    for task in range(6):
        drawn = images[:, task, :, 0, 0, 0].ravel().astype(int)
        assert len(set(drawn)) == 12  # two batches of 6, no example in both
        class_of_label = {}
        for image_id, label in zip(drawn, labels[:, task].ravel(), strict=True):
            assert class_of_label.setdefault(int(label), image_id // drawings) == image_id // drawings
        assert len(set(class_of_label.values())) == len(class_of_label)


def test_fine_tuning_stops_each_task_at_the_threshold():
    generator = torch.Generator().manual_seed(2)
    images = torch.rand(2, SPEC.ways * 2, 1, 28, 28, dtype=torch.float64, generator=generator)
    labels = torch.arange(SPEC.ways).repeat_interleave(2).repeat(2, 1)
    params = _grouped_float64(2, seed=3)

    adam = dict(optimizer="adam", lr=1e-2)
    same, steps, _ = fine_tune(SPEC, params, images, labels, **adam, loss_threshold=100.0, max_steps=5)
    assert steps.tolist() == [0, 0] and all(torch.equal(a, b) for a, b in zip(same, params, strict=True))

    tuned, steps, loss = fine_tune(SPEC, params, images, labels, **adam, loss_threshold=0.05, max_steps=300)
    assert (loss < 0.05).all() and (steps > 0).all() and (steps < 300).all()
    again = task_losses(SPEC, tuned, images, labels) / labels.shape[1]
    torch.testing.assert_close(again, loss)
    # stopped at the first step below the threshold: one step fewer was still above it
    for task in range(2):
        _, _, before = fine_tune(
            SPEC,
            [p[task : task + 1] for p in params],
            images[task : task + 1],
            labels[task : task + 1],
            **adam,
            loss_threshold=0.0,
            max_steps=int(steps[task]) - 1,
        )
        assert before[0] >= 0.05


def test_flow_fine_tuning_takes_steps_of_length_lr_down_each_tasks_gradient():
    generator = torch.Generator().manual_seed(4)
    images = torch.rand(2, SPEC.ways * 2, 1, 28, 28, dtype=torch.float64, generator=generator)
    labels = torch.arange(SPEC.ways).repeat_interleave(2).repeat(2, 1)
    params = _grouped_float64(2, seed=5)
    tuned, steps, _ = fine_tune(
        SPEC, params, images, labels, optimizer="flow", lr=0.03, loss_threshold=1e-9, max_steps=3
    )
    assert steps.tolist() == [3, 3]
    for task in range(2):  # by hand, one task at a time: the unit gradient of its summed loss, times 0.03
        expected = [p[task : task + 1].clone() for p in params]
        for _ in range(3):
            leaves = [p.detach().requires_grad_() for p in expected]
            loss = task_losses(SPEC, leaves, images[task : task + 1], labels[task : task + 1]).sum()
            grads = torch.autograd.grad(loss, leaves)
            norm = torch.sqrt(sum((g * g).sum() for g in grads))
            expected = [p - 0.03 * g / norm for p, g in zip(leaves, grads, strict=True)]
        moved = torch.sqrt(sum(((a[task] - b[task]) ** 2).sum() for a, b in zip(tuned, params, strict=True)))
        assert moved <= 0.09 + 1e-12  # three steps of 0.03
        for a, b in zip(tuned, expected, strict=True):
            torch.testing.assert_close(a[task : task + 1], b.detach(), rtol=1e-10, atol=1e-12)


def _tiny_checkpoint(path, *, algorithm="reptile", seed=3, iteration=10):
    """A 5-way, 8-filter checkpoint holding init_params with `seed`: the run's own random initialization."""
    from training.checkpoint import save_checkpoint
    from training.presets import Config
    from training.reptile import MetaState

    spec = ModelSpec(ways=5, filters=8)
    state = MetaState.fresh(init_params(spec, torch.Generator().manual_seed(seed)))
    config = Config().updated(filters=8, seed=seed, algorithm=algorithm, lr=0.002)
    save_checkpoint(
        path,
        config=config.to_dict(),
        spec=spec.to_dict(),
        state=state,
        iteration=iteration,
        rng=np.random.default_rng(0),
        elapsed_s=0.0,
    )
    return path


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    folder = tmp_path_factory.mktemp("starts")
    return {
        "reptile": _tiny_checkpoint(folder / "reptile.pt"),
        "joint": _tiny_checkpoint(folder / "joint.pt", algorithm="joint", iteration=30),
        "other_split": _tiny_checkpoint(folder / "other.pt", seed=4),
    }


def test_a_start_is_named_by_its_run_folder_and_curve():
    from training.start_points import run_name

    assert run_name("runs/ablation/ablation-g4/seed-0/checkpoint.pt") == "ablation-g4 seed-0"
    assert run_name("checkpoints/omniglot-5w1s/checkpoint.pt") == "omniglot-5w1s"
    assert run_name("random init (seed 0)") == "random init (seed 0)"


def test_gradient_alignment_runs_end_to_end(checkpoints, omniglot_dir, tmp_path):
    out, plot = tmp_path / "alignment.json", tmp_path / "alignment.png"
    command = ["gradient-alignment", "--checkpoint", str(checkpoints["reptile"]), "--checkpoint"]
    command += [str(checkpoints["joint"]), "--random-init", "--data-dir", str(omniglot_dir), "--tasks", "12"]
    result = run_cli([*command, "--shots", "3", "--batch", "5", "--out", str(out), "--plot", str(plot)])
    assert result.returncode == 0, result.stderr
    assert "g_i.g_j (all)" in result.stdout and "random init (seed 3)" in result.stdout
    report = json.loads(out.read_text())
    assert report["settings"] == {"tasks": 12, "ways": 5, "seed": 1, "shots": 3, "batch": 5}
    assert report["split"]["run_seed"] == 3 and report["split"]["held_out_classes"] == 423
    reptile, joint, random_init = report["starts"]
    assert [joint["algorithm"], joint["iteration"], random_init["algorithm"]] == ["joint", 30, "random"]
    for row in report["starts"]:
        for quantity in ("inner_product", "cosine", "squared_norm"):
            assert set(row[quantity]) == {"all", "body"} and set(row[quantity]["all"]) == {"mean", "sem"}
            assert len(row["per_task"]["all"][quantity]) == 12
        assert -1 <= row["cosine"]["all"]["mean"] <= 1 and row["squared_norm"]["body"]["mean"] > 0
        assert list(row["by_tensor"]) == ModelSpec(ways=5, filters=8).param_names()
        assert set(row["by_tensor"]["conv3.weight"]) == {"inner_product", "cosine", "squared_norm"}
    # the random init (the first checkpoint's run seed) is what the tiny checkpoints hold: same tasks, same numbers
    assert random_init["inner_product"] == reptile["inner_product"] == joint["inner_product"]
    assert plot.stat().st_size > 1000 and (tmp_path / "alignment-by-tensor.png").stat().st_size > 1000


def test_solution_distance_runs_end_to_end(checkpoints, omniglot_dir, tmp_path):
    out, plot = tmp_path / "distance.json", tmp_path / "distance.png"
    command = ["solution-distance", "--checkpoint", str(checkpoints["reptile"]), "--random-init", "--init-seed", "7"]
    command += ["--data-dir", str(omniglot_dir), "--tasks", "3", "--shots", "2", "--max-steps", "4"]
    result = run_cli([*command, "--out", str(out), "--plot", str(plot)])
    assert result.returncode == 0, result.stderr
    assert "distance (body)" in result.stdout
    report = json.loads(out.read_text())
    assert report["settings"]["shots"] == 2 and report["settings"]["lr"] == 0.002
    assert report["settings"]["loss_threshold"] == 0.01 and report["settings"]["max_steps"] == 4
    for row in report["starts"]:
        assert set(row["distance"]) == {"all", "body"} and row["distance"]["all"]["mean"] > 0
        assert row["distance"]["body"]["mean"] <= row["distance"]["all"]["mean"]
        assert set(row["relative_distance"]) == {"all", "body"} and row["start_norm"]["all"] > 0
        assert set(row) >= {"steps", "final_loss", "reached_threshold", "per_task"} and row["tasks"] == 3
        assert len(row["per_task"]["distance_all"]) == 3
    assert report["starts"][1]["start"] == "random init (seed 7)"
    assert report["settings"]["optimizer"] == "adam" and plot.stat().st_size > 1000

    result = run_cli([*command, "--optimizer", "flow", "--out", str(out)])
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert report["settings"]["optimizer"] == "flow" and report["settings"]["lr"] == FLOW_STEP


@pytest.mark.parametrize("command", ["gradient-alignment", "solution-distance"])
def test_help_answers(command):
    result = run_cli([command, "--help"])
    assert result.returncode == 0 and "--checkpoint" in result.stdout and "--random-init" in result.stdout


@pytest.mark.parametrize(
    "command, flags, message",
    [
        ("gradient-alignment", ["--tasks", "0"], "argument --tasks: expected a positive integer"),
        ("gradient-alignment", ["--batch", "8", "--shots", "3"], "argument --batch: two disjoint batches of 8"),
        ("gradient-alignment", ["--ways", "7"], "argument --ways: the checkpoint's head has 5 ways"),
        ("gradient-alignment", ["--checkpoint", "OTHER"], "argument --checkpoint: "),
        ("gradient-alignment", ["--out", "/nonexistent/a.json"], "argument --out: directory /nonexistent"),
        ("solution-distance", ["--shots", "21"], "argument --shots: the held-out classes have 20 examples each"),
        ("solution-distance", ["--loss-threshold", "-1"], "argument --loss-threshold: expected a positive number"),
        ("solution-distance", ["--optimizer", "lbfgs"], "argument --optimizer: invalid choice: 'lbfgs'"),
        ("solution-distance", ["--checkpoint", "missing.pt"], "argument --checkpoint: cannot read checkpoint"),
    ],
)
def test_bad_flags_get_a_one_line_error_naming_the_flag(checkpoints, omniglot_dir, command, flags, message):
    flags = [str(checkpoints["other_split"]) if flag == "OTHER" else flag for flag in flags]
    base = [command, "--checkpoint", str(checkpoints["reptile"]), "--data-dir", str(omniglot_dir)]
    result = run_cli([*base, *flags])
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and message in result.stderr.strip().splitlines()[-1]
    if flags[0] == str(checkpoints["other_split"]):
        assert "holds out other classes" in result.stderr
