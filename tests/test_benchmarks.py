"""The training benchmarks run on real checkpoints (a finished run too) and reject bad flags clearly."""

import re

import pytest
from test_training_run import SMALL, _python, _run


def test_adam_state_combination_measures_a_finished_run(tmp_path, omniglot_dir):
    # A finished run's meta step size is 0: the script must still compare the two rules' updates.
    out = tmp_path / "run"
    trained = _run(
        [
            "train",
            "--data-dir",
            str(omniglot_dir),
            "--out",
            str(out),
            "--meta-iters",
            "3",
            "--inner-iters",
            "2",
            *SMALL,
        ],
        timeout=300,
    )
    assert trained.returncode == 0, trained.stderr
    measured = _python(
        "benchmarks/adam_state_combination.py",
        "--checkpoint",
        str(out / "checkpoint.pt"),
        "--data-dir",
        str(omniglot_dir),
        "--iters",
        "2",
        timeout=300,
    )
    assert measured.returncode == 0, measured.stderr
    assert "checkpoint iteration 3 (meta step size 0)" in measured.stdout
    gaps = [float(x) for x in re.findall(r"median (\d+\.\d+)", measured.stdout)]
    assert len(gaps) == 3 and all(g == g for g in gaps)  # no NaN
    # The two rules differ (v is combined differently) but far less than two different meta-batches do.
    assert 0 < gaps[0] < gaps[2]


def test_adam_state_combination_names_the_bad_flag(tmp_path):
    missing = _python("benchmarks/adam_state_combination.py", "--checkpoint", str(tmp_path / "none.pt"), timeout=300)
    assert missing.returncode == 2 and "argument --checkpoint: cannot read checkpoint" in missing.stderr
    zero = _python(
        "benchmarks/adam_state_combination.py", "--checkpoint", str(tmp_path / "none.pt"), "--iters", "0", timeout=300
    )
    assert zero.returncode == 2 and "--iters" in zero.stderr


def test_meta_train_throughput_names_the_bad_flag():
    for flag in ("--iters", "--rounds"):
        result = _python("benchmarks/meta_train_throughput.py", flag, "0", timeout=300)
        assert result.returncode == 2 and f"argument {flag}: expected a positive integer" in result.stderr


@pytest.mark.parametrize("script", ["head_extension.py", "adaptation_steps.py", "adam_state_combination.py"])
def test_a_file_that_is_not_a_checkpoint_is_named_as_such(tmp_path, script):
    garbage = tmp_path / "notes.txt"
    garbage.write_text("12 not a checkpoint\n")
    result = _python(f"benchmarks/{script}", "--checkpoint", str(garbage), timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "argument --checkpoint: cannot read checkpoint" in result.stderr
    assert "not a checkpoint of this project" in result.stderr


@pytest.mark.parametrize(
    "script, flags, message",
    [
        ("head_extension.py", ["--tasks", "0"], "argument --tasks: expected a positive integer"),
        ("head_extension.py", ["--steps", "10,0"], "argument --steps: expected comma-separated positive integers"),
        ("head_extension.py", ["--lr", "-1"], "argument --lr: expected a positive number"),
        ("adaptation_steps.py", ["--lrs", "0.003,x"], "argument --lrs: expected comma-separated positive numbers"),
        ("adaptation_steps.py", ["--settings", "5x0"], "argument --settings: expected ways x shots pairs"),
    ],
)
def test_fine_tuning_benchmarks_name_the_bad_flag(tmp_path, script, flags, message):
    result = _python(f"benchmarks/{script}", "--checkpoint", str(tmp_path / "none.pt"), *flags, timeout=300)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_evaluate_says_a_file_is_not_a_checkpoint(tmp_path):
    garbage = tmp_path / "notes.txt"
    garbage.write_text("hello\n")
    result = _run(["evaluate", "--checkpoint", str(garbage)], timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "argument --checkpoint: cannot read checkpoint" in result.stderr
    assert "not a checkpoint of this project" in result.stderr


def test_model_comparison_gives_every_checkpoint_the_same_tasks(tmp_path, omniglot_dir):
    out = tmp_path / "run"
    trained = _run(
        [
            "train",
            "--data-dir",
            str(omniglot_dir),
            "--out",
            str(out),
            "--meta-iters",
            "3",
            "--inner-iters",
            "2",
            *SMALL,
        ],
        timeout=300,
    )
    assert trained.returncode == 0, trained.stderr
    copy = tmp_path / "copy.pt"
    copy.write_bytes((out / "checkpoint.pt").read_bytes())
    measured = _python(
        "benchmarks/model_comparison.py",
        "--checkpoints",
        str(out / "checkpoint.pt"),
        str(copy),
        "--data-dir",
        str(omniglot_dir),
        "--tasks",
        "3",
        "--settings",
        "2x1,7x2",
        "--steps",
        "2",
        timeout=300,
    )
    assert measured.returncode == 0, measured.stderr
    rows = [line for line in measured.stdout.splitlines() if re.match(r"\| \d+ x \d+ \|", line)]
    assert [row.split(" | ")[0] for row in rows] == ["| 2 x 1", "| 7 x 2"]  # 7 classes from a 5-way head
    for row in rows:
        cells = row.strip(" |").split(" | ")[1:]
        assert len(cells) == 2 and cells[0] == cells[1]  # the same model on the same tasks


def test_model_comparison_names_the_bad_flag(tmp_path):
    garbage = tmp_path / "notes.txt"
    garbage.write_text("not a checkpoint\n")
    result = _python("benchmarks/model_comparison.py", "--checkpoints", str(garbage), timeout=300)
    assert result.returncode == 2 and "argument --checkpoints: cannot read checkpoint" in result.stderr
    result = _python("benchmarks/model_comparison.py", "--checkpoints", str(garbage), "--steps", "0", timeout=300)
    assert result.returncode == 2 and "argument --steps: expected a positive integer" in result.stderr
