"""The training command end to end: resume after SIGKILL, multi-process, flag errors, and a
short real run on the shared Omniglot data that must learn (CI's check that the algorithm works)."""

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import DEVICES, ENV, ROOT, SMALL, metrics_without_times, run_cli


def _final(out: Path) -> dict:
    return torch.load(out / "checkpoint.pt", weights_only=False)


def test_killed_run_resumes_to_exactly_the_same_weights(tmp_path, omniglot_dir):
    args = [
        "train",
        "--data-dir",
        str(omniglot_dir),
        "--meta-iters",
        "400",
        "--checkpoint-interval",
        "100",
        "--eval-interval",
        "200",
        *SMALL,
    ]
    assert run_cli([*args, "--out", str(tmp_path / "whole")]).returncode == 0

    killed = tmp_path / "killed"
    process = subprocess.Popen(
        [sys.executable, "-m", "training", *args, "--out", str(killed)],
        cwd=ROOT,
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 300
    while not (killed / "checkpoint.pt").exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL, "the run ended before it could be killed"
    killed_at = _final(killed)["iteration"]
    assert killed_at < 400

    resumed = run_cli([*args, "--out", str(killed), "--resume"])
    assert resumed.returncode == 0, resumed.stderr
    whole, again = _final(tmp_path / "whole"), _final(killed)
    assert again["iteration"] == whole["iteration"] == 400
    for a, b in zip(whole["params"] + whole["adam_v"], again["params"] + again["adam_v"], strict=False):
        assert torch.equal(a, b)
    assert whole["adam_t"] == again["adam_t"] and whole["rng"] == again["rng"]
    assert metrics_without_times(killed) == metrics_without_times(tmp_path / "whole")
    assert (killed / "learning_curve.png").stat().st_size > 1000
    config = json.loads((killed / "config.json").read_text())
    assert config["config"]["meta_iters"] == 400 and "omniglot_zip_sha256" in config
    assert [s["from_iteration"] for s in config["sessions"]] == [0, killed_at]
    assert len((killed / "test_classes.txt").read_text().split()) == 423


def test_two_processes_give_the_same_result_as_one(tmp_path, omniglot_dir):
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    args = [
        "train",
        "--data-dir",
        str(omniglot_dir),
        "--meta-iters",
        "6",
        "--meta-batch",
        "4",
        "--eval-interval",
        "1000",
        *SMALL,
    ]
    one = run_cli([*args, "--out", str(tmp_path / "one")])
    assert one.returncode == 0, one.stderr
    two = subprocess.run(
        [torchrun, "--standalone", "--nproc-per-node", "2", "-m", "training", *args, "--out", str(tmp_path / "two")],
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert two.returncode == 0, two.stderr[-3000:]
    a, b = _final(tmp_path / "one"), _final(tmp_path / "two")
    moved = max(float((x - y).abs().max()) for x, y in zip(a["params"], _initial_params(), strict=False))
    assert moved > 1e-3
    for x, y in zip(a["params"] + a["adam_v"], b["params"] + b["adam_v"], strict=False):
        torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-6)
    assert a["adam_t"] == b["adam_t"]


def _initial_params():
    from training.model import ModelSpec, init_params

    return init_params(ModelSpec(ways=5, filters=16), torch.Generator().manual_seed(3))


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--meta-iters", "0"], "argument --meta-iters: expected a positive integer"),
        (["--lr", "nan"], "argument --lr: expected a positive number"),
        (["--meta-step", "-1"], "argument --meta-step: expected a number >= 0"),
        (["--preset", "omniglot-7w"], "argument --preset: invalid choice"),
        (["--device", "cuda"], "argument --device: cuda was asked for but no CUDA device"),
        (["--meta-batch", "x"], "argument --meta-batch: expected a positive integer"),
    ],
)
def test_bad_flags_get_a_one_line_error_naming_the_flag(tmp_path, flags, message):
    if flags == ["--device", "cuda"] and torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    result = run_cli(["train", "--out", str(tmp_path / "run"), *flags])
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_existing_run_needs_resume_and_the_same_config(tmp_path, omniglot_dir):
    args = [
        "train",
        "--data-dir",
        str(omniglot_dir),
        "--out",
        str(tmp_path),
        "--meta-iters",
        "2",
        "--eval-interval",
        "1000",
        *SMALL,
    ]
    assert run_cli(args).returncode == 0
    again = run_cli(args)
    assert again.returncode == 2 and "pass --resume" in again.stderr and "Traceback" not in again.stderr
    changed = run_cli([*args, "--resume", "--lr", "0.5"])
    assert changed.returncode == 2 and "different config" in changed.stderr


@pytest.mark.parametrize("device", DEVICES)
def test_short_real_run_learns_well_above_chance(tmp_path, omniglot_dir, device):
    """A few hundred meta-iterations of the kept 5-way model's preset (omniglot-5w5s-v1) on the real
    data, then 5-way 1-shot evaluation on held-out characters: chance is 20 %; a broken algorithm
    stays near it."""
    out = tmp_path / "run"
    trained = run_cli(
        [
            "train",
            "--preset",
            "omniglot-5w5s-v1",
            "--data-dir",
            str(omniglot_dir),
            "--out",
            str(out),
            "--meta-iters",
            "300",
            "--eval-interval",
            "1000",
            "--no-progress",
            "--device",
            device,
        ]
    )
    assert trained.returncode == 0, trained.stderr
    session = json.loads((out / "config.json").read_text())["sessions"][0]
    assert session["device"].startswith(device)
    assert bool(session.get("gpu")) == (device == "cuda")  # a GPU session names its card
    assert session["cuda_graph"] == (device == "cuda")  # a GPU replays the inner loop as a CUDA graph
    report = tmp_path / "eval.json"
    evaluated = run_cli(
        [
            "evaluate",
            "--checkpoint",
            str(out / "checkpoint.pt"),
            "--data-dir",
            str(omniglot_dir),
            "--tasks",
            "300",
            "--shots",
            "1",
            "--eval-iters",
            "50",
            "--eval-batch",
            "5",
            "--json",
            str(report),
            "--no-progress",
            "--device",
            device,
        ]
    )
    assert evaluated.returncode == 0, evaluated.stderr
    results = {r["transductive"]: r for r in json.loads(report.read_text())["results"]}
    print(evaluated.stdout)
    assert results[False]["accuracy"] > 0.6 and results[True]["accuracy"] > 0.6
    assert 0 < results[False]["ci95"] < 0.05


def test_more_cuda_processes_than_gpus_get_a_clear_error(monkeypatch):
    from training.train import init_distributed

    gpus = torch.cuda.device_count()
    monkeypatch.setenv("WORLD_SIZE", str(gpus + 2))
    monkeypatch.setenv("LOCAL_RANK", str(gpus))  # the process that finds no GPU of its own
    with pytest.raises(ValueError, match="needs one GPU per process"):
        init_distributed("cuda")
