"""The joint-training baseline (training/baseline.py): a tiny run through the CLI whose checkpoint
the standard `evaluate` command fine-tunes, bit-exact resume after an interruption, flag errors."""

import json
import shutil

import pytest
import torch
from helpers import metrics_without_times, run_cli

TINY = ["--filters", "16", "--seed", "3", "--no-progress"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, omniglot_dir):
    out = tmp_path_factory.mktemp("joint") / "run"
    result = run_cli(
        [
            "baseline",
            "--data-dir",
            str(omniglot_dir),
            "--out",
            str(out),
            "--steps",
            "30",
            "--batch-size",
            "32",
            "--checkpoint-interval",
            "10",
            "--eval-interval",
            "30",
            "--eval-tasks",
            "4",
            *TINY,
        ]
    )
    assert result.returncode == 0, result.stderr
    return out


def test_checkpoint_has_a_fresh_n_way_head_and_no_adam_state(tiny_run):
    from training.model import ModelSpec, init_params

    payload = torch.load(tiny_run / "checkpoint.pt", weights_only=False)
    assert payload["iteration"] == 30
    assert payload["config"]["algorithm"] == "joint" and payload["config"]["filters"] == 16
    assert payload["spec"]["ways"] == payload["config"]["ways"] == 5
    assert payload["adam_t"] == 0 and all(not v.any() for v in payload["adam_v"])
    fresh = init_params(ModelSpec(**payload["spec"]), torch.Generator().manual_seed(3))
    assert [p.shape for p in payload["params"]] == [p.shape for p in fresh]
    for saved, glorot in zip(payload["params"][-2:], fresh[-2:], strict=False):  # the head: Glorot from the run seed
        assert torch.equal(saved, glorot)
    body_moved = max(float((a - b).abs().max()) for a, b in zip(payload["params"][:-2], fresh[:-2], strict=False))
    assert body_moved > 1e-3
    joint = payload["joint"]  # the full 4,800-way model, kept for resuming
    assert joint["spec"]["ways"] == 4800 and joint["params"][-1].shape == (4800,)
    for a, b in zip(joint["params"][:-2], payload["params"][:-2], strict=False):
        assert torch.equal(a, b)
    rows = [json.loads(line) for line in (tiny_run / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == 30 and rows[-1]["loss"] > 0 and 0 <= rows[-1]["test_accuracy"] <= 1
    config = json.loads((tiny_run / "config.json").read_text())
    assert config["baseline"]["images"] == 4800 * 20 and config["baseline"]["batch_size"] == 32


def test_the_standard_evaluate_command_fine_tunes_the_checkpoint(tiny_run, omniglot_dir, tmp_path):
    report = tmp_path / "eval.json"
    result = run_cli(
        [
            "evaluate",
            "--checkpoint",
            str(tiny_run / "checkpoint.pt"),
            "--data-dir",
            str(omniglot_dir),
            "--tasks",
            "10",
            "--eval-iters",
            "20",
            "--adam-state",
            "reset",
            "--mode",
            "non-transductive",
            "--json",
            str(report),
            "--no-progress",
        ]
    )
    assert result.returncode == 0, result.stderr
    (row,) = json.loads(report.read_text())["results"]
    assert row["ways"] == 5 and row["tasks"] == 10 and 0 <= row["accuracy"] <= 1 and row["ci95"] >= 0


def test_interrupted_run_resumes_to_exactly_the_same_weights(tmp_path, omniglot_dir):
    from training.baseline import train_joint
    from training.presets import PRESETS

    config = PRESETS["omniglot-5w5s"].updated(filters=8, seed=5, eval_tasks=2, eval_iters=3)
    kwargs = dict(
        data_dir=omniglot_dir,
        steps=20,
        batch_size=16,
        lr=0.002,
        progress=False,
        eval_interval=10,
        checkpoint_interval=5,
        log_interval=4,
    )
    train_joint(config, tmp_path / "whole", **kwargs)

    cut = tmp_path / "cut"
    train_joint(config, cut, stop_after=10, **kwargs)
    shutil.copy(cut / "checkpoint.pt", tmp_path / "at10.pt")
    train_joint(config, cut, resume=True, stop_after=13, **kwargs)
    # A kill at step 13: the last checkpoint is step 10's, metrics.jsonl already has step 12's row.
    shutil.copy(tmp_path / "at10.pt", cut / "checkpoint.pt")
    assert json.loads((cut / "metrics.jsonl").read_text().splitlines()[-1])["step"] == 12
    train_joint(config, cut, resume=True, **kwargs)

    whole, again = (torch.load(d / "checkpoint.pt", weights_only=False) for d in (tmp_path / "whole", cut))
    assert whole["iteration"] == again["iteration"] == 20 and whole["rng"] == again["rng"]
    for a, b in zip(
        whole["params"] + whole["joint"]["params"], again["params"] + again["joint"]["params"], strict=False
    ):
        assert torch.equal(a, b)
    for key, state in whole["joint"]["optimizer"]["state"].items():
        for name, value in state.items():
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(again["joint"]["optimizer"]["state"][key][name]))
    assert metrics_without_times(cut) == metrics_without_times(tmp_path / "whole")
    assert [r["step"] for r in metrics_without_times(cut)] == [4, 8, 10, 12, 16, 20]


def test_a_zero_step_run_writes_the_random_initialization(tmp_path, omniglot_dir):
    """--steps 0: the checkpoint is the start both joint training and Reptile begin from (init_params with
    the run seed, head included), for a comparison bundle without meta-learning."""
    from training.model import ModelSpec, init_params

    out = tmp_path / "start"
    result = run_cli(["baseline", "--data-dir", str(omniglot_dir), "--out", str(out), "--steps", "0", *TINY])
    assert result.returncode == 0, result.stderr
    payload = torch.load(out / "checkpoint.pt", weights_only=False)
    assert payload["iteration"] == 0 and payload["adam_t"] == 0
    fresh = init_params(ModelSpec(**payload["spec"]), torch.Generator().manual_seed(3))
    assert all(torch.equal(a, b) for a, b in zip(payload["params"], fresh, strict=True))
    assert json.loads((out / "config.json").read_text())["baseline"]["steps"] == 0


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--steps", "-1"], "argument --steps: expected an integer >= 0"),
        (["--batch-size", "x"], "argument --batch-size: expected a positive integer"),
        (["--lr", "nan"], "argument --lr: expected a positive number"),
        (["--lr", "-1"], "argument --lr: expected a positive number"),
        (["--preset", "omniglot-7w"], "argument --preset: invalid choice"),
        (["--checkpoint-interval", "0"], "argument --checkpoint-interval: expected a positive integer"),
    ],
)
def test_bad_flags_get_a_one_line_error_naming_the_flag(tmp_path, flags, message):
    result = run_cli(["baseline", "--out", str(tmp_path / "run"), *flags])
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_existing_run_needs_resume_and_the_same_flags(tiny_run, tmp_path):
    again = run_cli(["baseline", "--out", str(tiny_run), "--steps", "30", "--batch-size", "32", *TINY])
    assert again.returncode == 2 and "pass --resume" in again.stderr and "Traceback" not in again.stderr
    changed = run_cli(
        [
            "baseline",
            "--out",
            str(tiny_run),
            "--steps",
            "30",
            "--batch-size",
            "32",
            "--checkpoint-interval",
            "10",
            "--eval-interval",
            "30",
            "--eval-tasks",
            "4",
            "--lr",
            "0.5",
            "--resume",
            *TINY,
        ]
    )
    assert changed.returncode == 2 and "different config (joint lr=0.001)" in changed.stderr
    assert "Traceback" not in changed.stderr
