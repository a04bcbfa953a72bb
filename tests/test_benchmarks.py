"""The training benchmarks run on real checkpoints (a finished run too) and reject bad flags clearly."""
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _python(*args, timeout=300):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def test_adam_state_combination_measures_a_finished_run(tmp_path, omniglot_dir):
    # A finished run's meta step size is 0: the script must still compare the two rules' updates.
    out = tmp_path / "run"
    trained = _python("-m", "training", "train", "--data-dir", str(omniglot_dir), "--out", str(out), "--meta-iters", "3",
                      "--filters", "8", "--inner-iters", "2", "--eval-tasks", "2", "--no-progress")
    assert trained.returncode == 0, trained.stderr
    measured = _python("benchmarks/adam_state_combination.py", "--checkpoint", str(out / "checkpoint.pt"),
                       "--data-dir", str(omniglot_dir), "--iters", "2")
    assert measured.returncode == 0, measured.stderr
    assert "checkpoint iteration 3 (meta step size 0)" in measured.stdout
    gaps = [float(x) for x in re.findall(r"median (\d+\.\d+)", measured.stdout)]
    assert len(gaps) == 3 and all(g == g for g in gaps)  # no NaN
    # The two rules differ (v is combined differently) but far less than two different meta-batches do.
    assert 0 < gaps[0] < gaps[2]


def test_adam_state_combination_names_the_bad_flag(tmp_path):
    missing = _python("benchmarks/adam_state_combination.py", "--checkpoint", str(tmp_path / "none.pt"))
    assert missing.returncode == 2 and "--checkpoint: no such file" in missing.stderr
    zero = _python("benchmarks/adam_state_combination.py", "--checkpoint", str(tmp_path / "none.pt"), "--iters", "0")
    assert zero.returncode == 2 and "--iters" in zero.stderr


def test_meta_train_throughput_names_the_bad_flag():
    for flag in ("--iters", "--rounds"):
        result = _python("benchmarks/meta_train_throughput.py", flag, "0")
        assert result.returncode == 2 and f"argument {flag}: expected a positive integer" in result.stderr
